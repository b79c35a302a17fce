/**
 * ctcLossGradient (CTC on plain arrays, for training steps whose network runs on ONNX Runtime) against ctcLoss
 * (tfjs ops, its analytic gradient, tested against brute force and autodiff in ctc.test.ts) and brute force.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ctcLoss, ctcLossGradient, mulberry32 } from '../../../src-main/engine/audio';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('ctcLossGradient', () => {
  it('equals ctcLoss and its gradient on a padded batch with repeats, an empty label and short inputs (mean and sum)', () => {
    const r = mulberry32(7);
    const B = 4, T = 12, C = 6;
    const logits = Float32Array.from({ length: B * T * C }, () => 4 * (r() - 0.5));
    const labels = [[0, 1, 1, 2], [3], [], [4, 4, 4]];
    const inputLengths = [12, 5, 3, 9];
    for (const reduction of ['mean', 'sum'] as const) {
      const js = ctcLossGradient(logits, [B, T, C], labels, { inputLengths, reduction });
      const { value, grads } = tf.tidy(() => {
        const x = tf.tensor3d(logits, [B, T, C]);
        const f = (xi: tf.Tensor) => ctcLoss(xi as tf.Tensor3D, labels, { inputLengths, reduction }) as tf.Scalar;
        const vg = tf.valueAndGrad(f)(x);
        return { value: vg.value.dataSync()[0], grads: vg.grad.dataSync() };
      });
      expect(Math.abs(js.loss - value)).toBeLessThan(1e-4 * Math.max(1, Math.abs(value)));
      expect(maxAbs(js.grad, grads)).toBeLessThan(1e-5);
      // Frames past an example's length get no gradient.
      expect(js.grad.slice((2 * T + 3) * C, 3 * T * C).every((v) => v === 0)).toBe(true);
    }
  });

  // Where a speech model in training is (speech-large after 5-30 steps: about 90 output frames, labels of 20 and
  // more symbols, logits up to 37, the posteriors peaked on one alignment): the hypothesis for the ONNX Runtime vs
  // tfjs drift was that float32 CTC (alpha + beta + loss near 0 from terms of a few hundred) loses the gradient
  // there. It does not: they differ by float32 rounding of log-probabilities as large as the loss, which shrinks as
  // the posteriors sharpen (the loss falls), as along a real training run (BENCHMARKS.md, "The ONNX Runtime vs tfjs
  // speech-training drift").
  it('equals ctcLoss on long, sharply peaked posteriors (a speech model in training)', () => {
    const r = mulberry32(11);
    const B = 3, T = 96, C = 29, blank = C - 1;
    const labels = [Array.from({ length: 24 }, () => Math.floor(r() * blank)), Array.from({ length: 28 }, (_, i) => [6, 6, 14, 27][i % 4]), [3, 3, 3]];
    const inputLengths = [96, 88, 20];
    for (const sharpness of [1, 8, 20]) {
      const logits = new Float32Array(B * T * C);
      labels.forEach((l, b) => {
        // One plausible alignment: each symbol held for a frame or two, blanks between and around.
        const path: number[] = [];
        l.forEach((c) => path.push(blank, ...new Array<number>(1 + Math.floor(r() * 2)).fill(c)));
        while (path.length < inputLengths[b]) path.push(blank);
        for (let t = 0; t < T; t++) {
          for (let c = 0; c < C; c++) logits[(b * T + t) * C + c] = 2 * (r() - 0.5);
          logits[(b * T + t) * C + path[t]] += sharpness;
        }
      });
      const js = ctcLossGradient(logits, [B, T, C], labels, { inputLengths, reduction: 'mean' });
      const tfr = tf.tidy(() => {
        const x = tf.tensor3d(logits, [B, T, C]);
        const perExample = ctcLoss(x, labels, { inputLengths }).dataSync();
        const vg = tf.valueAndGrad((xi: tf.Tensor) => ctcLoss(xi as tf.Tensor3D, labels, { inputLengths, reduction: 'mean' }) as tf.Scalar)(x);
        return { perExample: Array.from(perExample), grad: vg.grad.dataSync() };
      });
      tfr.perExample.forEach((v, b) => expect(Math.abs(v - js.losses[b])).toBeLessThan(1e-5 * Math.max(1, js.losses[b])));
      // float32 carries log-probabilities as large as the loss: an ulp or two of the largest one, over B for the mean.
      expect(maxAbs(js.grad, tfr.grad)).toBeLessThan((2.4e-7 * Math.max(10, ...js.losses)) / B);
    }
  });

  it('matches brute-force enumeration of all paths', () => {
    const r = mulberry32(3);
    const T = 5, C = 3;
    const logits = Float32Array.from({ length: T * C }, () => 3 * (r() - 0.5));
    const label = [0, 1];
    const logp = Array.from({ length: T }, (_, t) => {
      const row = Array.from(logits.slice(t * C, (t + 1) * C));
      const m = Math.max(...row);
      const z = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      return row.map((v) => v - z);
    });
    let total = 0;
    for (let code = 0; code < C ** T; code++) {
      let c = code, lp = 0;
      const path: number[] = [];
      for (let t = 0; t < T; t++) {
        path.push(c % C);
        c = Math.floor(c / C);
        lp += logp[t][path[t]];
      }
      const out = path.filter((v, i) => i === 0 || v !== path[i - 1]).filter((v) => v !== C - 1);
      if (out.length === 2 && out[0] === 0 && out[1] === 1) total += Math.exp(lp);
    }
    expect(ctcLossGradient(logits, [1, T, C], [label]).loss).toBeCloseTo(-Math.log(total), 10);
  });

  it('refuses what ctcLoss refuses: a label too long for its frames, the blank as a label', () => {
    const logits = new Float32Array(1 * 3 * 4);
    expect(() => ctcLossGradient(logits, [1, 3, 4], [[0, 0]], { inputLengths: [2] })).toThrow(/needs at least 3/);
    expect(() => ctcLossGradient(logits, [1, 3, 4], [[3]])).toThrow(/is the blank/);
  });
});
