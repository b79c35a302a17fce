/**
 * A job asks its shard executor to prepare a model (ShardExecutor.prepare: the pool's threads load and
 * warm it) only for a classifier that runs on tfjs, whose shards rebuild it there: the request is made
 * where the job's engine is chosen (jobs/model-ref.ts jobEngine), not when the model is resolved. A job
 * on ONNX Runtime runs in its own thread and prepares nothing (it cost every pool thread 40-50 ms of
 * CPU per model, issue 17). A tfjs job asks once, with its model's spec, before its first shard; the
 * transfer model of an ONNX Runtime attack (judged on tfjs) and the loss surface (always tfjs) are
 * prepared. Each job here runs in this thread, its shards on an InlineShardExecutor behind the spy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalContext } from '../../../src-main/engine/context';
import { InlineShardExecutor } from '../../../src-main/engine/shards/inline';
import type { ClassifierSpec, Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../../../src-main/engine/shards/types';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { trainSmallMnistModel, type SmallMnistModel } from '../../fixtures/small-mnist-model';

let env: JobEnv;
let model: string;
let sha256: string;
let fixture: SmallMnistModel | undefined;

beforeAll(async () => {
  fixture = await trainSmallMnistModel('advlab-prepare-engine-');
  ({ env, model } = fixture);
  sha256 = String((await new SessionStore(env.sessionsRoot).manifest(model)).summary.modelSha256);
}, 120_000);
afterAll(() => fixture?.cleanup());

/** Runs shards in this thread and records, in order, every prepare and run it is given. */
class SpyExecutor implements ShardExecutor {
  readonly where = 'pool' as const;
  readonly parallelism = 2;
  readonly calls: ({ prepare: ClassifierSpec[] } | { run: number })[] = [];
  private readonly inner: InlineShardExecutor;
  constructor(ctx: LocalContext) {
    this.inner = new InlineShardExecutor(ctx, 2);
  }
  prepare(classifiers: readonly ClassifierSpec[]): void {
    this.calls.push({ prepare: [...classifiers] });
  }
  run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    this.calls.push({ run: shards.length });
    return this.inner.run(shards, onProgress);
  }
  get prepared(): ClassifierSpec[][] {
    return this.calls.flatMap((c) => ('prepare' in c ? [c.prepare] : []));
  }
}

async function run(kind: 'attack' | 'sweep' | 'loss-surface', params: Record<string, unknown>) {
  const ctx = new LocalContext();
  const spy = new SpyExecutor(ctx);
  Object.assign(ctx, { shards: spy });
  const r = (await jobHandlers[kind](params as never, ctx, env)) as Record<string, unknown>;
  return { r, spy };
}

const attack = (extra: Record<string, unknown>) => run('attack', { model, dataset: 'mnist', attack: 'pgd', n: 8, batchSize: 4, params: { eps: 0.1, steps: 3 }, saveExamples: 0, ...extra });

describe('the pool prepares a job\'s model only where the job runs it on tfjs', () => {
  it('an attack on ONNX Runtime (auto, or asked for) prepares nothing and sends no shard', async () => {
    for (const engine of ['auto', 'onnx'] as const) {
      const { r, spy } = await attack({ engine });
      expect(r.engine, engine).toBe('onnx');
      expect(spy.calls, engine).toEqual([]);
    }
  }, 120_000);

  it('an attack on tfjs prepares its model once, with its spec, before its first shard', async () => {
    const { r, spy } = await attack({ engine: 'tfjs' });
    expect(r.engine).toBe('tfjs');
    expect(spy.prepared).toEqual([[expect.objectContaining({ kind: 'saved', sha256, gradient: 'real' })]]);
    expect(spy.calls[0]).toHaveProperty('prepare');
    expect(spy.calls.filter((c) => 'run' in c).length).toBeGreaterThan(0);
  }, 120_000);

  it('a sweep on ONNX Runtime prepares nothing; one on tfjs prepares its model', async () => {
    const sweep = (engine: string) => run('sweep', { model, dataset: 'mnist', attack: 'fgsm', n: 8, epsilons: [0, 0.1], engine });
    expect((await sweep('onnx')).spy.calls).toEqual([]);
    expect((await sweep('tfjs')).spy.prepared).toEqual([[expect.objectContaining({ sha256 })]]);
  }, 120_000);

  it('the transfer model of an attack on ONNX Runtime is prepared (it judges on tfjs), the attacked one is not', async () => {
    const { r, spy } = await attack({ engine: 'onnx', transferTo: model });
    expect(r.engine).toBe('onnx');
    // The same saved model, as the transfer target: one prepare, for it alone.
    expect(spy.prepared).toEqual([[expect.objectContaining({ sha256 })]]);
  }, 120_000);

  it('a loss surface (tfjs) prepares its model', async () => {
    const { spy } = await run('loss-surface', { model, dataset: 'mnist', index: 0, resolution: 3, directions: ['random-random'] });
    expect(spy.prepared).toEqual([[expect.objectContaining({ sha256 })]]);
  }, 120_000);
});
