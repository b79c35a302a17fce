/**
 * Data augmentation of training batches (engine/models/augment.ts): a shifted image is the original moved
 * by (dx, dy) with zero fill; batches keep their shape and labels; the draws are seeded; the option is one
 * field of the train job's schema (`{}` still works, bounds and unknown keys refused); trainClassifier trains
 * on the augmented batches on both engines (the same loss curve on tfjs and ONNX Runtime), never augments
 * validation, and leaks no tensors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { trainParams } from '../../../src-main/api/jobs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError } from '../../../src-main/engine/errors';
import {
  AUGMENT_FIELD, ELASTIC_SIGMA, MAX_ELASTIC_ALPHA, MAX_ROTATE, MAX_SCALE, MAX_SHIFT, augments, checkAugment, elasticField, gaussianKernel, warpImage,
} from '../../../src-main/engine/models/augment';
import { augmentBatch, buildModel, parseAugment, shiftImage, trainClassifier, type TrainOptions } from '../../../src-main/engine/models';
import { mulberry32 } from '../../../src-main/engine/core/random';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { writeIdxPair } from '../data/fixtures';
import { quadrantSet } from './synthetic';

let root: string;
let env: JobEnv;
const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 10);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-augment-'));
  const data = join(root, 'data');
  writeIdxPair(join(data, 'mnist'), 'train', labelsOf(200), { rows: 28, cols: 28, gz: true });
  writeIdxPair(join(data, 'mnist'), 't10k', labelsOf(30), { rows: 28, cols: 28, gz: true });
  env = { backend: await initBackend('wasm'), dataDirs: [data], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** An h x w x c image whose every value is distinct and non-zero (so any misplaced pixel shows). */
function distinctImage(h: number, w: number, c: number, offset = 0): Float32Array {
  const x = new Float32Array(h * w * c);
  for (let i = 0; i < x.length; i++) x[i] = 1 + i + offset;
  return x;
}

/** The reference: out[y][x][ch] = src[y - dy][x - dx][ch], 0 outside. */
function movedBy(src: Float32Array, h: number, w: number, c: number, dx: number, dy: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sy = y - dy, sx = x - dx;
      if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
      for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = src[(sy * w + sx) * c + ch];
    }
  }
  return out;
}

/** The (dx, dy) with |dx|, |dy| <= k that moves `orig` to `img`, or null. */
function findShift(orig: Float32Array, img: Float32Array, h: number, w: number, c: number, k: number): [number, number] | null {
  for (let dy = -k; dy <= k; dy++) {
    for (let dx = -k; dx <= k; dx++) {
      const ref = movedBy(orig, h, w, c, dx, dy);
      if (ref.every((v, i) => v === img[i])) return [dx, dy];
    }
  }
  return null;
}

describe('shiftImage', () => {
  it('moves the image by (dx, dy) pixels with zero fill, every channel, for every shift in range', () => {
    for (const [h, w, c] of [[5, 7, 1], [4, 4, 3]] as const) {
      const src = distinctImage(h, w, c);
      const out = new Float32Array(src.length).fill(-1);
      for (let dy = -h; dy <= h; dy++) {
        for (let dx = -w; dx <= w; dx++) {
          shiftImage(src, out, h, w, c, dx, dy);
          expect(Array.from(out), `${h}x${w}x${c} by (${dx}, ${dy})`).toEqual(Array.from(movedBy(src, h, w, c, dx, dy)));
        }
      }
    }
  });

  it('one concrete case: a 3x3 image moved right by 1 and up by 1', () => {
    const src = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const out = new Float32Array(9);
    shiftImage(src, out, 3, 3, 1, 1, -1);
    expect(Array.from(out)).toEqual([0, 4, 5, 0, 7, 8, 0, 0, 0]);
    shiftImage(src, out, 3, 3, 1, 0, 0);
    expect(Array.from(out)).toEqual(Array.from(src));
  });
});

