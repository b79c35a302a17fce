/**
 * Predictions: logits of a model (or any Classifier) for many images, batched; the predicted class
 * (argmax) and softmax of a row of logits; loss and accuracy on a set; defensive distillation's soft
 * labels. The one place where logits become classes, for training, evaluation and the attacks.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { silentContext } from '../context';
import { badInput } from '../errors';
import type { ImageSet } from '../data/types';
import { fromLayersModel, type Classifier } from './classifier';
import { checkInputShape } from './io';
import { allIndices, checkLabels, checkSet, count, gatherImages, gatherTargets, labelsAt, pixelsPerImage, positiveInt, yieldToEventLoop, type BatchInfo } from './batches';
import { crossEntropyLoss, type LossFn } from './losses';

/** Index of the largest of the k values a[off .. off + k) (the first one on ties): the predicted class of a row of logits. */
export function argmaxAt(a: ArrayLike<number>, off: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (a[off + j] > a[off + best]) best = j;
  return best;
}

/** softmax of the k logits a[off .. off + k) at class j (shifted by the maximum, so large logits do not overflow). */
export function softmaxAt(a: ArrayLike<number>, off: number, k: number, j: number): number {
  let mx = -Infinity;
  for (let i = 0; i < k; i++) mx = Math.max(mx, a[off + i]);
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.exp(a[off + i] - mx);
  return Math.exp(a[off + j] - mx) / s;
}

/** Class probabilities of one row of logits. */
export function softmax(z: readonly number[]): number[] {
  return z.map((_, j) => softmaxAt(z, 0, z.length, j));
}

/** Images per chunk of batchLogits, and of the attacks' batches. */
export const DEFAULT_LOGITS_BATCH = 256;

/**
 * Logits of n flat images (NHWC, the classifier's input shape) in chunks of `batchSize`, synchronously
 * (the attacks' inner loops); checks that the classifier returns [m, numClasses].
 */
export function batchLogits(classifier: Classifier, data: Float32Array, n: number, batchSize = DEFAULT_LOGITS_BATCH): Float32Array {
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c, k = classifier.numClasses;
  const out = new Float32Array(n * k);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const z = tf.tidy(() => classifier.logits(tf.tensor4d(data.subarray(s * per, (s + m) * per), [m, h, w, c])));
    try {
      if (z.shape.length !== 2 || z.shape[0] !== m || z.shape[1] !== k) {
        throw badInput(`The classifier returned logits of shape [${z.shape.join(', ')}], expected [${m}, ${k}]`);
      }
      out.set(z.dataSync(), s * k);
    } finally {
      z.dispose();
    }
  }
  return out;
}

export type ModelLike = tf.LayersModel | Classifier;

export function toClassifier(m: ModelLike): Classifier {
  return 'logits' in m && typeof m.logits === 'function' ? m : fromLayersModel(m as tf.LayersModel);
}

export interface EvalParts {
  logitsOf: (x: tf.Tensor4D) => tf.Tensor2D;
  loss: LossFn;
  k: number;
}

/** Mean loss and accuracy of `logitsOf` over set[indices], batched; optional confusion counts. */
export async function evaluateIndices(
  parts: EvalParts, set: ImageSet, indices: Int32Array, batchSize: number, ctx: JobContext,
  opts: { targets?: Float32Array; epoch?: number; confusion?: number[][] } = {},
): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0, correct = 0;
  for (let start = 0, index = 0; start < indices.length; start += batchSize, index++) {
    ctx.checkpoint();
    const idx = indices.subarray(start, Math.min(start + batchSize, indices.length));
    const labels = labelsAt(set.labels, idx);
    const info: BatchInfo = { phase: 'validation', epoch: opts.epoch ?? 0, step: 0, index, indices: idx, labels };
    const x = gatherImages(set, idx);
    const y = gatherTargets(set.labels, idx, parts.k, opts.targets);
    try {
      const [l, p] = tf.tidy(() => {
        const logits = parts.logitsOf(x);
        return [parts.loss(logits, y, info), tf.argMax(logits, -1)];
      });
      const [lv, pv] = await Promise.all([l.data(), p.data()]);
      l.dispose(); p.dispose();
      lossSum += lv[0] * idx.length;
      for (let i = 0; i < idx.length; i++) {
        if (pv[i] === labels[i]) correct++;
        if (opts.confusion) opts.confusion[labels[i]][pv[i]]++;
      }
    } finally {
      x.dispose(); y.dispose();
    }
    await yieldToEventLoop();
  }
  return { loss: lossSum / indices.length, accuracy: correct / indices.length };
}

