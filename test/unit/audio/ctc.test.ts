import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { collapse, ctcLoss, ctcMinFrames, mulberry32 } from '../../../src-main/engine/audio';

beforeAll(async () => {
  await initBackend('wasm');
});

/** -log p(label | logits) by enumerating all C^T paths, in float64. */
function bruteForce(logits: number[][], label: number[], blank: number): number {
  const T = logits.length, C = logits[0].length;
  const logp = logits.map((row) => {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    return row.map((v) => v - lse);
  });
  let total = 0;
  const path = new Array<number>(T).fill(0);
  for (let code = 0; code < C ** T; code++) {
    let c = code, lp = 0;
    for (let t = 0; t < T; t++) {
      path[t] = c % C;
      c = Math.floor(c / C);
      lp += logp[t][path[t]];
    }
    const out = collapse(path, blank);
    if (out.length === label.length && out.every((v, i) => v === label[i])) total += Math.exp(lp);
  }
  return -Math.log(total);
}

function randomLogits(T: number, C: number, r: () => number): number[][] {
  return Array.from({ length: T }, () => Array.from({ length: C }, () => 3 * (r() - 0.5)));
}

type Case = { logits: number[][]; label: number[]; T: number };

/** Pads cases to a common T and returns the batch tensor and input lengths. */
function batchOf(cases: Case[], C: number) {
  const T = Math.max(...cases.map((c) => c.T));
  const data = cases.flatMap((c) => [...c.logits.flat(), ...new Array<number>((T - c.T) * C).fill(0.123)]);
  return { x: tf.tensor3d(data, [cases.length, T, C]), lengths: cases.map((c) => c.T), T };
}

