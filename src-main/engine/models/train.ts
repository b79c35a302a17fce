/**
 * Training of image classifiers, written as our own loop (not model.fit) so that we control
 * batches, losses, batch transforms (adversarial examples, encodings), cancellation and progress.
 * Prediction and evaluation are in predict.ts, the losses in losses.ts, batching in batches.ts.
 * Later defenses plug in through hooks:
 *  - `loss(logits, y, batch)`: the training loss (default: softmax cross-entropy on logits);
 *    `distillationLoss(T)` is the one defensive distillation uses;
 *  - `transformBatch(x, y, batch)`: replaces a training batch before the step, may be async
 *    (e.g. PGD adversarial examples for adversarial training);
 *  - `encode(x)`: a fixed function of the batch the network reads instead of the images, in training
 *    and validation (e.g. the thermometer encoding); it trains no weights;
 *  - `forward(x, training)`: how logits are computed from a batch, in training and validation, when
 *    it is more than the model on (encoded) images.
 * Data augmentation (`augment`, models/augment.ts: random shifts, rotations, scalings, elastic distortions) changes the pixels of each training
 * batch as it is gathered, before the hooks and before either engine; it draws from its own seeded stream.
 * With a shard executor of several workers on the job's context, each step's gradient is computed
 * data-parallel on shards of the batch (models/train-shard.ts: same steps within float noise).
 * Each step runs inside tf.tidy, so tf.memory().numTensors stays flat across batches and epochs.
 *
 * Engines (`engine`): 'tfjs' (the default here, and the reference) or ONNX Runtime ('onnx', or 'auto': ONNX
 * Runtime whenever the model, the loss and the hooks allow, else tfjs with the reason recorded in
 * TrainResult.engine). On ONNX Runtime each step is one run of the training graph (onnx/export-train.ts:
 * the loss and every weight gradient) and the optimizer's update in JS (onnx/train-optimizer.ts, written as
 * tfjs's); the dropout masks are drawn from the seed; the weights go back into the model before each
 * validation and when training ends or is cancelled. Batch transforms, encode and forward hooks and losses
 * without a spec run on tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { silentContext } from '../context';
import { AdvlabError, CancelledError, badInput } from '../errors';
import type { ImageSet } from '../data/types';
import { deriveSeed } from './architectures';
import { checkInputShape } from './io';
import { mulberry32 } from '../core/random';
import { allIndices, checkLabels, checkSet, count, gatherImages, gatherTargets, labelsAt, positiveInt, yieldToEventLoop, type BatchInfo } from './batches';
import { crossEntropyLossFn, type LossFn } from './losses';
import { evaluateIndices } from './predict';
import { shardSizes, shardedStep, shardedTraining, type ShardableTransform, type ShardedTraining } from './train-shard';
import type { EngineInfo } from './classifier';
import type { EngineRequest } from '../onnx/engines';
import { trainingBlocker } from '../onnx/export-train';
import { chooseTrainingEngine } from '../onnx/train-engine';
import { UnsupportedLayerError } from '../onnx/export';
import { OrtTrainer } from '../onnx/trainer';
import { learningRateAt } from '../onnx/train-optimizer';
import { augmentBatch, augments, checkAugment, type AugmentOptions } from './augment';

export type OptimizerName = 'adam' | 'sgd' | 'momentum';

/** What resolveOptions uses for an optimizer option left out: the one place these defaults are written. */
export const OPTIMIZER_OPTION_DEFAULTS = { momentum: 0.9, nesterov: false, decay: 0 } as const;

/**
 * The optimizer options of TrainOptions as zod fields, for the job schemas that expose them (api/jobs.ts):
 * their bounds are here; left out, resolveOptions uses OPTIMIZER_OPTION_DEFAULTS, which the fields carry as
 * `absentDefault` in their JSON Schema (describeSchema) so that a form can show them without writing them again.
 */