describe('augmentBatch', () => {
  const shape = [6, 6, 2] as const;
  const d = 6 * 6 * 2;
  const n = 64;
  const batch = () => {
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) x.set(distinctImage(6, 6, 2, i * 1000), i * d);
    return x;
  };

  it('each image is its original moved by the shift it drew, |dx|, |dy| <= k; the batch keeps its size', () => {
    const orig = batch();
    const x = orig.slice();
    const shifts = augmentBatch(x, n, shape, { shift: 2 }, mulberry32(11));
    expect(x.length).toBe(orig.length);
    expect(shifts.length).toBe(2 * n);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const [dx, dy] = [shifts[2 * i], shifts[2 * i + 1]];
      expect(Math.abs(dx)).toBeLessThanOrEqual(2);
      expect(Math.abs(dy)).toBeLessThanOrEqual(2);
      seen.add(`${dx},${dy}`);
      const o = orig.subarray(i * d, (i + 1) * d);
      expect(Array.from(x.subarray(i * d, (i + 1) * d)), `image ${i}`).toEqual(Array.from(movedBy(o, 6, 6, 2, dx, dy)));
    }
    // 64 draws over 25 shifts: both extremes and most of the grid occur (it is not stuck at 0 or one side).
    expect(seen.size).toBeGreaterThan(15);
    expect([...seen].some((s) => s.startsWith('-2,'))).toBe(true);
    expect([...seen].some((s) => s.startsWith('2,'))).toBe(true);
  });

  it('is deterministic for a seed, different for another seed; shift 0 leaves the batch alone', () => {
    const a = batch(), b = batch(), c = batch(), z = batch();
    augmentBatch(a, n, shape, { shift: 3 }, mulberry32(5));
    augmentBatch(b, n, shape, { shift: 3 }, mulberry32(5));
    augmentBatch(c, n, shape, { shift: 3 }, mulberry32(6));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    augmentBatch(z, n, shape, { shift: 0 }, () => { throw new Error('shift 0 draws nothing'); });
    expect(Array.from(z)).toEqual(Array.from(batch()));
  });

  it('refuses a buffer that does not hold n images of the shape', () => {
    expect(() => augmentBatch(new Float32Array(d * 3 - 1), 3, shape, { shift: 1 }, mulberry32(1))).toThrow(AdvlabError);
  });
});

describe('the augment option', () => {
  it('parses "shift:K" for 0 <= K <= MAX_SHIFT and refuses anything else with the accepted form', () => {
    expect(parseAugment('shift:2')).toEqual({ shift: 2 });
    expect(parseAugment('shift:0')).toEqual({ shift: 0 });
    expect(parseAugment(`shift:${MAX_SHIFT}`)).toEqual({ shift: MAX_SHIFT });
    // 'rotate:10' and 'shift:2,rotate:5' were refused before rotations existed; now they are parts (below).
    for (const bad of [`shift:${MAX_SHIFT + 1}`, 'shift:-1', 'shift:1.5', 'shift', 'rotate:90', '', 'shift:2,shift:5']) {
      expect(() => parseAugment(bad), bad).toThrow(/"shift:K"|integer in \[0, 8\]/);
      expect(AUGMENT_FIELD.safeParse(bad).success, bad).toBe(false);
    }
    expect(AUGMENT_FIELD.safeParse('shift:2').success).toBe(true);
    expect(() => checkAugment({ shift: 2, skew: 5 } as never)).toThrow(/Unknown augment option\(s\): skew \(known: shift, rotate, scale, elastic\)/);
    expect(() => checkAugment({ shift: 1.5 })).toThrow(/integer/);
  });

  it('the train job schema: {} still works (no augment), "shift:2" accepted, bad specs and unknown keys refused', () => {
    const p = trainParams.parse({ dataset: 'mnist', arch: 'cw-mnist' });
    expect(p).not.toHaveProperty('augment'); // absent = none; no second default
    expect(trainParams.parse({ dataset: 'mnist', arch: 'cw-mnist', augment: 'shift:2' })).toMatchObject({ augment: 'shift:2' });
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', augment: 'shift:9' }).success).toBe(false);
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', augment: { shift: 2 } }).success).toBe(false);
    const unknown = trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', augmentShift: 2 });
    expect(unknown.success).toBe(false);
    expect(JSON.stringify(unknown.error?.issues)).toMatch(/augmentShift/);
  });

  it('trainClassifier refuses bad augment options', async () => {
    const m = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 1 });
    await expect(trainClassifier(m, quadrantSet(40, 1), { augment: { shift: 99 } })).rejects.toThrow(/augment.shift/);
    m.dispose();
  });
});

