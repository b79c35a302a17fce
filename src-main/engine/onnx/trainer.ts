/**
 * Training steps on ONNX Runtime: the training graph (export-train.ts) computes the loss, the logits and
 * every weight gradient of a batch in one run; JsOptimizer (train-optimizer.ts) updates the weights, held
 * here as Float32Arrays in tfjs's layouts. The tfjs model is the weights' home outside the steps:
 * `syncToModel` writes them back (before validation, at the end, when cancelled), and the loop in
 * models/train.ts stays the one training loop for both engines.
 *
 * Dropout masks (`masks`): a SeededDropout layer (our architectures') draws them itself, exactly as its
 * next tfjs training call would (nextMultiplier), so a run on ONNX Runtime drops the same units as the same
 * run on tfjs; any other Dropout layer's mask comes from the caller's seeded generator. Callers may also give
 * their own masks (tests give tfjs and ONNX Runtime the same masks to compare the two engines step by step).
 */
import * as tf from '@tensorflow/tfjs';
import type { LossSpec } from '../models/losses';
import type { EngineInfo } from '../models/classifier';
import { SeededDropout } from '../models/architectures';
import { exportTraining, type TrainingGraph } from './export-train';
import { JsOptimizer, type OptimizerSpec } from './train-optimizer';
import { defaultThreads, OrtSession } from './runtime';

export interface OrtStepResult {
  loss: number;
  /** [n, k] logits of the step's forward pass (training mode: dropout applied). */
  logits: Float32Array;
}

export class OrtTrainer {
  private session: OrtSession | null;
  private readonly optimizer: JsOptimizer;

  private constructor(
    session: OrtSession,
    readonly graph: TrainingGraph,
    /** The trainable weights, in model.trainableWeights order and tfjs layouts. */
    readonly weights: Float32Array[],
    spec: OptimizerSpec,
    readonly engine: EngineInfo,
    /** Per dropout input: the model's SeededDropout layer, which draws its own masks, or null. */
    private readonly seeded: (SeededDropout | null)[],
  ) {
    this.session = session;
    this.optimizer = new JsOptimizer(spec, weights.map((w) => w.length));
  }

  /** Opens the training session of `model` (its current weights are the starting point). */
  static async create(model: tf.LayersModel, spec: OptimizerSpec, opts: { loss?: LossSpec; threads?: number; reason: string }): Promise<OrtTrainer> {
    const graph = exportTraining(model, opts.loss);
    const threads = opts.threads ?? defaultThreads();
    const session = await OrtSession.create(graph.bytes, threads);
    const weights = model.trainableWeights.map((w) => {
      const d = w.read().dataSync();
      return d instanceof Float32Array ? d.slice() : Float32Array.from(d as ArrayLike<number>);
    });
    const seeded = graph.dropouts.map((d) => {
      const layer = model.getLayer(d.layer);
      return layer instanceof SeededDropout ? layer : null;
    });
    return new OrtTrainer(session, graph, weights, spec, { engine: 'onnx', reason: opts.reason, threads }, seeded);
  }

  /** Steps taken so far. */
  get iterations(): number {
    return this.optimizer.iterations;
  }

  /**
   * The dropout masks of a batch of n: a SeededDropout's next multiplier, else from `rng`: each value
   * 1 / (1 - rate) with probability 1 - rate, else 0 (tfjs's inverted dropout).
   */
  masks(n: number, rng: () => number): Float32Array[] {
    return this.graph.dropouts.map((d, j) => {
      const seeded = this.seeded[j];
      if (seeded) {
        const t = seeded.nextMultiplier([n, ...d.shape]);
        try {
          return t.dataSync() as Float32Array;
        } finally {
          t.dispose();
        }
      }
      const size = n * d.shape.reduce((a, b) => a * b, 1);
      const keep = 1 / (1 - d.rate);
      const m = new Float32Array(size);
      for (let i = 0; i < size; i++) m[i] = rng() >= d.rate ? keep : 0;
      return m;
    });
  }

  /** Loss, logits and weight gradients at the current weights, without updating them. */
  gradients(x: Float32Array, y: Float32Array, n: number, masks: Float32Array[]): OrtStepResult & { grads: Float32Array[] } {
    if (!this.session) throw new Error('ONNX Runtime trainer used after dispose');
    const g = this.graph;
    const [h, w, c] = g.inputShape, k = g.numClasses;
    if (masks.length !== g.dropouts.length) throw new Error(`trainer: ${masks.length} dropout masks for ${g.dropouts.length} dropout layers`);
    const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {
      x: { data: x, dims: [n, h, w, c] },
      y: { data: y, dims: [n, k] },
    };
    g.dropouts.forEach((d, j) => { feeds[`mask${j}`] = { data: masks[j], dims: [n, ...d.shape] }; });
    g.weights.forEach((v, i) => { feeds[`w${i}`] = { data: this.weights[i], dims: v.shape }; });
    const names = g.weights.map((_, i) => `g${i}`);
    const r = this.session.run(feeds, ['loss', 'logits', ...names]);
    return { loss: r.loss[0], logits: r.logits, grads: names.map((nm) => r[nm]) };
  }

  /** The optimizer's update of the weights from gradients (in model.trainableWeights order). */
  applyGradients(grads: Float32Array[]): void {
    this.optimizer.apply(this.weights, grads);
  }

  /** One optimisation step on a batch: the gradients at the current weights, then the optimizer's update. */
  step(x: Float32Array, y: Float32Array, n: number, masks: Float32Array[]): OrtStepResult {
    const r = this.gradients(x, y, n, masks);
    this.applyGradients(r.grads);
    return { loss: r.loss, logits: r.logits };
  }

  /** Writes the current weights into the model's variables. */
  syncToModel(model: tf.LayersModel): void {
    const vars = model.trainableWeights;
    tf.tidy(() => vars.forEach((v, i) => v.write(tf.tensor(this.weights[i], this.graph.weights[i].shape))));
  }

  dispose(): void {
    this.session?.dispose();
    this.session = null;
  }
}
