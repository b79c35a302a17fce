/**
 * Adversarial-example detectors in the style of Metzen, Genewein, Fischer & Bischoff, "On Detecting
 * Adversarial Perturbations" (ICLR 2017): a small binary network ("clean" vs "adversarial") attached
 * to the frozen classifier, either on its input or on the activations of an inner layer (Metzen et al.
 * attach it to inner layers of a ResNet and find early layers work best). It is trained on clean
 * training images and on adversarial examples of the same images computed against the classifier
 * alone (the "static" detector of the paper).
 *
 * The detector's decision is the score s(x) = Z_adv(x) - Z_clean(x) (the log-odds of "adversarial")
 * against a threshold tau chosen so that a fixed fraction of clean images (the false-positive rate)
 * is flagged.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { deriveSeed, trainClassifier, type TrainHooks, type TrainResult } from '../models';
import type { Classifier } from '../models/classifier';
import { imageSet } from './kit';

export interface Detector {
  /** 'input', or the name of the classifier layer whose activations the head reads. */
  placement: string;
  /** The classifier (frozen) and the detector head (2 logits: clean, adversarial). */
  classifier: tf.LayersModel;
  head: tf.LayersModel;
  /** Classifier logits and detector scores from one pass (the shared layers run once). */
  joint(x: tf.Tensor4D): { logits: tf.Tensor2D; score: tf.Tensor1D };
  /** Detector score s(x) = Z_adv - Z_clean, [n]. */
  score(x: tf.Tensor4D): tf.Tensor1D;
  /** The head's two logits [clean, adversarial] (training mode for the head's own layers). */
  headLogits(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /** The classifier alone, as attacks see it. */
  asClassifier(): Classifier;
  dispose(): void;
}

/** Names of the layers a detector can read, in order ('input' first). */
export function detectorPlacements(classifier: tf.LayersModel): string[] {
  return ['input', ...classifier.layers.filter((l) => l !== classifier.layers[classifier.layers.length - 1]).map((l) => l.name)];
}

/** The head: two 3x3 conv blocks for feature maps (or one dense layer for vectors), then 2 logits. */
function buildHead(featureShape: number[], seed: number): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: deriveSeed(seed, 500 + i) });
  const head = tf.sequential({ name: 'detector_head' });
  if (featureShape.length === 3) {
    const [h, w] = featureShape;
    head.add(tf.layers.conv2d({ inputShape: featureShape, name: 'det_conv1', filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(0) }));
    if (Math.min(h, w) >= 4) head.add(tf.layers.maxPooling2d({ name: 'det_pool1', poolSize: 2, strides: 2 }));
    head.add(tf.layers.conv2d({ name: 'det_conv2', filters: 64, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }));
    if (Math.min(h, w) >= 8) head.add(tf.layers.maxPooling2d({ name: 'det_pool2', poolSize: 2, strides: 2 }));
    head.add(tf.layers.flatten({ name: 'det_flatten' }));
  } else if (featureShape.length === 1) {
    head.add(tf.layers.inputLayer({ inputShape: featureShape, name: 'det_input' }));
  } else {
    throw badInput(`A detector reads a feature map [h, w, c] or a vector; this layer outputs [${featureShape.join(', ')}]`);
  }
  head.add(tf.layers.dense({ name: 'det_dense', units: 64, activation: 'relu', kernelInitializer: init(2) }));
  head.add(tf.layers.dense({ name: 'det_logits', units: 2, kernelInitializer: init(3) }));
  return head;
}

