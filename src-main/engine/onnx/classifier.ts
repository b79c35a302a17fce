/**
 * A Classifier whose logits and input gradients come from ONNX Runtime (the exported graphs of a tfjs
 * LayersModel), with tfjs as the reference they are tested against.
 *
 * Six sessions on the same weights:
 * - forward: x -> logits, for logits outside any gradient;
 * - vjp: x, v -> logits, grad (`vjp`: one run when v is known beforehand);
 * - forwardSaved + backward: the vjp graph cut at the end of the forward pass (`linearize`): the first run
 *   returns the logits and what the backward pass reads (ReLU masks as bytes, max-pool indices), the second
 *   takes v and those and returns grad. An attack's step (logits, then its loss gradient with respect to
 *   the logits, then the input gradient) thus runs the network forward once, not twice;
 * - one per attack loss (export.ts's LossKind): x and the loss's classes and weights -> logits, loss values and
 *   the input gradient (`lossGradient`), one run per attack step with nothing but x, the logits, the values
 *   and grad crossing between ONNX Runtime and JS. At batch 100 on cw-mnist this is the fastest route by far
 *   (see BENCHMARKS.md): the split graphs' saved tensors cost more to move than the forward pass they save.
 *
 * `logits` is a tf.customGrad op. Under a gradient tape (tf.grad / tf.valueAndGrad: C&W's chain rule through
 * tanh, loss surfaces) it runs forwardSaved and its gradient is the backward graph on the saved tensors;
 * outside one it runs the plain forward graph. Any tfjs autodiff through it therefore gets ONNX Runtime's
 * backward pass without knowing it.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier, EngineInfo, Linearized, LogitLoss, LossGradient } from '../models/classifier';
import { exportModel, LOSS_KINDS, type ExportedGraphs, type ExportedModel, type LossKind } from './export';
import { exportSequenceModel, type ExportedSequenceModel } from './export-seq';
import { defaultThreads, OrtSession, type OrtData, type OrtType } from './runtime';

export interface OnnxClassifierOptions {
  /** ONNX Runtime intra-op threads. Default: every core. */
  threads?: number;
  /** Why this engine was chosen (recorded in EngineInfo). */
  reason?: string;
}

export interface OnnxClassifier extends Classifier {
  readonly engine: EngineInfo;
  readonly exported: ExportedModel;
  vjp(x: tf.Tensor4D, v: tf.Tensor2D): tf.Tensor4D;
  linearize(x: tf.Tensor4D): Linearized;
  lossGradient(x: tf.Tensor4D, loss: LogitLoss): LossGradient;
  dispose(): void;
}

