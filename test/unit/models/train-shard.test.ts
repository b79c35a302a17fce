import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext, type JobContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { executeShard } from '../../../src-main/engine/shards/handlers';
import { InlineShardExecutor } from '../../../src-main/engine/shards/inline';
import type { Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../../../src-main/engine/shards/types';
import { buildModel, distillationLoss, trainClassifier, type TrainHooks, type TrainOptions, type TrainResult } from '../../../src-main/engine/models';
import { clearTrainShardModels, shardSizes, unshardableReason } from '../../../src-main/engine/models/train-shard';
import { crossEntropyLossFn } from '../../../src-main/engine/models/losses';
import { adversarialTrain } from '../../../src-main/engine/defenses/advtrain-core';
import { encodedShape, thermometerEncode } from '../../../src-main/engine/models/preprocessing';
import { quadrantSet } from './synthetic';

beforeAll(async () => {
  await initBackend('wasm');
});
afterEach(async () => {
  await clearTrainShardModels();
});

const set = quadrantSet(240, 3);

function buffersOf(value: unknown, out = new Set<ArrayBufferLike>()): Set<ArrayBufferLike> {
  if (ArrayBuffer.isView(value)) out.add(value.buffer);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) buffersOf(v, out);
  return out;
}

/** An InlineShardExecutor that records the shards it ran (so a test fails if training did not shard). */
class Recording implements ShardExecutor {
  readonly where = 'pool' as const;
  readonly runs: { ids: string[]; counts: number[] }[] = [];
  private readonly inner: InlineShardExecutor;
  constructor(ctx: JobContext, readonly parallelism: number, private readonly before?: (shards: Shard[]) => void) {
    this.inner = new InlineShardExecutor(ctx, parallelism);
  }
  run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    this.before?.(shards as Shard[]);
    // An executor may transfer each task's buffers to its worker: no buffer may be shared between shards.
    const seen = new Set<ArrayBufferLike>();
    for (const shard of shards) {
      for (const b of buffersOf(shard.task)) {
        expect(seen.has(b), `shard ${shard.id} shares a buffer with another shard`).toBe(false);
        seen.add(b);
      }
    }
    this.runs.push({ ids: shards.map((s) => s.id), counts: shards.map((s) => (s.task as { count: number }).count) });
    return this.inner.run(shards, onProgress);
  }
}

/** A LocalContext whose shards run inline through a Recording executor. */
function sharded(parallelism: number, before?: (shards: Shard[]) => void): { ctx: LocalContext & { shards: Recording }; exec: Recording } {
  const ctx = new LocalContext() as LocalContext & { shards: Recording };
  const exec = new Recording(ctx, parallelism, before);
  Object.defineProperty(ctx, 'shards', { value: exec });
  return { ctx, exec };
}

async function run(
  arch: 'small-cnn' | 'mlp', dropout: number, options: TrainOptions, ctx: JobContext, hooks: TrainHooks = {},
): Promise<{ r: TrainResult; weights: Float32Array[]; losses: number[] }> {
  const model = buildModel(arch, { inputShape: [8, 8, 1], numClasses: 4, seed: 11, dropout });
  try {
    const r = await trainClassifier(model, set, { seed: 4, progressIntervalMs: 0, ...options }, hooks, ctx);
    return { r, weights: model.getWeights().map((w) => w.dataSync() as Float32Array), losses: r.history.batches.map((b) => b.loss) };
  } finally {
    model.dispose();
  }
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a.map((w) => w.length)).toEqual(b.map((w) => w.length));
  let m = 0;
  a.forEach((w, i) => { for (let e = 0; e < w.length; e++) m = Math.max(m, Math.abs(w[e] - b[i][e])); });
  return m;
}

