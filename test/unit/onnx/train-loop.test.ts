/**
 * trainClassifier on ONNX Runtime (the training loop's `engine`) against the same loop on tfjs: the same
 * loss curve, validation and weights within float noise, dropout included (our architectures' seeded dropout
 * draws the same masks on both engines); the fallback to tfjs with
 * its reason, the refusal with engine onnx; no tensor leaks; cancel within a step keeps the weights trained
 * so far; and the train job's options (strict schema, Nesterov, decay, engine recorded in the session).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { trainParams } from '../../../src-main/api/jobs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import { buildModel, trainClassifier, type TrainOptions, type TrainResult } from '../../../src-main/engine/models';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { quadrantSet } from '../models/synthetic';
import { writeIdxPair } from '../data/fixtures';

let root: string;
let env: JobEnv;
const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 10);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-onnx-train-'));
  const data = join(root, 'data');
  writeIdxPair(join(data, 'mnist'), 'train', labelsOf(300), { rows: 28, cols: 28, gz: true });
  writeIdxPair(join(data, 'mnist'), 't10k', labelsOf(50), { rows: 28, cols: 28, gz: true });
  env = { backend: await initBackend('wasm'), dataDirs: [data], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
});
afterAll(() => rm(root, { recursive: true, force: true }));

const small = (seed = 1, dropout = 0) => buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed, dropout });
const train = quadrantSet(400, 1);

function weights(m: tf.LayersModel): Float32Array[] {
  return m.getWeights().map((t) => t.dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('trainClassifier on ONNX Runtime', () => {
  const cases: [string, TrainOptions][] = [
    ['Nesterov momentum with decay', { optimizer: 'momentum', nesterov: true, decay: 0.05, learningRate: 0.05 }],
    ['Adam', { optimizer: 'adam', learningRate: 0.01 }],
  ];
  for (const [label, opt] of cases) {
    it(`${label}: the same loss curve and validation as tfjs within 1e-4, dropout 0.5 (weights too, under momentum)`, async () => {
      const run = async (engine: 'tfjs' | 'onnx') => {
        const m = small(7, 0.5);
        const ctx = new LocalContext();
        const r = await trainClassifier(m, train, { ...opt, batchSize: 40, epochs: 2, seed: 3, limitBatches: 4, validationSplit: 0.25, engine, threads: 1 }, {}, ctx);
        const w = weights(m);
        m.dispose();
        return { r, w, logs: ctx.logs };
      };
      const t = await run('tfjs'), o = await run('onnx');
      expect(t.r.engine).toEqual({ engine: 'tfjs', reason: 'requested (engine tfjs)' });
      expect(o.r.engine).toMatchObject({ engine: 'onnx', reason: 'requested (engine onnx)', threads: 1 });
      expect(o.logs[0]).toMatch(/^Training on onnx \(1 threads\)/);
      const lt = t.r.history.batches.map((b) => b.loss), lo = o.r.history.batches.map((b) => b.loss);
      expect(lo).toHaveLength(8);
      expect(new Set(lo.map((v) => v.toFixed(3))).size).toBeGreaterThan(2); // it trains
      lo.forEach((v, i) => expect(Math.abs(v - lt[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-4));
      expect(o.r.history.batches.map((b) => b.acc)).toEqual(t.r.history.batches.map((b) => b.acc));
      o.r.history.epochs.forEach((e, i) => expect(Math.abs(e.val_loss! - t.r.history.epochs[i].val_loss!)).toBeLessThanOrEqual(1e-4));
      // The weights: within 1e-4 under momentum. Adam divides by sqrt(v), so a weight whose true gradient is ~0
      // (sums that cancel) moves by about lr * sign(noise) on each engine: its weights are compared by the losses above
      // and the accuracy alone (measured: 98.6% of small-cnn's weights within 1e-4 after 8 steps, the rest up to 1.3 lr).
      if (opt.optimizer !== 'adam') o.w.forEach((w, i) => expect(maxAbsDiff(w, t.w[i])).toBeLessThanOrEqual(1e-4));
      expect(o.r.options).toMatchObject({ engine: 'onnx', decay: opt.decay ?? 0, nesterov: opt.nesterov ?? false });
    });
  }

  it('auto stays on tfjs with the reason when a hook needs tfjs; engine onnx refuses it', async () => {
    const m = small();
    const transformBatch = (x: tf.Tensor4D, y: tf.Tensor2D) => ({ x: tf.clone(x), y: tf.clone(y) });
    const r = await trainClassifier(m, train, { batchSize: 50, limitBatches: 1, engine: 'auto' }, { transformBatch });
    expect(r.engine).toEqual({ engine: 'tfjs', reason: 'a batch transform (e.g. adversarial examples) trains on tfjs' });
    const err = await trainClassifier(m, train, { batchSize: 50, limitBatches: 1, engine: 'onnx' }, { transformBatch }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdvlabError);
    expect((err as AdvlabError).code).toBe('UNSUPPORTED');
    expect((err as Error).message).toMatch(/engine onnx: a batch transform/);
    const auto = await trainClassifier(m, train, { batchSize: 50, limitBatches: 1, engine: 'auto' });
    expect(auto.engine).toMatchObject({ engine: 'onnx', reason: 'auto: every layer is exported for training' });
    m.dispose();
  });

  it('keeps numTensors flat across epochs (validation, early stopping with restoreBest) and frees everything', async () => {
    const model = small();
    const start = tf.memory().numTensors;
    const counts: number[] = [];
    await trainClassifier(model, train, { batchSize: 50, epochs: 3, limitBatches: 2, validationSplit: 0.1, earlyStop: { patience: 5, restoreBest: true }, engine: 'onnx', threads: 1 },
      { onEpoch: () => { counts.push(tf.memory().numTensors); } });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('cancel: stops after the step in progress, with the weights trained so far written into the model', async () => {
    const model = small();
    const w0 = weights(model);
    const ctx = new LocalContext();
    const start = tf.memory().numTensors;
    let atCancel: Float32Array[] = [];
    const err = await trainClassifier(model, train, { batchSize: 20, epochs: 5, engine: 'onnx', threads: 1 }, {
      onBatch: (row) => { if (row.step === 3) ctx.cancel(); },
      onEpoch: () => { atCancel = weights(model); },
    }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as TrainResult;
    expect(r.stepsRun).toBe(3);
    expect(r.epochsRun).toBe(0);
    expect(atCancel).toEqual([]); // no epoch ended
    expect(r.engine.engine).toBe('onnx');
    // The model holds the weights of step 3, not the initial ones.
    expect(maxAbsDiff(weights(model)[0], w0[0])).toBeGreaterThan(1e-6);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });
});

describe('the train job: optimizer options and the engine', () => {
  it('strict schema: {} beyond dataset and arch works, the new options are checked, unknown keys refused', () => {
    const p = trainParams.parse({ dataset: 'mnist', arch: 'cw-mnist' });
    expect(p.engine).toBe('auto');
    expect(p).not.toHaveProperty('nesterov'); // defaults live in trainClassifier's resolveOptions, not here
    expect(p).not.toHaveProperty('decay');
    expect(trainParams.parse({ dataset: 'mnist', arch: 'cw-mnist', optimizer: 'momentum', momentum: 0.9, nesterov: true, decay: 1e-6 })).toMatchObject({ nesterov: true, decay: 1e-6 });
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', momentum: 1 }).success).toBe(false);
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', decay: -1 }).success).toBe(false);
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', nesterov: 'yes' }).success).toBe(false);
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', engine: 'gpu' }).success).toBe(false);
    const unknown = trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', nesterovMomentum: true });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error?.issues)).toMatch(/nesterovMomentum/);
  });

  it('trains cw-mnist with the paper\'s optimizer on ONNX Runtime and records the engine; tfjs on request', async () => {
    const run = async (engine: 'onnx' | 'tfjs') => {
      const r = (await jobHandlers.train({
        dataset: 'mnist', arch: 'cw-mnist', epochs: 1, batchSize: 64, learningRate: 0.01, optimizer: 'momentum', nesterov: true, decay: 1e-6,
        validationSplit: 0, testLimit: 20, engine,
      }, new LocalContext(), env)) as Record<string, unknown> & { session: string };
      const manifest = await new SessionStore(env.sessionsRoot).manifest(r.session);
      return { r, manifest };
    };
    const o = await run('onnx');
    expect(o.r).toMatchObject({ engine: 'onnx', engineReason: expect.stringMatching(/^onnx \(\d+ threads\): requested \(engine onnx\)$/) });
    expect(o.manifest.summary).toMatchObject({ engine: 'onnx', epochsRun: 1 });
    expect(o.manifest.params).toMatchObject({ nesterov: true, decay: 1e-6, engine: 'onnx' });
    const t = await run('tfjs');
    expect(t.r).toMatchObject({ engine: 'tfjs', engineReason: 'tfjs: requested (engine tfjs)' });
  }, 120_000);
});