describe('CTC loss (wasm)', () => {
  it('matches brute-force enumeration of all alignments (T <= 5, C <= 3)', () => {
    const r = mulberry32(42);
    const labels: number[][] = [[], [0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 1], [1, 1]];
    let checked = 0;
    for (const C of [2, 3]) {
      const blank = C - 1;
      for (let T = 1; T <= 5; T++) {
        const cases: Case[] = labels
          .filter((l) => l.every((v) => v < blank) && ctcMinFrames(l) <= T)
          .map((label) => ({ label, T, logits: randomLogits(T, C, r) }));
        if (cases.length === 0) continue;
        const { x } = batchOf(cases, C);
        const loss = ctcLoss(x as tf.Tensor3D, cases.map((c) => c.label)).dataSync();
        cases.forEach((c, i) => {
          expect(loss[i]).toBeCloseTo(bruteForce(c.logits, c.label, blank), 4);
          checked++;
        });
        tf.dispose([x]);
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('batches examples with different input and label lengths (padding is ignored)', () => {
    const r = mulberry32(7);
    const C = 3;
    const cases: Case[] = [
      { T: 5, label: [0, 1, 0], logits: randomLogits(5, C, r) },
      { T: 2, label: [1], logits: randomLogits(2, C, r) },
      { T: 4, label: [], logits: randomLogits(4, C, r) },
      { T: 3, label: [1, 1], logits: randomLogits(3, C, r) },
    ];
    const { x, lengths } = batchOf(cases, C);
    const loss = ctcLoss(x, cases.map((c) => c.label), { inputLengths: lengths }).dataSync() as Float32Array;
    cases.forEach((c, i) => expect(loss[i]).toBeCloseTo(bruteForce(c.logits, c.label, 2), 4));
    const sum = ctcLoss(x, cases.map((c) => c.label), { inputLengths: lengths, reduction: 'sum' });
    const mean = ctcLoss(x, cases.map((c) => c.label), { inputLengths: lengths, reduction: 'mean' });
    expect(sum.shape).toEqual([]);
    expect(sum.dataSync()[0]).toBeCloseTo(loss.reduce((s, v) => s + v, 0), 4);
    expect(mean.dataSync()[0]).toBeCloseTo(loss.reduce((s, v) => s + v, 0) / 4, 4);
    tf.dispose([x, sum, mean]);
  });

  it('gradient w.r.t. logits matches finite differences of the brute force (and is zero on padding)', () => {
    const r = mulberry32(3);
    const C = 3;
    const cases: Case[] = [
      { T: 4, label: [0, 1], logits: randomLogits(4, C, r) },
      { T: 3, label: [0, 0], logits: randomLogits(3, C, r) },
      { T: 4, label: [1], logits: randomLogits(4, C, r) },
    ];
    const { x, lengths, T } = batchOf(cases, C);
    const g = tf.grad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, cases.map((c) => c.label), { inputLengths: lengths, reduction: 'sum' }))(x);
    const grad = g.arraySync() as number[][][];
    const h = 1e-5;
    cases.forEach((c, b) => {
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < C; k++) {
          if (t >= c.T) {
            expect(Math.abs(grad[b][t][k])).toBe(0);
            continue;
          }
          const plus = c.logits.map((row) => [...row]);
          const minus = c.logits.map((row) => [...row]);
          plus[t][k] += h;
          minus[t][k] -= h;
          const numeric = (bruteForce(plus, c.label, 2) - bruteForce(minus, c.label, 2)) / (2 * h);
          expect(Math.abs(grad[b][t][k] - numeric)).toBeLessThan(2e-4);
        }
      }
    });
    tf.dispose([x, g]);
  });

  it('stays finite and exact for confident (large) logits where the target is very unlikely', () => {
    const r = mulberry32(21);
    const logits = randomLogits(5, 3, r).map((row) => row.map((v) => 40 * v));
    const label = [0, 1, 0];
    const x = tf.tensor3d([logits]);
    const want = bruteForce(logits, label, 2);
    expect(want).toBeGreaterThan(30);
    for (const gradient of ['analytic', 'autodiff'] as const) {
      const { value, grad } = tf.valueAndGrad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, [label], { gradient, reduction: 'sum' }) as tf.Scalar)(x);
      expect(value.dataSync()[0]).toBeCloseTo(want, 2);
      const g = grad.arraySync() as number[][][];
      const h = 1e-4;
      for (let t = 0; t < 5; t++) {
        for (let k = 0; k < 3; k++) {
          const plus = logits.map((row) => [...row]), minus = logits.map((row) => [...row]);
          plus[t][k] += h;
          minus[t][k] -= h;
          const numeric = (bruteForce(plus, label, 2) - bruteForce(minus, label, 2)) / (2 * h);
          expect(Math.abs(g[0][t][k] - numeric)).toBeLessThan(1e-3);
        }
      }
      tf.dispose([value, grad]);
    }
    x.dispose();
  });

  it('takes the blank index as an option (blank first = blank last with classes permuted)', () => {
    const r = mulberry32(11);
    const logits = randomLogits(5, 3, r);
    const last = tf.tensor3d([logits]);
    const first = tf.tensor3d([logits.map((row) => [row[2], row[0], row[1]])]);
    const a = ctcLoss(last, [[0, 1]]).dataSync()[0];
    const b = ctcLoss(first, [[1, 2]], { blank: 0 }).dataSync()[0];
    expect(b).toBeCloseTo(a, 5);
    expect(a).toBeCloseTo(bruteForce(logits, [0, 1], 2), 4);
    tf.dispose([last, first]);
  });

  it('uniform scores give -log(#alignments / C^T)', () => {
    // T = 3, label [0]: alignments a--, -a-, --a, aa-, -aa, aaa => 6 of 3^3 = 27 paths.
    const x = tf.zeros([1, 3, 3]) as tf.Tensor3D;
    expect(ctcLoss(x, [[0]]).dataSync()[0]).toBeCloseTo(-Math.log(6 / 27), 5);
    x.dispose();
  });

  it('rejects impossible targets with clear errors', () => {
    const x = tf.zeros([1, 3, 4]) as tf.Tensor3D;
    expect(() => ctcLoss(x, [[3]])).toThrow(/is the blank \(3\)/);
    expect(() => ctcLoss(x, [[4]])).toThrow(/label 4 at position 0 of example 0 is outside \[0, 3\]/);
    expect(() => ctcLoss(x, [[0, 0, 1]])).toThrow(/has 3 frames but its 3-label target needs at least 4/);
    expect(() => ctcLoss(x, [[0]], { inputLengths: [4] })).toThrow(/input length 4/);
    expect(() => ctcLoss(x, [[0], [1]])).toThrow(/2 label sequences for a batch of 1/);
    x.dispose();
  });

  it('analytic (beta recursion) and autodiff gradients agree on a realistic batch (16 x 125 x 29), tensor count flat', () => {
    const r = mulberry32(5);
    const B = 16, T = 125, C = 29;
    const x = tf.randomNormal([B, T, C], 0, 2, 'float32', 1) as tf.Tensor3D;
    const labels = Array.from({ length: B }, (_, b) => Array.from({ length: 10 + 2 * b }, () => Math.floor(r() * 28)));
    const lengths = Array.from({ length: B }, (_, b) => T - 3 * b);
    const gradient = (mode: 'analytic' | 'autodiff') =>
      tf.valueAndGrad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, labels, { inputLengths: lengths, reduction: 'mean', gradient: mode }) as tf.Scalar);
    const run = (mode: 'analytic' | 'autodiff') => tf.tidy(() => {
      const { value, grad } = gradient(mode)(x);
      return { loss: value.dataSync()[0], g: grad.dataSync() as Float32Array, rowSum: tf.max(tf.abs(tf.sum(grad, 2))).dataSync()[0] };
    });
    run('analytic');
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const a = run('analytic');
    const ms = performance.now() - t0;
    expect(tf.memory().numTensors).toBe(before);
    const d = run('autodiff');
    expect(tf.memory().numTensors).toBe(before);
    expect(a.loss).toBeGreaterThan(0);
    expect(a.loss).toBeCloseTo(d.loss, 3);
    let maxDiff = 0, maxG = 0;
    a.g.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - d.g[i]));
      maxG = Math.max(maxG, Math.abs(v));
    });
    expect(maxG).toBeGreaterThan(0.01);
    expect(maxDiff).toBeLessThan(1e-4);
    // d loss / d logits = softmax - occupancy: each frame's gradient sums to zero.
    expect(a.rowSum).toBeLessThan(1e-4);
    console.log(`CTC loss + analytic gradient, 16 x 125 x 29: ${ms.toFixed(0)} ms; max |analytic - autodiff| ${maxDiff.toExponential(1)}`);
    x.dispose();
  });
});
