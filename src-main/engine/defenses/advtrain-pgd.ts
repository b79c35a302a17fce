/**
 * The inner maximisation of adversarial training (Madry et al. 2018; engine/defenses/advtrain-core.ts):
 * `steps` signed-gradient steps of `stepSize` on the cross-entropy from a start point, each projected
 * onto the Linf eps-ball around x and the [0, 1] box, returning the last iterate. Its own module (tf
 * and the attack ops only) so a 'train-grad' shard (engine/models/train-shard.ts) runs the same steps
 * on its slice of a batch as the coordinator runs on the whole batch.
 */
import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../attacks/losses';
import { gradWithLogits, normalizeGradient, projectBall } from '../attacks/ops';

/** The PGD steps of one training batch (or slice): what a shard needs besides the model and the start. */
export interface TrainingPgdSteps {
  eps: number;
  stepSize: number;
  steps: number;
}

/**
 * PGD from `start` (taken over: disposed here) around `x` with targets `y` [b, k]; `logitsOf` is the
 * model as it is now (inference mode). Every step runs in its own tf.tidy; returns a new tensor.
 * Each example's steps depend only on its own row (the loss is a mean over rows and only the gradient's
 * sign is used), so a slice of a batch gets the rows the whole batch would get.
 */
export function pgdFromStart(logitsOf: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, start: tf.Tensor4D, y: tf.Tensor2D, o: TrainingPgdSteps): tf.Tensor4D {
  let xa = start;
  for (let t = 0; t < o.steps; t++) {
    const next = tf.tidy(() => {
      const g = gradWithLogits(logitsOf, xa, (z) => crossEntropy(z, y));
      g.logits.dispose();
      g.values.dispose();
      const moved = tf.add(xa, tf.mul(normalizeGradient(g.grad, 'linf'), o.stepSize)) as tf.Tensor4D;
      return tf.clipByValue(projectBall(x, moved, 'linf', o.eps), 0, 1) as tf.Tensor4D;
    });
    xa.dispose();
    xa = next;
  }
  return xa;
}
