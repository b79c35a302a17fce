import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { ensembleAttacks, fromBase64, runEnsemble, type EnsembleState } from '../../../src-main/engine/eval';
import { mnist, trainDense, type Subset } from '../attacks/helpers';
import { loadModel, saveModel } from '../../../src-main/engine/models/io';
import { classifierFor } from '../../../src-main/engine/models/defended';
import { InlineShardExecutor } from '../../../src-main/engine/shards/inline';
import { clearClassifierCache } from '../../../src-main/engine/shards/classifiers';
import type { Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../../../src-main/engine/shards/types';

let clf: Classifier;
let pts: Subset;
const opts = { norm: 'linf' as const, eps: 0.08, version: 'quick' as const, seed: 3, chunkSize: 8 };

function predict(c: Classifier, images: Float32Array): number[] {
  return tf.tidy(() => Array.from(tf.argMax(c.logits(tf.tensor4d(images, [images.length / 784, 28, 28, 1])), 1).dataSync()));
}

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5200, 32);
});

describe('the standard ensemble', () => {
  let snapshots: EnsembleState[] = [];
  let full: Awaited<ReturnType<typeof runEnsemble>>;

  it('runs APGD-CE, APGD-T, Square in turn, each on the inputs still robust; records who broke what', async () => {
    snapshots = [];
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    full = await runEnsemble(clf, pts.images, pts.labels, { ...opts, checkpointSeconds: 0 }, ctx, { save: async (s) => { snapshots.push(JSON.parse(JSON.stringify(s))); } });
    expect(tf.memory().numTensors).toBe(before);
    expect(full.waterfall.map((s) => s.attack)).toEqual(['clean', 'apgd-ce', 'apgd-t', 'square']);
    for (let i = 1; i < full.waterfall.length; i++) {
      expect(full.waterfall[i].robust).toBe(full.waterfall[i - 1].robust - full.waterfall[i].broken);
    }
    expect(full.waterfall[1].broken).toBeGreaterThan(0);
    expect(full.robustAccuracy).toBeLessThan(full.cleanAccuracy);
    // Every broken input: its attack, a distance within eps, and an adversarial the model gets wrong.
    const broken = full.perExample.filter((e) => e.brokenBy);
    expect(broken.length).toBe(full.waterfall.slice(1).reduce((s, w) => s + w.broken, 0));
    const advs = new Float32Array(broken.length * 784);
    broken.forEach((e, j) => advs.set(fromBase64(full.state.adversarial[e.index]!), j * 784));
    const preds = predict(clf, advs);
    broken.forEach((e, j) => {
      expect(e.cleanCorrect).toBe(true);
      expect(e.robust).toBe(false);
      expect(e.distance!).toBeLessThanOrEqual(0.08 + 1e-5);
      expect(e.iterations!).toBeGreaterThanOrEqual(e.brokenBy === 'square' ? 1 : 0);
      expect(preds[j]).toBe(e.advPred);
      expect(preds[j]).not.toBe(e.label);
    });
    for (const e of full.perExample) expect(e.robust).toBe(e.cleanCorrect && !e.brokenBy);
    // APGD-T only saw what APGD-CE left: its rows are the inputs robust after APGD-CE.
    const t = snapshots.find((s) => s.current?.attack === 'apgd-t')!;
    const afterCe = full.perExample.filter((e) => e.cleanCorrect && e.brokenBy !== 'apgd-ce').map((e) => e.index);
    expect(t.current!.rows).toEqual(afterCe);
    for (let i = 1; i < ctx.events.length; i++) expect(ctx.events[i].step / ctx.events[i].total).toBeGreaterThanOrEqual(ctx.events[i - 1].step / ctx.events[i - 1].total - 1e-12);
  });

  it('resumed from any saved state, it ends exactly as the uninterrupted run', async () => {
    const mids = [snapshots.find((s) => s.current?.attack === 'apgd-ce' && s.current.chunksDone === 1)!, snapshots.find((s) => s.current?.attack === 'apgd-t')!, snapshots.find((s) => s.current?.attack === 'square')!].filter(Boolean);
    expect(mids.length).toBeGreaterThanOrEqual(2);
    for (const mid of mids) {
      const r = await runEnsemble(clf, pts.images, pts.labels, opts, undefined, { state: JSON.parse(JSON.stringify(mid)) });
      expect(r.robustAccuracy).toBe(full.robustAccuracy);
      expect(r.perExample.map((e) => e.brokenBy)).toEqual(full.perExample.map((e) => e.brokenBy));
      expect(r.perExample.map((e) => e.iterations)).toEqual(full.perExample.map((e) => e.iterations));
      expect(r.state.resumed).toBe(mid.resumed + 1);
    }
  });

  it('refuses a saved state from other inputs or settings; a cancel carries the state', async () => {
    const s = JSON.parse(JSON.stringify(snapshots[0]));
    await expect(runEnsemble(clf, pts.images, pts.labels, { ...opts, eps: 0.1 }, undefined, { state: s })).rejects.toSatisfy((e: unknown) => e instanceof AdvlabError && /eps differ/.test(e.message));
    const other = mnist(6000, 32);
    await expect(runEnsemble(clf, other.images, other.labels, opts, undefined, { state: JSON.parse(JSON.stringify(snapshots[0])) })).rejects.toThrow(/fingerprint differ/);
    let events = 0;
    const ctx = new LocalContext(() => { if (++events === 3) ctx.cancel(); });
    const err = await runEnsemble(clf, pts.images, pts.labels, opts, ctx).catch((e) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).partial).toMatchObject({ format: 1, config: { eps: 0.08 } });
  });

  it('the standard version runs FAB-T (AutoAttack\'s parameters) between APGD-T and Square, on what APGD-T left; quick leaves it out', async () => {
    expect(ensembleAttacks('linf', 0.3, 'standard', 1).map((a) => a.attack)).toEqual(['apgd', 'apgd-t', 'fab-t', 'square']);
    expect(ensembleAttacks('l2', 2, 'standard', 1).map((a) => a.attack)).toEqual(['apgd-l2', 'apgd-t-l2', 'fab-t-l2', 'square-l2']);
    expect(ensembleAttacks('linf', 0.3, 'quick', 1).map((a) => a.name)).toEqual(['apgd-ce', 'apgd-t', 'square']);
    expect(ensembleAttacks('linf', 0.3, 'standard', 1)[2]).toEqual({ name: 'fab-t', attack: 'fab-t', params: { eps: 0.3, steps: 100, targetClasses: 9, restarts: 1, seed: 1 }, gradient: true });
    const sub = mnist(5300, 12);
    const saved: EnsembleState[] = [];
    const before = tf.memory().numTensors;
    const r = await runEnsemble(clf, sub.images, sub.labels, { norm: 'linf', eps: 0.05, version: 'standard', chunkSize: 12, checkpointSeconds: 0 }, undefined,
      { save: async (s) => { saved.push(JSON.parse(JSON.stringify(s))); } });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.waterfall.map((s) => s.attack)).toEqual(['clean', 'apgd-ce', 'apgd-t', 'fab-t', 'square']);
    for (let i = 1; i < r.waterfall.length; i++) expect(r.waterfall[i].robust).toBe(r.waterfall[i - 1].robust - r.waterfall[i].broken);
    // FAB-T saw exactly the inputs APGD-CE and APGD-T left.
    const fab = saved.find((s) => s.current?.attack === 'fab-t')!;
    expect(fab.current!.rows).toEqual(r.perExample.filter((e) => e.cleanCorrect && e.brokenBy !== 'apgd-ce' && e.brokenBy !== 'apgd-t').map((e) => e.index));
    expect(r.outcome.robustAccuracyAfterGradientAttacks).toBe(r.waterfall[3].robustAccuracy);
    for (const e of r.perExample.filter((x) => x.brokenBy === 'fab-t')) {
      expect(e.distance!).toBeLessThanOrEqual(0.05 + 1e-5);
      expect(e.iterations!).toBeGreaterThanOrEqual(1);
    }
  });

  it('on a model with zero gradients (logits through round), Square breaks what APGD could not', async () => {
    const stepped: Classifier = { ...clf, logits: (x) => tf.tidy(() => tf.round(tf.mul(clf.logits(x), 4)) as tf.Tensor2D) };
    const r = await runEnsemble(stepped, pts.images, pts.labels, { norm: 'linf', eps: 0.2, version: 'quick', chunkSize: 32 });
    expect(r.outcome.brokenOnlyBySquare).toBeGreaterThan(5);
    expect(r.outcome.robustAccuracyAfterSquare).toBeLessThan(r.outcome.robustAccuracyAfterGradientAttacks - 0.15);
  });
});

