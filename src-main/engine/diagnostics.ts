/**
 * Self-checks of the engine, used by `advlab doctor` and the diagnostics job: the Conv2D gradient of
 * the active backend against a plain-JS reference, and timings of one forward pass, one input
 * gradient and one training step of a small conv net.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from './context';
import { silentContext } from './context';
import { mulberry32 } from './core/random';

export interface GradientCheck {
  ok: boolean;
  maxAbsDiff: number;
  tolerance: number;
  cases: { name: string; dx: number; dfilter: number }[];
}

interface Case { x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: 'same' | 'valid' }

/** Uniform in [-0.5, 0.5), seeded. */
function rng(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r() - 0.5;
}

/** dL/dx and dL/dfilter of L = sum(conv2d(x, f) * w), by direct loops. */
function referenceGrads(c: Case, x: Float32Array, f: Float32Array, w: Float32Array, outShape: number[]) {
  const [B, H, W, C] = c.x;
  const [KH, KW, , O] = c.f;
  const [, OH, OW] = outShape;
  const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.stride, 1, c.pad);
  const { top, left } = info.padInfo;
  const dx = new Float64Array(x.length), df = new Float64Array(f.length);
  for (let b = 0; b < B; b++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) for (let p = 0; p < KH; p++) for (let q = 0; q < KW; q++) {
    const y = i * c.stride + p - top, xx = j * c.stride + q - left;
    if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
    for (let ch = 0; ch < C; ch++) for (let o = 0; o < O; o++) {
      const wv = w[((b * OH + i) * OW + j) * O + o];
      const xi = ((b * H + y) * W + xx) * C + ch, fi = ((p * KW + q) * C + ch) * O + o;
      dx[xi] += wv * f[fi];
      df[fi] += wv * x[xi];
    }
  }
  return { dx, df };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function conv2dGradientCheck(tolerance = 1e-3): GradientCheck {
  const cases: Case[] = [];
  for (const stride of [1, 2]) for (const pad of ['same', 'valid'] as const) {
    cases.push({ x: [2, 9, 9, 3], f: [3, 3, 3, 4], stride, pad });
    cases.push({ x: [1, 10, 8, 2], f: [5, 2, 2, 3], stride, pad });
  }
  const results: GradientCheck['cases'] = [];
  cases.forEach((c, k) => {
    const r = rng(17 + k);
    const x = Float32Array.from({ length: c.x.reduce((a, b) => a * b) }, r);
    const f = Float32Array.from({ length: c.f.reduce((a, b) => a * b) }, r);
    const [dxT, dfT, outShape, w] = tf.tidy(() => {
      const xt = tf.tensor4d(x, c.x), ft = tf.tensor4d(f, c.f);
      const shape = tf.conv2d(xt, ft, c.stride, c.pad).shape;
      const w = Float32Array.from({ length: shape.reduce((a, b) => a * b) }, r);
      const wt = tf.tensor(w, shape);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), wt)));
      const [dx, df] = g([xt, ft]);
      return [dx.dataSync().slice(), df.dataSync().slice(), shape, w] as const;
    });
    const ref = referenceGrads(c, x, f, w, outShape);
    results.push({ name: `x${c.x.join('x')} k${c.f[0]}x${c.f[1]} s${c.stride} ${c.pad}`, dx: maxDiff(dxT, ref.dx), dfilter: maxDiff(dfT, ref.df) });
  });
  const maxAbsDiff = Math.max(...results.map((r) => Math.max(r.dx, r.dfilter)));
  return { ok: maxAbsDiff < tolerance, maxAbsDiff, tolerance, cases: results };
}

export interface Timings {
  batch: number;
  forwardMs: number;
  inputGradientMs: number;
  trainStepMs: number;
}

/** Median timings over `repeats` of a small conv net (conv32-conv32-pool-dense10) on 28x28x1 input. */
export async function timeConvNet(batch = 16, repeats = 3, ctx: JobContext = silentContext): Promise<Timings> {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu' }),
      tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10 }),
    ],
  });
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 3);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  const loss = (xs: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xs) as tf.Tensor) as tf.Scalar;
  const gradFn = tf.grad((xs: tf.Tensor) => loss(xs));
  const time = async (fn: () => tf.Tensor): Promise<number> => {
    const runs: number[] = [];
    for (let i = 0; i <= repeats; i++) {
      ctx.checkpoint();
      const t0 = performance.now();
      const out = tf.tidy(fn);
      await out.data();
      out.dispose();
      if (i > 0) runs.push(performance.now() - t0); // the first run warms up
    }
    runs.sort((a, b) => a - b);
    return runs[Math.floor(runs.length / 2)];
  };
  try {
    const forwardMs = await time(() => model.apply(x) as tf.Tensor);
    ctx.progress({ step: 1, total: 3, phase: 'timing', metrics: { forwardMs } });
    const inputGradientMs = await time(() => gradFn(x));
    ctx.progress({ step: 2, total: 3, phase: 'timing', metrics: { inputGradientMs } });
    const trainStepMs = await time(() => optimizer.minimize(() => loss(x), true)!);
    ctx.progress({ step: 3, total: 3, phase: 'timing', metrics: { trainStepMs } });
    return { batch, forwardMs, inputGradientMs, trainStepMs };
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}
