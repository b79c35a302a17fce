import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmConvGradients } from '../../src-main/engine/conv-grad';

type Case = { name: string; x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: 'same' | 'valid' };
const cases: Case[] = [];
for (const stride of [1, 2, 3]) {
  for (const pad of ['same', 'valid'] as const) {
    cases.push({ name: `3x3 s${stride} ${pad} on 9x9`, x: [2, 9, 9, 3], f: [3, 3, 3, 4], stride, pad });
    cases.push({ name: `5x2 s${stride} ${pad} on 12x10`, x: [2, 12, 10, 2], f: [5, 2, 2, 3], stride, pad });
  }
}
cases.push({ name: 'conv1d-like k11 s2 same', x: [2, 1, 40, 5], f: [1, 11, 5, 6], stride: 2, pad: 'same' });

function gradients(c: Case, seed: number) {
  const x = tf.randomNormal(c.x, 0, 1, 'float32', seed) as tf.Tensor4D;
  const f = tf.randomNormal(c.f, 0, 1, 'float32', seed + 1) as tf.Tensor4D;
  const w = tf.randomNormal(tf.conv2d(x, f, c.stride, c.pad).shape, 0, 1, 'float32', seed + 2);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), w)));
  const [dx, df] = g([x, f]);
  return { dx: dx.arraySync() as number[], df: df.arraySync() as number[] };
}

function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = (a as number[]).flat(4) as number[], fb = (b as number[]).flat(4) as number[];
  expect(fa.length).toBe(fb.length);
  let m = 0;
  for (let i = 0; i < fa.length; i++) m = Math.max(m, Math.abs(fa[i] - fb[i]));
  return m;
}

describe('Conv2D gradient as forward convolutions (wasm)', () => {
  const reference = new Map<string, { dx: number[]; df: number[] }>();
  beforeAll(async () => {
    await tf.setBackend('cpu');
    cases.forEach((c, i) => reference.set(c.name, gradients(c, 10 * i + 7)));
    await tf.setBackend('wasm');
    registerWasmConvGradients();
  });

  it.each(cases)('matches the cpu backend: $name', (c) => {
    const i = cases.indexOf(c);
    const ours = gradients(c, 10 * i + 7);
    const ref = reference.get(c.name)!;
    expect(tf.getBackend()).toBe('wasm');
    expect(maxAbsDiff(ours.dx, ref.dx)).toBeLessThan(1e-3);
    expect(maxAbsDiff(ours.df, ref.df)).toBeLessThan(1e-3);
  });

  it('trains a conv layer on wasm (the filter gradient exists) without leaking tensors', () => {
    const before = tf.memory().numTensors;
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, strides: 2, padding: 'same' }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const x = tf.randomUniform([4, 8, 8, 1]);
    const y = tf.randomUniform([4, 2]);
    const l0 = model.evaluate(x, y) as tf.Scalar;
    const first = l0.dataSync()[0];
    return (async () => {
      for (let i = 0; i < 5; i++) await model.trainOnBatch(x, y);
      const l1 = model.evaluate(x, y) as tf.Scalar;
      expect(l1.dataSync()[0]).toBeLessThan(first);
      tf.dispose([x, y, l0, l1]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    })();
  });
});