export const OPTIMIZER_OPTION_FIELDS = {
  /** Momentum coefficient of 'momentum'. Default 0.9. */
  momentum: z.number().min(0).lt(1).optional().meta({ absentDefault: OPTIMIZER_OPTION_DEFAULTS.momentum }),
  /** Nesterov momentum for 'momentum' (C&W's training code). Default false. */
  nesterov: z.boolean().optional().meta({ absentDefault: OPTIMIZER_OPTION_DEFAULTS.nesterov }),
  /** Keras's time-based decay per step: lr / (1 + decay t) (C&W's code: 1e-6). Default 0. */
  decay: z.number().min(0).max(1).optional().meta({ absentDefault: OPTIMIZER_OPTION_DEFAULTS.decay }),
};

export interface EarlyStopOptions {
  /** Stop after this many epochs in a row without improvement (Keras's semantics). At least 1. */
  patience: number;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
  /** Default 'val_loss'. */
  monitor?: 'val_loss' | 'val_acc';
  /** Put back the weights of the best epoch when training ends (not when cancelled). Default false. */
  restoreBest?: boolean;
}

export interface TrainOptions {
  /** Default 'adam'. 'momentum' is SGD with momentum (Nesterov if `nesterov`). */
  optimizer?: OptimizerName;
  /** Default 0.001 for adam, 0.01 for sgd and momentum. */
  learningRate?: number;
  /** Momentum coefficient for 'momentum'. Default 0.9. */
  momentum?: number;
  /** Nesterov momentum for 'momentum' (the C&W code used it). Default false. */
  nesterov?: boolean;
  /**
   * Keras's time-based learning-rate decay (the C&W code: 1e-6): step t (0-based) uses
   * learningRate / (1 + decay t). Default 0 (a constant rate).
   */
  decay?: number;
  /** Which engine computes the steps (see the module comment). Default 'tfjs'. */
  engine?: EngineRequest;
  /** ONNX Runtime intra-op threads (engine onnx/auto). Default: onnx/runtime's defaultThreads. */
  threads?: number;
  /** Default 100. The last batch of an epoch may be smaller. */
  batchSize?: number;
  /** Default 1. */
  epochs?: number;
  /** Seeds the validation split and the batch order. Default 0. */
  seed?: number;
  /**
   * Fraction of trainSet held out for validation, chosen by a seeded permutation (deterministic
   * for a seed; not "the last rows", which can be one class in sorted datasets).
   */
  validationSplit?: number;
  /** A separate validation set; exclusive with validationSplit. */
  validationSet?: ImageSet;
  earlyStop?: EarlyStopOptions;
  /** Shuffle the batch order each epoch. Default true. */
  shuffle?: boolean;
  /** At most this many batches per epoch (quick runs, demos, tests). */
  limitBatches?: number;
  /**
   * Target distributions replacing the one-hot labels, n * numClasses values aligned with trainSet
   * (soft labels for defensive distillation, from softLabels()). Accuracy is still measured
   * against trainSet.labels. With validationSplit the held-out rows keep their targets; a
   * separate validationSet is scored against its one-hot labels.
   */
  targets?: Float32Array;
  /** Batch size for validation. Default 500. */
  validationBatchSize?: number;
  /** Minimum time between progress events within an epoch. Default 250 ms. */
  progressIntervalMs?: number;
  /**
   * Augmentation of the training batches (models/augment.ts), seeded by `seed`; validation is never
   * augmented. Default: none.
   */
  augment?: AugmentOptions;
}

/** What hooks learn about the batch at hand. */

export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
}

