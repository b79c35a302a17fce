import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { runAttack } from '../../../src-main/engine/attacks';
import { apgdCheckpoints, apgdShouldHalve, dlrLoss, dlrTargetedLoss, rankedTargets } from '../../../src-main/engine/attacks/apgd';
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

describe('APGD step-size schedule', () => {
  it('checkpoints at 0.22 N, then windows shrinking by 0.03 N down to 0.06 N (the paper\'s w_j)', () => {
    expect(apgdCheckpoints(100)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    // p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06): gaps never below 0.06 N and non-increasing.
    const c = apgdCheckpoints(1000);
    expect(c[0]).toBe(220);
    const gaps = c.slice(1).map((v, i) => v - c[i]);
    gaps.forEach((g, i) => { expect(g).toBeGreaterThanOrEqual(60); if (i) expect(g).toBeLessThanOrEqual(gaps[i - 1]); });
    expect(c[c.length - 1]).toBeLessThanOrEqual(1000);
    expect(apgdCheckpoints(5)).toEqual([1, 2, 3, 4, 5]);
  });

  it('halves when the loss rose in at most 75% of the window, or when nothing improved since an unhalved checkpoint', () => {
    // 4 steps, 3 rises (75%): oscillating -> halve.
    expect(apgdShouldHalve([0, 1, 2, 3, 2], 0.75, false, 0, 3)).toBe(true);
    // 4 steps, 4 rises, best improved: keep the step.
    expect(apgdShouldHalve([0, 1, 2, 3, 4], 0.75, false, 0, 4)).toBe(false);
    // 4 rises but the best did not improve since the last (unhalved) checkpoint: halve.
    expect(apgdShouldHalve([0, 1, 2, 3, 4], 0.75, false, 5, 5)).toBe(true);
    // ...unless the step was halved at the last checkpoint.
    expect(apgdShouldHalve([0, 1, 2, 3, 4], 0.75, true, 5, 5)).toBe(false);
  });
});

describe('DLR loss', () => {
  it('is invariant to shifting and positively scaling the logits, and its targeted form needs the 4th logit', () => {
    const z = tf.tensor2d([[3, 1, 0, -1, 2], [0.5, 4, 1, 0, -2]]);
    const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 5).toFloat() as tf.Tensor2D;
    const t = tf.oneHot(tf.tensor1d([4, 1], 'int32'), 5).toFloat() as tf.Tensor2D;
    const a = dlrLoss(z, y).arraySync();
    const b = dlrLoss(tf.add(tf.mul(z, 37), 5) as tf.Tensor2D, y).arraySync();
    a.forEach((v, i) => expect(b[i]).toBeCloseTo(v, 4));
    // Row 0: -(3 - 2) / (3 - 1) = -0.5; row 1 (label 2 not on top): -(1 - 4) / (4 - 0.5) = 0.857.
    expect(a[0]).toBeCloseTo(-0.5, 5);
    expect(a[1]).toBeCloseTo(3 / 3.5, 5);
    const tl = dlrTargetedLoss(z, y, t).arraySync();
    // Row 0: sorted 3, 2, 1, 0 -> -(3 - 2) / (3 - (1 + 0) / 2) = -0.4.
    expect(tl[0]).toBeCloseTo(-0.4, 5);
    const tl2 = dlrTargetedLoss(tf.mul(z, 1000) as tf.Tensor2D, y, t).arraySync();
    tl.forEach((v, i) => expect(tl2[i]).toBeCloseTo(v, 4));
  });

  it('ranks the targets of APGD-T: the classes after the top one, by clean logit', () => {
    const z = Float32Array.from([0.1, 5, 3, 4, 1, /* */ 9, 0, 1, 2, 3]);
    const t = rankedTargets(z, 2, 5, Int32Array.from([1, 0]), 3);
    expect(t.map((a) => Array.from(a))).toEqual([[3, 4], [2, 3], [4, 2]]);
  });
});

