/**
 * runAttack's batches as 'attack-batch' shards (engine/shards/attack-batch.ts) through the reference
 * executor (InlineShardExecutor): the same per-example results and adversarials as without an
 * executor, progress that never goes back, a cancel that keeps the done batches, no tensor leaks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { runAttack } from '../../../src-main/engine/attacks/base';
import { lossSurface } from '../../../src-main/engine/eval/loss-surface';
import type { AttackResult } from '../../../src-main/engine/attacks/types';
import { keepPartial, LocalContext, type JobContext, type Progress } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { loadModel, saveModel } from '../../../src-main/engine/models/io';
import { classifierFor } from '../../../src-main/engine/models/defended';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { InlineShardExecutor, withInlineShards } from '../../../src-main/engine/shards/inline';
import { cachedClassifiers, clearClassifierCache } from '../../../src-main/engine/shards/classifiers';
import type { Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../../../src-main/engine/shards/types';
import { heavyBatchesFirst } from '../../../src-main/engine/shards/batch-order';
import { backwardProgress } from '../helpers';
import { mnist, trainDense, type Subset } from '../attacks/helpers';

let dir: string;
let clf: Classifier;
let pts: Subset;

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-shards-'));
  const { model } = await trainDense(mnist(0, 500), 32, 3, 3);
  await saveModel(model, dir, { arch: 'test-dense' });
  model.dispose();
  clf = classifierFor(await loadModel(dir));
  pts = mnist(5000, 10);
});

afterAll(async () => {
  await clearClassifierCache();
  rmSync(dir, { recursive: true, force: true });
});

/** Counts the shards an executor was given (to prove the sharded path ran). */
class CountingExecutor implements ShardExecutor {
  shards = 0;
  readonly where = 'pool' as const;
  constructor(private readonly inner: ShardExecutor) {}
  get parallelism() { return this.inner.parallelism; }
  run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    this.shards += shards.length;
    return this.inner.run(shards, onProgress);
  }
}

function sharded(ctx: JobContext, parallelism: number): { ctx: JobContext; counter: CountingExecutor } {
  const counter = new CountingExecutor(new InlineShardExecutor(ctx, parallelism));
  return {
    ctx: { progress: (p) => ctx.progress(p), checkpoint: () => ctx.checkpoint(), get cancelled() { return ctx.cancelled; }, log: (m) => ctx.log(m), shards: counter },
    counter,
  };
}

function expectSame(a: AttackResult, b: AttackResult): void {
  expect(b.perExample).toEqual(a.perExample);
  expect(Array.from(b.adversarial)).toEqual(Array.from(a.adversarial));
  expect({ ...b.summary, ms: 0, msPerExample: 0 }).toEqual({ ...a.summary, ms: 0, msPerExample: 0 });
}

const PGD = { eps: 0.15, steps: 8, randomStart: true, restarts: 2, seed: 11 };
const CW = { binarySearchSteps: 2, maxIterations: 15, learningRate: 0.05 };