export interface TrainHooks {
  /** Default: softmaxCrossEntropy. Also used for val_loss. */
  loss?: LossFn;
  /**
   * Replaces a training batch before the step (not used for validation). May return a Promise.
   * Must not dispose its inputs; the loop disposes x, y and whatever tensors it returns.
   * If it changes the batch size, accuracy is measured against argmax(y).
   */
  transformBatch?: (x: tf.Tensor4D, y: tf.Tensor2D, batch: BatchInfo) => Batch | Promise<Batch>;
  /**
   * The network's input for a batch of images, e.g. their thermometer encoding: called inside tf.tidy
   * (synchronous), in training (after transformBatch) and validation; trains nothing. The logits are
   * model.apply(encode(x), {training}). Unlike `forward`, training with it can still be sharded (the
   * encoding runs here, the network on the shards). Exclusive with `forward`.
   */
  encode?: (x: tf.Tensor4D) => tf.Tensor;
  /** Logits for a batch; default model.apply(x, {training}) (of encode(x) with `encode`). Used for training and validation. */
  forward?: (x: tf.Tensor4D, training: boolean) => tf.Tensor2D;
  onBatch?: (row: BatchRow, batch: BatchInfo) => void | Promise<void>;
  onEpoch?: (row: EpochRow) => void | Promise<void>;
}

export interface BatchRow {
  step: number;
  epoch: number;
  batch: number;
  size: number;
  loss: number;
  acc: number;
}

export interface EpochRow {
  epoch: number;
  /** Means over the epoch's training batches (weighted by batch size). */
  loss: number;
  acc: number;
  val_loss?: number;
  val_acc?: number;
  batches: number;
  images: number;
  seconds: number;
}

export interface TrainResult {
  model: tf.LayersModel;
  history: { batches: BatchRow[]; epochs: EpochRow[] };
  /** Completed epochs (an epoch interrupted by cancellation does not count). */
  epochsRun: number;
  stepsRun: number;
  stoppedEarly: boolean;
  /** Epoch whose weights were restored by earlyStop.restoreBest. */
  restoredEpoch?: number;
  /** Wall time of the whole call. */
  seconds: number;
  /** Training images per second of training-step time (batch building, transforms, steps; not validation). */
  imagesPerSecond: number;
  /** The options as used, with defaults filled in (for session manifests). */
  options: ResolvedTrainOptions;
  /** Which engine ran the steps and why. */
  engine: EngineInfo;
}

export type ResolvedTrainOptions = Required<Pick<TrainOptions,
  'optimizer' | 'learningRate' | 'momentum' | 'nesterov' | 'decay' | 'engine' | 'batchSize' | 'epochs' | 'seed' | 'shuffle' | 'validationBatchSize' | 'progressIntervalMs'>>
  & { validationSplit?: number; validationSet?: string; earlyStop?: Required<EarlyStopOptions>; limitBatches?: number; softTargets: boolean; augment?: AugmentOptions };

const OPTION_KEYS = new Set<string>([
  'optimizer', 'learningRate', 'momentum', 'nesterov', 'decay', 'engine', 'threads', 'batchSize', 'epochs', 'seed', 'validationSplit', 'validationSet',
  'earlyStop', 'shuffle', 'limitBatches', 'targets', 'validationBatchSize', 'progressIntervalMs', 'augment',
]);

/** Re-exported for existing importers; the one implementation is engine/random.ts. */
export { mulberry32 };

function permutation(n: number, rng: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  shuffleInPlace(p, rng);
  return p;
}

function shuffleInPlace(a: Int32Array, rng: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]; a[i] = a[j]; a[j] = t;
  }
}

function outputUnits(model: tf.LayersModel): number | null {
  const shape = model.outputs[0]?.shape;
  const k = shape?.[shape.length - 1];
  return typeof k === 'number' ? k : null;
}