describe('trainClassifier with augment', () => {
  const train = quadrantSet(200, 1);
  const small = (dropout = 0) => buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 7, dropout });

  it('trains on shifted copies of the batch images (labels unchanged, shape unchanged); validation is not augmented', async () => {
    const m = small();
    const seen: { x: Float32Array; labels: number[]; y: number[]; shape: number[]; indices: Int32Array }[] = [];
    const r = await trainClassifier(m, train, { augment: { shift: 2 }, batchSize: 25, epochs: 1, seed: 3, limitBatches: 3, validationSplit: 0.25 }, {
      transformBatch: (x, y, info) => {
        seen.push({ x: x.dataSync() as Float32Array, y: Array.from(tf.tidy(() => tf.argMax(y, -1)).dataSync()), labels: Array.from(info.labels), shape: x.shape, indices: info.indices.slice() });
        return { x: x.clone(), y: y.clone() };
      },
    });
    expect(r.options.augment).toEqual({ shift: 2 });
    expect(seen).toHaveLength(3);
    let moved = 0;
    for (const b of seen) {
      expect(b.shape).toEqual([25, 8, 8, 1]);
      expect(b.y).toEqual(b.labels);
      expect(b.labels).toEqual(Array.from(b.indices, (j) => train.labels[j]));
      for (let i = 0; i < 25; i++) {
        const orig = train.images.subarray(b.indices[i] * 64, (b.indices[i] + 1) * 64);
        const s = findShift(orig, b.x.subarray(i * 64, (i + 1) * 64), 8, 8, 1, 2);
        expect(s, `batch image ${i}`).not.toBeNull();
        if (s![0] !== 0 || s![1] !== 0) moved++;
      }
    }
    expect(moved).toBeGreaterThan(60); // of 75: 24/25 of draws move the image
    // Validation scores the held-out images as they are: the same val_loss as the same weights on no augmentation.
    const v = await trainClassifier(m, train, { batchSize: 25, epochs: 1, seed: 3, limitBatches: 1, validationSplit: 0.25, learningRate: 1e-12, optimizer: 'sgd' });
    const w = await trainClassifier(m, train, { augment: { shift: 2 }, batchSize: 25, epochs: 1, seed: 3, limitBatches: 1, validationSplit: 0.25, learningRate: 1e-12, optimizer: 'sgd' });
    expect(w.history.epochs[0].val_loss).toBeCloseTo(v.history.epochs[0].val_loss!, 6);
    expect(w.history.batches[0].loss).not.toBeCloseTo(v.history.batches[0].loss, 4); // while the training batch differs
    m.dispose();
  });

  it('seeded: the same seed gives the same losses and weights, another seed others; without augment the run is as before', async () => {
    const run = async (opt: TrainOptions) => {
      const m = small();
      const r = await trainClassifier(m, train, { batchSize: 40, epochs: 1, limitBatches: 3, ...opt });
      const w = m.getWeights().map((t) => Array.from(t.dataSync()));
      m.dispose();
      return { losses: r.history.batches.map((b) => b.loss), w, options: r.options };
    };
    const a = await run({ seed: 5, augment: { shift: 2 } }), b = await run({ seed: 5, augment: { shift: 2 } });
    expect(a.losses).toEqual(b.losses);
    expect(a.w).toEqual(b.w);
    const plain = await run({ seed: 5 }), zero = await run({ seed: 5, augment: { shift: 0 } });
    expect(plain.options).not.toHaveProperty('augment');
    expect(zero.losses).toEqual(plain.losses); // shift 0 is no augmentation
    expect(a.losses).not.toEqual(plain.losses);
  });

  it('the same augmented batches on tfjs and ONNX Runtime: the same loss curve within 1e-4 (dropout 0.5)', async () => {
    const run = async (engine: 'tfjs' | 'onnx') => {
      const m = small(0.5);
      const r = await trainClassifier(m, train, {
        optimizer: 'momentum', nesterov: true, learningRate: 0.05, batchSize: 40, epochs: 2, seed: 3, limitBatches: 3, engine, threads: 1, augment: { shift: 2 },
      });
      m.dispose();
      return r;
    };
    const t = await run('tfjs'), o = await run('onnx');
    expect(o.engine.engine).toBe('onnx');
    const lt = t.history.batches.map((b) => b.loss), lo = o.history.batches.map((b) => b.loss);
    expect(lo).toHaveLength(6);
    lo.forEach((v, i) => expect(Math.abs(v - lt[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-4));
    expect(o.history.batches.map((b) => b.acc)).toEqual(t.history.batches.map((b) => b.acc));
  });

  it('keeps numTensors flat', async () => {
    const m = small();
    const before = tf.memory().numTensors;
    await trainClassifier(m, train, { augment: { shift: 1 }, batchSize: 50, epochs: 2, seed: 1, validationSplit: 0.2 });
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});

describe('the train job with augment', () => {
  it('trains on augmented batches (the losses differ from the same run without), records the spec; refuses a bad spec at the door', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const run = async (augment?: string) => {
      const r = (await jobHandlers.train({
        dataset: 'mnist', arch: 'cw-mnist', epochs: 1, batchSize: 50, optimizer: 'momentum', validationSplit: 0, testLimit: 10, engine: 'onnx',
        ...(augment ? { augment } : {}),
      }, new LocalContext(), env)) as Record<string, unknown> & { session: string };
      const losses = (await store.readMetrics(r.session, 'train')).rows.map((row) => row.loss);
      return { manifest: await store.manifest(r.session), losses };
    };
    const a = await run('shift:2'), plain = await run();
    expect(a.manifest.params).toMatchObject({ augment: 'shift:2', engine: 'onnx' });
    expect(a.manifest.summary).toMatchObject({ engine: 'onnx', epochsRun: 1 });
    expect(plain.manifest.params).not.toHaveProperty('augment');
    expect(a.losses).toHaveLength(4);
    expect(a.losses[0]).not.toBe(plain.losses[0]);
    await expect(jobHandlers.train({ dataset: 'mnist', arch: 'cw-mnist', augment: 'shift:20' }, new LocalContext(), env)).rejects.toThrow();
  }, 120_000);
});

/** The reference bilinear read of an h x w x 1 image at (sx, sy), 0 outside. */
function bilinear(src: Float32Array, h: number, w: number, sx: number, sy: number): number {
  const at = (y: number, x: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : src[y * w + x]);
  const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
  return (1 - fx) * (1 - fy) * at(y0, x0) + fx * (1 - fy) * at(y0, x0 + 1) + (1 - fx) * fy * at(y0 + 1, x0) + fx * fy * at(y0 + 1, x0 + 1);
}

describe('warpImage (rotations, scalings, elastic fields; bilinear, zero fill)', () => {
  it('the identity warp copies the image exactly; integer translations equal shiftImage exactly', () => {
    for (const [h, w, c] of [[5, 7, 1], [4, 4, 3], [28, 28, 1]] as const) {
      const src = distinctImage(h, w, c);
      const out = new Float32Array(src.length).fill(-1);
      warpImage(src, out, h, w, c, { dx: 0, dy: 0, angle: 0, scale: 1 });
      expect(Array.from(out)).toEqual(Array.from(src));
      for (const [dx, dy] of [[1, 0], [-2, 3], [3, -1], [0, -4]]) {
        warpImage(src, out, h, w, c, { dx, dy, angle: 0, scale: 1 });
        expect(Array.from(out), `${h}x${w}x${c} by (${dx}, ${dy})`).toEqual(Array.from(movedBy(src, h, w, c, dx, dy)));
      }
    }
  });

  it('a rotation by 90 degrees turns the grid clockwise about the centre (out[y][x] = src[h-1-x][y])', () => {
    const src = distinctImage(5, 5, 1);
    const out = new Float32Array(25);
    warpImage(src, out, 5, 5, 1, { dx: 0, dy: 0, angle: Math.PI / 2, scale: 1 });
    for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) expect(out[y * 5 + x], `(${x}, ${y})`).toBeCloseTo(src[(4 - x) * 5 + y], 5);
    // -90 degrees undoes it.
    const back = new Float32Array(25);
    warpImage(out, back, 5, 5, 1, { dx: 0, dy: 0, angle: -Math.PI / 2, scale: 1 });
    back.forEach((v, i) => expect(v).toBeCloseTo(src[i], 5));
  });

  it('scaling about the centre reads between pixels (bilinear) and outside the image as 0', () => {
    const src = distinctImage(5, 5, 1); // centre (2, 2)
    const out = new Float32Array(25);
    warpImage(src, out, 5, 5, 1, { dx: 0, dy: 0, angle: 0, scale: 2 });
    expect(out[2 * 5 + 2]).toBe(src[2 * 5 + 2]); // the centre stays
    expect(out[2 * 5 + 4]).toBe(src[2 * 5 + 3]); // x = 4 reads x = 3
    expect(out[2 * 5 + 3]).toBeCloseTo((src[2 * 5 + 2] + src[2 * 5 + 3]) / 2, 5); // x = 3 reads x = 2.5
    expect(out[3 * 5 + 3]).toBeCloseTo((src[12] + src[13] + src[17] + src[18]) / 4, 5); // (2.5, 2.5)
    warpImage(src, out, 5, 5, 1, { dx: 0, dy: 0, angle: 0, scale: 0.5 });
    expect(out[2 * 5 + 3]).toBe(src[2 * 5 + 4]); // x = 3 reads x = 4
    expect(out[2 * 5 + 4]).toBe(0); // x = 4 reads x = 6: outside
    expect(out[0]).toBe(0);
  });

  it('an arbitrary warp with a field matches the formula, every channel; values stay within the image range', () => {
    const [h, w] = [9, 11];
    const src = Float32Array.from({ length: h * w * 2 }, (_, i) => ((i * 37) % 101) / 100);
    const field = elasticField(h, w, 20, 2, mulberry32(3));
    const t = { dx: 1, dy: -2, angle: 0.3, scale: 1.15 };
    const out = new Float32Array(src.length);
    warpImage(src, out, h, w, 2, t, field);
    const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
    for (let ch = 0; ch < 2; ch++) {
      const plane = Float32Array.from({ length: h * w }, (_, i) => src[i * 2 + ch]);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const u = x - cx - t.dx, v = y - cy - t.dy;
          const sx = cx + (Math.cos(t.angle) * u + Math.sin(t.angle) * v) / t.scale + field[y * w + x];
          const sy = cy + (-Math.sin(t.angle) * u + Math.cos(t.angle) * v) / t.scale + field[h * w + y * w + x];
          expect(out[(y * w + x) * 2 + ch]).toBeCloseTo(bilinear(plane, h, w, sx, sy), 5);
        }
      }
    }
    expect(Math.min(...out)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out)).toBeLessThanOrEqual(Math.max(...src) + 1e-6);
  });
});

