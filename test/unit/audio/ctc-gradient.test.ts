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