function resolveOptions(o: TrainOptions, n: number, k: number): ResolvedTrainOptions {
  const unknown = Object.keys(o).filter((key) => !OPTION_KEYS.has(key));
  if (unknown.length) throw badInput(`Unknown training option(s): ${unknown.join(', ')} (known: ${[...OPTION_KEYS].join(', ')})`);
  const optimizer = o.optimizer ?? 'adam';
  if (!['adam', 'sgd', 'momentum'].includes(optimizer)) throw badInput(`Unknown optimizer "${optimizer}": choose adam, sgd or momentum`);
  const learningRate = o.learningRate ?? (optimizer === 'adam' ? 0.001 : 0.01);
  if (!(learningRate > 0 && Number.isFinite(learningRate))) throw badInput(`learningRate must be > 0; got ${learningRate}`);
  const momentum = o.momentum ?? OPTIMIZER_OPTION_DEFAULTS.momentum;
  if (!(momentum >= 0 && momentum < 1)) throw badInput(`momentum must be in [0, 1); got ${momentum}`);
  const decay = o.decay ?? OPTIMIZER_OPTION_DEFAULTS.decay;
  if (!(decay >= 0 && Number.isFinite(decay))) throw badInput(`decay must be >= 0; got ${decay}`);
  const engine = o.engine ?? 'tfjs';
  if (!['auto', 'onnx', 'tfjs'].includes(engine)) throw badInput(`Unknown engine "${engine}": choose auto, onnx or tfjs`);
  if (o.threads !== undefined) positiveInt(o.threads, 'threads');
  const seed = o.seed ?? 0;
  if (!Number.isFinite(seed)) throw badInput(`seed must be a finite number; got ${seed}`);
  if (o.validationSplit !== undefined && o.validationSet !== undefined) throw badInput('Give validationSplit or validationSet, not both');
  if (o.validationSplit !== undefined && !(o.validationSplit >= 0 && o.validationSplit < 1)) {
    throw badInput(`validationSplit must be in [0, 1); got ${o.validationSplit}`);
  }
  if (o.targets !== undefined && o.targets.length !== n * k) {
    throw badInput(`targets has ${o.targets.length} values; expected ${n} images x ${k} classes = ${n * k}`);
  }
  const augment = o.augment !== undefined ? checkAugment(o.augment) : undefined;
  const hasValidation = (o.validationSplit ?? 0) > 0 || o.validationSet !== undefined;
  let earlyStop: Required<EarlyStopOptions> | undefined;
  if (o.earlyStop) {
    if (!hasValidation) throw badInput('earlyStop monitors validation metrics: give validationSplit or validationSet');
    const monitor = o.earlyStop.monitor ?? 'val_loss';
    if (monitor !== 'val_loss' && monitor !== 'val_acc') throw badInput(`earlyStop.monitor must be val_loss or val_acc; got ${String(monitor)}`);
    const patience = o.earlyStop.patience;
    if (!Number.isInteger(patience) || patience < 1) throw badInput(`earlyStop.patience must be an integer >= 1; got ${patience}`);
    const minDelta = o.earlyStop.minDelta ?? 0;
    if (!(minDelta >= 0)) throw badInput(`earlyStop.minDelta must be >= 0; got ${minDelta}`);
    earlyStop = { patience, minDelta, monitor, restoreBest: o.earlyStop.restoreBest ?? false };
  }
  return {
    optimizer, learningRate, momentum, nesterov: o.nesterov ?? OPTIMIZER_OPTION_DEFAULTS.nesterov, decay, engine,
    batchSize: positiveInt(o.batchSize ?? 100, 'batchSize'),
    epochs: positiveInt(o.epochs ?? 1, 'epochs'),
    seed, shuffle: o.shuffle ?? true,
    validationBatchSize: positiveInt(o.validationBatchSize ?? 500, 'validationBatchSize'),
    progressIntervalMs: Math.max(0, o.progressIntervalMs ?? 250),
    ...(o.validationSplit !== undefined ? { validationSplit: o.validationSplit } : {}),
    ...(o.validationSet !== undefined ? { validationSet: o.validationSet.name } : {}),
    ...(earlyStop ? { earlyStop } : {}),
    ...(o.limitBatches !== undefined ? { limitBatches: positiveInt(o.limitBatches, 'limitBatches') } : {}),
    softTargets: o.targets !== undefined,
    ...(augment && augments(augment) ? { augment } : {}),
  };
}