describe('elasticField (Simard et al. 2003)', () => {
  it('is the uniform draws smoothed by a normalized Gaussian (zero outside) times alpha; seeded', () => {
    const [h, w, alpha, sigma] = [12, 10, 34, 2];
    const f = elasticField(h, w, alpha, sigma, mulberry32(9));
    expect(f.length).toBe(2 * h * w);
    // The reference: the same draws (ex first, row by row), a direct 2-D convolution with the product kernel.
    const rng = mulberry32(9);
    const k = gaussianKernel(sigma), r = (k.length - 1) / 2;
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(r).toBe(6);
    for (let fld = 0; fld < 2; fld++) {
      const raw = Array.from({ length: h * w }, () => 2 * rng() - 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let j = -r; j <= r; j++) for (let i = -r; i <= r; i++) {
            if (y + j >= 0 && y + j < h && x + i >= 0 && x + i < w) s += k[j + r] * k[i + r] * raw[(y + j) * w + x + i];
          }
          expect(f[fld * h * w + y * w + x]).toBeCloseTo(alpha * s, 4);
        }
      }
    }
    expect(Array.from(elasticField(h, w, alpha, sigma, mulberry32(9)))).toEqual(Array.from(f));
    expect(Array.from(elasticField(h, w, alpha, sigma, mulberry32(10)))).not.toEqual(Array.from(f));
    // Simard's MNIST setting moves pixels by about a pixel or two, never by more than alpha.
    const mnist = elasticField(28, 28, 34, ELASTIC_SIGMA.default, mulberry32(1));
    const rms = Math.sqrt(mnist.reduce((a, v) => a + v * v, 0) / mnist.length);
    expect(rms).toBeGreaterThan(0.3);
    expect(rms).toBeLessThan(5);
    expect(Math.max(...mnist.map(Math.abs))).toBeLessThanOrEqual(34);
  });
});