/** Attaches an untrained (or a given, trained) detector head to `classifier` at `placement` ('input' or a layer name). */
export function buildDetector(classifier: tf.LayersModel, placement: string, seed = 0, head?: tf.LayersModel): Detector {
  const names = detectorPlacements(classifier);
  if (!names.includes(placement)) throw badInput(`The detector cannot read "${placement}": choose one of ${names.join(', ')}`, { placement, choices: names });
  // For an inner layer: one functional model from the input to [that layer's activations, logits],
  // sharing the classifier's layers (and weights), so a joint pass runs the shared layers once.
  const feature = placement === 'input' ? null : (classifier.getLayer(placement).output as tf.SymbolicTensor);
  const trunk = feature ? tf.model({ inputs: classifier.inputs, outputs: [feature, classifier.outputs[0]] }) : null;
  const featuresOnly = feature ? tf.model({ inputs: classifier.inputs, outputs: feature }) : null;
  const featureShape = (feature ? feature.shape : classifier.inputs[0].shape).slice(1) as number[];
  const h = head ?? buildHead(featureShape, seed);
  const expected = (h.inputs[0].shape.slice(1) as number[]).join('x');
  if (expected !== featureShape.join('x')) throw badInput(`The detector head takes [${expected}] but "${placement}" gives [${featureShape.join(', ')}]`);
  const shape = classifier.inputs[0].shape.slice(1) as [number, number, number];
  const outShape = classifier.outputs[0].shape;
  const k = outShape[outShape.length - 1] as number;
  const scoreOf = (z: tf.Tensor2D) => tf.reshape(tf.sub(tf.slice(z, [0, 1], [-1, 1]), tf.slice(z, [0, 0], [-1, 1])), [-1]) as tf.Tensor1D;
  const parts = (x: tf.Tensor4D): { logits: tf.Tensor2D; features: tf.Tensor } => {
    if (!trunk) return { logits: classifier.apply(x, { training: false }) as tf.Tensor2D, features: x };
    const [features, logits] = trunk.apply(x, { training: false }) as tf.Tensor[];
    return { logits: logits as tf.Tensor2D, features };
  };
  return {
    placement,
    classifier,
    head: h,
    joint: (x) => {
      const { logits, features } = parts(x);
      return { logits, score: scoreOf(h.apply(features, { training: false }) as tf.Tensor2D) };
    },
    score: (x) => scoreOf(h.apply(parts(x).features, { training: false }) as tf.Tensor2D),
    headLogits: (x, training) => h.apply(featuresOnly ? (featuresOnly.apply(x, { training: false }) as tf.Tensor) : x, { training }) as tf.Tensor2D,
    asClassifier: () => ({ inputShape: shape, numClasses: k, logits: (x) => classifier.apply(x, { training: false }) as tf.Tensor2D }),
    dispose: () => { h.dispose(); },
  };
}

/**
 * Trains the detector head (the classifier stays frozen: only the head's weights are trained) on
 * clean images (label 0) and their adversarial counterparts (label 1), softmax cross-entropy, 10%
 * held out for validation.
 */
export async function trainDetector(
  detector: Detector, clean: Float32Array, adversarial: Float32Array, shape: [number, number, number],
  o: { epochs: number; batchSize: number; learningRate: number; seed: number }, ctx: JobContext, hooks: Pick<TrainHooks, 'onEpoch' | 'onBatch'> = {},
): Promise<TrainResult> {
  if (clean.length !== adversarial.length) throw badInput(`The detector needs one adversarial per clean image; got ${clean.length} and ${adversarial.length} values`);
  const per = shape[0] * shape[1] * shape[2];
  const m = clean.length / per;
  const images = new Float32Array(2 * m * per);
  images.set(clean, 0);
  images.set(adversarial, m * per);
  const labels = new Uint8Array(2 * m);
  labels.fill(1, m);
  const set = imageSet('detector-training', images, labels, shape, ['clean', 'adversarial'], `${m} clean training images and their adversarial examples`);
  return trainClassifier(detector.head, set, {
    epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed, validationSplit: 0.1,
  }, { forward: (x, training) => detector.headLogits(x, training), ...hooks }, ctx);
}

/** Detector scores for a flat batch of images, batched. */
export async function detectorScores(detector: Detector, images: Float32Array, shape: [number, number, number], batchSize = 200): Promise<Float32Array> {
  const per = shape[0] * shape[1] * shape[2];
  const n = images.length / per;
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const r = tf.tidy(() => detector.score(tf.tensor4d(images.subarray(s * per, (s + m) * per), [m, ...shape])));
    out.set(await r.data(), s);
    r.dispose();
  }
  return out;
}

/**
 * The threshold that flags at most `fpr` of the given clean scores: detected iff score > tau.
 * Returns tau and the false-positive rate it gives on those scores.
 */
export function thresholdAtFpr(cleanScores: Float32Array, fpr: number): { threshold: number; fpr: number } {
  if (!(fpr > 0 && fpr < 1)) throw badInput(`The false-positive rate must be in (0, 1); got ${fpr}`);
  const m = cleanScores.length;
  if (m === 0) throw badInput('No clean images to set the detector threshold on');
  const s = Float32Array.from(cleanScores).sort();
  const idx = Math.min(m - 1, Math.max(0, Math.ceil((1 - fpr) * m) - 1));
  const threshold = s[idx];
  let above = 0;
  for (const v of cleanScores) if (v > threshold) above++;
  return { threshold, fpr: above / m };
}
