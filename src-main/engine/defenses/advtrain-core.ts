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
 * `transformBatch` hook; on a shard executor each shard runs these steps on its own rows
 * (adversarialBatches' shardPlan), so adversarial training is data-parallel too.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { randomStart } from '../attacks/ops';
import { pgdFromStart } from './advtrain-pgd';
import { defaultStepSize } from '../attacks/pgd';
import { deriveSeed, trainClassifier, type Batch, type BatchInfo, type TrainHooks, type TrainOptions, type TrainResult } from '../models';
import type { AdversarialShardPlan, ShardableTransform } from '../models/train-shard';
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
  return pgdFromStart(logitsOf, x, o.randomStart ? randomStart(x, 'linf', o.eps, seed) : tf.clone(x), y, o);
}

/**
 * The transformBatch hook that swaps (a fraction of) each training batch for its PGD examples. It is
 * shardable (ShardableTransform.shardPlan): when the training is data-parallel, the coordinator draws
 * the batch's random start here, exactly as the hook would (same seed, same rows), and each
 * 'train-grad' shard runs the PGD steps on its own rows with the weights of the step, then its
 * gradient; the adversarial examples are the hook's, whatever the number of shards or workers.
 */
export function adversarialBatches(model: tf.LayersModel, options: AdversarialTrainingOptions): ShardableTransform {
  const o = checkOptions(options);
  const logitsOf = (x: tf.Tensor4D) => model.apply(x, { training: false }) as tf.Tensor2D;
  /** The batch's seed, ramped budget and adversarial rows (the first m). */
  const stepOf = (b: number, batch: BatchInfo) => {
    const ramp = o.warmupSteps > 0 ? Math.min(1, batch.step / o.warmupSteps) : 1;
    return { seed: deriveSeed(o.seed, batch.step), oe: { ...o, eps: o.eps * ramp, stepSize: o.stepSize * ramp }, m: Math.max(1, Math.round(o.adversarialFraction * b)) };
  };
  const hook = (x: tf.Tensor4D, y: tf.Tensor2D, batch: BatchInfo): Batch => {
    const b = x.shape[0];
    const { seed, oe, m } = stepOf(b, batch);
    if (m === b) return { x: pgdTrainingExamples(logitsOf, x, y, oe, seed), y: tf.clone(y) };
    const xa = tf.tidy(() => tf.slice(x, 0, m) as tf.Tensor4D);
    const ya = tf.tidy(() => tf.slice(y, 0, m) as tf.Tensor2D);
    const adv = pgdTrainingExamples(logitsOf, xa, ya, oe, seed);
    const out = tf.tidy(() => ({ x: tf.concat([adv, tf.slice(x, m)], 0) as tf.Tensor4D, y: tf.clone(y) }));
    xa.dispose(); ya.dispose(); adv.dispose();
    return out;
  };
  return Object.assign(hook, {
    shardPlan: async (x: tf.Tensor4D, _y: tf.Tensor2D, batch: BatchInfo): Promise<AdversarialShardPlan> => {
      const { seed, oe, m } = stepOf(x.shape[0], batch);
      let start: Float32Array | null = null;
      if (o.randomStart) {
        const xa = tf.tidy(() => tf.slice(x, 0, m) as tf.Tensor4D);
        const s = randomStart(xa, 'linf', oe.eps, seed); // as pgdTrainingExamples draws it for these rows
        try { start = (await s.data()) as Float32Array; } finally { xa.dispose(); s.dispose(); }
      }
      return { eps: oe.eps, stepSize: oe.stepSize, steps: oe.steps, rows: m, start };
    },
  });
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
