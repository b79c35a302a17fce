/**
 * Synchronous data-parallel training: the 'train-grad' shard and the coordinator's side of it.
 *
 * Each training step the coordinator (trainClassifier, in the job's worker) splits its batch into
 * contiguous shards (shardSizes: by the batch size alone, so results do not depend on the number of
 * workers); every shard computes, on another engine worker, the gradient of the batch loss
 * restricted to its examples (a mean over them) at the current weights; the coordinator averages the
 * gradients weighted by example counts, which is the gradient of the whole batch's mean loss, and
 * applies its own optimizer, so the optimizer's state and the trained model stay where they were.
 * The next step's shards carry the new weights. One step on 2 shards equals the unsharded step up to
 * the order of float summation (within 1e-5 per weight; test/unit/models/train-shard.test.ts).
 *
 * Dropout: the coordinator draws each step's dropout multipliers for the WHOLE batch exactly as the
 * unsharded step would (SeededDropout.nextMultiplier: same seed, same counter) and sends each shard
 * its rows; the worker's model multiplies by them instead of drawing its own. So a sharded run drops
 * the same units as the unsharded run, whatever the number of shards or workers, and its results
 * agree with it within float noise, dropout included.
 *
 * Across steps training amplifies that rounding difference (measured on cw-mnist with adam: about x5
 * per step early on), so a sharded epoch is not the unsharded one bit for bit (the same training,
 * another draw of float noise); a seeded sharded run is bit-identical on every pool of 2 or more.
 *
 * What trains sharded: models whose layers behave per example in training (conv, dense, pooling,
 * our SeededDropout, ...) and losses named by a LossSpec (cross-entropy, distillation). Training
 * runs in the job's worker, as before, with BatchNormalization (its batch statistics would be per
 * shard, a different computation), other random layers (tfjs's Dropout, noise layers: their masks
 * cannot be drawn for the whole batch here), nested models, a `forward` hook (code, not data: the
 * detector's head) or a loss without a spec; it says why in the job's log. An `encode` hook (the
 * thermometer encoding) runs on the coordinator, the network on the shards.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { shardId } from '../shards/digest';
import type { ShardExecutor } from '../shards/types';
import { SeededDropout } from './architectures';
import type { BatchInfo } from './batches';
import { lossFromSpec, type LossFn, type LossSpec } from './losses';

/** One shard of one training step. */
export interface TrainGradTask {
  /** model.toJSON(): the model's topology (layers and their configs, no weights). */
  topology: string;
  /** Values of every weight of the model (model.weights order: trainable and not), as of this step. */
  weights: Float32Array[];
  /** The shard's inputs [count, ...inputShape] (images, or their encoding) and targets [count, k] (one-hot or soft). */
  x: Float32Array;
  inputShape: number[];
  y: Float32Array;
  count: number;
  /** Their true labels for the accuracy count; absent: argmax of y (a transform changed the batch). */
  labels?: Int32Array;
  /** For each dropout layer in model order, its multiplier for the shard's rows [count, ...units]. */
  masks: Float32Array[];
  loss: LossSpec;
  /** The step (1-based global) and epoch the shard belongs to, for the loss's BatchInfo and logs. */
  epoch: number;
  step: number;
  /**
   * Adversarial training (engine/defenses/advtrain-core.ts): the shard's first `rows` examples are
   * replaced by their PGD examples, computed here with the step's weights (inference mode) before the
   * gradient; `start` holds those rows' random start points (drawn by the coordinator for the whole
   * batch), null to start at the images.
   */
  adversarial?: { eps: number; stepSize: number; steps: number; rows: number; start: Float32Array | null };
}

/**
 * What a shardable transformBatch hook gives the coordinator instead of the transformed batch: the
 * PGD budget of the step, how many leading rows of the batch are made adversarial, and their random
 * start points (rows x image values) or null.
 */
export interface AdversarialShardPlan {
  eps: number;
  stepSize: number;
  steps: number;
  rows: number;
  start: Float32Array | null;
}

/** A transformed batch (TrainHooks' Batch, engine/models/train.ts). */
interface TransformedBatch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
}

/**
 * The inner PGD of adversarial training (engine/defenses/advtrain-pgd.ts pgdFromStart), given to the
 * handler by the shard registry (engine/shards/handlers.ts): the models layer does not import attacks
 * or defenses.
 */
