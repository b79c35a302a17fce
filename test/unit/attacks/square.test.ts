import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { runAttack } from '../../../src-main/engine/attacks';
import { pseudoGaussianBlock, squareFraction } from '../../../src-main/engine/attacks/square';
import { mulberry32 } from '../../../src-main/engine/core/random';
import { cancelAfterForwardPasses, mnist, trainDense, type Subset } from './helpers';

let clf: Classifier;
let pts: Subset;

/** The same logits, but asking for their gradient throws: a model a gradient attack cannot use. */
function gradientFree(c: Classifier): Classifier {
  return {
    ...c,
    logits: (x) => {
      const f = tf.customGrad(((xi: tf.Tensor) => ({
        value: c.logits(xi as tf.Tensor4D),
        gradFunc: () => { throw new Error('gradient requested'); },
      })) as unknown as Parameters<typeof tf.customGrad>[0]);
      return f(x) as tf.Tensor2D;
    },
  };
}

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5000, 16);
});

describe('Square Attack', () => {
  it('window schedule: pInit halved at the rescaled 10,000-query cut points', () => {
    expect(squareFraction(0.8, 0, 5000)).toBe(0.8);
    expect(squareFraction(0.8, 5, 5000)).toBe(0.8);
    expect(squareFraction(0.8, 6, 5000)).toBe(0.4); // 6/5000*10000 = 12 > 10
    expect(squareFraction(0.8, 4999, 5000)).toBeCloseTo(0.8 / 512, 10);
    for (let i = 1; i < 5000; i++) expect(squareFraction(0.8, i, 5000)).toBeLessThanOrEqual(squareFraction(0.8, i - 1, 5000));
  });

  it('pseudo-Gaussian blocks have unit L2 norm, sum to ~0 (one half positive, one negative)', () => {
    const rng = mulberry32(3);
    for (const s of [3, 5, 7, 25]) {
      const b = pseudoGaussianBlock(s, rng);
      expect(b.reduce((a, v) => a + v * v, 0)).toBeCloseTo(1, 6);
      expect(b.some((v) => v > 0) && b.some((v) => v < 0)).toBe(true);
    }
  });

  it.each([
    ['square', {}],
    ['square-l2', {}],
  ] as const)('%s breaks an undefended MLP through a model whose gradient throws, within its ball', async (id, params) => {
    const noGrad = gradientFree(clf);
    // The guard works: a gradient attack on the same model fails.
    await expect(runAttack('pgd', noGrad, pts.images, pts.labels, undefined, { steps: 2 })).rejects.toSatisfy((e: unknown) => e instanceof AdvlabError && /gradient requested/.test(e.message));
    const before = tf.memory().numTensors;
    const r = await runAttack(id, noGrad, pts.images, pts.labels, { kind: 'untargeted' }, params);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.9);
    const eps = r.params.eps as number;
    for (const e of r.perExample) expect(id === 'square' ? e.linf : e.l2).toBeLessThanOrEqual(eps + 1e-5);
  });

  it('counts queries per example: every image the model saw is one query of one example', async () => {
    let rows = 0;
    const counting: Classifier = { ...clf, logits: (x) => { rows += x.shape[0]; return clf.logits(x); } };
    const r = await runAttack('square', counting, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.15, queries: 300 });
    const queries = r.perExample.reduce((s, e) => s + e.iterations, 0);
    // The base's own passes: clean logits and the judgement of the result, n images each.
    expect(rows).toBe(queries + 2 * pts.n);
    for (const e of r.perExample) {
      expect(e.iterations).toBeGreaterThanOrEqual(1);
      expect(e.iterations).toBeLessThanOrEqual(300);
      if (!e.success && e.cleanCorrect) expect(e.iterations).toBe(300);
    }
    expect(r.perExample.some((e) => e.success && e.iterations < 300)).toBe(true);
  });

  it('is reproducible for a seed, and a point\'s search does not depend on its batch', async () => {
    const a = await runAttack('square', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.15, queries: 200, seed: 4 });
    const b = await runAttack('square', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.15, queries: 200, seed: 4 }, undefined, { batchSize: 5 });
    expect(b.perExample.map((e) => e.iterations)).toEqual(a.perExample.map((e) => e.iterations));
  });

  it('targeted Square reaches the target', async () => {
    const r = await runAttack('square', clf, pts.images, pts.labels, { kind: 'targeted', target: 'next' }, {});
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.85);
    for (const e of r.perExample) expect(e.success).toBe(e.advPred === (e.label + 1) % 10);
  });

  it('stops within one query of a cancel, without leaking tensors; progress never goes back', async () => {
    const r = await cancelAfterForwardPasses(clf, 6, (counting, ctx) => runAttack('square', counting, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.01, queries: 100000 }, ctx));
    expect(r.error).toBeInstanceOf(CancelledError);
    expect(r.calls - r.callsAtCancel).toBeLessThanOrEqual(1);
    expect(r.tensorsAfter).toBe(r.tensorsBefore);
    const p = new LocalContext();
    await runAttack('square-l2', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 1, queries: 500 }, p, { batchSize: 8 });
    for (let i = 1; i < p.events.length; i++) expect(p.events[i].step / p.events[i].total).toBeGreaterThanOrEqual(p.events[i - 1].step / p.events[i - 1].total - 1e-12);
  });
});
