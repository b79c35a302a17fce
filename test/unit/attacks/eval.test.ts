import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { describeValues, distances, distortionStats, runAttack } from '../../../src-main/engine/attacks';
import {
  fixedEpsilon,
  lossSurface,
  robustAccuracyCurve,
  robustAccuracyFromDistances,
} from '../../../src-main/engine/eval';
import { accuracy, mnist, trainDense, type Subset } from './helpers';

let clf: Classifier;
let pts: Subset;

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(6000, 20);
});

describe('distortion statistics', () => {
  it('computes L0 (pixels), L2 and Linf per example', () => {
    // Two 2x1 RGB images (6 values each).
    const clean = new Float32Array([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 0]);
    const adv = new Float32Array([0.3, 0, 0.4, 0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 0]);
    const d = distances(clean, adv, 2, 3);
    expect(Array.from(d.l0)).toEqual([1, 0]);
    expect(d.l2[0]).toBeCloseTo(0.5, 6);
    expect(d.linf[0]).toBeCloseTo(0.4, 6);
    expect(d.l2[1]).toBe(0);
    // Grayscale: every component is a pixel.
    expect(Array.from(distances(clean, adv, 2, 1).l0)).toEqual([2, 0]);
  });

  it('summarises with mean, median and numpy-style percentiles; empty gives nulls', () => {
    const s = describeValues([4, 1, 3, 2]);
    expect(s).toMatchObject({ n: 4, mean: 2.5, median: 2.5, min: 1, max: 4 });
    expect(s.p10).toBeCloseTo(1.3, 10);
    expect(s.p90).toBeCloseTo(3.7, 10);
    expect(describeValues([])).toMatchObject({ n: 0, mean: null, median: null, p10: null });
    const st = distortionStats([{ l0: 1, l2: 1, linf: 0.1 }, { l0: 3, l2: 3, linf: 0.3 }, { l0: 9, l2: 9, linf: 0.9 }], (i) => i < 2);
    expect(st.n).toBe(2);
    expect(st.l2.mean).toBe(2);
    expect(st.l0.max).toBe(3);
  });
});

describe('robust accuracy against epsilon', () => {
  it('sweeps epsilons in order: clean accuracy at 0, monotone, progress per epsilon', async () => {
    const ctx = new LocalContext();
    const before = tf.memory().numTensors;
    const curve = await robustAccuracyCurve(clf, fixedEpsilon('pgd', { steps: 10 }), pts.images, pts.labels, [0.2, 0, 0.05, 0.1], 'linf', ctx);
    expect(tf.memory().numTensors).toBe(before);
    expect(curve.map((p) => p.eps)).toEqual([0, 0.05, 0.1, 0.2]);
    expect(curve[0].robustAccuracy).toBeCloseTo(accuracy(clf, pts), 10);
    expect(curve[0].successRate).toBe(0);
    for (let i = 1; i < curve.length; i++) {
      expect(curve[i].robustAccuracy).toBeLessThanOrEqual(curve[i - 1].robustAccuracy);
      expect(curve[i].attacked).toBe(Math.round(curve[i - 1].robustAccuracy * 20));
    }
    expect(curve[3].robustAccuracy).toBeLessThanOrEqual(0.1);
    expect(curve[1].robustAccuracy).toBeGreaterThan(curve[3].robustAccuracy);
    const perEps = ctx.events.filter((e) => e.metrics && 'robustAccuracy' in e.metrics);
    expect(perEps.map((e) => e.step)).toEqual([1, 2, 3, 4]);
    expect(perEps.every((e) => e.total === 4)).toBe(true);
    expect(ctx.events.some((e) => /eps 0\.1 \(3\/4\)/.test(e.phase ?? ''))).toBe(true);
  });

  it('agrees with a direct attack at a single epsilon', async () => {
    const [pt] = await robustAccuracyCurve(clf, fixedEpsilon('bim', { steps: 5 }), pts.images, pts.labels, [0.08], 'linf');
    const r = await runAttack('bim', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.08, steps: 5 });
    expect(pt.robustAccuracy).toBeCloseTo(r.summary.robustAccuracy, 10);
    expect(pt.successRate).toBeCloseTo(r.summary.successRate!, 10);
  });

  it('is cancellable between and within epsilons', async () => {
    const ctx = new LocalContext((p) => { if (p.step >= 1) ctx.cancel(); });
    await expect(robustAccuracyCurve(clf, fixedEpsilon('pgd', { steps: 50 }), pts.images, pts.labels, [0.01, 0.02, 0.03], 'linf', ctx)).rejects.toBeInstanceOf(CancelledError);
    expect(ctx.events.filter((e) => e.metrics && 'robustAccuracy' in e.metrics)).toHaveLength(1);
  });

  it('refuses a norm mismatch, a minimal-distance attack and bad epsilons', async () => {
    const bad = (p: Promise<unknown>, re: RegExp) => expect(p).rejects.toSatisfy((e: unknown) => e instanceof AdvlabError && re.test(e.message));
    await bad(robustAccuracyCurve(clf, fixedEpsilon('pgd-l2'), pts.images, pts.labels, [0.5], 'linf'), /l2 attack.*linf/);
    await bad(robustAccuracyCurve(clf, () => ({ attack: 'cw-l2' }), pts.images, pts.labels, [0.5], 'l2'), /robustAccuracyFromDistances/);
    await bad(robustAccuracyCurve(clf, fixedEpsilon('pgd'), pts.images, pts.labels, [-1], 'linf'), />= 0/);
    await bad(robustAccuracyCurve(clf, fixedEpsilon('pgd'), pts.images, pts.labels, [0.1, 0.1], 'linf'), /twice/);
    await bad(robustAccuracyCurve(clf, () => ({ attack: 'pgd', params: { eps: 0.2 } }), pts.images, pts.labels, [0.1], 'linf'), /factory set eps = 0.2/);
  });

  it('reads the curve off a minimal-distance run', async () => {
    const r = await runAttack('ddn', clf, pts.images, pts.labels, { kind: 'untargeted' }, { steps: 50 });
    const curve = robustAccuracyFromDistances(r.perExample, [0, 0.5, 1, 2, 100], 'l2');
    expect(curve[0].robustAccuracy).toBeCloseTo(r.summary.cleanAccuracy, 10);
    for (let i = 1; i < curve.length; i++) expect(curve[i].robustAccuracy).toBeLessThanOrEqual(curve[i - 1].robustAccuracy);
    expect(curve[4].robustAccuracy).toBeCloseTo(r.summary.robustAccuracy, 10);
    const median = r.summary.medianL2!;
    const [atMedian] = robustAccuracyFromDistances(r.perExample, [median], 'l2');
    expect(atMedian.successRate).toBeGreaterThanOrEqual(0.5);
  });
});

