import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { runAttack, type Goal } from '../../../src-main/engine/attacks';
import { fabProjection } from '../../../src-main/engine/attacks/fab';
import { mulberry32 } from '../../../src-main/engine/core/random';
import { cancelAfterForwardPasses, mnist, trainDense, type Subset } from './helpers';

let clf: Classifier;
let pts: Subset;

function predict(c: Classifier, images: Float32Array): number[] {
  return tf.tidy(() => Array.from(tf.argMax(c.logits(tf.tensor4d(images, [images.length / 784, 28, 28, 1])), 1).dataSync()));
}

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5000, 16);
});

/** An independent solve of min ||d||_p s.t. <w, d> = tau, 0 <= p + d <= 1: bisection on the multiplier. */
function bisect(norm: 'l2' | 'linf', p: number[], w: number[], tau: number): number[] {
  const dir = Math.sign(tau);
  const at = (lam: number) => w.map((wi, i) => {
    if (wi === 0) return 0;
    const cap = wi * dir > 0 ? 1 - p[i] : p[i];
    return Math.sign(wi) * dir * Math.min(lam * (norm === 'l2' ? Math.abs(wi) : 1), cap);
  });
  const reach = (lam: number) => at(lam).reduce((s, di, i) => s + di * w[i], 0) * dir;
  let lo = 0, hi = 1e6;
  for (let k = 0; k < 200; k++) { const mid = (lo + hi) / 2; if (reach(mid) >= Math.abs(tau)) hi = mid; else lo = mid; }
  return at(hi);
}

describe('FAB projection onto the linearised boundary within the box', () => {
  it.each(['l2', 'linf'] as const)('%s: on the hyperplane, in the box, and as short as an independent solve', (norm) => {
    const rng = mulberry32(7);
    for (let trial = 0; trial < 200; trial++) {
      const d = 2 + Math.floor(rng() * 30);
      const p = Array.from({ length: d }, () => (rng() < 0.3 ? Math.round(rng()) : rng()));
      const w = Array.from({ length: d }, () => (rng() < 0.1 ? 0 : rng() * 2 - 1));
      const dir = rng() < 0.5 ? -1 : 1;
      // The most <w, d> can reach in that direction within the box: tau is feasible.
      const reach = w.reduce((s, wi, i) => s + Math.abs(wi) * (wi * dir > 0 ? 1 - p[i] : p[i]), 0);
      const tau = dir * reach * rng() * 0.95;
      const out = new Float64Array(d);
      const n = fabProjection(norm, p, w, tau, out);
      const dot = Array.from(out).reduce((s, v, i) => s + v * w[i], 0);
      expect(dot).toBeCloseTo(tau, 8);
      out.forEach((v, i) => { expect(p[i] + v).toBeGreaterThanOrEqual(-1e-12); expect(p[i] + v).toBeLessThanOrEqual(1 + 1e-12); });
      const ref = bisect(norm, p, w, tau);
      const refNorm = norm === 'l2' ? Math.sqrt(ref.reduce((s, v) => s + v * v, 0)) : Math.max(...ref.map(Math.abs));
      expect(n).toBeCloseTo(refNorm, 7);
      // Any other feasible point on the hyperplane is no shorter: moving along a direction orthogonal to w.
      if (norm === 'l2' && d > 2) {
        const u = w.map((_, i) => (i === 0 ? w[1] : i === 1 ? -w[0] : 0));
        const other = Array.from(out, (v, i) => v + 1e-3 * u[i]);
        if (other.every((v, i) => p[i] + v >= 0 && p[i] + v <= 1)) expect(Math.sqrt(other.reduce((s, v) => s + v * v, 0))).toBeGreaterThanOrEqual(n - 1e-12);
      }
    }
  });

  it('goes to the box corner when the box cannot reach the hyperplane, and does nothing for tau = 0', () => {
    const out = new Float64Array(3);
    expect(fabProjection('linf', [0.5, 0.2, 1], [1, -1, 1], 10, out)).toBeCloseTo(0.5, 12);
    expect(Array.from(out)).toEqual([0.5, -0.2, 0]);
    expect(fabProjection('l2', [0.5, 0.2, 1], [1, -1, 1], 0, out)).toBe(0);
    expect(Array.from(out)).toEqual([0, 0, 0]);
  });
});

