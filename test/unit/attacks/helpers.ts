/**
 * Test fixtures for the attack tests: a 1,000-image MNIST subset read straight from the IDX files
 * ($ADVLAB_DATA/mnist) and a tiny dense network trained on it in a few seconds.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { LocalContext } from '../../../src-main/engine/context';
import { fromLayersModel, type Classifier } from '../../../src-main/engine/models/classifier';

function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  const buf = gunzipSync(readFileSync(file));
  const ndim = buf[3];
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + 4 + 4 * ndim, dims.reduce((a, b) => a * b, 1)) };
}

export interface Subset {
  images: Float32Array;
  labels: Int32Array;
  n: number;
}

let cache: { images: Uint8Array; labels: Uint8Array } | null = null;

/** MNIST test-set images [start, start + n) as [0, 1] floats. */
export function mnist(start: number, n: number): Subset {
  if (!cache) {
    const dir = join(process.env.ADVLAB_DATA ?? '/work/shared/data', 'mnist');
    cache = { images: readIdx(join(dir, 't10k-images-idx3-ubyte.gz')).data, labels: readIdx(join(dir, 't10k-labels-idx1-ubyte.gz')).data };
  }
  const images = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) images[i] = cache.images[start * 784 + i] / 255;
  return { images, labels: Int32Array.from(cache.labels.subarray(start, start + n)), n };
}

/** Trains flatten -> dense(hidden, relu) -> dense(10) logits on `train`; deterministic weights. */
export async function trainDense(train: Subset, hidden = 64, epochs = 8, seed = 1): Promise<{ model: tf.LayersModel; classifier: Classifier }> {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1] }),
      tf.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({
    optimizer: tf.train.adam(0.003),
    loss: (y: tf.Tensor, z: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, z),
    metrics: [],
  });
  const xs = tf.tensor4d(train.images, [train.n, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(train.labels, 'int32'), 10);
  await model.fit(xs, ys, { epochs, batchSize: 50, shuffle: false, verbose: 0 });
  xs.dispose();
  ys.dispose();
  return { model, classifier: fromLayersModel(model) };
}

export function accuracy(classifier: Classifier, s: Subset): number {
  return tf.tidy(() => {
    const pred = tf.argMax(classifier.logits(tf.tensor4d(s.images, [s.n, 28, 28, 1])), 1).dataSync();
    let ok = 0;
    for (let i = 0; i < s.n; i++) if (pred[i] === s.labels[i]) ok++;
    return ok / s.n;
  });
}

/**
 * For the property "an attack stops within a step of a cancel, without leaking tensors": runs `attack`
 * on a copy of `classifier` that counts its forward passes (logits calls), with a context that cancels
 * at the first progress event once at least `minCalls` have run. Returns what the attack threw, the
 * count when it cancelled (-1: never) and in all, and the live tensors before and after the run.
 */
export async function cancelAfterForwardPasses(
  classifier: Classifier,
  minCalls: number,
  attack: (counting: Classifier, ctx: LocalContext) => Promise<unknown>,
): Promise<{ error: unknown; callsAtCancel: number; calls: number; tensorsBefore: number; tensorsAfter: number }> {
  let calls = 0, callsAtCancel = -1;
  const counting: Classifier = { ...classifier, logits: (x) => { calls++; return classifier.logits(x); } };
  const ctx = new LocalContext(() => {
    if (callsAtCancel < 0 && calls >= minCalls) { callsAtCancel = calls; ctx.cancel(); }
  });
  const tensorsBefore = tf.memory().numTensors;
  const error = await attack(counting, ctx).then(() => null, (e: unknown) => e);
  return { error, callsAtCancel, calls, tensorsBefore, tensorsAfter: tf.memory().numTensors };
}
