/**
 * A Classifier whose logits and input gradients come from ONNX Runtime (the exported graphs of a tfjs
 * LayersModel), with tfjs as the reference they are tested against.
 *
 * Four sessions on the same weights:
 * - forward: x -> logits, for logits outside any gradient;
 * - vjp: x, v -> logits, grad (`vjp`: one run when v is known beforehand);
 * - forwardSaved + backward: the vjp graph cut at the end of the forward pass (`linearize`): the first run
 *   returns the logits and what the backward pass reads (ReLU masks as bytes, max-pool indices), the second
 *   takes v and those and returns grad. An attack's step (logits, then its loss gradient with respect to
 *   the logits, then the input gradient) thus runs the network forward once, not twice.
 *
 * `logits` is a tf.customGrad op. Under a gradient tape (tf.grad / tf.valueAndGrad: C&W's chain rule through
 * tanh, loss surfaces) it runs forwardSaved and its gradient is the backward graph on the saved tensors;
 * outside one it runs the plain forward graph. Any tfjs autodiff through it therefore gets ONNX Runtime's
 * backward pass without knowing it.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier, EngineInfo, Linearized } from '../models/classifier';
import { exportModel, type ExportedModel } from './export';
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

/** Exports the model (cached per sha256) and opens its sessions. Throws UnsupportedLayerError. */
export async function onnxClassifier(model: tf.LayersModel, options: OnnxClassifierOptions = {}): Promise<OnnxClassifier> {
  const exported = exportModel(model);
  const threads = options.threads ?? defaultThreads();
  const sessions: OrtSession[] = [];
  try {
    for (const bytes of [exported.forward, exported.vjp, exported.forwardSaved, exported.backward]) sessions.push(await OrtSession.create(bytes, threads));
  } catch (e) {
    for (const s of sessions) s.dispose();
    throw e;
  }
  const [forward, full, forwardSaved, backward] = sessions;
  const [h, w, c] = exported.inputShape;
  const k = exported.numClasses;
  const savedOut = exported.saved.filter((s) => s.name !== 'x').map((s) => s.name);

  const vjpRaw = (x: tf.Tensor, v: tf.Tensor): tf.Tensor4D => {
    const n = x.shape[0];
    const r = full.run({ x: { data: data(x), dims: [n, h, w, c] }, v: { data: data(v), dims: [n, k] } }, ['grad']);
    return tf.tensor4d(r.grad, [n, h, w, c]);
  };

  const linearizeRaw = (x: tf.Tensor): Linearized => {
    const n = x.shape[0];
    const xd = data(x);
    const r = forwardSaved.runTyped({ x: { type: 'float32', data: xd, dims: [n, h, w, c] } }, ['logits', ...savedOut]);
    const feeds: Record<string, { type: OrtType; data: OrtData; dims: readonly number[] }> = {};
    for (const s of exported.saved) feeds[s.name] = s.name === 'x' ? { type: 'float32', data: xd, dims: [n, h, w, c] } : { type: s.type, ...r[s.name] };
    return {
      logits: tf.tensor2d(r.logits.data as Float32Array, [n, k]),
      vjp: (v) => {
        const g = backward.runTyped({ ...feeds, v: { type: 'float32', data: data(v), dims: [n, k] } }, ['grad']);
        return tf.tensor4d(g.grad.data as Float32Array, [n, h, w, c]);
      },
    };
  };

  const logits = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    const n = x.shape[0];
    if (taping()) {
      const lin = linearizeRaw(x);
      return { value: lin.logits, gradFunc: (dy: tf.Tensor | tf.Tensor[]) => lin.vjp(dy as tf.Tensor2D) };
    }
    save([x]);
    const r = forward.run({ x: { data: data(x), dims: [n, h, w, c] } }, ['logits']);
    return { value: tf.tensor2d(r.logits, [n, k]), gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => vjpRaw(saved[0], dy as tf.Tensor) };
  }) as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D) => tf.Tensor2D;

  return {
    inputShape: [h, w, c],
    numClasses: k,
    engine: { engine: 'onnx', reason: options.reason ?? 'requested', threads },
    exported,
    logits: (x) => {
      if (x.shape[0] === 0) return tf.zeros([0, k]) as tf.Tensor2D;
      return logits(x);
    },
    vjp: (x, v) => {
      if (x.shape[0] === 0) return tf.zeros([0, h, w, c]) as tf.Tensor4D;
      return vjpRaw(x, v);
    },
    linearize: (x) => {
      if (x.shape[0] === 0) return { logits: tf.zeros([0, k]) as tf.Tensor2D, vjp: () => tf.zeros([0, h, w, c]) as tf.Tensor4D };
      return linearizeRaw(x);
    },
    dispose: () => {
      for (const s of sessions) s.dispose();
    },
  };
}
