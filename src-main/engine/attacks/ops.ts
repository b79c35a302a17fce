/**
 * Tensor helpers the attacks share: per-example norms, the Foolbox-style norm-specific pieces of a
 * gradient attack (normalize the gradient, project onto the epsilon ball, random start), a gradient
 * that also returns the logits it was computed from, and row-wise selection.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier, LogitLoss, LossGradient } from '../models/classifier';
import { crossEntropy, logitMargin, type AscentLoss } from './losses';
import type { Norm } from './types';

const TINY = 1e-12;

/** A [n] mask reshaped to broadcast over the rows of a rank-r tensor ([n, 1, 1, 1] for images). */
export function rowMask(mask: tf.Tensor1D, rank: number): tf.Tensor {
  return tf.reshape(mask, [mask.shape[0], ...new Array(rank - 1).fill(1)]);
}

/** Row-wise select: rows of a where mask[i], else rows of b. (tf.where broadcasts from the right.) */
export function rowWhere<T extends tf.Tensor>(mask: tf.Tensor1D, a: T, b: T): T {
  return tf.where(rowMask(mask, a.rank), a, b) as T;
}

/** Per-example L2 norm of a [n, ...] tensor, as [n]. */
export function l2Norm(t: tf.Tensor): tf.Tensor1D {
  return tf.sqrt(tf.sum(tf.square(t), [...Array(t.rank).keys()].slice(1))) as tf.Tensor1D;
}

/** Per-example norm of a [n, ...] tensor. */
export function norms(t: tf.Tensor, norm: Norm): tf.Tensor1D {
  const axes = [...Array(t.rank).keys()].slice(1);
  if (norm === 'linf') return tf.max(tf.abs(t), axes) as tf.Tensor1D;
  if (norm === 'l2') return l2Norm(t);
  return tf.sum(tf.cast(tf.greater(tf.abs(t), 1e-6), 'float32'), axes) as tf.Tensor1D;
}

/**
 * Elementwise sign (+1, -1, or 0 for exact zeros and NaN), built from comparisons. The only sign the
 * engine may take of a tensor: tfjs-backend-wasm 4.22's `tf.sign` returns 0 for |x| < ~1.2e-7, and a
 * confident model's cross-entropy input gradient is 1e-8..1e-13, so FGSM and PGD would leave those
 * images untouched on wasm while the cpu backend moves them. Comparisons are exact on every backend.
 */
export function sign<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32')) as T);
}

/** Steepest-ascent direction of unit norm: sign(g) for Linf, g / ||g||_2 for L2. */
export function normalizeGradient(g: tf.Tensor4D, norm: 'l2' | 'linf'): tf.Tensor4D {
  if (norm === 'linf') return sign(g);
  return tf.div(g, tf.add(rowMask(l2Norm(g), 4), TINY));
}

/** Projects x onto the eps-ball around x0 (Linf: clip per component; L2: rescale the perturbation). */
export function projectBall(x0: tf.Tensor4D, x: tf.Tensor4D, norm: 'l2' | 'linf', eps: number): tf.Tensor4D {
  const delta = tf.sub(x, x0);
  if (norm === 'linf') return tf.add(x0, tf.clipByValue(delta, -eps, eps));
  const factor = tf.minimum(1, tf.div(eps, tf.add(l2Norm(delta), TINY))) as tf.Tensor1D;
  return tf.add(x0, tf.mul(delta, rowMask(factor, 4)));
}

/**
 * A uniformly random point of the eps-ball around x, clipped to [0, 1]. L2 uses Voelker et al. (2017):
 * the first d coordinates of a normalised (d+2)-dimensional Gaussian are uniform in the d-ball.
 */
export function randomStart(x: tf.Tensor4D, norm: 'l2' | 'linf', eps: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    let delta: tf.Tensor4D;
    if (norm === 'linf') {
      delta = tf.randomUniform(x.shape, -eps, eps, 'float32', seed) as tf.Tensor4D;
    } else {
      const d = h * w * c;
      const s = tf.randomNormal([n, d + 2], 0, 1, 'float32', seed) as tf.Tensor2D;
      const unit = tf.div(s, tf.reshape(l2Norm(s), [n, 1]));
      delta = tf.reshape(tf.mul(tf.slice(unit, [0, 0], [n, d]), eps), x.shape) as tf.Tensor4D;
    }
    return tf.clipByValue(tf.add(x, delta), 0, 1) as tf.Tensor4D;
  });
}

export interface GradResult {
  /** d sum(objective) / d input. */
  grad: tf.Tensor4D;
  /** Logits at the input (kept out of tidy scopes: the caller disposes them). */
  logits: tf.Tensor2D;
  /** Per-example objective values [n] (kept; the caller disposes them). */
  values: tf.Tensor1D;
}

/**
 * Gradient of the summed per-example objective with respect to the input, plus the logits and the
 * objective values of the same forward pass (so the attack needs no second forward to check success).
 */
