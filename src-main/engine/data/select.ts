/**
 * Reproducible selection of examples (seeded subsets and permutations) and conversion of an
 * ImageSet batch to tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import { mulberry32 } from '../core/random';
import type { ImageSet } from './types';

export { mulberry32 };

/** A seeded permutation of 0..n-1 (Fisher-Yates driven by mulberry32). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rand = mulberry32(seed);
  for (let i = 0; i < n - 1; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw badInput(`${what} must be a whole number >= 0, got ${n}`);
}

/**
 * n distinct indices out of 0..total-1, chosen by a seeded partial Fisher-Yates shuffle and
 * returned in ascending order. The same (total, n, seed) always gives the same indices, and the
 * subset for a smaller n is contained in the one for a larger n with the same seed. n >= total
 * returns every index.
 */
export function subsetIndices(total: number, n: number, seed = 0): Int32Array {
  checkCount(n, 'subset size');
  if (n >= total) return Int32Array.from({ length: total }, (_, i) => i);
  const p = new Int32Array(total);
  for (let i = 0; i < total; i++) p[i] = i;
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (total - i));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p.slice(0, n).sort();
}

/** How a job picks its n images from a split: the first n after `offset`, or a seeded random n. */
export type Pick = 'first' | 'random';

/** Which n images of a split a job uses (the job schemas' image selection: n, pick, offset, seed). */
export interface ImageChoice {
  n: number;
  pick: Pick;
  /** Skip the split's first `offset` images (both picks draw from offset..total-1). */
  offset: number;
  /** Only for pick 'random'. */
  seed: number;
}

/**
 * The positions (0..total-1, in the split's own numbering, ascending) of the n images `choice`
 * picks from a split of `total`, and the words for the session's dataset description:
 * "first 100 of 10000 (offset 0)" or "random 100 of 10000 (seed 0)". pick 'first' takes
 * offset..offset+n-1 (what papers report: the first n test images); pick 'random' takes
 * offset + subsetIndices(total - offset, n, seed), so with offset 0 the same subset as before
 * picks existed. offset + n beyond the split is refused, naming the numbers.
 */
export function chooseIndices(total: number, choice: ImageChoice): { indices: Int32Array; note: string } {
  const { n, pick, offset, seed } = choice;
  if (!Number.isInteger(n) || n < 1) throw badInput(`n must be a whole number >= 1, got ${n}`);
  if (!Number.isInteger(offset) || offset < 0) throw badInput(`offset must be a whole number >= 0, got ${offset}`);
  if (pick !== 'first' && pick !== 'random') throw badInput(`pick must be 'first' or 'random', got "${String(pick)}"`);
  if (offset + n > total) {
    throw badInput(`offset ${offset} + n ${n} = ${offset + n} is beyond the split: it has ${total} images (0..${total - 1})`, { offset, n, total });
  }
  if (pick === 'first') {
    return { indices: Int32Array.from({ length: n }, (_, k) => offset + k), note: `first ${n} of ${total} (offset ${offset})` };
  }
  const indices = subsetIndices(total - offset, n, seed).map((k) => k + offset);
  const from = offset ? ` of images ${offset}-${total - 1}` : '';
  return { indices, note: `random ${n}${from} of ${total} (seed ${seed})` };
}

/** A new ImageSet holding copies of the examples at `indices`, in that order. */
export function selectExamples(set: ImageSet, indices: ArrayLike<number>, note?: string): ImageSet {
  const n = set.labels.length;
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) throw badInput(`example index ${i} is outside 0..${n - 1} of ${set.name}`);
    images.set(set.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = set.labels[i];
  }
  const split = note ? (set.source.split ? `${set.source.split}; ${note}` : note) : set.source.split;
  const from = set.source.indices;
  const picked = from ? { indices: Int32Array.from(indices, (i) => from[i]) } : {};
  return { ...set, images, labels, classNames: [...set.classNames], source: { ...set.source, files: [...set.source.files], split, ...picked } };
}

/**
 * n examples picked reproducibly with a seeded PRNG (see subsetIndices), kept in dataset order.
 * The choice is appended to source.split ("subset of 500 of 8000 (seed 1)").
 */
export function subset(set: ImageSet, n: number, seed = 0): ImageSet {
  const total = set.labels.length;
  const idx = subsetIndices(total, n, seed);
  return selectExamples(set, idx, idx.length < total ? `subset of ${idx.length} of ${total} (seed ${seed})` : undefined);
}

/** How many examples of each class: counts[k] for class k. */
export function classCounts(set: ImageSet): number[] {
  const counts = new Array<number>(set.classNames.length).fill(0);
  for (const l of set.labels) counts[l]++;
  return counts;
}

/** The examples at `indices` as tensors: x [b, h, w, c] float32 in [0, 1], y [b] int32 class indices. */
export function batchTensors(set: ImageSet, indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const n = set.labels.length;
  const [h, w, c] = set.shape;
  const size = h * w * c;
  const xs = new Float32Array(indices.length * size);
  const ys = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= n) throw badInput(`example index ${i} is outside 0..${n - 1} of ${set.name}`);
    xs.set(set.images.subarray(i * size, (i + 1) * size), k * size);
    ys[k] = set.labels[i];
  }
  return { x: tf.tensor4d(xs, [indices.length, h, w, c], 'float32'), y: tf.tensor1d(ys, 'int32') };
}
