import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { gradientMaskingChecks, type MaskingReport } from '../../../src-main/engine/eval';
import { mnist, trainDense, type Subset } from '../attacks/helpers';

let clf: Classifier;
let pts: Subset;
const ONLY = ['deterministic', 'outputs-are-logits', 'zero-gradients', 'square-beats-gradient', 'robustbench-rules'];
const byId = (r: MaskingReport, id: string) => r.checks.find((c) => c.id === id)!;

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5000, 32);
});

describe('the AutoAttack and RobustBench rows of the masking checks', () => {
  it('`only` runs the named rows in table order; an undefended MLP passes them', async () => {
    const r = await gradientMaskingChecks(clf, pts.images, pts.labels, { eps: 0.1, steps: 10, only: ONLY, squareQueries: 300 });
    expect(r.checks.map((c) => c.id)).toEqual(ONLY);
    expect(r.warned).toEqual([]);
    await expect(gradientMaskingChecks(clf, pts.images, pts.labels, { eps: 0.1, only: ['nope'] })).rejects.toThrow(/Unknown check "nope"/);
  });

  it('Square breaking what the gradient attacks could not warns, from an ensemble\'s numbers or its own run', async () => {
    const e = await gradientMaskingChecks(clf, pts.images, pts.labels, {
      eps: 0.1, only: ['square-beats-gradient'],
      ensemble: { robustAccuracyAfterGradientAttacks: 0.6, robustAccuracyAfterSquare: 0.2, brokenOnlyBySquare: 13 },
    });
    expect(byId(e, 'square-beats-gradient')).toMatchObject({ status: 'warn', numbers: { brokenOnlyBySquare: 13, drop: 0.4 } });
    // Logits through a step function: zero gradients, so PGD cannot move; Square reads the outputs and can.
    const stepped: Classifier = { ...clf, logits: (x) => tf.tidy(() => tf.round(tf.mul(clf.logits(x), 4)) as tf.Tensor2D) };
    const r = await gradientMaskingChecks(stepped, pts.images, pts.labels, { eps: 0.2, steps: 10, only: ['square-beats-gradient'], squareQueries: 500 });
    const c = byId(r, 'square-beats-gradient');
    expect(c.status).toBe('warn');
    expect(c.numbers.robustAccuracySquare!).toBeLessThan(c.numbers.robustAccuracyGradient! - 0.2);
  });

  it('RobustBench rules: batch statistics and an inner optimisation loop warn', async () => {
    const batchNorm: Classifier = { ...clf, logits: (x) => tf.tidy(() => clf.logits(tf.sub(x, tf.mean(x, 0, true)) as tf.Tensor4D)) };
    const a = await gradientMaskingChecks(batchNorm, pts.images, pts.labels, { eps: 0.1, only: ['robustbench-rules'] });
    expect(byId(a, 'robustbench-rules').status).toBe('warn');
    expect(byId(a, 'robustbench-rules').numbers.maxAbsBatchDifference!).toBeGreaterThan(1e-3);
    // Test-time purification: 30 gradient steps on the input inside every forward pass, not differentiated through.
    const purify: Classifier = {
      ...clf,
      logits: (x) => {
        let xi = tf.tensor4d(x.dataSync() as Float32Array, x.shape);
        for (let i = 0; i < 30; i++) {
          const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(clf.logits(v as tf.Tensor4D))))(xi);
          const next = tf.tidy(() => tf.clipByValue(tf.sub(xi, tf.mul(g, 1e-4)), 0, 1) as tf.Tensor4D);
          g.dispose(); xi.dispose(); xi = next;
        }
        const fixed = tf.tidy(() => tf.add(x, tf.sub(xi, tf.tensor4d(x.dataSync() as Float32Array, x.shape))) as tf.Tensor4D);
        xi.dispose();
        const z = clf.logits(fixed);
        return z;
      },
    };
    const b = await gradientMaskingChecks(purify, pts.images, pts.labels, { eps: 0.1, only: ['robustbench-rules'] });
    expect(byId(b, 'robustbench-rules').status).toBe('warn');
  });
});