describe('FAB-T against an undefended MLP', () => {
  it.each(['fab-t', 'fab-t-l2'])('%s with {} breaks nearly every point, within its ball, without leaking tensors', async (id) => {
    const before = tf.memory().numTensors;
    const r = await runAttack(id, clf, pts.images, pts.labels);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.9);
    const advPred = predict(clf, r.adversarial);
    r.perExample.forEach((e, i) => expect(e.success).toBe(advPred[i] !== e.label));
    const eps = r.params.eps as number;
    for (const e of r.perExample) {
      expect(id.endsWith('l2') ? e.l2 : e.linf).toBeLessThanOrEqual(eps + 1e-5);
      expect(e.iterations).toBeLessThanOrEqual(900);
      if (e.success) expect(e.iterations).toBeGreaterThanOrEqual(1);
    }
    expect(r.params).toEqual({ eps, steps: 100, restarts: 1, targetClasses: 9, alphaMax: 0.1, eta: 1.05, beta: 0.9, seed: 0 });
  });

  it.each(['fab-t', 'fab-t-l2'])('%s reaches a named target', async (id) => {
    const r = await runAttack(id, clf, pts.images, pts.labels, { kind: 'targeted', target: 'next' }, { eps: id === 'fab-t' ? 1 : 20 });
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.9);
    const advPred = predict(clf, r.adversarial);
    for (const e of r.perExample) {
      expect(e.target).toBe((e.label + 1) % 10);
      expect(e.success).toBe(advPred[e.index] === e.target);
    }
  });

  it.each([
    ['fab-t', 'fgsm', 'linf', 1, {}],
    ['fab-t-l2', 'pgd-l2', 'l2', 20, { steps: 1, randomStart: false }],
  ] as const)('%s finds distances no larger than a line search along one gradient step (%s)', async (id, baseline, key, bigEps, extra) => {
    const goal: Goal = { kind: 'targeted', target: 'next' };
    const fab = await runAttack(id, clf, pts.images, pts.labels, goal, { eps: bigEps });
    // The baseline: for each image the smallest budget on a grid at which one gradient step (of that length) reaches the target.
    const grid = Array.from({ length: 60 }, (_, i) => (key === 'linf' ? 0.01 : 0.1) * (i + 1));
    const smallest = new Array<number>(pts.n).fill(Infinity);
    for (const eps of grid) {
      const r = await runAttack(baseline, clf, pts.images, pts.labels, goal, key === 'linf' ? { eps } : { eps, stepSize: eps, ...extra });
      r.perExample.forEach((e, i) => { if (e.success && e.counted && smallest[i] === Infinity) smallest[i] = e[key]; });
    }
    const reached = fab.perExample.filter((e, i) => e.counted && Number.isFinite(smallest[i]));
    expect(reached.length).toBeGreaterThanOrEqual(10);
    const both = reached.filter((e) => e.success);
    expect(both.length).toBeGreaterThanOrEqual(0.9 * reached.length);
    for (const e of both) expect(e[key]).toBeLessThanOrEqual(smallest[e.index] + 1e-4);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const ratio = mean(both.map((e) => e[key])) / mean(both.map((e) => smallest[e.index]));
    console.log(`${id}: mean ${key} ${mean(both.map((e) => e[key])).toFixed(4)} vs one-step line search ${mean(both.map((e) => smallest[e.index])).toFixed(4)} (ratio ${ratio.toFixed(3)})`);
    expect(ratio).toBeLessThan(0.95);
  });

  it('a point broken within eps by the first target is not attacked again; restarts count their steps', async () => {
    const r = await runAttack('fab-t', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.02, steps: 10, targetClasses: 2, restarts: 2 });
    const unbroken = r.perExample.filter((e) => e.cleanCorrect && !e.success);
    expect(unbroken.length).toBeGreaterThan(0);
    for (const e of unbroken) expect(e.iterations).toBe(40);
    for (const e of r.perExample.filter((x) => x.success)) expect(e.iterations).toBeLessThanOrEqual(40);
  });

  it('refuses unknown parameters with the accepted list', async () => {
    await expect(runAttack('fab-t', clf, pts.images, pts.labels, undefined, { stepSize: 0.1 })).rejects.toSatisfy(
      (e: unknown) => e instanceof AdvlabError && /unknown parameter "stepSize".*accepted: eps, steps, restarts, targetClasses, alphaMax, eta, beta, seed/.test(e.message));
  });

  it('stops within one step of a cancel (a step: one gradient, one forward), without leaking tensors', async () => {
    const r = await cancelAfterForwardPasses(clf, 4, (counting, ctx) => runAttack('fab-t', counting, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.01, steps: 1000 }, ctx));
    expect(r.error).toBeInstanceOf(CancelledError);
    expect(r.callsAtCancel).toBeGreaterThan(0);
    expect(r.calls - r.callsAtCancel).toBeLessThanOrEqual(2);
    expect(r.tensorsAfter).toBe(r.tensorsBefore);
  });

  it('progress never goes back', async () => {
    const ctx = new LocalContext();
    await runAttack('fab-t', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.02, steps: 10, targetClasses: 3 }, ctx, { batchSize: 8 });
    expect(ctx.events.length).toBeGreaterThan(2);
    for (let i = 1; i < ctx.events.length; i++) expect(ctx.events[i].step / ctx.events[i].total).toBeGreaterThanOrEqual(ctx.events[i - 1].step / ctx.events[i - 1].total - 1e-12);
    const last = ctx.events[ctx.events.length - 1];
    expect(last.step).toBe(last.total);
  });
});