function makeOptimizer(o: ResolvedTrainOptions): tf.Optimizer {
  switch (o.optimizer) {
    case 'adam': return tf.train.adam(o.learningRate);
    case 'sgd': return tf.train.sgd(o.learningRate);
    case 'momentum': return tf.train.momentum(o.learningRate, o.momentum, o.nesterov);
  }
}

/** tfjs's optimizers read their rate at each update: Keras's decay sets it before the step. */
function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  if (optimizer instanceof tf.SGDOptimizer) optimizer.setLearningRate(lr); // sgd and momentum
  else (optimizer as unknown as { learningRate: number }).learningRate = lr; // adam
}

/**
 * The engine of a training run: an OrtTrainer on ONNX Runtime, or null (tfjs) with the reason. With
 * engine 'onnx' anything that keeps the run on tfjs is an UNSUPPORTED error.
 */
async function trainingEngine(
  model: tf.LayersModel, o: ResolvedTrainOptions, hooks: TrainHooks, lossFn: LossFn, threads: number | undefined, ctx: JobContext,
): Promise<{ trainer: OrtTrainer | null; info: EngineInfo }> {
  let blocker: string | null = null;
  if (hooks.transformBatch) blocker = 'a batch transform (e.g. adversarial examples) trains on tfjs';
  else if (hooks.encode || hooks.forward) blocker = 'an encode or forward hook trains on tfjs';
  else if (!lossFn.spec) blocker = 'a loss without a spec trains on tfjs';
  else if (ctx.shards?.where === 'cluster' && o.engine === 'auto') blocker = "auto: the job's shards go to a cluster, whose workers run tfjs";
  const spec = lossFn.spec;
  return chooseTrainingEngine(o.engine, blocker, async (reason) => {
    // The exporter's verdict before building anything: an unsupported layer falls back (auto) or is refused (onnx).
    const why = trainingBlocker(model, spec!);
    if (why !== null) throw new UnsupportedLayerError(why);
    return OrtTrainer.create(model, o, { loss: spec!, reason, ...(threads ? { threads } : {}) });
  });
}

function splitIndices(n: number, fraction: number, seed: number): { train: Int32Array; val: Int32Array } {
  const nVal = Math.round(n * fraction);
  if (nVal === 0 || nVal === n) throw badInput(`validationSplit ${fraction} of ${n} images leaves ${nVal} for validation and ${n - nVal} for training`);
  const p = permutation(n, mulberry32(deriveSeed(seed, 101)));
  return { val: p.slice(0, nVal).sort(), train: p.slice(nVal).sort() };
}

/**
 * Trains `model` on `trainSet` with mini-batches, our loop (see the module comment). Cancelling the
 * job throws CancelledError whose `partial` is the TrainResult so far (the history and the model as
 * trained so far), so the caller can save it marked cancelled (keepPartial in engine/context.ts).
 */