export interface EvalOptions {
  batchSize?: number;
  /** Also count a confusion matrix confusion[true][predicted]. */
  confusion?: boolean;
  ctx?: JobContext;
}

export interface EvalResult {
  n: number;
  /** Mean softmax cross-entropy. */
  loss: number;
  accuracy: number;
  confusion?: number[][];
}

/** Loss and accuracy of a model (or any Classifier, e.g. a defended one) on a set; a number is the batch size. */
export async function evaluate(model: ModelLike, set: ImageSet, options: EvalOptions | number = {}): Promise<EvalResult> {
  const opts: EvalOptions = typeof options === 'number' ? { batchSize: options } : options;
  checkSet(set, 'Dataset');
  const clf = toClassifier(model);
  checkInputShape(model, set.shape, set.name);
  checkLabels(set, clf.numClasses, 'Dataset');
  const k = clf.numClasses;
  const confusion = opts.confusion ? Array.from({ length: k }, () => new Array<number>(k).fill(0)) : undefined;
  const r = await evaluateIndices({ logitsOf: (x) => clf.logits(x), loss: (l, y) => crossEntropyLoss(l, y), k }, set, allIndices(count(set)),
    positiveInt(opts.batchSize ?? 500, 'batchSize'), opts.ctx ?? silentContext, { confusion });
  return { n: count(set), loss: r.loss, accuracy: r.accuracy, ...(confusion ? { confusion } : {}) };
}

/** Images to classify: an ImageSet or just its pixels and shape. */
export type Images = Pick<ImageSet, 'images' | 'shape'>;

/** Applies `fn` to logits batch by batch; returns the concatenated [n * k] values. */
async function mapLogits(model: ModelLike, set: Images, batchSize: number, ctx: JobContext, fn: (logits: tf.Tensor2D) => tf.Tensor2D): Promise<Float32Array> {
  const clf = toClassifier(model);
  checkInputShape(model, set.shape);
  const d = pixelsPerImage(set);
  if (set.images.length % d !== 0) throw badInput(`${set.images.length} pixel values are not a whole number of [${set.shape.join(', ')}] images`);
  const n = set.images.length / d, k = clf.numClasses;
  const out = new Float32Array(n * k);
  positiveInt(batchSize, 'batchSize');
  for (let start = 0; start < n; start += batchSize) {
    ctx.checkpoint();
    const b = Math.min(batchSize, n - start);
    const r = tf.tidy(() => fn(clf.logits(tf.tensor4d(set.images.subarray(start * d, (start + b) * d), [b, ...set.shape]))));
    out.set(await r.data(), start * k);
    r.dispose();
    await yieldToEventLoop();
  }
  return out;
}

/** Logits for every image, batched: Float32Array of n * numClasses (row-major). */
export function predictLogits(model: ModelLike, set: Images, batchSize = 500, ctx: JobContext = silentContext): Promise<Float32Array> {
  return mapLogits(model, set, batchSize, ctx, (l) => l);
}

/**
 * The soft labels of defensive distillation: softmax(logits / T) of a (teacher) model for every
 * image, n * numClasses values, to pass as TrainOptions.targets with distillationLoss(T).
 */
export function softLabels(model: ModelLike, set: Images, temperature: number, batchSize = 500, ctx: JobContext = silentContext): Promise<Float32Array> {
  if (!(temperature > 0)) throw badInput(`Distillation temperature must be > 0; got ${temperature}`);
  return mapLogits(model, set, batchSize, ctx, (l) => tf.softmax(tf.div(l, temperature) as tf.Tensor2D));
}