function data(t: tf.Tensor): Float32Array {
  const d = t.dataSync();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Whether tfjs is recording a gradient tape (inside tf.grad / tf.valueAndGrad / tf.variableGrads). */
function taping(): boolean {
  return ((tf.engine().state as unknown as { gradientDepth?: number }).gradientDepth ?? 0) > 0;
}

/** A network on ONNX Runtime, any input rank: what onnxClassifier and onnxSequenceNetwork are built on. */
export interface OnnxNetwork {
  /** Differentiable (tf.customGrad; see the module comment). */
  apply(x: tf.Tensor): tf.Tensor;
  vjp(x: tf.Tensor, v: tf.Tensor): tf.Tensor;
  linearize(x: tf.Tensor): { logits: tf.Tensor; vjp(v: tf.Tensor): tf.Tensor };
  dispose(): void;
}

/** Opens a network's four sessions. */
export async function openNetwork(graphs: ExportedGraphs, threads: number): Promise<OnnxNetwork> {
  const sessions: OrtSession[] = [];
  try {
    for (const bytes of [graphs.forward, graphs.vjp, graphs.forwardSaved, graphs.backward]) sessions.push(await OrtSession.create(bytes, threads));
  } catch (e) {
    for (const s of sessions) s.dispose();
    throw e;
  }
  const [forward, full, forwardSaved, backward] = sessions;
  const savedOut = graphs.saved.filter((s) => s.name !== 'x').map((s) => s.name);

  const vjpRaw = (x: tf.Tensor, v: tf.Tensor): tf.Tensor => {
    const r = full.run({ x: { data: data(x), dims: x.shape }, v: { data: data(v), dims: v.shape } }, ['grad']);
    return tf.tensor(r.grad, x.shape);
  };

  const linearizeRaw = (x: tf.Tensor) => {
    const xd = data(x);
    const r = forwardSaved.runTyped({ x: { type: 'float32', data: xd, dims: x.shape } }, ['logits', ...savedOut]);
    const feeds: Record<string, { type: OrtType; data: OrtData; dims: readonly number[] }> = {};
    for (const s of graphs.saved) feeds[s.name] = s.name === 'x' ? { type: 'float32', data: xd, dims: x.shape } : { type: s.type, ...r[s.name] };
    return {
      logits: tf.tensor(r.logits.data as Float32Array, [...r.logits.dims]),
      vjp: (v: tf.Tensor) => {
        const g = backward.runTyped({ ...feeds, v: { type: 'float32', data: data(v), dims: v.shape } }, ['grad']);
        return tf.tensor(g.grad.data as Float32Array, x.shape);
      },
    };
  };

  const apply = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    if (taping()) {
      const lin = linearizeRaw(x);
      return { value: lin.logits, gradFunc: (dy: tf.Tensor | tf.Tensor[]) => lin.vjp(dy as tf.Tensor) };
    }
    save([x]);
    const r = forward.runTyped({ x: { type: 'float32', data: data(x), dims: x.shape } }, ['logits']);
    return { value: tf.tensor(r.logits.data as Float32Array, [...r.logits.dims]), gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => vjpRaw(saved[0], dy as tf.Tensor) };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

  return {
    apply,
    vjp: vjpRaw,
    linearize: linearizeRaw,
    dispose: () => {
      for (const s of sessions) s.dispose();
    },
  };
}

/** Exports the model (cached per sha256) and opens its sessions. Throws UnsupportedLayerError. */
export async function onnxClassifier(model: tf.LayersModel, options: OnnxClassifierOptions = {}): Promise<OnnxClassifier> {
  const exported = exportModel(model);
  const threads = options.threads ?? defaultThreads();
  const [h, w, c] = exported.inputShape;
  const k = exported.numClasses;
  const net = await openNetwork(exported, threads);
  const lossSessions = new Map<LossKind, OrtSession>();
  try {
    for (const kind of LOSS_KINDS) lossSessions.set(kind, await OrtSession.create(exported.losses[kind], threads));
  } catch (e) {
    for (const s of lossSessions.values()) s.dispose();
    net.dispose();
    throw e;
  }
  const lossGradient = (x: tf.Tensor4D, loss: LogitLoss): LossGradient => {
    const n = x.shape[0];
    if (loss.classes.length !== n || loss.weights.length !== n) throw new Error(`lossGradient: ${loss.classes.length} classes and ${loss.weights.length} weights for ${n} inputs`);
    if (n === 0) return { logits: tf.zeros([0, k]) as tf.Tensor2D, values: tf.zeros([0]) as tf.Tensor1D, grad: tf.zeros([0, h, w, c]) as tf.Tensor4D };
    const onehot = new Float32Array(n * k);
    for (let i = 0; i < n; i++) onehot[i * k + loss.classes[i]] = 1;
    const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {
      x: { data: data(x), dims: x.shape },
      onehot: { data: onehot, dims: [n, k] },
      w: { data: loss.weights, dims: [n] },
    };
    if (loss.kind === 'margin') {
      feeds.sgn = { data: Float32Array.of(loss.toward ? 1 : -1), dims: [1] };
      feeds.kappa = { data: Float32Array.of(loss.kappa), dims: [1] };
    } else feeds.dir = { data: Float32Array.of(loss.direction ? 1 : 0), dims: [1] };
    const r = (lossSessions.get(loss.kind) as OrtSession).run(feeds, ['logits', 'values', 'grad']);
    return { logits: tf.tensor2d(r.logits, [n, k]), values: tf.tensor1d(r.values), grad: tf.tensor4d(r.grad, x.shape) };
  };
  return {
    inputShape: [h, w, c],
    numClasses: k,
    engine: { engine: 'onnx', reason: options.reason ?? 'requested', threads },
    exported,
    logits: (x) => {
      if (x.shape[0] === 0) return tf.zeros([0, k]) as tf.Tensor2D;
      return net.apply(x) as tf.Tensor2D;
    },
    vjp: (x, v) => {
      if (x.shape[0] === 0) return tf.zeros([0, h, w, c]) as tf.Tensor4D;
      return net.vjp(x, v) as tf.Tensor4D;
    },
    linearize: (x) => {
      if (x.shape[0] === 0) return { logits: tf.zeros([0, k]) as tf.Tensor2D, vjp: () => tf.zeros([0, h, w, c]) as tf.Tensor4D };
      return net.linearize(x) as Linearized;
    },
    lossGradient,
    dispose: () => {
      for (const s of lossSessions.values()) s.dispose();
      net.dispose();
    },
  };
}

/** A sequence network (features [N, T, D] -> logits [N, T / stride, C]) on ONNX Runtime: see export-seq.ts. */
export interface OnnxSequenceNetwork {
  readonly exported: ExportedSequenceModel;
  readonly engine: EngineInfo;
  /** Logits of features whose frame count is a multiple of `exported.stride`; differentiable. */
  apply(x: tf.Tensor3D): tf.Tensor3D;
  dispose(): void;
}

export async function onnxSequenceNetwork(model: tf.LayersModel, options: OnnxClassifierOptions = {}): Promise<OnnxSequenceNetwork> {
  const exported = exportSequenceModel(model);
  const threads = options.threads ?? defaultThreads();
  const net = await openNetwork(exported, threads);
  return {
    exported,
    engine: { engine: 'onnx', reason: options.reason ?? 'requested', threads },
    apply: (x) => {
      if (x.shape[1] % exported.stride !== 0) throw new Error(`ONNX sequence network: ${x.shape[1]} frames is not a multiple of its stride ${exported.stride}`);
      return net.apply(x) as tf.Tensor3D;
    },
    dispose: () => net.dispose(),
  };
}