describe("runAttack's batches as 'attack-batch' shards", () => {
  it('classifierFor gives a saved model its spec (absolute model.json, sha256, gradient)', async () => {
    const loaded = await loadModel(dir);
    expect(clf.spec).toEqual({ kind: 'saved', modelJson: loaded.modelJson, sha256: loaded.sha256, gradient: 'real' });
    expect(classifierFor(loaded, { gradient: 'bpda' }).spec?.gradient).toBe('bpda');
    loaded.model.dispose();
  });

  for (const [attack, params] of [['pgd', PGD], ['cw-l2', CW]] as const) {
    it(`${attack}: same per-example results and adversarials with no executor and with inline shards (1 and 3 at once)`, async () => {
      const here = await runAttack(attack, clf, pts.images, pts.labels, { kind: 'untargeted' }, params, new LocalContext(), { batchSize: 4 });
      for (const parallelism of [1, 3]) {
        const events: Progress[] = [];
        const { ctx, counter } = sharded(new LocalContext((p) => events.push(p)), parallelism);
        const out = await runAttack(attack, clf, pts.images, pts.labels, { kind: 'untargeted' }, params, ctx, { batchSize: 4 });
        expect(counter.shards).toBe(3);
        expectSame(here, out);
        expect(backwardProgress(events)).toEqual([]);
        expect(events.at(-1)!.step).toBe(events.at(-1)!.total);
      }
    });
  }

  it('a targeted goal resolved once by the base travels with the shards', async () => {
    const goal = { kind: 'targeted' as const, target: 'random' as const, seed: 5 };
    const here = await runAttack('pgd', clf, pts.images, pts.labels, goal, PGD, new LocalContext(), { batchSize: 3 });
    const out = await runAttack('pgd', clf, pts.images, pts.labels, goal, PGD, withInlineShards(new LocalContext(), 2), { batchSize: 3 });
    expectSame(here, out);
    expect(out.perExample.every((e) => e.target !== undefined)).toBe(true);
  });

  it('a classifier without a spec (built in memory) runs in place', async () => {
    const { counter, ctx } = sharded(new LocalContext(), 2);
    const plain: Classifier = { inputShape: clf.inputShape, numClasses: clf.numClasses, logits: (x) => clf.logits(x) };
    await runAttack('fgsm', plain, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.1 }, ctx, { batchSize: 4 });
    expect(counter.shards).toBe(0);
  });

  it('a cancel during the second batch keeps the first batch (the done prefix) as the partial result', async () => {
    const here = await runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, PGD, new LocalContext(), { batchSize: 4 });
    const local = new LocalContext();
    const inline = new InlineShardExecutor(local, 1);
    let runs = 0, stepsAfterCancel = 0;
    // Cancels at the second shard's first step; that shard must stop within a step.
    const cancelling: ShardExecutor = {
      parallelism: 1,
      where: 'pool',
      run: (shards, onProgress) => {
        const run = ++runs;
        return inline.run(shards, (i, p) => {
          if (local.cancelled) stepsAfterCancel++;
          if (run === 2) local.cancel();
          onProgress?.(i, p);
        });
      },
    };
    const withShards: JobContext = { progress() {}, checkpoint: () => local.checkpoint(), get cancelled() { return local.cancelled; }, log() {}, shards: cancelling };
    const { value, cancel } = await keepPartial(runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, PGD, withShards, { batchSize: 4 }));
    expect(cancel).toBeInstanceOf(CancelledError);
    expect(runs).toBe(2);
    expect(stepsAfterCancel).toBeLessThanOrEqual(1);
    expect(value.perExample.length).toBe(4);
    expect(value.perExample).toEqual(here.perExample.slice(0, 4));
    expect(Array.from(value.adversarial)).toEqual(Array.from(here.adversarial.slice(0, 4 * 784)));
  });

  it('leaks no tensors (the shard-side classifier cache aside) and keeps one cached model per spec', async () => {
    const run = () => runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, PGD, withInlineShards(new LocalContext(), 2), { batchSize: 4 });
    await run(); // loads the cached copy
    const before = tf.memory().numTensors;
    await run();
    expect(tf.memory().numTensors).toBe(before);
    expect(cachedClassifiers()).toBe(1);
  });

  it("loss surfaces: 'surface-rows' shards give the same grids as in place, for both direction pairs; progress monotone", async () => {
    const x = pts.images.slice(0, 784);
    for (const directions of ['gradient-random', 'random-random'] as const) {
      const opts = { directions, resolution: 11, batchSize: 30, objective: 'margin' as const, seed: 4 };
      const here = await lossSurface(clf, x, pts.labels[0], opts, new LocalContext());
      const events: Progress[] = [];
      const { ctx, counter } = sharded(new LocalContext((p) => events.push(p)), 2);
      const out = await lossSurface(clf, x, pts.labels[0], opts, ctx);
      expect(counter.shards).toBe(5);
      expect(out).toEqual(here);
      expect(backwardProgress(events)).toEqual([]);
      expect(events.at(-1)).toMatchObject({ step: 5, total: 5 });
    }
  });

  it("a minimum-norm attack's batches go out heaviest first (a batch holding an example whose clean prediction already meets the goal), a fixed-epsilon attack's in index order; the results are the same as in place", async () => {
    const preds = tf.tidy(() => clf.logits(tf.tensor4d(pts.images, [10, 28, 28, 1])).argMax(1).dataSync() as Int32Array);
    // Batches of 4: [0-3], [4-7], [8-9]. Example 8's target is its clean prediction (C&W succeeds on it at once and
    // refines it for the whole budget); every other target is another class.
    const targets = Array.from(preds, (p, i) => (i === 8 ? p : (p + 1) % 10));
    const goal = { kind: 'targeted' as const, target: targets };
    const sent: number[][] = [];
    const recording = (ctx: JobContext): JobContext => {
      const inner = new InlineShardExecutor(ctx, 2);
      const order: number[] = [];
      sent.push(order);
      const shards: ShardExecutor = {
        where: 'pool', parallelism: 2,
        run: (s, onProgress) => {
          for (const x of s) order.push((x.task as { batch: number }).batch);
          return inner.run(s, onProgress);
        },
      };
      return { progress: (p) => ctx.progress(p), checkpoint: () => ctx.checkpoint(), get cancelled() { return ctx.cancelled; }, log: (m) => ctx.log(m), shards };
    };
    const inPlace = await runAttack('cw-l2', clf, pts.images, pts.labels, goal, CW, new LocalContext(), { batchSize: 4 });
    const viaShards = await runAttack('cw-l2', clf, pts.images, pts.labels, goal, CW, recording(new LocalContext()), { batchSize: 4 });
    expect(sent[0]).toEqual([2, 0, 1]);
    expectSame(inPlace, viaShards);
    // PGD (a fixed epsilon, a fixed number of steps) keeps index order.
    await runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, PGD, recording(new LocalContext()), { batchSize: 4 });
    expect(sent[1]).toEqual([0, 1, 2]);
  });
});