describe('sharded (data-parallel) training', () => {
  it('splits a batch by its size alone into 1, 2 or 4 near-equal contiguous shards of at least 32 examples', () => {
    expect(shardSizes(63)).toEqual([63]);
    expect(shardSizes(64)).toEqual([32, 32]);
    expect(shardSizes(65)).toEqual([33, 32]);
    expect(shardSizes(100)).toEqual([50, 50]);
    expect(shardSizes(128)).toEqual([32, 32, 32, 32]);
    expect(shardSizes(1001)).toEqual([251, 250, 250, 250]);
    expect(shardSizes(1)).toEqual([1]);
  });

  for (const optimizer of ['sgd', 'adam'] as const) {
    it(`one step on 2 shards equals one step on the whole batch within 1e-5 for every weight (${optimizer}, no dropout)`, async () => {
      const o: TrainOptions = { optimizer, batchSize: 64, limitBatches: 1, learningRate: 0.05 };
      const whole = await run('small-cnn', 0, o, new LocalContext());
      const { ctx, exec } = sharded(2);
      const split = await run('small-cnn', 0, o, ctx);
      expect(exec.runs).toHaveLength(1);
      expect(exec.runs[0].counts).toEqual([32, 32]);
      expect(maxDiff(whole.weights, split.weights)).toBeLessThan(1e-5);
      // The step moved the weights (the comparison is not between two untouched models).
      const init = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 11, dropout: 0 });
      expect(maxDiff(init.getWeights().map((w) => w.dataSync() as Float32Array), whole.weights)).toBeGreaterThan(1e-3);
      init.dispose();
      expect(split.losses[0]).toBeCloseTo(whole.losses[0], 5);
      expect(split.r.history.batches[0].acc).toBe(whole.r.history.batches[0].acc);
    });
  }

  it('with dropout, a few steps follow the unsharded loss curve within float noise (the shards get the whole batch\'s masks); 2 and 3 workers agree bit for bit', async () => {
    // 240 images in batches of 64: 3 sharded steps and a last batch of 48 trained here, per epoch.
    const o: TrainOptions = { optimizer: 'adam', batchSize: 64, epochs: 2 };
    const whole = await run('small-cnn', 0.5, o, new LocalContext());
    const two = sharded(2);
    const split2 = await run('small-cnn', 0.5, o, two.ctx);
    const three = sharded(3);
    const split3 = await run('small-cnn', 0.5, o, three.ctx);
    expect(two.exec.runs).toHaveLength(6);
    expect(three.exec.runs[0].counts).toEqual([32, 32]);
    expect(whole.losses).toHaveLength(8);
    expect(split3.losses).toEqual(split2.losses);
    expect(maxDiff(split2.weights, split3.weights)).toBe(0);
    for (const s of [split2, split3]) {
      s.losses.forEach((l, i) => expect(Math.abs(l - whole.losses[i])).toBeLessThan(1e-5));
      expect(maxDiff(whole.weights, s.weights)).toBeLessThan(1e-5);
      expect(s.r.history.epochs.map((e) => e.acc)).toEqual(whole.r.history.epochs.map((e) => e.acc));
    }
    // Dropout is live: the same steps without it give another curve.
    const noDrop = await run('small-cnn', 0, o, new LocalContext());
    expect(Math.max(...noDrop.losses.map((l, i) => Math.abs(l - whole.losses[i])))).toBeGreaterThan(1e-4);
  });

  it('reports progress, epochs and metrics as the unsharded run does', async () => {
    const o: TrainOptions = { batchSize: 64, epochs: 2, limitBatches: 2, validationSplit: 0.25 };
    const local = new LocalContext();
    const whole = await run('mlp', 0, o, local);
    const { ctx } = sharded(2);
    const split = await run('mlp', 0, o, ctx);
    expect(ctx.events.map((e) => [e.step, e.total, e.phase])).toEqual(local.events.map((e) => [e.step, e.total, e.phase]));
    expect(split.r.epochsRun).toBe(2);
    expect(split.r.stepsRun).toBe(whole.r.stepsRun);
    split.r.history.epochs.forEach((e, i) => expect(e.val_loss!).toBeCloseTo(whole.r.history.epochs[i].val_loss!, 5));
    expect(ctx.logs.some((l) => /data-parallel on the pool/.test(l))).toBe(true);
  });

  it('distillation (soft targets, temperature) shards and matches the unsharded step', async () => {
    const k = 4, soft = new Float32Array(set.labels.length * k);
    for (let i = 0; i < set.labels.length; i++) { soft.fill(0.1, i * k, (i + 1) * k); soft[i * k + set.labels[i]] = 0.7; }
    const o: TrainOptions = { batchSize: 64, limitBatches: 2, targets: soft };
    const hooks: TrainHooks = { loss: distillationLoss(20) };
    const whole = await run('mlp', 0, o, new LocalContext(), hooks);
    const { ctx, exec } = sharded(2);
    const split = await run('mlp', 0, o, ctx, hooks);
    expect(exec.runs).toHaveLength(2);
    expect(maxDiff(whole.weights, split.weights)).toBeLessThan(1e-5);
  });

  it('an encode hook (the thermometer encoding) runs on the coordinator and the network on the shards: same step as unsharded, and as the forward hook it replaces', async () => {
    const L = 4;
    const go = async (ctx: JobContext, how: 'encode' | 'forward') => {
      const model = buildModel('small-cnn', { inputShape: encodedShape([8, 8, 1], L), numClasses: 4, seed: 3, dropout: 0.3 });
      try {
        const hooks: TrainHooks = how === 'encode'
          ? { encode: (x) => thermometerEncode(x, L) }
          : { forward: (x, training) => model.apply(thermometerEncode(x, L), { training }) as tf.Tensor2D };
        const r = await trainClassifier(model, set, { batchSize: 64, limitBatches: 3, seed: 2, validationSplit: 0.2 }, hooks, ctx);
        return { w: model.getWeights().map((w) => w.dataSync() as Float32Array), val: r.history.epochs[0].val_loss! };
      } finally { model.dispose(); }
    };
    const viaForward = await go(new LocalContext(), 'forward');
    const viaEncode = await go(new LocalContext(), 'encode');
    const { ctx, exec } = sharded(2);
    const split = await go(ctx, 'encode');
    expect(exec.runs).toHaveLength(3);
    expect(maxDiff(viaForward.w, viaEncode.w)).toBe(0);
    expect(viaEncode.val).toBe(viaForward.val);
    expect(maxDiff(viaEncode.w, split.w)).toBeLessThan(1e-5);
  });

  it('adversarial training: each shard makes its own rows\' PGD examples and their gradient, same step as unsharded', async () => {
    const go = async (ctx: JobContext) => {
      const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 2 });
      try {
        await adversarialTrain(model, set, { batchSize: 64, limitBatches: 2, seed: 1 }, { eps: 0.1, steps: 3, seed: 5 }, {}, ctx);
        return model.getWeights().map((w) => w.dataSync() as Float32Array);
      } finally { model.dispose(); }
    };
    const whole = await go(new LocalContext());
    const plans: { rows: number; count: number; start: number }[] = [];
    const { ctx, exec } = sharded(2, (shards) => {
      for (const s of shards) {
        const t = s.task as { count: number; adversarial?: { rows: number; start: Float32Array | null } };
        plans.push({ rows: t.adversarial?.rows ?? -1, count: t.count, start: t.adversarial?.start?.length ?? -1 });
      }
    });
    const split = await go(ctx);
    expect(exec.runs).toHaveLength(2);
    // The PGD went to the shards: every row of each shard is adversarial, from the coordinator's random start.
    expect(plans).toEqual([{ rows: 32, count: 32, start: 32 * 64 }, { rows: 32, count: 32, start: 32 * 64 }, { rows: 32, count: 32, start: 32 * 64 }, { rows: 32, count: 32, start: 32 * 64 }]);
    expect(maxDiff(whole, split)).toBeLessThan(1e-5);
  });

  it('adversarial training with dropout, half the batch adversarial, a warm-up and 4 shards: 1 worker (unsharded) = 2 workers within 1e-5; 2 and 3 workers bit for bit', async () => {
    const adv = { eps: 0.2, steps: 4, seed: 9, adversarialFraction: 0.5, warmupSteps: 2 };
    const go = async (ctx: JobContext) => {
      const model = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 3, dropout: 0.3 });
      try {
        const r = await adversarialTrain(model, set, { batchSize: 128, limitBatches: 2, seed: 2, progressIntervalMs: 0 }, adv, {}, ctx);
        return { w: model.getWeights().map((w) => w.dataSync() as Float32Array), losses: r.history.batches.map((b) => b.loss) };
      } finally { model.dispose(); }
    };
    const rows: number[][] = [];
    const before = tf.memory().numTensors;
    const one = await go(new LocalContext());
    const two = sharded(2, (shards) => rows.push(shards.map((s) => (s.task as { adversarial: { rows: number } }).adversarial.rows)));
    const viaTwo = await go(two.ctx);
    const three = sharded(3);
    const viaThree = await go(three.ctx);
    // 128 = 4 shards of 32, the first 64 rows adversarial: shards 0 and 1 make theirs, 2 and 3 none; then the
    // last 112 of 240 images: 2 shards of 56, the first all adversarial.
    expect(rows).toEqual([[32, 32, 0, 0], [56, 0]]);
    expect(three.exec.runs).toHaveLength(2);
    expect(maxDiff(one.w, viaTwo.w)).toBeLessThan(1e-5);
    viaTwo.losses.forEach((l, i) => expect(Math.abs(l - one.losses[i])).toBeLessThan(1e-5));
    expect(maxDiff(viaTwo.w, viaThree.w)).toBe(0);
    expect(viaThree.losses).toEqual(viaTwo.losses);
    await clearTrainShardModels();
    expect(tf.memory().numTensors).toBe(before); // the shards' PGD leaks nothing
  });

  it('shards running concurrently in one thread (one cached worker model) give the sequential results bit for bit', async () => {
    const ctx = new LocalContext() as LocalContext & { shards: ShardExecutor };
    const concurrent: ShardExecutor = {
      parallelism: 2, where: 'pool',
      run: <T extends ShardType>(shards: Shard<T>[]) => Promise.all(shards.map((s) => executeShard(s, ctx))),
    };
    Object.defineProperty(ctx, 'shards', { value: concurrent });
    const o: TrainOptions = { batchSize: 128, limitBatches: 2 };
    const a = await run('small-cnn', 0.5, o, ctx);
    const tensors = tf.memory().numTensors;
    await run('small-cnn', 0.5, o, ctx);
    expect(tf.memory().numTensors).toBe(tensors); // nothing of one shard disposed or kept by the other
    const b = await run('small-cnn', 0.5, o, sharded(2).ctx);
    expect(a.losses).toEqual(b.losses);
    expect(maxDiff(a.weights, b.weights)).toBe(0);
  });

  it('does not leak tensors: flat across steps and runs, nothing left once the worker models are cleared', async () => {
    const before = tf.memory().numTensors;
    const o: TrainOptions = { batchSize: 64, epochs: 2, limitBatches: 3 };
    await run('small-cnn', 0.5, o, sharded(2).ctx);
    const afterFirst = tf.memory().numTensors;
    await run('small-cnn', 0.5, o, sharded(2).ctx);
    expect(tf.memory().numTensors).toBe(afterFirst); // the cached worker model is reused, not rebuilt
    await clearTrainShardModels();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a cancel while the shards run stops within the step and leaves the model as the previous step left it', async () => {
    let ctxRef: LocalContext | null = null;
    const { ctx, exec } = sharded(2, (shards) => { if (shards[0].id.includes('/step3/')) ctxRef!.cancel(); });
    ctxRef = ctx;
    const o: TrainOptions = { optimizer: 'adam', batchSize: 64, limitBatches: 3 };
    const model = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 11, dropout: 0 });
    let err: unknown;
    try { await trainClassifier(model, set, { seed: 4, ...o }, {}, ctx); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CancelledError);
    const partial = (err as CancelledError).partial as TrainResult;
    expect(partial.stepsRun).toBe(2);
    expect(exec.runs).toHaveLength(3);
    const cancelledWeights = model.getWeights().map((w) => w.dataSync() as Float32Array);
    model.dispose();
    const two = await run('small-cnn', 0, { ...o, limitBatches: 2 }, new LocalContext());
    expect(maxDiff(two.weights, cancelledWeights)).toBeLessThan(1e-5);
  });

  it('trains in the job\'s worker, saying why, with a forward hook, a loss without a spec or BatchNormalization', async () => {
    const { ctx, exec } = sharded(2);
    const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4 });
    const r = await trainClassifier(model, set, { batchSize: 64, limitBatches: 1 }, { forward: (x, training) => model.apply(tf.mul(x, 0.5), { training }) as tf.Tensor2D }, ctx);
    expect(r.stepsRun).toBe(1);
    expect(exec.runs).toHaveLength(0);
    expect(ctx.logs.some((l) => /runs in this worker.*forward hook/.test(l))).toBe(true);

    expect(unshardableReason(model, (l, y) => crossEntropyLossFn(l, y, undefined as never), false)).toMatch(/loss/);
    expect(unshardableReason(model, crossEntropyLossFn, false)).toBeNull();
    model.dispose();
    const bn = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 1] }), tf.layers.batchNormalization(), tf.layers.dense({ units: 4 })] });
    expect(unshardableReason(bn, crossEntropyLossFn, false)).toMatch(/BatchNormalization/);
    const plainDropout = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [8, 8, 1] }), tf.layers.dropout({ rate: 0.5 }), tf.layers.dense({ units: 4 })] });
    expect(unshardableReason(plainDropout, crossEntropyLossFn, false)).toMatch(/randomness/);
    bn.dispose(); plainDropout.dispose();
  });
});