export function gradWithLogits(
  logitsOf: (x: tf.Tensor4D) => tf.Tensor2D,
  x: tf.Tensor4D,
  objective: (z: tf.Tensor2D, x: tf.Tensor4D) => tf.Tensor1D,
): GradResult {
  const kept: { logits?: tf.Tensor2D; values?: tf.Tensor1D } = {};
  const grad = tf.grad((xi: tf.Tensor) => {
    const z = logitsOf(xi as tf.Tensor4D);
    const v = objective(z, xi as tf.Tensor4D);
    kept.logits = tf.keep(tf.clone(z));
    kept.values = tf.keep(tf.clone(v));
    return tf.sum(v);
  })(x) as tf.Tensor4D;
  return { grad, logits: kept.logits!, values: kept.values! };
}

/**
 * gradWithLogits for a classifier: through its own backward pass when it has one (ONNX Runtime: one forward
 * run that keeps what the backward pass needs (`linearize`), the objective's gradient with respect to the
 * logits by tfjs autodiff on [n, k], then one backward run; with only `vjp`, a forward run and a VJP run),
 * else tfjs autodiff through the whole network, the reference. The objective must depend on x only
 * through the logits (true of every ascent objective in losses.ts). For any objective: the losses attacks
 * share (CE, the margin) go through lossGradient below, one fused run on ONNX Runtime. Measured on
 * cw-mnist at batch 50 and 100 (BENCHMARKS.md), `linearize` costs less CPU than a forward run and then the
 * vjp graph, on 1 and 2 ORT threads, so it stays the route for the other objectives (DLR, FAB, FMN).
 */
export function classifierGradient(classifier: Classifier, x: tf.Tensor4D, objective: (z: tf.Tensor2D) => tf.Tensor1D): GradResult {
  if (!classifier.linearize && !classifier.vjp) return gradWithLogits((xi) => classifier.logits(xi), x, objective);
  const lin = classifier.linearize?.(x);
  const logits = lin ? lin.logits : tf.tidy(() => classifier.logits(x));
  const kept: { values?: tf.Tensor1D } = {};
  const dz = tf.grad((z: tf.Tensor) => {
    const v = objective(z as tf.Tensor2D);
    kept.values = tf.keep(tf.clone(v));
    return tf.sum(v);
  })(logits) as tf.Tensor2D;
  const grad = lin ? lin.vjp(dz) : (classifier.vjp as NonNullable<Classifier['vjp']>)(x, dz);
  dz.dispose();
  return { grad, logits, values: kept.values! };
}

/** The per-example values of a LogitLoss on logits z (onehot: its classes), in tfjs: the reference. */
export function logitLossValues(z: tf.Tensor2D, loss: LogitLoss, onehot: tf.Tensor2D): tf.Tensor1D {
  if (loss.kind === 'ce') return crossEntropy(z, onehot);
  const m = logitMargin(z, onehot);
  return tf.minimum(loss.toward ? m : tf.neg(m), loss.kappa) as tf.Tensor1D;
}

/**
 * The logits at x, the per-example loss values and d sum_n weights[n] loss_n / dx for one of the losses the
 * attacks use (models/classifier.ts's LogitLoss): the classifier's own fused call when it has one (ONNX
 * Runtime: one graph run), else classifierGradient on the loss written in tfjs, the reference.
 */
export function lossGradient(classifier: Classifier, x: tf.Tensor4D, loss: LogitLoss): LossGradient {
  if (classifier.lossGradient) return classifier.lossGradient(x, loss);
  const onehot = oneHot(loss.classes, classifier.numClasses);
  const weights = tf.tensor1d(loss.weights);
  const kept: { values?: tf.Tensor1D } = {};
  try {
    const r = classifierGradient(classifier, x, (z) => {
      const f = logitLossValues(z, loss, onehot);
      kept.values = tf.keep(tf.clone(f));
      return tf.mul(weights, f) as tf.Tensor1D;
    });
    r.values.dispose();
    return { logits: r.logits, values: kept.values!, grad: r.grad };
  } finally {
    tf.dispose([onehot, weights]);
  }
}

/**
 * classifierGradient of losses.ts's ascentObjective(kind, z, onehot(classes), targeted, kappa), through
 * lossGradient (one fused call on a classifier that has it): 'ce' is CE weighted -1 when targeted, 'margin' is
 * the LogitLoss margin toward the target (targeted) or away from the label. The values are the objective's
 * (the CE negated when targeted: exact). `direction`: the caller uses only each example's gradient direction
 * (LogitLoss.direction: the engine may scale each example's CE gradient by a positive factor).
 */
export function ascentGradient(classifier: Classifier, x: tf.Tensor4D, kind: AscentLoss, classes: Int32Array, targeted: boolean, kappa = 0, direction = false): GradResult {
  const weights = new Float32Array(classes.length).fill(kind === 'ce' && targeted ? -1 : 1);
  const loss: LogitLoss = kind === 'ce' ? { kind, classes, weights, direction } : { kind, classes, weights, kappa, toward: targeted };
  const r = lossGradient(classifier, x, loss);
  if (!(kind === 'ce' && targeted)) return r;
  const values = tf.neg(r.values) as tf.Tensor1D;
  r.values.dispose();
  return { grad: r.grad, logits: r.logits, values };
}

/** One-hot float32 [n, k] of class indices. */
export function oneHot(classes: Int32Array, k: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), k), 'float32') as tf.Tensor2D);
}

/** Throws when a tensor the attack produced holds NaN or Infinity (a broken model or gradient). */
export function assertFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${what} became ${values[i]} (the model or its gradient produced non-finite values)`);
  }
}
