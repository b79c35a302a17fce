/**
 * What attacks, evaluations and defenses see of a model: a differentiable map from a batch of images
 * in [0, 1] (NHWC) to logits. Defenses wrap it (thermometer encoding, detectors, BPDA) without the
 * attacks knowing.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClassifierSpec } from '../shards/types';

export interface Classifier {
  /** [h, w, c] of one input. */
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /**
   * A class that means "refused" rather than a label (a detector's "adversarial", as in Carlini &
   * Wagner 2017's combined classifier): an untargeted goal is not met there. Undefined for plain models.
   */
  readonly rejectClass?: number;
  /** Logits [n, numClasses]; differentiable with respect to x. Never applies softmax. */
  logits(x: tf.Tensor4D): tf.Tensor2D;
  /**
   * How another engine worker rebuilds exactly this classifier (a saved model through classifierFor),
   * so its attacks can run as shards (engine/shards). Set by classifierFor only: a wrapper built in
   * memory (a detector's guard, a noisy or BPDA wrapper) is a new object without it and runs in place.
   */
  readonly spec?: ClassifierSpec;
  /**
   * The vector-Jacobian product d sum(v * logits(x)) / dx, [n, h, w, c], for v [n, numClasses]: the input
   * gradient of any loss whose gradient with respect to the logits is v. Optional: a classifier with a
   * native backward pass (ONNX Runtime) provides it; without it `vjp()` below uses tfjs autodiff through
   * `logits`, the reference.
   */
  vjp?(x: tf.Tensor4D, v: tf.Tensor2D): tf.Tensor4D;
  /**
   * One forward pass that keeps what the backward pass needs: the logits at x now, and `vjp(v)` =
   * d sum(v * logits(x)) / dx later without running the forward pass again. For a loss whose gradient with
   * respect to the logits depends on the logits (every attack's): forward, that gradient, then the VJP.
   * Optional, like `vjp`: a native engine provides it (the caller disposes the logits and each gradient).
   */
  linearize?(x: tf.Tensor4D): Linearized;
  /**
   * One call for an attack step on one of the losses attacks use (LogitLoss): the logits at x, the per-example
   * loss values and the input gradient of sum_n w_n loss_n, with the loss's gradient with respect to the logits
   * computed by the engine (ONNX Runtime: one run of a graph holding the forward pass, the loss head and the
   * backward pass). Optional, like `vjp`: without it attacks/ops.ts's lossGradient computes the same by tfjs
   * autodiff of the loss (the reference) through the classifier's gradient. The caller disposes all three.
   */
  lossGradient?(x: tf.Tensor4D, loss: LogitLoss): LossGradient;
  /** Which engine computes the logits and input gradients, and why. Undefined: tfjs. */
  readonly engine?: EngineInfo;
  /** Releases native resources (ONNX Runtime sessions); tfjs classifiers hold none. */
  dispose?(): void;
}

/** What `Classifier.linearize` returns: the logits at one input and the VJP at that input. */
export interface Linearized {
  logits: tf.Tensor2D;
  vjp(v: tf.Tensor2D): tf.Tensor4D;
}

/**
 * A per-example loss on the logits Z that a classifier may differentiate in its own engine, with c_n = classes[n]:
 * - 'ce':     CE(Z_n, c_n) = -log softmax(Z_n)_c (attacks/losses.ts's crossEntropy);
 * - 'margin': min(s m_n, kappa), m_n = Z_c - max_{i != c} Z_i, s = +1 when `toward` (the margin of c), else -1.
 * The gradient is that of sum_n weights[n] loss_n (signs and C&W's constants go in the weights).
 */
export type LogitLoss =
  /**
   * direction: the caller uses only each example's gradient direction (a sign, or the gradient over its norm), so
   * the engine may scale each example's gradient by a positive factor. ONNX Runtime then leaves out CE's factor
   * sigmoid(logsumexp_{i != c} Z_i - Z_c), which for a confident example is below float32's normal range (the
   * gradient was exactly 0 and FGSM left the image untouched); tfjs returns the plain gradient.
   */
  | { kind: 'ce'; classes: Int32Array; weights: Float32Array; direction?: boolean }
  | { kind: 'margin'; classes: Int32Array; weights: Float32Array; kappa: number; toward: boolean };

/** What `Classifier.lossGradient` returns. */
export interface LossGradient {
  logits: tf.Tensor2D;
  /** The loss per example [n], unweighted. */
  values: tf.Tensor1D;
  /** d sum_n weights[n] loss_n / dx. */
  grad: tf.Tensor4D;
}

export type EngineName = 'tfjs' | 'onnx';

/** The engine a classifier runs on and why it was chosen (recorded in sessions, shown by the status bar). */
export interface EngineInfo {
  engine: EngineName;
  reason: string;
  /** ONNX Runtime's intra-op threads. */
  threads?: number;
}

/** d sum(v * logits(x)) / dx: the classifier's own VJP when it has one, else tfjs autodiff through logits. */
export function vjp(c: Classifier, x: tf.Tensor4D, v: tf.Tensor2D): tf.Tensor4D {
  if (c.vjp) return c.vjp(x, v);
  return tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(c.logits(xi as tf.Tensor4D), v)))(x) as tf.Tensor4D);
}

/** Wraps a tfjs LayersModel whose last layer outputs logits. */
export function fromLayersModel(model: tf.LayersModel): Classifier {
  const shape = model.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d == null)) {
    throw new Error(`Model input must be [batch, h, w, c]; got [${shape.join(', ')}]`);
  }
  const out = model.outputs[0].shape;
  return {
    inputShape: shape.slice(1) as [number, number, number],
    numClasses: out[out.length - 1] as number,
    logits: (x) => model.apply(x, { training: false }) as tf.Tensor2D,
  };
}