export async function trainClassifier(
  model: tf.LayersModel, trainSet: ImageSet, options: TrainOptions = {}, hooks: TrainHooks = {}, ctx: JobContext = silentContext,
): Promise<TrainResult> {
  const t0 = performance.now();
  checkSet(trainSet, 'Training set');
  const n = count(trainSet);
  const k = outputUnits(model) ?? trainSet.classNames.length;
  const o = resolveOptions(options, n, k);
  if (hooks.forward && hooks.encode) throw badInput('Give the training hooks forward or encode, not both');
  const fixedInput = !hooks.forward && !hooks.encode;
  if (fixedInput && !hooks.transformBatch) checkInputShape(model, trainSet.shape, trainSet.name);
  checkLabels(trainSet, k, 'Training set');
  if (options.validationSet) {
    checkSet(options.validationSet, 'Validation set');
    checkLabels(options.validationSet, k, 'Validation set');
    if (fixedInput) checkInputShape(model, options.validationSet.shape, options.validationSet.name);
  }

  const encode = hooks.encode;
  const forward = hooks.forward ?? (encode
    ? (x: tf.Tensor4D, training: boolean) => model.apply(encode(x), { training }) as tf.Tensor2D
    : (x: tf.Tensor4D, training: boolean) => model.apply(x, { training }) as tf.Tensor2D);
  const lossFn: LossFn = hooks.loss ?? crossEntropyLossFn;
  const targets = options.targets;

  let trainIdx: Int32Array, valIdx: Int32Array | null = null, valSet: ImageSet | null = null, valTargets: Float32Array | undefined;
  if (o.validationSplit !== undefined && o.validationSplit > 0) {
    const s = splitIndices(n, o.validationSplit, o.seed);
    trainIdx = s.train; valIdx = s.val; valSet = trainSet; valTargets = targets;
  } else {
    trainIdx = allIndices(n);
    if (options.validationSet) { valSet = options.validationSet; valIdx = allIndices(count(valSet)); }
  }

  const bs = o.batchSize;
  const batchesPerEpoch = Math.min(Math.ceil(trainIdx.length / bs), o.limitBatches ?? Infinity);
  const total = o.epochs * batchesPerEpoch;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  if (vars.length === 0) throw badInput('The model has no trainable weights');
  const { trainer: ortTrainer, info: engine } = await trainingEngine(model, o, hooks, lossFn, options.threads, ctx);
  ctx.log(`Training on ${engine.engine}${engine.threads ? ` (${engine.threads} threads)` : ''}: ${engine.reason}`);
  const optimizer = makeOptimizer(o);
  const rng = mulberry32(deriveSeed(o.seed, 202));
  // The dropout masks of ONNX Runtime steps.
  const maskRng = mulberry32(deriveSeed(o.seed, 303));
  // The augmentation's draws (the same on both engines).
  const augment = o.augment ? { options: o.augment, rng: mulberry32(deriveSeed(o.seed, 404)) } : null;
  // Data-parallel over the job's shard executor when it has several workers (models/train-shard.ts).
  const sharded = ortTrainer ? null : shardedTraining(model, lossFn, hooks.forward !== undefined, ctx);

  const history: TrainResult['history'] = { batches: [], epochs: [] };
  let step = 0, epochsRun = 0, images = 0, trainMs = 0;
  let stoppedEarly = false, cancelled = false;
  let best: number | undefined, bestEpoch = 0, wait = 0;
  let snapshot: tf.Tensor[] | null = null;
  let restoredEpoch: number | undefined;
  let lastEmit = -Infinity;
  const disposeSnapshot = () => { snapshot?.forEach((t) => t.dispose()); snapshot = null; };

  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const epochStart = performance.now();
      const order = o.shuffle ? trainIdx.slice() : trainIdx;
      if (o.shuffle) shuffleInPlace(order, rng);
      const phase = `epoch ${epoch}/${o.epochs}`;
      let lossSum = 0, correctSum = 0, seen = 0;

      for (let b = 0; b < batchesPerEpoch; b++) {
        ctx.checkpoint();
        const stepStart = performance.now();
        const idx = order.subarray(b * bs, Math.min((b + 1) * bs, order.length));
        const info: BatchInfo = { phase: 'train', epoch, step: step + 1, index: b, indices: idx, labels: labelsAt(trainSet.labels, idx) };
        if (o.decay > 0 && !ortTrainer) setLearningRate(optimizer, learningRateAt(o, step));
        const { loss, correct, size } = ortTrainer
          ? ortStep(ortTrainer, trainSet, info, k, targets, maskRng, augment)
          : await trainStep(vars, optimizer, forward, lossFn, hooks, trainSet, info, k, targets, sharded && { plan: sharded, model }, augment);
        step++;
        trainMs += performance.now() - stepStart;
        if (!Number.isFinite(loss)) {
          throw new AdvlabError('BAD_INPUT', `Training diverged: loss is ${loss} at epoch ${epoch}, step ${step}; try a smaller learning rate`, { epoch, step });
        }
        images += size; seen += size; lossSum += loss * size; correctSum += correct;
        const row: BatchRow = { step, epoch, batch: b, size, loss, acc: correct / size };
        history.batches.push(row);
        await hooks.onBatch?.(row, info);
        const now = performance.now();
        if (now - lastEmit >= o.progressIntervalMs || b === batchesPerEpoch - 1) {
          lastEmit = now;
          ctx.progress({ step, total, phase, metrics: { loss: lossSum / seen, acc: correctSum / seen } });
        }
        await yieldToEventLoop();
      }

      ortTrainer?.syncToModel(model); // validation, early stopping's snapshot and onEpoch see this epoch's weights
      const row: EpochRow = {
        epoch, loss: lossSum / seen, acc: correctSum / seen, batches: batchesPerEpoch, images: seen, seconds: 0,
      };
      if (valSet && valIdx) {
        const v = await evaluateIndices({ logitsOf: (x) => forward(x, false), loss: lossFn, k }, valSet, valIdx, o.validationBatchSize, ctx,
          { targets: valTargets, epoch });
        row.val_loss = v.loss;
        row.val_acc = v.accuracy;
      }
      row.seconds = (performance.now() - epochStart) / 1000;
      history.epochs.push(row);
      epochsRun = epoch;
      const metrics: Record<string, number> = { loss: row.loss, acc: row.acc };
      if (row.val_loss !== undefined) { metrics.val_loss = row.val_loss; metrics.val_acc = row.val_acc!; }
      ctx.progress({ step, total, phase, metrics });
      ctx.log(`${phase}: ${Object.entries(metrics).map(([key, val]) => `${key} ${val.toFixed(4)}`).join(', ')} (${row.seconds.toFixed(1)} s)`);

      if (o.earlyStop) {
        const es = o.earlyStop;
        const value = es.monitor === 'val_loss' ? row.val_loss! : row.val_acc!;
        const improved = best === undefined || (es.monitor === 'val_loss' ? value < best - es.minDelta : value > best + es.minDelta);
        if (improved) {
          best = value; bestEpoch = epoch; wait = 0;
          if (es.restoreBest) {
            disposeSnapshot();
            snapshot = model.getWeights().map((w) => tf.clone(w));
          }
        } else if (++wait >= es.patience) {
          stoppedEarly = true;
        }
      }
      await hooks.onEpoch?.(row);
      if (stoppedEarly) {
        ctx.log(`Stopped early after epoch ${epoch}: ${o.earlyStop!.monitor} did not improve for ${o.earlyStop!.patience} epoch(s); best ${best!.toFixed(4)} at epoch ${bestEpoch}`);
        break;
      }
    }
    if (snapshot && bestEpoch !== epochsRun) {
      model.setWeights(snapshot);
      restoredEpoch = bestEpoch;
      ctx.log(`Restored the weights of epoch ${bestEpoch}`);
    }
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    cancelled = true;
    ctx.log(`Training cancelled after ${step} step(s)`);
  } finally {
    // The weights trained so far (also when cancelled or failed), unless early stopping restored a snapshot.
    if (ortTrainer && restoredEpoch === undefined) ortTrainer.syncToModel(model);
    ortTrainer?.dispose();
    disposeSnapshot();
    optimizer.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const result: TrainResult = {
    model, history, epochsRun, stepsRun: step, stoppedEarly,
    ...(restoredEpoch !== undefined ? { restoredEpoch } : {}),
    seconds, imagesPerSecond: trainMs > 0 ? images / (trainMs / 1000) : 0, options: o, engine,
  };
  if (cancelled) throw new CancelledError(`Training cancelled after ${step} step(s)`, result);
  return result;
}