describe('heavyBatchesFirst', () => {
  // 5 examples, 3 classes, batches of 2: [0, 1], [2, 3], [4]. Clean predictions: 0, 1, 2, 0, 1.
  const logits = Float32Array.from([5, 0, 0, 0, 5, 0, 0, 0, 5, 5, 0, 0, 0, 5, 0]);
  const labels = Int32Array.from([0, 1, 2, 0, 0]);
  it('targeted: batches with an example whose clean prediction is its target go first, each group in index order', () => {
    expect(heavyBatchesFirst({ n: 5, batchSize: 2, cleanLogits: logits, k: 3, labels, targets: Int32Array.from([1, 2, 0, 1, 1]) })).toEqual([2, 0, 1]);
    expect(heavyBatchesFirst({ n: 5, batchSize: 2, cleanLogits: logits, k: 3, labels, targets: Int32Array.from([1, 1, 0, 0, 1]) })).toEqual([0, 1, 2]);
    expect(heavyBatchesFirst({ n: 5, batchSize: 2, cleanLogits: logits, k: 3, labels, targets: Int32Array.from([1, 2, 0, 1, 2]) })).toEqual([0, 1, 2]);
  });
  it('untargeted: a batch with an example already misclassified goes first, unless its prediction is the reject class', () => {
    // Example 4 (label 0) is predicted 1.
    expect(heavyBatchesFirst({ n: 5, batchSize: 2, cleanLogits: logits, k: 3, labels, targets: null })).toEqual([2, 0, 1]);
    expect(heavyBatchesFirst({ n: 5, batchSize: 2, cleanLogits: logits, k: 3, labels, targets: null, rejectClass: 1 })).toEqual([0, 1, 2]);
  });
});