describe('APGD against an undefended MLP', () => {
  it.each(['apgd', 'apgd-l2', 'apgd-t', 'apgd-t-l2'])('%s with {} breaks nearly every point, within its ball, without leaking tensors', async (id) => {
    const before = tf.memory().numTensors;
    const r = await runAttack(id, clf, pts.images, pts.labels);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.9);
    const advPred = predict(clf, r.adversarial);
    r.perExample.forEach((e, i) => expect(e.success).toBe(advPred[i] !== e.label));
    const eps = r.params.eps as number;
    for (const e of r.perExample) expect(id.endsWith('l2') ? e.l2 : e.linf).toBeLessThanOrEqual(eps + 1e-5);
    for (const e of r.perExample) expect(e.iterations).toBeLessThanOrEqual(id.startsWith('apgd-t') ? 900 : 100);
  });

  it('APGD beats PGD at the same small budget (eps 0.08, 20 steps)', async () => {
    const sub = mnist(5100, 32);
    const a = await runAttack('apgd', clf, sub.images, sub.labels, { kind: 'untargeted' }, { eps: 0.08, steps: 20 });
    const p = await runAttack('pgd', clf, sub.images, sub.labels, { kind: 'untargeted' }, { eps: 0.08, steps: 20 });
    expect(a.summary.successes).toBeGreaterThanOrEqual(p.summary.successes);
    expect(a.summary.successRate!).toBeGreaterThan(0.3);
  });

  it.each([
    ['apgd', { loss: 'ce' }],
    ['apgd', { loss: 'dlr' }],
    ['apgd-l2', { loss: 'dlr', eps: 3 }],
    ['apgd-t', {}],
  ] as const)('%s %j reaches its target', async (id, params) => {
    const r = await runAttack(id, clf, pts.images, pts.labels, { kind: 'targeted', target: 'next' }, params);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.85);
    const advPred = predict(clf, r.adversarial);
    for (const e of r.perExample) {
      expect(e.target).toBe((e.label + 1) % 10);
      expect(e.success).toBe(advPred[e.index] === e.target);
    }
  });

  it('DLR survives logits scaled x1000 (saturated softmax, as distillation makes); CE does not', async () => {
    const hot: Classifier = { ...clf, logits: (x) => tf.tidy(() => tf.mul(clf.logits(x), 1000) as tf.Tensor2D) };
    const dlr = await runAttack('apgd', hot, pts.images, pts.labels, { kind: 'untargeted' }, { loss: 'dlr', steps: 50 });
    const ce = await runAttack('apgd', hot, pts.images, pts.labels, { kind: 'untargeted' }, { loss: 'ce', steps: 50 });
    expect(dlr.summary.successRate).toBeGreaterThanOrEqual(0.9);
    expect(ce.summary.successRate!).toBeLessThan(dlr.summary.successRate! - 0.3);
  });

  it('restarts re-attack only the unbroken points and count their steps', async () => {
    const r = await runAttack('apgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.03, steps: 10, restarts: 3 });
    const unbroken = r.perExample.filter((e) => e.cleanCorrect && !e.success);
    expect(unbroken.length).toBeGreaterThan(0);
    for (const e of unbroken) expect(e.iterations).toBe(30);
  });

  it('refuses unknown parameters with the accepted list, and DLR on 3 classes', async () => {
    await expect(runAttack('apgd', clf, pts.images, pts.labels, undefined, { stepSize: 0.1 })).rejects.toSatisfy(
      (e: unknown) => e instanceof AdvlabError && /unknown parameter "stepSize".*accepted: eps, steps, restarts, loss, rho, seed/.test(e.message));
    const three: Classifier = { ...clf, numClasses: 3, logits: (x) => tf.tidy(() => tf.slice(clf.logits(x), [0, 0], [-1, 3]) as tf.Tensor2D) };
    await expect(runAttack('apgd-t', three, pts.images.subarray(0, 784), [0])).rejects.toSatisfy((e: unknown) => e instanceof AdvlabError && /at least 4 classes/.test(e.message));
  });

  it.each(['apgd', 'apgd-t'])('%s stops within one step of a cancel, without leaking tensors', async (id) => {
    const r = await cancelAfterForwardPasses(clf, 4, (counting, ctx) => runAttack(id, counting, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.01, steps: 1000 }, ctx));
    expect(r.error).toBeInstanceOf(CancelledError);
    expect(r.callsAtCancel).toBeGreaterThan(0);
    expect(r.calls - r.callsAtCancel).toBeLessThanOrEqual(1);
    expect(r.tensorsAfter).toBe(r.tensorsBefore);
  });

  it('progress never goes back', async () => {
    const ctx = new LocalContext();
    await runAttack('apgd-t', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.05, steps: 20, targetClasses: 3 }, ctx, { batchSize: 8 });
    expect(ctx.events.length).toBeGreaterThan(2);
    for (let i = 1; i < ctx.events.length; i++) expect(ctx.events[i].step / ctx.events[i].total).toBeGreaterThanOrEqual(ctx.events[i - 1].step / ctx.events[i - 1].total - 1e-12);
    const last = ctx.events[ctx.events.length - 1];
    expect(last.step).toBe(last.total);
  });
});