/** The augmentation of a run and its seeded stream of draws. */
type BatchAugment = { options: AugmentOptions; rng: () => number } | null;

/** The pixels of a training batch (n x h x w x c), augmented when the run augments. */
function trainingPixels(set: ImageSet, indices: Int32Array, augment: BatchAugment): Float32Array {
  const d = set.shape[0] * set.shape[1] * set.shape[2];
  const x = new Float32Array(indices.length * d);
  for (let i = 0; i < indices.length; i++) x.set(set.images.subarray(indices[i] * d, (indices[i] + 1) * d), i * d);
  if (augment) augmentBatch(x, indices.length, set.shape, augment.options, augment.rng);
  return x;
}

/** One step on ONNX Runtime (see the module comment); returns the batch loss, correct count and size. */
function ortStep(
  trainer: OrtTrainer, set: ImageSet, info: BatchInfo, k: number, targets: Float32Array | undefined, maskRng: () => number,
  augment: BatchAugment,
): { loss: number; correct: number; size: number } {
  const n = info.indices.length;
  const x = trainingPixels(set, info.indices, augment);
  const y = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const j = info.indices[i];
    if (targets) y.set(targets.subarray(j * k, (j + 1) * k), i * k);
    else y[i * k + set.labels[j]] = 1;
  }
  const { loss, logits } = trainer.step(x, y, n, trainer.masks(n, maskRng));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
    if (best === info.labels[i]) correct++;
  }
  return { loss, correct, size: n };
}

