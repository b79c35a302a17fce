/**
 * The engine micro-benchmark of `advlab bench --suite engine`: one model's forward pass and VJP
 * (d sum(v * logits) / dx) at one batch, timed on tfjs (the current backend) and on ONNX Runtime,
 * median of `repeats` after one warm-up each, and how far the two engines' outputs are apart. ONNX
 * Runtime's VJP is timed twice: with v known beforehand (one run of the vjp graph) and as an attack's
 * step can take it: `linearize` (the forward run that keeps the saved tensors, then the backward run), a
 * forward run then the vjp graph with v, and the fused loss call (`lossGradient`, C&W's margin: one run of
 * the graph holding forward pass, loss head and backward pass); tfjs autodiff computes the same step as one
 * forward and one backward pass either way.
 */
import * as tf from '@tensorflow/tfjs';
import { fromLayersModel, vjp } from '../models/classifier';
import { onnxClassifier } from './classifier';

export interface EngineTimings {
  batch: number;
  threads: number;
  tfjs: { forwardMs: number; vjpMs: number };
  /** stepMs: linearize; forwardThenVjpMs: forward run, then the vjp graph; fusedMs: lossGradient (one run). */
  onnx: { forwardMs: number; vjpMs: number; stepMs: number; forwardThenVjpMs: number; fusedMs: number };
  /** ONNX vs tfjs on the current backend (wasm: its max-pool gradient breaks ties elsewhere, see test/unit/onnx). */
  maxAbsDiff: { logits: number; vjp: number };
  /** ONNX vs tfjs on the cpu backend, the exact reference. */
  maxAbsDiffCpu: { logits: number; vjp: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times f (which must read its result back, as an attack does) `repeats` times after a warm-up. */
function time(f: () => void, repeats: number): number {
  f();
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export async function benchEngines(model: tf.LayersModel, images: Float32Array, batch: number, repeats = 5, threads?: number): Promise<EngineTimings> {
  const ref = fromLayersModel(model);
  const onnx = await onnxClassifier(model, threads ? { threads } : {});
  const [h, w, c] = ref.inputShape;
  const x = tf.tensor4d(images.subarray(0, batch * h * w * c), [batch, h, w, c]);
  const v = tf.randomNormal([batch, ref.numClasses], 0, 1, 'float32', 1) as tf.Tensor2D;
  // C&W's loss toward the next class, weighted -c (c = 1).
  const classes = Int32Array.from({ length: batch }, (_, i) => i % ref.numClasses);
  const weights = new Float32Array(batch).fill(-1);
  const read = (t: tf.Tensor) => {
    t.dataSync();
    t.dispose();
  };
  try {
    const tfjs = {
      forwardMs: time(() => read(tf.tidy(() => ref.logits(x))), repeats),
      vjpMs: time(() => read(vjp(ref, x, v)), repeats),
    };
    const ort = {
      forwardMs: time(() => read(tf.tidy(() => onnx.logits(x))), repeats),
      vjpMs: time(() => read(onnx.vjp(x, v)), repeats),
      stepMs: time(() => {
        const lin = onnx.linearize(x);
        read(lin.logits);
        read(lin.vjp(v));
      }, repeats),
      forwardThenVjpMs: time(() => {
        read(tf.tidy(() => onnx.logits(x)));
        read(onnx.vjp(x, v));
      }, repeats),
      fusedMs: time(() => {
        const r = onnx.lossGradient(x, { kind: 'margin', classes, weights, kappa: 0, toward: true });
        read(r.logits);
        read(r.values);
        read(r.grad);
      }, repeats),
    };
    const diffs = () => tf.tidy(() => ({
      logits: tf.max(tf.abs(tf.sub(ref.logits(x), onnx.logits(x)))).dataSync()[0],
      vjp: tf.max(tf.abs(tf.sub(vjp(ref, x, v), onnx.vjp(x, v)))).dataSync()[0],
    }));
    const maxAbsDiff = diffs();
    const backend = tf.getBackend();
    await tf.setBackend('cpu');
    let maxAbsDiffCpu: EngineTimings['maxAbsDiffCpu'];
    try {
      maxAbsDiffCpu = diffs();
    } finally {
      await tf.setBackend(backend);
    }
    return { batch, threads: onnx.engine.threads ?? 0, tfjs, onnx: ort, maxAbsDiff, maxAbsDiffCpu };
  } finally {
    tf.dispose([x, v]);
    onnx.dispose();
  }
}
