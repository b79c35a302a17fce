/** The one place where logits become classes and probabilities. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { argmaxAt, batchLogits, softmax, softmaxAt } from '../../../src-main/engine/models';
import type { Classifier } from '../../../src-main/engine/models/classifier';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('predict', () => {
  it('argmaxAt picks the largest value of a row (the first on ties), at any offset', () => {
    const z = Float32Array.from([0, 5, 1, /* row 2 */ 3, 3, -1, /* row 3 */ -4, -2, -3]);
    expect([0, 1, 2].map((i) => argmaxAt(z, i * 3, 3))).toEqual([1, 0, 1]);
    expect(argmaxAt([7], 0, 1)).toBe(0);
  });

  it('softmax is a distribution and does not overflow on large logits', () => {
    const p = softmax([1000, 1001, 999]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[1]).toBeCloseTo(Math.E / (1 + Math.E + 1 / Math.E), 12);
    expect(softmaxAt(Float32Array.from([9, 0, 0, 0]), 1, 3, 0)).toBeCloseTo(1 / 3, 6);
  });

  it('batchLogits matches one big batch, in chunks, and refuses a classifier of the wrong output shape', () => {
    const w = tf.randomNormal([4, 3], 0, 1, 'float32', 1);
    const clf: Classifier = { inputShape: [2, 2, 1], numClasses: 3, logits: (x) => tf.matMul(tf.reshape(x, [-1, 4]), w) as tf.Tensor2D };
    const data = Float32Array.from({ length: 7 * 4 }, (_, i) => (i % 5) / 5);
    const whole = tf.tidy(() => clf.logits(tf.tensor4d(data, [7, 2, 2, 1])).dataSync());
    const before = tf.memory().numTensors;
    const chunked = batchLogits(clf, data, 7, 3);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(chunked).map((v) => v.toFixed(5))).toEqual(Array.from(whole).map((v) => v.toFixed(5)));
    const wrong: Classifier = { ...clf, numClasses: 4 };
    expect(() => batchLogits(wrong, data, 7, 3)).toThrow(/returned logits of shape \[3, 3\], expected \[3, 4\]/);
    w.dispose();
  });
});
