/**
 * Training steps of a sequence network (the speech model's Conv1D chain) on ONNX Runtime, for a loss computed in JS
 * (CTC: audio/ctc.ts's ctcLossGradient). A step: the forward graph (export-seq-train.ts) gives the logits and what
 * the backward graph needs; the caller's loss gives its value and d loss / d logits; the backward graph gives every
 * weight gradient; the optimizer (train-optimizer.ts's JsOptimizer, written as tfjs's) updates the weights, held
 * here as Float32Arrays in tfjs's layouts. The tfjs network is the weights' home outside the steps: `syncToModel`
 * writes them back (before validation, at the end, when cancelled), as OrtTrainer does for image classifiers.
 */
import * as tf from '@tensorflow/tfjs';
import type { EngineInfo } from '../models/classifier';
import type { EngineRequest } from './engines';
import { exportSequenceTraining, type SequenceTrainingGraphs } from './export-seq-train';
import { chooseTrainingEngine } from './train-engine';
import { JsOptimizer, type OptimizerSpec } from './train-optimizer';
import { defaultThreads, OrtSession, type OrtData, type OrtType } from './runtime';

/** The loss of a step on the logits [n, T', C]: its value and d value / d logits (same layout). */
export type LogitsLoss = (logits: Float32Array, dims: [number, number, number]) => { loss: number; grad: Float32Array };

export class OrtSequenceTrainer {
  private forward: OrtSession | null;
  private backward: OrtSession | null;
  private readonly optimizer: JsOptimizer;

  private constructor(
    forward: OrtSession,
    backward: OrtSession,
    readonly graphs: SequenceTrainingGraphs,
    /** The trainable weights, in network.trainableWeights order and tfjs layouts. */
    readonly weights: Float32Array[],
    spec: OptimizerSpec,
    readonly engine: EngineInfo,
  ) {
    this.forward = forward;
    this.backward = backward;
    this.optimizer = new JsOptimizer(spec, weights.map((w) => w.length));
  }

  /** Opens the two sessions of `network` (its current weights are the starting point). Throws UnsupportedLayerError. */
  static async create(network: tf.LayersModel, spec: OptimizerSpec, opts: { threads?: number; reason: string }): Promise<OrtSequenceTrainer> {
    const graphs = exportSequenceTraining(network);
    const threads = opts.threads ?? defaultThreads();
    const forward = await OrtSession.create(graphs.forward, threads);
    let backward: OrtSession;
    try {
      backward = await OrtSession.create(graphs.backward, threads);
    } catch (e) {
      forward.dispose();
      throw e;
    }
    const weights = network.trainableWeights.map((w) => {
      const d = w.read().dataSync();
      return d instanceof Float32Array ? d.slice() : Float32Array.from(d as ArrayLike<number>);
    });
    return new OrtSequenceTrainer(forward, backward, graphs, weights, spec, { engine: 'onnx', reason: opts.reason, threads });
  }

  /** Steps taken so far. */
  get iterations(): number {
    return this.optimizer.iterations;
  }

  /** The frame masks of a batch of n padded to T frames whose example b has frameLengths[b] valid frames (see export-seq-train.ts). */
  frameMasks(n: number, T: number, frameLengths: readonly number[]): Float32Array[] {
    return this.graphs.masks.map((s) => {
      const Ts = T / s;
      const m = new Float32Array(n * Ts);
      frameLengths.forEach((len, b) => m.fill(1, b * Ts, b * Ts + Math.min(Ts, Math.ceil(len / s))));
      return m;
    });
  }

  /**
   * The loss and every weight gradient at the current weights, without updating them: features x [n, T, D] (T a
   * multiple of the stride, padding frames zero), each example's valid frames, and the loss on the logits.
   */
  gradients(x: Float32Array, n: number, T: number, frameLengths: readonly number[], loss: LogitsLoss): { loss: number; logits: Float32Array; grads: Float32Array[] } {
    if (!this.forward || !this.backward) throw new Error('ONNX Runtime sequence trainer used after dispose');
    const g = this.graphs;
    if (T % g.stride !== 0) throw new Error(`ONNX Runtime sequence trainer: ${T} frames is not a multiple of the stride ${g.stride}`);
    if (x.length !== n * T * g.featureDim) throw new Error(`ONNX Runtime sequence trainer: ${x.length} feature values for [${n}, ${T}, ${g.featureDim}]`);
    if (frameLengths.length !== n) throw new Error(`ONNX Runtime sequence trainer: ${frameLengths.length} frame lengths for a batch of ${n}`);
    const feeds: Record<string, { type: OrtType; data: OrtData; dims: readonly number[] }> = {};
    this.frameMasks(n, T, frameLengths).forEach((m, j) => { feeds[`fmask${j}`] = { type: 'float32', data: m, dims: [n, 1, T / g.masks[j]] }; });
    g.weights.forEach((v, i) => { feeds[`w${i}`] = { type: 'float32', data: this.weights[i], dims: v.shape }; });
    const saved = g.saved.map((s) => s.name);
    const f = this.forward.runTyped({ ...feeds, x: { type: 'float32', data: x, dims: [n, T, g.featureDim] } }, ['logits', ...saved]);
    const logits = f.logits.data as Float32Array;
    const dims = f.logits.dims as [number, number, number];
    const l = loss(logits, [dims[0], dims[1], dims[2]]);
    const back: typeof feeds = { dlogits: { type: 'float32', data: l.grad, dims } };
    for (const s of g.saved) back[s.name] = { type: s.type, data: f[s.name].data, dims: f[s.name].dims };
    for (const name of g.backwardInputs) back[name] = feeds[name];
    const outs = g.weights.map((_, i) => `g${i}`);
    const r = this.backward.runTyped(back, outs);
    return { loss: l.loss, logits, grads: outs.map((o) => r[o].data as Float32Array) };
  }

  /** The optimizer's update of the weights from gradients (network.trainableWeights order), at learning rate `lr` if given. */
  applyGradients(grads: Float32Array[], lr?: number): void {
    this.optimizer.apply(this.weights, grads, lr);
  }

  /** Writes the current weights into the network's variables. */
  syncToModel(network: tf.LayersModel): void {
    const vars = network.trainableWeights;
    // (A copy: a backend may keep the array it is given, and the optimizer updates these in place.)
    tf.tidy(() => vars.forEach((v, i) => v.write(tf.tensor(this.weights[i].slice(), this.graphs.weights[i].shape))));
  }

  dispose(): void {
    this.forward?.dispose();
    this.backward?.dispose();
    this.forward = null;
    this.backward = null;
  }
}

/**
 * The engine of a sequence network's training run, resolved as image training resolves its own (models/train.ts):
 * 'tfjs' stays on tfjs; 'auto' takes ONNX Runtime when the native library loads and every layer is exported for
 * training, and stays on tfjs when the job's shards go to a cluster (whose workers run tfjs) or it cannot, with the
 * reason; 'onnx' makes anything that keeps the run on tfjs an UNSUPPORTED error.
 */
export async function sequenceTrainingEngine(
  network: tf.LayersModel, request: EngineRequest, spec: OptimizerSpec, where: { threads?: number; shardsTo?: 'pool' | 'cluster' } = {},
): Promise<{ trainer: OrtSequenceTrainer | null; info: EngineInfo }> {
  const blocker = where.shardsTo === 'cluster' && request === 'auto' ? "auto: the job's shards go to a cluster, whose workers run tfjs" : null;
  return chooseTrainingEngine(request, blocker, (reason) => OrtSequenceTrainer.create(network, spec, { reason, ...(where.threads ? { threads: where.threads } : {}) }));
}