describe('augmentBatch with rotations, scalings and elastic fields', () => {
  const shape = [8, 8, 1] as const;
  const d = 64, n = 20;
  const batch = () => {
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) x.set(distinctImage(8, 8, 1, i * 100), i * d);
    return x;
  };

  it('each image is its original warped by the draws in the documented order (dx, dy, angle, scale, field)', () => {
    const a = parseAugment('shift:2,rotate:10,scale:0.1,elastic:10:2');
    const orig = batch(), x = orig.slice();
    const shifts = augmentBatch(x, n, shape, a, mulberry32(21));
    expect(x.length).toBe(n * d);
    const rng = mulberry32(21);
    const out = new Float32Array(d);
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const dx = Math.floor(rng() * 5) - 2, dy = Math.floor(rng() * 5) - 2;
      expect([shifts[2 * i], shifts[2 * i + 1]]).toEqual([dx, dy]);
      const angle = (2 * rng() - 1) * 10 * Math.PI / 180;
      const scale = 1 + (2 * rng() - 1) * 0.1;
      expect(Math.abs(angle)).toBeLessThanOrEqual(10 * Math.PI / 180);
      expect(Math.abs(scale - 1)).toBeLessThanOrEqual(0.1);
      const field = elasticField(8, 8, 10, 2, rng);
      warpImage(orig.subarray(i * d, (i + 1) * d), out, 8, 8, 1, { dx, dy, angle, scale }, field);
      expect(Array.from(x.subarray(i * d, (i + 1) * d)), `image ${i}`).toEqual(Array.from(out));
      if (!out.every((v, j) => v === orig[i * d + j])) moved++;
    }
    expect(moved).toBe(n);
  });

  it('seeded; parts of 0 are no augmentation (nothing drawn, the batch unchanged); "shift:K" alone draws as before', () => {
    const spec = parseAugment('rotate:15,scale:0.2');
    const a = batch(), b = batch(), c = batch();
    augmentBatch(a, n, shape, spec, mulberry32(5));
    augmentBatch(b, n, shape, spec, mulberry32(5));
    augmentBatch(c, n, shape, spec, mulberry32(6));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const zero = parseAugment('shift:0,rotate:0,scale:0,elastic:0');
    expect(zero).toEqual({ shift: 0 });
    expect(augments(zero)).toBe(false);
    const z = batch();
    augmentBatch(z, n, shape, zero, () => { throw new Error('no augmentation draws nothing'); });
    expect(Array.from(z)).toEqual(Array.from(batch()));
    // A zero part does not change the draws of the others: "shift:2,rotate:0" is "shift:2".
    const s1 = batch(), s2 = batch();
    augmentBatch(s1, n, shape, parseAugment('shift:2,rotate:0'), mulberry32(8));
    augmentBatch(s2, n, shape, { shift: 2 }, mulberry32(8));
    expect(Array.from(s1)).toEqual(Array.from(s2));
  });
});

