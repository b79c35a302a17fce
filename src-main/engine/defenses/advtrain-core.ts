/**
 * Adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models
 * Resistant to Adversarial Attacks", ICLR 2018): minimise over the weights the loss at the worst point
 * of the eps-ball, approximating the inner maximisation with PGD on each minibatch, the model in its
 * current state:
 *     min_theta  E_(x,y) [ max_{||delta||_inf <= eps}  CE(f_theta(x + delta), y) ]
 * The inner PGD starts at a uniformly random point of the ball and takes `steps` signed-gradient steps
 * of `stepSize` on the cross-entropy, projecting onto the ball and the [0, 1] box after each: the PGD
 * attack's step, built from the same ops (randomStart, normalizeGradient, projectBall). Unlike the
 * evaluation attack it does not stop at the first misclassified iterate: it returns the last one, the
 * (approximate) loss maximiser, as in Madry et al.'s code. Plugs into trainClassifier through its
 * `transformBatch` hook.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { crossEntropy } from '../attacks/losses';
import { gradWithLogits, normalizeGradient, projectBall, randomStart } from '../attacks/ops';
import { defaultStepSize } from '../attacks/pgd';
import { deriveSeed, trainClassifier, type Batch, type BatchInfo, type TrainHooks, type TrainOptions, type TrainResult } from '../models';
import type { ImageSet } from '../data';

export interface AdversarialTrainingOptions {
  /** Linf radius of the ball (0.3 MNIST in Madry et al.; 0.1 is usual for Fashion-MNIST). */
  eps: number;
  /** PGD steps per batch (Madry et al. MNIST: 40). */
  steps: number;
  /** Default 2.5 * eps / steps, at most eps. (Madry et al. MNIST: 0.01 with 40 steps.) */
  stepSize?: number;
  /** Start from a uniformly random point of the ball. Default true. */
  randomStart?: boolean;
  /** Fraction of each batch replaced by its adversarial examples: 1 = Madry et al. (default), 0.5 = Goodfellow et al.'s mix. */
  adversarialFraction?: number;
  /**
   * Training steps over which eps (and the step size) ramps up linearly from 0 to eps. Default 0
   * (Madry et al.: full eps from the start). Short runs from scratch need it: with the full eps at once
   * a fresh network can settle on predicting one class.
   */
  warmupSteps?: number;
  /** Seeds the random starts (combined with the step number). Default 0. */
  seed?: number;
}

function checkOptions(o: AdversarialTrainingOptions): Required<AdversarialTrainingOptions> {
  if (!(o.eps > 0 && o.eps <= 1)) throw badInput(`Adversarial training eps must be in (0, 1]; got ${o.eps}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw badInput(`Adversarial training steps must be a positive integer; got ${o.steps}`);
  const stepSize = o.stepSize ?? defaultStepSize(o.eps, o.steps);
  if (!(stepSize > 0)) throw badInput(`stepSize must be > 0; got ${stepSize}`);
  const adversarialFraction = o.adversarialFraction ?? 1;
  if (!(adversarialFraction > 0 && adversarialFraction <= 1)) throw badInput(`adversarialFraction must be in (0, 1]; got ${adversarialFraction}`);
  const warmupSteps = o.warmupSteps ?? 0;
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw badInput(`warmupSteps must be a whole number >= 0; got ${warmupSteps}`);
  return { eps: o.eps, steps: o.steps, stepSize, randomStart: o.randomStart ?? true, adversarialFraction, warmupSteps, seed: o.seed ?? 0 };
}

/**
 * PGD examples for a training batch: `logitsOf` is the model as it is now, `y` the targets [b, k].
 * Every step runs in its own tf.tidy; returns a new tensor (the caller disposes it).
 */
export function pgdTrainingExamples(
  logitsOf: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, y: tf.Tensor2D, options: AdversarialTrainingOptions, seed: number,
): tf.Tensor4D {
  const o = checkOptions(options);
  let xa: tf.Tensor4D = o.randomStart ? randomStart(x, 'linf', o.eps, seed) : tf.clone(x);
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

/** The transformBatch hook that swaps (a fraction of) each training batch for its PGD examples. */
export function adversarialBatches(model: tf.LayersModel, options: AdversarialTrainingOptions): NonNullable<TrainHooks['transformBatch']> {
  const o = checkOptions(options);
  const logitsOf = (x: tf.Tensor4D) => model.apply(x, { training: false }) as tf.Tensor2D;
  return (x: tf.Tensor4D, y: tf.Tensor2D, batch: BatchInfo): Batch => {
    const seed = deriveSeed(o.seed, batch.step);
    const ramp = o.warmupSteps > 0 ? Math.min(1, batch.step / o.warmupSteps) : 1;
    const oe = { ...o, eps: o.eps * ramp, stepSize: o.stepSize * ramp };
    const b = x.shape[0];
    const m = Math.max(1, Math.round(o.adversarialFraction * b));
    if (m === b) return { x: pgdTrainingExamples(logitsOf, x, y, oe, seed), y: tf.clone(y) };
    const xa = tf.tidy(() => tf.slice(x, 0, m) as tf.Tensor4D);
    const ya = tf.tidy(() => tf.slice(y, 0, m) as tf.Tensor2D);
    const adv = pgdTrainingExamples(logitsOf, xa, ya, oe, seed);
    const out = tf.tidy(() => ({ x: tf.concat([adv, tf.slice(x, m)], 0) as tf.Tensor4D, y: tf.clone(y) }));
    xa.dispose(); ya.dispose(); adv.dispose();
    return out;
  };
}

/**
 * Trains `model` adversarially: trainClassifier with the adversarialBatches hook (other hooks pass
 * through). Accuracy in the history is measured on the adversarial batches.
 */
export function adversarialTrain(
  model: tf.LayersModel, trainSet: ImageSet, options: TrainOptions, adversarial: AdversarialTrainingOptions, hooks: Omit<TrainHooks, 'transformBatch'> = {}, ctx?: JobContext,
): Promise<TrainResult> {
  return trainClassifier(model, trainSet, options, { ...hooks, transformBatch: adversarialBatches(model, adversarial) }, ctx);
}