/** Records the shards an executor was given. */
class CountingExecutor implements ShardExecutor {
  sizes: number[] = [];
  readonly where = 'pool' as const;
  constructor(private readonly inner: ShardExecutor) {}
  get parallelism() { return this.inner.parallelism; }
  run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    for (const s of shards) this.sizes.push((s.task as { labels: Int32Array }).labels.length);
    return this.inner.run(shards, onProgress);
  }
}

describe('the ensemble on a shard executor', () => {
  let dir: string;
  let saved: Classifier;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'advlab-ensemble-'));
    const { model } = await trainDense(mnist(0, 500), 32, 3, 3);
    await saveModel(model, dir, { arch: 'test-dense' });
    model.dispose();
    saved = classifierFor(await loadModel(dir));
  });
  afterAll(async () => {
    await clearClassifierCache();
    rmSync(dir, { recursive: true, force: true });
  });

  it('splits each chunk into pool-sized shards and ends exactly as the run in one thread', async () => {
    const sub = mnist(5200, 24);
    const o = { norm: 'linf' as const, eps: 0.06, version: 'quick' as const, seed: 2, chunkSize: 12 };
    const here = await runEnsemble(saved, sub.images, sub.labels, o);
    const base = new LocalContext();
    const counter = new CountingExecutor(new InlineShardExecutor(base, 3));
    const ctx = { progress: base.progress.bind(base), checkpoint: () => base.checkpoint(), get cancelled() { return base.cancelled; }, log: (m: string) => base.log(m), shards: counter };
    const pooled = await runEnsemble(saved, sub.images, sub.labels, o, ctx);
    // Chunks of 12 robust inputs, split over 3: shards of at most 4 (the last of a chunk may be smaller).
    expect(counter.sizes.length).toBeGreaterThan(3);
    expect(Math.max(...counter.sizes)).toBeLessThanOrEqual(4);
    expect(pooled.perExample).toEqual(here.perExample);
    expect(pooled.waterfall.map((w) => [w.attack, w.robust, w.broken])).toEqual(here.waterfall.map((w) => [w.attack, w.robust, w.broken]));
    expect(pooled.state.adversarial).toEqual(here.state.adversarial);
  });
});