describe('the augment spec with rotate, scale and elastic', () => {
  it('parses the parts in any order, each once; elastic SIGMA defaults to Simard\'s', () => {
    expect(parseAugment('shift:2,rotate:10,scale:0.1')).toEqual({ shift: 2, rotate: 10, scale: 0.1 });
    expect(parseAugment(' scale:0.15 , rotate:7.5 ')).toEqual({ shift: 0, rotate: 7.5, scale: 0.15 });
    expect(parseAugment('elastic:34')).toEqual({ shift: 0, elastic: { alpha: 34, sigma: ELASTIC_SIGMA.default } });
    expect(parseAugment('shift:1,elastic:20:6')).toEqual({ shift: 1, elastic: { alpha: 20, sigma: 6 } });
    expect(parseAugment(`rotate:${MAX_ROTATE},scale:${MAX_SCALE},elastic:${MAX_ELASTIC_ALPHA}:${ELASTIC_SIGMA.max}`)).toEqual({
      shift: 0, rotate: MAX_ROTATE, scale: MAX_SCALE, elastic: { alpha: MAX_ELASTIC_ALPHA, sigma: ELASTIC_SIGMA.max },
    });
    expect(AUGMENT_FIELD.safeParse('shift:2,rotate:10,scale:0.1').success).toBe(true);
  });

  it('refuses bad specs with a clear error that names the accepted form and what is wrong', () => {
    const cases: [string, RegExp][] = [
      [`rotate:${MAX_ROTATE + 1}`, /augment.rotate \(degrees\) must be a number in \[0, 45\]; got 46/],
      ['scale:0.6', /augment.scale must be a number in \[0, 0.5\]; got 0.6/],
      ['elastic:101', /augment.elastic.alpha must be a number in \[0, 100\]/],
      ['elastic:34:0.5', /augment.elastic.sigma \(pixels\) must be a number in \[1, 10\]; got 0.5/],
      ['shift:2,shift:3', /"shift" given twice/],
      ['rotate:10:2', /"rotate" takes one value/],
      ['shift:2,', /an empty part/],
      ['blur:1', /"blur:1" is not a part/],
      ['rotate:-5', /"rotate:-5" is not a part/],
      ['scale:1e-2', /"scale:1e-2" is not a part/],
    ];
    for (const [bad, why] of cases) {
      expect(() => parseAugment(bad), bad).toThrow(why);
      expect(() => parseAugment(bad), bad).toThrow(/"shift:2,rotate:10,scale:0.1"/); // the accepted form, with an example
      const r = AUGMENT_FIELD.safeParse(bad);
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0].message, bad).toMatch(why);
    }
    expect(() => checkAugment({ shift: 0, elastic: { alpha: 5 } } as never)).toThrow(/augment.elastic.sigma/);
    expect(() => checkAugment({ shift: 0, elastic: { alpha: 5, sigma: 2, k: 1 } } as never)).toThrow(/Unknown augment.elastic option\(s\): k/);
    expect(trainParams.safeParse({ dataset: 'mnist', arch: 'cw-mnist', augment: 'rotate:90' }).success).toBe(false);
    expect(trainParams.parse({ dataset: 'mnist', arch: 'cw-mnist', augment: 'shift:2,rotate:10,scale:0.1' })).toMatchObject({ augment: 'shift:2,rotate:10,scale:0.1' });
  });
});

