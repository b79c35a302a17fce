/**
 * Per-example losses on logits, shared by the attacks and by eval's loss surfaces. All take logits
 * Z [n, k] and a one-hot [n, k] float mask of the class they are about, and return [n].
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Cross-entropy -log softmax(Z)_c, computed as softplus(d) with d = logsumexp_{i != c}(Z_i) - Z_c.
 *
 * The textbook form logsumexp(Z) - Z_c has the same value but, once the margin of class c exceeds
 * about 17 (softmax(Z)_c rounds to 1 in float32), its gradient loses the -grad Z_c term: dCE/dZ_c =
 * p_c - 1 evaluates to exactly 0 while the other classes keep their tiny p_i. The input gradient then
 * only raises the other logits and no longer lowers Z_c, and sign-gradient attacks stall (PGD-40 at
 * eps 0.3 left 5% of a plain MNIST network's inputs unbroken). Here dCE/dZ = sigmoid(d) * grad d, which
 * is exact in float32 until sigmoid(d) itself underflows (margins above ~87: the vanishing gradient of
 * defensive distillation, which this form keeps, as it should).
 */
export function crossEntropy(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const others = tf.logSumExp(tf.add(z, tf.mul(onehot, -1e30)), 1);
    return tf.softplus(tf.sub(others, tf.sum(tf.mul(z, onehot), 1))) as tf.Tensor1D;
  });
}

/** Largest logit among classes other than c (c masked with -1e30; its gradient is zero). */
export function maxOther(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  return tf.max(tf.add(z, tf.mul(onehot, -1e30)), 1) as tf.Tensor1D;
}

/** Logit margin Z_c - max_{i != c} Z_i: positive iff c is the predicted class (C&W's f6 ingredient). */
export function logitMargin(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  return tf.sub(tf.sum(tf.mul(z, onehot), 1), maxOther(z, onehot)) as tf.Tensor1D;
}

/** -log(1 - softmax(Z)_c) = logsumexp(Z) - logsumexp_{i != c}(Z): cross-entropy of "not c", >= 0. */
export function notClassCrossEntropy(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  return tf.sub(tf.logSumExp(z, 1), tf.logSumExp(tf.add(z, tf.mul(onehot, -1e30)), 1)) as tf.Tensor1D;
}

/** softmax(Z)_c. */
export function probability(z: tf.Tensor2D, onehot: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(tf.softmax(z), onehot), 1) as tf.Tensor1D;
}

export type AscentLoss = 'ce' | 'margin';

/**
 * The quantity gradient attacks (FGSM, PGD, DDN) ascend, per example:
 * - 'ce', untargeted: CE(Z, y) (push away from the label); targeted: -CE(Z, t) (descend the target's CE).
 * - 'margin' (C&W's f6 negated, Madry's "CW loss"): untargeted min(max_{i!=y} Z_i - Z_y, kappa);
 *   targeted min(Z_t - max_{i!=t} Z_i, kappa). The clamp at kappa stops pushing once the margin is reached.
 */
export function ascentObjective(kind: AscentLoss, z: tf.Tensor2D, onehot: tf.Tensor2D, targeted: boolean, kappa = 0): tf.Tensor1D {
  if (kind === 'ce') {
    const ce = crossEntropy(z, onehot);
    return (targeted ? tf.neg(ce) : ce) as tf.Tensor1D;
  }
  const m = logitMargin(z, onehot);
  return tf.minimum(targeted ? m : tf.neg(m), kappa) as tf.Tensor1D;
}
