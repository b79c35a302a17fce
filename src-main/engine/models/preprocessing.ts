/**
 * Input preprocessing a saved model can declare (meta.preprocessing; see defended.ts), below the
 * defenses that train such models.
 *
 * Thermometer encoding (Buckman, Roy, Raffel & Goodfellow, "Thermometer Encoding: One Hot Way To
 * Resist Adversarial Examples", ICLR 2018) and the BPDA attack on it (Athalye, Carlini & Wagner,
 * "Obfuscated Gradients Give a False Sense of Security", ICML 2018).
 *
 * Encoding with L levels: each pixel value x in [0, 1] is quantised to the bucket
 * b(x) = min(floor(L x), L - 1) and written as L bits tau_k(x) = 1 if k <= b(x) else 0, k = 0..L-1
 * (1,1,...,1,0,...,0: the reverse cumulative sum of the one-hot code of b(x), as in the authors'
 * discretization_utils). Channels multiply by L: [n, h, w, c] becomes [n, h, w, c * L], the L bits of
 * channel ch at positions ch * L .. ch * L + L - 1.
 *
 * The real encoding is built from tf.floor and tf.step, whose registered gradients are zero: the
 * gradient of anything through it with respect to the pixels is exactly 0, as for the authors'
 * discretisation, so a plain gradient attack honestly gets no signal.
 *
 * BPDA (Backward Pass Differentiable Approximation): the forward pass uses the real encoding, the
 * backward pass the gradient of Athalye et al.'s relaxation (obfuscated-gradients/thermometer):
 * g_k(x) = clip(L x - k + 1, 0, 1), a ramp that rises from 0 to 1 on [(k - 1) / L, k / L], reaching 1
 * exactly where tau_k switches on.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import type { Classifier } from './classifier';

/** Checks a number of levels (an integer >= 2). */
export function checkLevels(levels: number): number {
  if (!Number.isInteger(levels) || levels < 2 || levels > 1024) throw badInput(`Thermometer levels must be an integer in 2..1024; got ${levels}`);
  return levels;
}

/** [h, w, c * levels]: the network's input shape for images of [h, w, c]. */
export function encodedShape(shape: readonly [number, number, number], levels: number): [number, number, number] {
  return [shape[0], shape[1], shape[2] * checkLevels(levels)];
}

/** Level indices 0..L-1 shaped to broadcast over [n, h, w, c, L]. */
function levelIndices(levels: number): tf.Tensor {
  return tf.reshape(tf.range(0, levels, 1, 'float32'), [1, 1, 1, 1, levels]);
}

function withLevelAxis(x: tf.Tensor4D): tf.Tensor {
  const [n, h, w, c] = x.shape;
  return tf.reshape(x, [n, h, w, c, 1]);
}

function flattenLevels(t: tf.Tensor, x: tf.Tensor4D, levels: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(t, [n, h, w, c * levels]);
}

/** The bucket b(x) = min(floor(L x), L - 1) of each pixel (values clipped to [0, 1] first). */
export function quantize(x: tf.Tensor4D, levels: number): tf.Tensor4D {
  checkLevels(levels);
  return tf.tidy(() => tf.minimum(tf.floor(tf.mul(tf.clipByValue(x, 0, 1), levels)), levels - 1) as tf.Tensor4D);
}

/**
 * The real thermometer encoding, [n, h, w, c] -> [n, h, w, c * L] of 0/1 values. Its gradient with
 * respect to x is zero everywhere (tf.floor and tf.step have zero gradients).
 */
export function thermometerEncode(x: tf.Tensor4D, levels: number): tf.Tensor4D {
  checkLevels(levels);
  return tf.tidy(() => {
    const b = withLevelAxis(quantize(x, levels));
    // tau_k = [b - k + 0.5 > 0] = [k <= b]; b and k are whole numbers, so 0.5 keeps clear of ties.
    return flattenLevels(tf.step(tf.add(tf.sub(b, levelIndices(levels)), 0.5)), x, levels);
  });
}

/**
 * Athalye et al.'s differentiable relaxation of the encoding: g_k(x) = clip(L x - k + 1, 0, 1).
 * Equal to the real encoding wherever L x is a whole number; between levels the next bit ramps up.
 */
export function thermometerRelaxed(x: tf.Tensor4D, levels: number): tf.Tensor4D {
  checkLevels(levels);
  return tf.tidy(() => {
    const ramp = tf.add(tf.sub(tf.mul(withLevelAxis(x), levels), levelIndices(levels)), 1);
    return flattenLevels(tf.clipByValue(ramp, 0, 1), x, levels);
  });
}

/**
 * The encoding for BPDA: the forward value is exactly thermometerEncode(x); the gradient is that of
 * thermometerRelaxed at x: dg_k/dx = L where 0 <= L x - k + 1 <= 1 (both ends included, the
 * convention of tf.clipByValue's gradient), else 0.
 */
export function thermometerBpda(x: tf.Tensor4D, levels: number): tf.Tensor4D {
  checkLevels(levels);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xi = args[0] as tf.Tensor4D;
    (args[1] as tf.GradSaveFunc)([xi]);
    return {
      value: thermometerEncode(xi, levels),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const xs = saved[0] as tf.Tensor4D;
        const [n, h, w, c] = xs.shape;
        const ramp = tf.add(tf.sub(tf.mul(withLevelAxis(xs), levels), levelIndices(levels)), 1);
        const inside = tf.logicalAnd(tf.greaterEqual(ramp, 0), tf.lessEqual(ramp, 1));
        const slope = tf.mul(tf.cast(inside, 'float32'), levels);
        const dyl = tf.reshape(dy, [n, h, w, c, levels]);
        return tf.sum(tf.mul(dyl, slope), 4);
      },
    };
  });
  return f(x) as tf.Tensor4D;
}

/** The encoding a classifier applies before its network. */
export type EncodingMode = 'real' | 'bpda';

/**
 * The whole defended pipeline as a Classifier: images [n, h, w, c] in [0, 1] in, the network's
 * logits out, with the thermometer encoding in between. 'real' (the deployed defense: zero input
 * gradient) or 'bpda' (same forward values, BPDA gradient: what the adaptive attacker differentiates).
 */
export function thermometerClassifier(model: tf.LayersModel, levels: number, mode: EncodingMode = 'real'): Classifier {
  checkLevels(levels);
  const shape = model.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d == null)) {
    throw badInput(`A thermometer model's input must be [batch, h, w, c * levels]; got [${shape.join(', ')}]`);
  }
  const [h, w, cl] = shape.slice(1) as number[];
  if (cl % levels !== 0) throw badInput(`The model takes ${cl} channels, not a multiple of ${levels} thermometer levels`);
  const out = model.outputs[0].shape;
  const encode = mode === 'real' ? thermometerEncode : thermometerBpda;
  return {
    inputShape: [h, w, cl / levels],
    numClasses: out[out.length - 1] as number,
    logits: (x) => tf.tidy(() => model.apply(encode(x, levels), { training: false }) as tf.Tensor2D),
  };
}
