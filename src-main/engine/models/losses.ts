/**
 * Training losses: a scalar from logits [b, k] and targets [b, k] (one-hot or any distribution),
 * mean over the batch. The attacks' per-example losses on one-hot classes are in attacks/losses.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import type { BatchInfo } from './batches';

/**
 * A training loss by name, for a loss that must be rebuilt in another worker (sharded training,
 * models/train-shard.ts). Every named loss is a MEAN over the batch of per-example terms, so the
 * gradient of a whole batch is the example-weighted mean of its shards' gradients.
 */
export type LossSpec = { kind: 'cross-entropy' } | { kind: 'distillation'; temperature: number };

/**
 * A training loss: a scalar from logits [b, k] and targets [b, k]. Called inside tf.tidy: synchronous.
 * `spec`, when present, names the loss so another worker can rebuild it (lossFromSpec); a loss
 * without one trains in the job's own worker.
 */
export interface LossFn {
  (logits: tf.Tensor2D, y: tf.Tensor2D, batch: BatchInfo): tf.Scalar;
  readonly spec?: LossSpec;
}

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
  const loss = (logits: tf.Tensor2D, y: tf.Tensor2D) => tf.tidy(() => crossEntropyLoss(tf.div(logits, temperature) as tf.Tensor2D, y));
  return Object.assign(loss, { spec: { kind: 'distillation', temperature } as const });
}

/** The default training loss: crossEntropyLoss as a named LossFn. */
export const crossEntropyLossFn: LossFn = Object.assign((logits: tf.Tensor2D, y: tf.Tensor2D) => crossEntropyLoss(logits, y), {
  spec: { kind: 'cross-entropy' } as const,
});

/** The loss a LossSpec names (what a worker runs for a sharded training step). */
export function lossFromSpec(spec: LossSpec): LossFn {
  switch (spec.kind) {
    case 'cross-entropy': return crossEntropyLossFn;
    case 'distillation': return distillationLoss(spec.temperature);
    default: throw badInput(`Unknown loss "${String((spec as { kind?: unknown }).kind)}"`);
  }
}
