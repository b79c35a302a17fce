/**
 * Image sets as training and evaluation batches: checks of a set against a model, gathering the
 * images and targets of a batch into tensors, and what a loss or hook learns about the batch.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import type { ImageSet } from '../data/types';

export interface BatchInfo {
  phase: 'train' | 'validation';
  /** 1-based epoch. */
  epoch: number;
  /** 1-based global training step (0 during validation). */
  step: number;
  /** 0-based batch index within the epoch (or within the validation pass). */
  index: number;
  /** Indices of the batch's examples in their set. */
  indices: Int32Array;
  /** Their true labels. */
  labels: Int32Array;
}

/** Lets the event loop run (cancel messages, IPC) between batches: wasm work is synchronous. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function count(set: { labels: Uint8Array }): number {
  return set.labels.length;
}

export function pixelsPerImage(set: { shape: readonly number[] }): number {
  return set.shape[0] * set.shape[1] * set.shape[2];
}

export function checkSet(set: ImageSet, what: string): void {
  const n = count(set), d = pixelsPerImage(set);
  if (set.images.length !== n * d) {
    throw badInput(`${what} "${set.name}" is inconsistent: ${set.images.length} pixel values for ${n} images of [${set.shape.join(', ')}]`);
  }
  if (n === 0) throw badInput(`${what} "${set.name}" has no images`);
}

/** Copies the images at `indices` into a [b, h, w, c] tensor. */
export function gatherImages(set: { images: Float32Array; shape: [number, number, number] }, indices: Int32Array): tf.Tensor4D {
  const d = pixelsPerImage(set);
  const buf = new Float32Array(indices.length * d);
  for (let i = 0; i < indices.length; i++) buf.set(set.images.subarray(indices[i] * d, (indices[i] + 1) * d), i * d);
  return tf.tensor4d(buf, [indices.length, ...set.shape]);
}

/** Targets [b, k]: rows of `targets` when given, else one-hot labels. */
export function gatherTargets(labels: Uint8Array, indices: Int32Array, k: number, targets?: Float32Array): tf.Tensor2D {
  const buf = new Float32Array(indices.length * k);
  for (let i = 0; i < indices.length; i++) {
    if (targets) buf.set(targets.subarray(indices[i] * k, (indices[i] + 1) * k), i * k);
    else buf[i * k + labels[indices[i]]] = 1;
  }
  return tf.tensor2d(buf, [indices.length, k]);
}

export function labelsAt(labels: Uint8Array, indices: Int32Array): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = labels[indices[i]];
  return out;
}

export function checkLabels(set: ImageSet, k: number, what: string): void {
  if (set.classNames.length > 0 && set.classNames.length !== k) {
    throw badInput(`The model outputs ${k} logits but ${what} "${set.name}" has ${set.classNames.length} classes`, { modelClasses: k, datasetClasses: set.classNames.length });
  }
  let max = 0;
  for (let i = 0; i < set.labels.length; i++) if (set.labels[i] > max) max = set.labels[i];
  if (max >= k) throw badInput(`${what} "${set.name}" has label ${max} but the model outputs only ${k} logits`);
}

export function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw badInput(`${name} must be a positive integer; got ${String(v)}`);
  return v;
}

export function allIndices(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