/**
 * One optimisation step on one batch; returns the batch loss, correct count and size. With `sharded`
 * the gradient is computed by the job's shard executor (a batch too small to split stays here: its
 * dropout draws are the same either way).
 */
async function trainStep(
  vars: tf.Variable[], optimizer: tf.Optimizer, forward: NonNullable<TrainHooks['forward']>, lossFn: LossFn,
  hooks: TrainHooks, set: ImageSet, info: BatchInfo, k: number, targets: Float32Array | undefined,
  sharded: { plan: ShardedTraining; model: tf.LayersModel } | null, augment: BatchAugment,
): Promise<{ loss: number; correct: number; size: number }> {
  const x = augment ? tf.tensor4d(trainingPixels(set, info.indices, augment), [info.indices.length, ...set.shape]) : gatherImages(set, info.indices);
  const y = gatherTargets(set.labels, info.indices, k, targets);
  let bx: tf.Tensor4D = x, by: tf.Tensor2D = y;
  let preds: tf.Tensor | null = null;
  try {
    // A shardable transform (adversarial training) on a sharded step: each shard transforms its own rows.
    const shardPlan = sharded && !hooks.encode && shardSizes(x.shape[0]).length > 1 ? (hooks.transformBatch as ShardableTransform | undefined)?.shardPlan : undefined;
    const adversarial = shardPlan ? await shardPlan(x, y, info) : undefined;
    if (hooks.transformBatch && !adversarial) {
      const t = await hooks.transformBatch(x, y, info);
      bx = t.x; by = t.y;
    }
    const size = bx.shape[0];
    const sizes = sharded ? shardSizes(size) : [size];
    if (sharded && sizes.length > 1) {
      const labels = size === info.labels.length ? info.labels : null;
      const input = hooks.encode ? tf.tidy(() => hooks.encode!(bx)) : bx;
      try {
        const r = await shardedStep(sharded.plan, sharded.model, vars, optimizer, input, by, labels, info, sizes, adversarial);
        return { ...r, size };
      } finally {
        if (input !== bx) input.dispose();
      }
    }
    const [lossT, correctT] = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const logits = forward(bx, true);
        preds = tf.keep(tf.argMax(logits, -1));
        return lossFn(logits, by, info);
      }, vars);
      optimizer.applyGradients(grads);
      const truth = size === info.labels.length ? tf.tensor1d(info.labels, 'int32') : tf.argMax(by, -1);
      const correct = tf.sum(tf.cast(tf.equal(preds!, truth), 'int32'));
      return [value, correct];
    });
    const [lv, cv] = await Promise.all([lossT.data(), correctT.data()]);
    lossT.dispose(); correctT.dispose();
    return { loss: lv[0], correct: cv[0], size };
  } finally {
    x.dispose(); y.dispose();
    if (bx !== x) bx.dispose();
    if (by !== y) by.dispose();
    (preds as tf.Tensor | null)?.dispose();
  }
}
