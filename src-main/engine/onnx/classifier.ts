/**
 * A Classifier whose logits and input gradients come from ONNX Runtime (the exported forward and VJP
 * graphs of a tfjs LayersModel), with tfjs as the reference they are tested against.
 *
 * `logits` is a tf.customGrad op: the value from the forward graph, the gradient from the VJP graph.
 * Any tfjs autodiff through it (the attacks' tf.grad / tf.valueAndGrad, C&W's chain rule through tanh,
 * loss surfaces) therefore gets ONNX Runtime's backward pass without knowing it. `vjp` gives the same
 * product directly.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier, EngineInfo } from '../models/classifier';
import { exportModel, type ExportedModel } from './export';
import { defaultThreads, OrtSession } from './runtime';

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
  dispose(): void;
}

function data(t: tf.Tensor): Float32Array {
  const d = t.dataSync();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** Exports the model (cached per sha256) and opens its two sessions. Throws UnsupportedLayerError. */
export async function onnxClassifier(model: tf.LayersModel, options: OnnxClassifierOptions = {}): Promise<OnnxClassifier> {
  const exported = exportModel(model);
  const threads = options.threads ?? defaultThreads();
  const forward = await OrtSession.create(exported.forward, threads);
  let backward: OrtSession;
  try {
    backward = await OrtSession.create(exported.vjp, threads);
  } catch (e) {
    forward.dispose();
    throw e;
  }
  const [h, w, c] = exported.inputShape;
  const k = exported.numClasses;

  const vjpRaw = (x: tf.Tensor, v: tf.Tensor): tf.Tensor4D => {
    const n = x.shape[0];
    const r = backward.run({ x: { data: data(x), dims: [n, h, w, c] }, v: { data: data(v), dims: [n, k] } }, ['grad']);
    return tf.tensor4d(r.grad, [n, h, w, c]);
  };

  const logits = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
    const n = x.shape[0];
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
    dispose: () => {
      forward.dispose();
      backward.dispose();
    },
  };
}
