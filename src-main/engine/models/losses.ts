/**
 * Training losses: a scalar from logits [b, k] and targets [b, k] (one-hot or any distribution),
 * mean over the batch. The attacks' per-example losses on one-hot classes are in attacks/losses.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import type { BatchInfo } from './batches';

/** A training loss: a scalar from logits [b, k] and targets [b, k]. Called inside tf.tidy: synchronous. */
export type LossFn = (logits: tf.Tensor2D, y: tf.Tensor2D, batch: BatchInfo) => tf.Scalar;

/** Softmax cross-entropy on logits, mean over the batch; y may be one-hot or any distribution. */
export function crossEntropyLoss(logits: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), -1))) as tf.Scalar);
}

/**
 * Defensive distillation's loss (Papernot et al. 2016; the C&W reference code): cross-entropy of
 * softmax(logits / T) against the targets (hard labels when training the teacher, the teacher's
 * soft labels when training the distilled network). No T^2 factor, as in those papers' code.
 */
export function distillationLoss(temperature: number): LossFn {
  if (!(temperature > 0)) throw badInput(`Distillation temperature must be > 0; got ${temperature}`);
  return (logits, y) => tf.tidy(() => crossEntropyLoss(tf.div(logits, temperature) as tf.Tensor2D, y));
}
