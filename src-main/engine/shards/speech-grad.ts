/**
 * Synchronous data-parallel training of the speech model (engine/audio/train.ts), as 'train-grad'
 * shards do for image classifiers (engine/models/train-shard.ts): each step the coordinator computes
 * the batch's features (one padded [B, F, D] tensor, as the unsharded step does), splits the batch's
 * utterances into contiguous shards (speechShardSizes: by the batch size alone, never by the number of
 * workers), and each 'speech-grad' shard computes, at the step's weights, the gradient of the mean CTC
 * loss over its utterances. Every utterance keeps the batch's padding and its own frame mask, so its
 * loss is the one the whole batch computes for it; the coordinator's example-weighted mean of the
 * shards' gradients is the whole batch's gradient (up to float summation order), which it clips by
 * global norm and applies with its own Adam, as before. The speech network has only Conv1D layers (no
 * dropout, no batch statistics), so nothing random or batch-wide has to be drawn for the shards.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { ctcLoss } from '../audio/ctc';
import { Alphabet } from '../audio/decode';
import type { FrontendConfig } from '../audio/frontend';
import { SpeechModel } from '../audio/model';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { shardId } from './digest';
import type { ShardExecutor } from './types';

export interface SpeechGradTask {
  /** network.toJSON(): the speech network's topology. */
  topology: string;
  frontend: FrontendConfig;
  alphabet: string[];
  arch: string;
  /** Every weight of the network (network.weights order) as of this step. */
  weights: Float32Array[];
  /** The shard's features [count, frames, dim] (the batch's padding) and each utterance's frames, output lengths and labels. */
  features: Float32Array;
  frames: number;
  dim: number;
  frameLengths: number[];
  outputLengths: number[];
  labels: number[][];
  step: number;
}

export interface SpeechGradResult {
  /** Gradient of the shard's mean CTC loss for every trainable weight (network.trainableWeights order). */
  grads: Float32Array[];
  loss: number;
  count: number;
}

declare module './types' {
  interface ShardTypes {
    'speech-grad': { task: SpeechGradTask; result: SpeechGradResult };
  }
}

let built: { key: string; model: SpeechModel } | null = null;

async function workerModel(task: SpeechGradTask): Promise<SpeechModel> {
  const key = createHash('sha256').update(JSON.stringify([task.topology, task.frontend, task.alphabet, task.arch])).digest('hex');
  if (built?.key !== key) {
    const network = await tf.models.modelFromJSON({ modelTopology: JSON.parse(task.topology) as tf.io.ModelJSON['modelTopology'] });
    const model = new SpeechModel(network, task.frontend, new Alphabet(task.alphabet), task.arch);
    const old = built;
    built = { key, model };
    old?.model.dispose();
  }
  return built!.model;
}

/** Disposes the speech network a worker built for these shards (tests; a worker that shuts down). */
export function clearSpeechGradModel(): void {
  built?.model.dispose();
  built = null;
}

/** The 'speech-grad' handler. */
export async function runSpeechGrad(task: SpeechGradTask, ctx: JobContext): Promise<SpeechGradResult> {
  ctx.checkpoint();
  const net = await workerModel(task);
  const n = task.labels.length;
  const weights = net.network.weights;
  if (task.weights.length !== weights.length) throw badInput(`speech-grad: ${task.weights.length} weight arrays for a network with ${weights.length} weights`);
  if (task.features.length !== n * task.frames * task.dim) throw badInput(`speech-grad: ${task.features.length} feature values for [${n}, ${task.frames}, ${task.dim}]`);
  tf.tidy(() => weights.forEach((w, i) => w.write(tf.tensor(task.weights[i], w.shape as number[]))));
  const vars = net.network.trainableWeights.map((w) => w.read() as tf.Variable);
  // Synchronous from writing the weights to the gradients: shards sharing this cached network cannot interleave.
  const { value, grads } = tf.tidy(() => {
    const feats = tf.tensor3d(task.features, [n, task.frames, task.dim]);
    return tf.variableGrads(() => ctcLoss(net.logitsFromFeatures(feats, task.frameLengths, true), task.labels, { inputLengths: task.outputLengths, reduction: 'mean' }) as tf.Scalar, vars);
  });
  const ordered = vars.map((v) => grads[v.name]);
  try {
    const [lv, ...gv] = await Promise.all([value.data(), ...ordered.map((g) => g.data())]);
    ctx.progress({ step: 1, total: 1 });
    return { grads: gv.map((g) => Float32Array.from(g as Float32Array)), loss: lv[0], count: n };
  } finally {
    value.dispose();
    ordered.forEach((g) => g.dispose());
  }
}