describe('trainClassifier with rotations, scalings and elastic fields', () => {
  const train = quadrantSet(200, 1);

  it('trains on warped copies (labels and shape unchanged), records the options; the same curve on tfjs and ONNX Runtime', async () => {
    const augment = parseAugment('shift:1,rotate:20,scale:0.2,elastic:10:2');
    const seen: { x: Float32Array; y: number[]; labels: number[]; shape: number[]; indices: Int32Array }[] = [];
    const m = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 7 });
    const r = await trainClassifier(m, train, { augment, batchSize: 25, epochs: 1, seed: 3, limitBatches: 2 }, {
      transformBatch: (x, y, info) => {
        seen.push({ x: x.dataSync() as Float32Array, y: Array.from(tf.tidy(() => tf.argMax(y, -1)).dataSync()), labels: Array.from(info.labels), shape: x.shape, indices: info.indices.slice() });
        return { x: x.clone(), y: y.clone() };
      },
    });
    m.dispose();
    expect(r.options.augment).toEqual(augment);
    expect(seen).toHaveLength(2);
    for (const b of seen) {
      expect(b.shape).toEqual([25, 8, 8, 1]);
      expect(b.y).toEqual(b.labels);
      expect(b.labels).toEqual(Array.from(b.indices, (j) => train.labels[j]));
      let differs = 0;
      for (let i = 0; i < 25; i++) if (!train.images.subarray(b.indices[i] * 64, (b.indices[i] + 1) * 64).every((v, j) => v === b.x[i * 64 + j])) differs++;
      expect(differs).toBe(25);
    }
    const run = async (engine: 'tfjs' | 'onnx') => {
      const mm = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 7, dropout: 0.5 });
      const rr = await trainClassifier(mm, train, { optimizer: 'momentum', learningRate: 0.05, batchSize: 40, epochs: 1, seed: 3, limitBatches: 3, engine, threads: 1, augment });
      mm.dispose();
      return rr.history.batches.map((b) => b.loss);
    };
    const lt = await run('tfjs'), lo = await run('onnx');
    expect(lo).toHaveLength(3);
    lo.forEach((v, i) => expect(Math.abs(v - lt[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-4));
  });
});
