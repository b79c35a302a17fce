/**
 * Gradient-masking checks: an undefended model passes them all; the same model with a rounding op on
 * its logits (gradient zero everywhere, predictions unchanged) warns on the gradient-based checks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { loadDataset, type ImageSet } from '../../../src-main/engine/data';
import { fromLayersModel, type Classifier } from '../../../src-main/engine/models/classifier';
import { gradientMaskingChecks, surfaceRoughness, trainSurrogate, type MaskingReport } from '../../../src-main/engine/eval';
import { MASKING_CHECKS } from '../../../src-main/engine/eval/masking';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../../../src-main/engine/models';
import { SessionStore } from '../../../src-main/engine/sessions';
import { LocalContext } from '../../../src-main/engine/context';
import { gradientCheck } from '../../../src-main/jobs/kinds/gradient-check';
import type { BackendInfo } from '../../../src-main/engine/backend';
import { backwardProgress } from '../helpers';

const dataDirs = ['/usr/share/datasets'];
let train: ImageSet, test: ImageSet;
let model: tf.LayersModel, surrogate: tf.LayersModel;
let clf: Classifier, sur: Classifier;

beforeAll(async () => {
  await initBackend('wasm');
  train = await loadDataset('fashion-mnist', { dataDirs, split: 'train', limit: 2000, seed: 3 });
  test = await loadDataset('fashion-mnist', { dataDirs, split: 'test', limit: 40, seed: 4 });
  const t = await trainSurrogate(train, { arch: 'small-cnn', epochs: 3, seed: 1 });
  model = t.model; clf = t.classifier;
  const s = await trainSurrogate(train, { arch: 'small-cnn', epochs: 3, seed: 2 });
  surrogate = s.model; sur = s.classifier;
}, 300_000);

const byId = (r: MaskingReport, id: string) => r.checks.find((c) => c.id === id)!;
const opts = () => ({ eps: 0.1, steps: 10, restarts: 3, surrogate: sur, surfaceImages: 1, surfaceResolution: 11, seed: 0 });

describe('gradient-masking checks', () => {
  it('an undefended model passes every check, and tensors do not leak', async () => {
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const r = await gradientMaskingChecks(clf, test.images, test.labels, opts(), ctx);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.checks.map((c) => c.id).sort()).toEqual([
      'deterministic', 'iterative-beats-single-step', 'loss-surface-smooth', 'monotone-in-eps', 'monotone-in-iterations',
      'outputs-are-logits', 'restarts-stable', 'robustbench-rules', 'square-beats-gradient', 'unbounded-reaches-zero', 'whitebox-beats-transfer', 'zero-gradients',
    ]);
    expect(r.warned).toEqual([]);
    expect(r.checksPassed).toBe(12);
    expect(byId(r, 'unbounded-reaches-zero').numbers.robustAccuracy).toBeLessThanOrEqual(0.02);
    // Checks run in the table's order, and share PGD runs: PGD at (eps, 10 steps), made for the eps curve,
    // is not run again for the iterations curve (no progress of its own there), while 20 steps is.
    expect(r.checks.map((c) => c.id)).toEqual(MASKING_CHECKS.map((c) => c.id));
    const phases = ctx.events.map((e) => e.phase ?? '');
    expect(phases.some((p) => p.startsWith('pgd eps 0.1: '))).toBe(true);
    expect(phases.some((p) => p.startsWith('pgd 10 steps: '))).toBe(false);
    expect(phases).toContain('pgd 10 steps');
    expect(phases.some((p) => p.startsWith('pgd 20 steps: '))).toBe(true);
    expect(backwardProgress(ctx.events)).toEqual([]);
    expect(ctx.events.at(-1)).toMatchObject({ step: 19, total: 19 });
  });

  it('a model whose logits go through round() (zero gradients) warns', async () => {
    const masked: Classifier = { inputShape: clf.inputShape, numClasses: clf.numClasses, logits: (x) => tf.round(tf.mul(clf.logits(x), 4)) as tf.Tensor2D };
    const r = await gradientMaskingChecks(masked, test.images, test.labels, opts());
    for (const id of ['zero-gradients', 'iterative-beats-single-step', 'unbounded-reaches-zero', 'whitebox-beats-transfer', 'loss-surface-smooth']) {
      expect(byId(r, id).status, id).toBe('warn');
    }
    expect(byId(r, 'zero-gradients').numbers.zeroGradientFractionMargin).toBe(1);
    expect(byId(r, 'deterministic').status).toBe('pass');
  });

  it('softmax outputs and randomized models are flagged', async () => {
    const soft: Classifier = { ...clf, logits: (x) => tf.softmax(clf.logits(x)) as tf.Tensor2D };
    const noisy: Classifier = { ...clf, logits: (x) => tf.add(clf.logits(x), tf.randomNormal([x.shape[0], clf.numClasses])) as tf.Tensor2D };
    const o = { ...opts(), surrogate: undefined, surfaceImages: 0 };
    const a = await gradientMaskingChecks(soft, test.images.subarray(0, 10 * 784), test.labels.subarray(0, 10), { ...o, steps: 2, iterations: [1, 2] });
    expect(byId(a, 'outputs-are-logits').status).toBe('warn');
    const b = await gradientMaskingChecks(noisy, test.images.subarray(0, 10 * 784), test.labels.subarray(0, 10), { ...o, steps: 2, iterations: [1, 2] });
    expect(byId(b, 'deterministic').status).toBe('warn');
  });

  it('surface roughness: smooth, noisy and flat grids', () => {
    const g = (f: (i: number, j: number) => number) => Array.from({ length: 11 }, (_, i) => Array.from({ length: 11 }, (_, j) => f(i, j)));
    expect(surfaceRoughness(g((i, j) => (i - 5) ** 2 + (j - 3) ** 2)).signChangeFraction).toBeLessThan(0.15);
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    expect(surfaceRoughness(g(() => rnd())).signChangeFraction).toBeGreaterThan(0.4);
    expect(surfaceRoughness(g((i) => Math.floor(i / 4))).flatFraction).toBeGreaterThan(0.8);
  });

  it('the gradient-check job saves a session with checks.json for a model path and a given surrogate', async () => {
    const root = mkdtempSync(join(tmpdir(), 'advlab-gc-'));
    const saved = await saveModel(model, join(root, 'm'), { arch: 'small-cnn', dataset: 'fashion-mnist', inputShape: [28, 28, 1] });
    const sur = await saveModel(surrogate, join(root, 's'), { arch: 'small-cnn' });
    const backend = { name: 'wasm', requested: 'wasm', tfjsVersion: tf.version.tfjs, skipped: [], conv2dGradient: 'forward-conv' } as BackendInfo;
    const ids: string[] = [];
    const ctx = new LocalContext();
    const r = await gradientCheck({ model: saved.modelJson, surrogate: sur.modelJson, dataset: 'fashion-mnist', n: 12, steps: 3, restarts: 2, surfaceImages: 1 },
      ctx, { dataDirs, sessionsRoot: join(root, 'sessions'), backend, onSession: (id) => ids.push(id) }) as Record<string, unknown>;
    expect(r.session).toBe(ids[0]);
    expect(backwardProgress(ctx.events)).toEqual([]); // transfer and surface sub-steps share their step
    expect(r.eps).toBe(0.1);
    const m = await new SessionStore(join(root, 'sessions')).manifest(ids[0]);
    expect(m.kind).toBe('gradient-check');
    expect(m.status).toBe('finished');
    expect(Number(m.summary.checksPassed) + Number(m.summary.checksWarned)).toBe(12);
    // The same undefended model on 12 images (eps 0.1, 3 PGD steps, 2 restarts) passes every check: with n = 12 the
    // accuracy tolerance is 2/12, and all the runs are seeded (training, the data subset, PGD starts, surfaces), so
    // the outcome does not vary from run to run.
    expect(m.summary).toMatchObject({ checksPassed: 12, checksWarned: 0, warned: 'none' });
    const checks = JSON.parse(readFileSync(join(root, 'sessions', ids[0], 'artifacts', 'checks.json'), 'utf8')).checks;
    expect(checks.map((c: { id: string; status: string }) => [c.id, c.status])).toEqual(MASKING_CHECKS.map((c) => [c.id, 'pass']));
    await expect(gradientCheck({ model: saved.modelJson, dataset: 'fashion-mnist', n: 12, eps: 2 }, new LocalContext(),
      { dataDirs, sessionsRoot: join(root, 'sessions'), backend, onSession: () => undefined })).rejects.toThrow();
  });

  it('refuses bad options', async () => {
    await expect(gradientMaskingChecks(clf, test.images, test.labels, { eps: 0 })).rejects.toThrow(/eps/);
    await expect(gradientMaskingChecks(clf, test.images, test.labels, { eps: 0.1, restarts: 1 })).rejects.toThrow(/restarts/);
  });
});