describe('loss surface', () => {
  it('evaluates a grid around x: centre = clean loss, uphill along the gradient sign', async () => {
    const x1 = pts.images.subarray(0, 784);
    const label = pts.labels[0];
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const s = await lossSurface(clf, x1, label, { directions: 'gradient-random', range: 0.2, resolution: 5, batchSize: 10 }, ctx);
    expect(tf.memory().numTensors).toBe(before);
    expect(s.alphas).toEqual([-0.2, -0.1, 0, 0.1, 0.2]);
    expect(s.loss).toHaveLength(5);
    expect(s.loss.every((row) => row.length === 5)).toBe(true);
    const [ce, pred] = tf.tidy(() => {
      const z = clf.logits(tf.tensor4d(x1, [1, 28, 28, 1]));
      return [tf.losses.softmaxCrossEntropy(tf.oneHot([label], 10), z).dataSync()[0], tf.argMax(z, 1).dataSync()[0]];
    });
    expect(s.loss[2][2]).toBeCloseTo(ce, 4);
    expect(s.objective[2][2]).toBeCloseTo(ce, 4);
    expect(s.predicted[2][2]).toBe(pred);
    // Along +sign(grad) the loss rises faster than along the random direction.
    expect(s.loss[4][2]).toBeGreaterThan(s.loss[2][2]);
    expect(s.loss[4][2] - s.loss[2][2]).toBeGreaterThan(s.loss[2][4] - s.loss[2][2]);
    expect(ctx.events.at(-1)).toMatchObject({ step: 3, total: 3 });

    const m = await lossSurface(clf, x1, label, { directions: 'random-random', range: 0.2, resolution: 3, objective: 'margin' });
    const margin = tf.tidy(() => {
      const z = Array.from(clf.logits(tf.tensor4d(x1, [1, 28, 28, 1])).dataSync());
      return z[label] - Math.max(...z.filter((_, j) => j !== label));
    });
    expect(m.objective[1][1]).toBeCloseTo(margin, 4);
    expect(m.objectiveKind).toBe('margin');
    await expect(lossSurface(clf, pts.images, label)).rejects.toThrow(/one 28x28x1 image/);
    await expect(lossSurface(clf, x1, label, { resolution: 1 })).rejects.toThrow(/resolution/);
  });
});