/** Utterances per shard at least: fewer cost more per utterance on wasm than they save. */
export const MIN_SPEECH_SHARD = 8;

/** 1, 2 or 4 near-equal contiguous shards of at least MIN_SPEECH_SHARD utterances (the batch size alone decides). */
export function speechShardSizes(size: number): number[] {
  let s = 1;
  while (s * 2 <= 4 && size >= s * 2 * MIN_SPEECH_SHARD) s *= 2;
  const base = Math.floor(size / s), extra = size % s;
  return Array.from({ length: s }, (_, i) => base + (i < extra ? 1 : 0));
}

/** The executor speech training shards on, or null (no executor, or one worker: the step runs here, as before). */
export function speechShardExecutor(ctx: JobContext): ShardExecutor | null {
  const executor = ctx.shards;
  return executor && executor.parallelism >= 2 ? executor : null;
}

/**
 * One step's gradient from shards: the CTC loss's mean over the batch and the example-weighted mean of
 * the shards' gradients as tensors named by the trainable variables (the caller clips and applies them
 * and disposes both). A cancel while the shards run rejects before anything is applied.
 */
export async function shardedSpeechGrads(
  executor: ShardExecutor, net: SpeechModel, feats: tf.Tensor3D, frameLengths: number[], outputLengths: number[], labels: number[][], step: number, sizes: number[],
): Promise<{ cost: tf.Scalar; grads: tf.NamedTensorMap }> {
  const [B, F, D] = feats.shape;
  const fv = (await feats.data()) as Float32Array;
  const weights = net.network.weights.map((w) => w.read().dataSync() as Float32Array);
  const topology = net.network.toJSON(null, true) as string;
  const common = { topology, frontend: { ...net.frontend.config }, alphabet: [...net.alphabet.symbols], arch: net.arch, frames: F, dim: D, step };
  let from = 0;
  const shards = sizes.map((count, i) => {
    const to = from + count;
    const task: SpeechGradTask = {
      ...common, weights: weights.map((w) => w.slice()), features: fv.slice(from * F * D, to * F * D),
      frameLengths: frameLengths.slice(from, to), outputLengths: outputLengths.slice(from, to), labels: labels.slice(from, to),
    };
    from = to;
    const { weights: w, features: f, ...json } = task;
    return { type: 'speech-grad' as const, id: shardId(`speech-grad/step${step}`, i, json, [f, ...w]), task };
  });
  const results = await executor.run(shards);
  const vars = net.network.trainableWeights.map((w) => w.read() as tf.Variable);
  let loss = 0;
  const grads: tf.NamedTensorMap = {};
  vars.forEach((v, j) => {
    const acc = new Float64Array(results[0].grads[j].length);
    for (const r of results) {
      const g = r.grads[j], w = r.count / B;
      if (g.length !== acc.length) throw new Error(`speech-grad: gradient ${j} has ${g.length} values, expected ${acc.length}`);
      for (let e = 0; e < acc.length; e++) acc[e] += g[e] * w;
    }
    grads[v.name] = tf.tensor(Float32Array.from(acc), v.shape);
  });
  for (const r of results) loss += (r.loss * r.count) / B;
  return { cost: tf.scalar(loss), grads };
}