export type TrainingPgd = (
  logitsOf: (x: tf.Tensor4D) => tf.Tensor2D, x: tf.Tensor4D, start: tf.Tensor4D, y: tf.Tensor2D, o: { eps: number; stepSize: number; steps: number },
) => tf.Tensor4D;

/** A transformBatch hook that can also describe its work so that each shard does its own rows (adversarial training). */
export type ShardableTransform = ((x: tf.Tensor4D, y: tf.Tensor2D, batch: BatchInfo) => TransformedBatch | Promise<TransformedBatch>) & {
  shardPlan?: (x: tf.Tensor4D, y: tf.Tensor2D, batch: BatchInfo) => Promise<AdversarialShardPlan>;
};

export interface TrainGradResult {
  /** Gradient of the shard's mean loss for every trainable weight (model.trainableWeights order). */
  grads: Float32Array[];
  /** The shard's mean loss, correct predictions and example count. */
  loss: number;
  correct: number;
  count: number;
}

declare module '../shards/types' {
  interface ShardTypes {
    'train-grad': { task: TrainGradTask; result: TrainGradResult };
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------------------------

/**
 * The worker's stand-in for a dropout layer: in training it multiplies by the multiplier the
 * coordinator drew (tf.dropout's last op, so the values are the unsharded step's); at inference the
 * identity. Registered under its own class name; the worker renames "Dropout" in the topology to it.
 */
class GivenMaskDropout extends tf.layers.Layer {
  static className = 'AdvlabGivenMaskDropout';
  multiplier: tf.Tensor | null = null;
  private readonly rate: number;
  constructor(config: tf.serialization.ConfigDict) {
    super(config as object);
    this.rate = Number(config['rate'] ?? 0);
  }
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs['training'] || this.rate === 0) return x;
    if (!this.multiplier) throw new Error(`Dropout layer ${this.name}: no multiplier for this training step`);
    return tf.mul(x, this.multiplier);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}
tf.serialization.registerClass(GivenMaskDropout);

interface WorkerModel {
  model: tf.LayersModel;
  drops: GivenMaskDropout[];
}

/** Built models by topology hash; the last two are kept (e.g. a recipe's teacher and student). */
const built = new Map<string, Promise<WorkerModel>>();
const MAX_BUILT = 2;

function renameDropout(node: unknown): void {
  if (Array.isArray(node)) { node.forEach(renameDropout); return; }
  if (node === null || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if (o['class_name'] === 'Dropout') o['class_name'] = GivenMaskDropout.className;
  for (const v of Object.values(o)) renameDropout(v);
}

async function buildWorkerModel(topology: string): Promise<WorkerModel> {
  const parsed = JSON.parse(topology) as tf.io.ModelJSON['modelTopology'];
  renameDropout(parsed);
  const model = await tf.models.modelFromJSON({ modelTopology: parsed });
  return { model, drops: model.layers.filter((l): l is GivenMaskDropout => l instanceof GivenMaskDropout) };
}

/** The model for a topology: built once per worker, reused while its topology is among the last MAX_BUILT. */
async function workerModel(topology: string): Promise<WorkerModel> {
  const key = createHash('sha256').update(topology).digest('hex');
  let entry = built.get(key);
  if (entry) {
    built.delete(key); // re-insert: most recently used last
  } else {
    entry = buildWorkerModel(topology);
    entry.catch(() => built.delete(key));
  }
  built.set(key, entry);
  while (built.size > MAX_BUILT) {
    const [oldKey, old] = built.entries().next().value as [string, Promise<WorkerModel>];
    built.delete(oldKey);
    old.then((m) => m.model.dispose(), () => {});
  }
  return entry;
}

/** Disposes the models this worker built for training shards (tests; a worker that shuts down). */
export async function clearTrainShardModels(): Promise<void> {
  const all = [...built.values()];
  built.clear();
  for (const p of all) {
    try { (await p).model.dispose(); } catch { /* a failed build holds nothing */ }
  }
}

/**
 * The 'train-grad' handler: the gradient of the loss on the shard's examples at the given weights
 * (after making its adversarial rows with `pgd`, when the task has them).
 */
export async function trainGradShard(task: TrainGradTask, ctx: JobContext, pgd?: TrainingPgd): Promise<TrainGradResult> {
  ctx.checkpoint();
  const { model, drops } = await workerModel(task.topology);
  const n = task.count;
  const weights = model.weights;
  if (task.weights.length !== weights.length) throw badInput(`train-grad: ${task.weights.length} weight arrays for a model with ${weights.length} weights`);
  if (task.masks.length !== drops.length) throw badInput(`train-grad: ${task.masks.length} dropout masks for a model with ${drops.length} dropout layers`);
  const k = n > 0 ? task.y.length / n : 0;
  tf.tidy(() => {
    weights.forEach((w, i) => {
      const values = task.weights[i];
      if (values.length !== (w.shape as number[]).reduce((a, b) => a * b, 1)) throw badInput(`train-grad: weight ${w.name} has ${values.length} values for shape [${w.shape.join(', ')}]`);
      w.write(tf.tensor(values, w.shape as number[]));
    });
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const lossFn: LossFn = lossFromSpec(task.loss);
  const info: BatchInfo = { phase: 'train', epoch: task.epoch, step: task.step, index: 0, indices: new Int32Array(0), labels: task.labels ?? new Int32Array(0) };
  // From setting the weights to the gradients everything is synchronous, so shards sharing this cached
  // model in one thread cannot interleave; only reading the results back waits.
  if (task.adversarial && task.adversarial.rows > 0 && !pgd) throw badInput('train-grad: this worker was given no PGD for adversarial rows');
  const xAdv = task.adversarial && task.adversarial.rows > 0 ? adversarialRows(model, task, n, k, pgd!) : null;
  const [lossT, correctT, grads] = tf.tidy(() => {
    const x = xAdv ?? tf.tensor(task.x, [n, ...task.inputShape]);
    const y = tf.tensor2d(task.y, [n, k]);
    drops.forEach((d, i) => { d.multiplier = tf.tensor(task.masks[i], [n, ...unitShape(d)]); });
    let preds: tf.Tensor | null = null;
    try {
      const { value, grads } = tf.variableGrads(() => {
        const logits = model.apply(x, { training: true }) as tf.Tensor2D;
        preds = tf.keep(tf.argMax(logits, -1));
        return lossFn(logits, y, info);
      }, vars);
      const truth = task.labels ? tf.tensor1d(task.labels, 'int32') : tf.argMax(y, -1);
      const correct = tf.sum(tf.cast(tf.equal(preds!, truth), 'int32'));
      return [value, correct, vars.map((v) => grads[v.name])] as const;
    } finally {
      drops.forEach((d) => { d.multiplier = null; }); // the tidy disposes them
      (preds as tf.Tensor | null)?.dispose(); // kept through variableGrads's own tidy
      xAdv?.dispose(); // made before the tidy
    }
  });
  try {
    const [lv, cv, ...gv] = await Promise.all([lossT.data(), correctT.data(), ...grads.map((g) => g.data())]);
    ctx.progress({ step: 1, total: 1 });
    return { grads: gv.map((g) => owned(g as Float32Array)), loss: lv[0], correct: cv[0], count: n };
  } finally {
    lossT.dispose(); correctT.dispose(); grads.forEach((g) => g.dispose());
  }
}

/**
 * The shard's inputs with its first `adversarial.rows` rows replaced by their PGD examples (the model
 * at the step's weights, inference mode: dropout off), as adversarialBatches does for the whole batch.
 */
function adversarialRows(model: tf.LayersModel, task: TrainGradTask, n: number, k: number, pgdFromStart: TrainingPgd): tf.Tensor {
  const a = task.adversarial!;
  if (!Number.isInteger(a.rows) || a.rows > n) throw badInput(`train-grad: ${a.rows} adversarial rows in a shard of ${n}`);
  const shape: number[] = [a.rows, ...task.inputShape];
  const per = task.inputShape.reduce((p, q) => p * q, 1);
  if (a.start && a.start.length !== a.rows * per) throw badInput(`train-grad: the random start has ${a.start.length} values for ${a.rows} rows of ${per}`);
  const x = tf.tensor(task.x, [n, ...task.inputShape]);
  const xr = tf.slice(x, 0, a.rows) as tf.Tensor4D;
  const yr = tf.tensor2d(task.y.subarray(0, a.rows * k), [a.rows, k]);
  const start = a.start ? tf.tensor4d(a.start, shape as [number, number, number, number]) : tf.clone(xr);
  const logitsOf = (z: tf.Tensor4D) => model.apply(z, { training: false }) as tf.Tensor2D;
  const adv = pgdFromStart(logitsOf, xr, start, yr, a);
  try {
    return a.rows === n ? tf.clone(adv) : tf.tidy(() => tf.concat([adv, tf.slice(x, a.rows)], 0));
  } finally {
    x.dispose(); xr.dispose(); yr.dispose(); adv.dispose();
  }
}

/** The per-example shape a dropout layer sees (its output's, without the batch dimension). */
function unitShape(layer: tf.layers.Layer): number[] {
  return (layer.outputShape as (number | null)[]).slice(1).map(Number);
}

/** A typed array that owns its whole buffer (structured clone copies a view's entire buffer). */
function owned(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}

// ---------------------------------------------------------------------------------------------
// Coordinator side
// ---------------------------------------------------------------------------------------------

/** Examples per shard at least: smaller shards cost more per example on wasm than they save. */
export const MIN_SHARD_EXAMPLES = 32;
/** Shards per step at most (workers beyond that serve other jobs' shards). */
export const MAX_SHARDS_PER_STEP = 4;

/**
 * Contiguous shard sizes for a batch: 1, 2 or 4 near-equal shards (the most that keeps each at least
 * MIN_SHARD_EXAMPLES, at most MAX_SHARDS_PER_STEP), the first (size mod shards) one example larger.
 * The split depends on the batch size only, never on the number of workers: each shard's computation
 * and the order the gradients are summed are then the same whoever runs them, so a seeded training is
 * bit-identical on any pool or cluster of 2 or more workers. (With 1 worker the job trains unsharded,
 * today's computation: equal within float noise.) Powers of two keep 2 and 4 workers evenly loaded.
 */
export function shardSizes(size: number): number[] {
  let s = 1;
  while (s * 2 <= MAX_SHARDS_PER_STEP && size >= s * 2 * MIN_SHARD_EXAMPLES) s *= 2;
  const base = Math.floor(size / s), extra = size % s;
  return Array.from({ length: s }, (_, i) => base + (i < extra ? 1 : 0));
}

const RANDOM_OR_BATCH_LAYERS = /Dropout|Noise|BatchNormalization/;

/** Why `model` with this loss and forward hook cannot train sharded, or null when it can. */
export function unshardableReason(model: tf.LayersModel, loss: LossFn, hasForwardHook: boolean): string | null {
  if (hasForwardHook) return 'the training uses a forward hook (code that cannot be sent to another worker)';
  if (!loss.spec) return 'its loss is not one a worker can rebuild (cross-entropy or distillation)';
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) return `layer ${layer.name} is a nested model`;
    if (layer instanceof SeededDropout) continue;
    const cls = layer.getClassName();
    if (RANDOM_OR_BATCH_LAYERS.test(cls)) {
      return cls === 'BatchNormalization'
        ? `layer ${layer.name} is BatchNormalization (per-shard batch statistics would differ from the batch's)`
        : `layer ${layer.name} (${cls}) draws randomness the coordinator cannot draw for the whole batch`;
    }
  }
  return null;
}

/** What a sharded trainer keeps across steps. */
export interface ShardedTraining {
  executor: ShardExecutor;
  topology: string;
  drops: SeededDropout[];
  loss: LossSpec;
}

/** The sharded trainer for `model`, or null (with the reason logged) when it trains here. */
export function shardedTraining(model: tf.LayersModel, loss: LossFn, hasForwardHook: boolean, ctx: JobContext): ShardedTraining | null {
  const executor = ctx.shards;
  if (!executor || executor.parallelism < 2) return null;
  const why = unshardableReason(model, loss, hasForwardHook);
  if (why) {
    ctx.log(`Training runs in this worker, not on the ${executor.where}: ${why}`);
    return null;
  }
  ctx.log(`Training data-parallel on the ${executor.where} (${executor.parallelism} workers): batches of ${2 * MIN_SHARD_EXAMPLES} or more in up to ${MAX_SHARDS_PER_STEP} shards, gradients averaged`);
  return {
    executor,
    topology: model.toJSON(null, true) as string,
    drops: model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout),
    loss: loss.spec!,
  };
}

/**
 * One sharded step on a batch already built (and transformed): sends the shards, averages their
 * gradients weighted by examples and applies `optimizer` to `vars`. Returns the batch's mean loss and
 * correct count. A cancel while the shards run rejects with CancelledError before anything is
 * applied: the model stays as the previous step left it.
 */
export async function shardedStep(
  plan: ShardedTraining, model: tf.LayersModel, vars: tf.Variable[], optimizer: tf.Optimizer,
  bx: tf.Tensor, by: tf.Tensor2D, labels: Int32Array | null, info: BatchInfo, sizes: number[], adversarial?: AdversarialShardPlan,
): Promise<{ loss: number; correct: number }> {
  const size = bx.shape[0];
  const inputShape: number[] = bx.shape.slice(1);
  const d = inputShape.reduce((a, b) => a * b, 1);
  const k = by.shape[1];
  const [xv, yv] = (await Promise.all([bx.data(), by.data()])) as Float32Array[];
  // The whole batch's dropout multipliers, drawn as the unsharded step's forward pass would draw them.
  const masks = plan.drops.map((layer) => {
    const units = unitShape(layer);
    const m = layer.nextMultiplier([size, ...units]);
    try { return { values: m.dataSync() as Float32Array, per: units.reduce((a, b) => a * b, 1) }; } finally { m.dispose(); }
  });
  const weights = model.weights.map((w) => w.read().dataSync() as Float32Array);
  let from = 0;
  // Every typed array of a task is its own (no buffer shared between shards, none kept here): an
  // executor may transfer a task's buffers to the worker that runs it.
  const shards = sizes.map((n, i) => {
    const to = from + n;
    const task: TrainGradTask = {
      topology: plan.topology, weights: weights.map((w) => w.slice()),
      x: xv.slice(from * d, to * d), inputShape, y: yv.slice(from * k, to * k), count: n,
      ...(labels ? { labels: labels.slice(from, to) } : {}),
      masks: masks.map((m) => m.values.slice(from * m.per, to * m.per)),
      loss: plan.loss, epoch: info.epoch, step: info.step,
      ...(adversarial ? { adversarial: advSlice(adversarial, from, to, d) } : {}),
    };
    from = to;
    const { x, y, labels: l, masks: m, weights: w, adversarial: adv, ...json } = task;
    const id = shardId(`train-grad/step${info.step}`, i, { ...json, ...(adv ? { adversarial: { ...adv, start: null } } : {}) }, [x, y, ...(l ? [l] : []), ...m, ...w, ...(adv?.start ? [adv.start] : [])]);
    return { type: 'train-grad' as const, id, task };
  });
  const results = await plan.executor.run(shards);
  let loss = 0, correct = 0;
  for (const r of results) { loss += (r.loss * r.count) / size; correct += r.correct; }
  // Example-weighted mean of the shards' gradients (in float64, rounded once).
  const named: tf.NamedTensorMap = {};
  tf.tidy(() => {
    vars.forEach((v, j) => {
      const acc = new Float64Array(results[0].grads[j].length);
      for (const r of results) {
        const g = r.grads[j], w = r.count / size;
        if (g.length !== acc.length) throw new Error(`train-grad: gradient ${j} has ${g.length} values, expected ${acc.length}`);
        for (let e = 0; e < acc.length; e++) acc[e] += g[e] * w;
      }
      named[v.name] = tf.tensor(Float32Array.from(acc), v.shape);
    });
    optimizer.applyGradients(named);
  });
  return { loss, correct };
}

/** The part of a batch's adversarial plan for rows [from, to): how many of them are adversarial, and their start points (a copy). */
function advSlice(a: AdversarialShardPlan, from: number, to: number, per: number): NonNullable<TrainGradTask['adversarial']> {
  const rows = Math.max(0, Math.min(a.rows, to) - from);
  return { eps: a.eps, stepSize: a.stepSize, steps: a.steps, rows, start: a.start && rows > 0 ? a.start.slice(from * per, (from + rows) * per) : null };
}
