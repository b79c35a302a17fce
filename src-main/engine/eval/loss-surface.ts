/**
 * Loss surfaces around one input, as in the "random direction" plots of Goodfellow et al. and Carlini's
 * talks (also Tramèr et al. 2018, fig. 2): evaluate the model on x + a*d1 + b*d2 over a grid.
 *
 * Directions are sign vectors, so a coefficient is directly an Linf distance on the epsilon scale:
 * - 'gradient-random': d1 = sign(gradient of the loss at x) (the FGSM direction; positive a goes
 *   uphill), d2 = a random Rademacher (+-1) vector;
 * - 'random-random': two independent Rademacher vectors.
 * A smooth bowl along the gradient with steep loss growth means gradients are informative; a flat or
 * jagged surface along the gradient but not along random directions hints at gradient masking.
 */
import * as tf from '@tensorflow/tfjs';
import { silentContext, type JobContext } from '../context';
import { badInput } from '../errors';
import type { Classifier } from '../models/classifier';
import { crossEntropy, logitMargin } from '../attacks/losses';
import { sign } from '../attacks/ops';
import type { ClassifierSpec, ShardExecutor } from '../shards/types';
import { shardId } from '../shards/digest';

export interface LossSurfaceOptions {
  directions?: 'gradient-random' | 'random-random';
  /** Coefficients run from -range to +range (Linf size of the step along each direction). Default 0.3. */
  range?: number;
  /** Grid points per axis (odd keeps x itself on the grid). Default 21. */
  resolution?: number;
  /** What `objective` holds, and what the gradient direction ascends: 'ce' or 'margin'. Default 'ce'. */
  objective?: 'ce' | 'margin';
  /** Seed of the random directions. Default 0. */
  seed?: number;
  /** Clip the grid images to [0, 1] (the classifier's domain). Default true. */
  clip?: boolean;
  batchSize?: number;
}

export interface LossSurface {
  /** Coefficients along d1 (rows of the grids) and d2 (columns). */
  alphas: number[];
  betas: number[];
  /** Cross-entropy of the label at x + alphas[i]*d1 + betas[j]*d2: loss[i][j]. */
  loss: number[][];
  /** 'ce': same as loss; 'margin': Z_y - max_{i!=y} Z_i (negative = misclassified). */
  objective: number[][];
  objectiveKind: 'ce' | 'margin';
  /** Predicted class at each grid point. */
  predicted: number[][];
  label: number;
  directions: 'gradient-random' | 'random-random';
  /** Set when the gradient was zero everywhere and d1 fell back to a random direction. */
  note?: string;
}

/**
 * One batch of grid points of a loss surface, as a 'surface-rows' shard carries it: the image, both
 * directions and the points' coefficients (grid points [s, s + m) in row-major order). Its handler
 * (engine/shards/surface-rows.ts) runs surfaceBatch, as lossSurface does in place.
 */
export interface SurfaceRowsTask {
  classifier: ClassifierSpec;
  /** The image [h, w, c] and the two directions, same size. */
  x: Float32Array;
  d1: Float32Array;
  d2: Float32Array;
  label: number;
  /** The coefficient along d1 and along d2 of each point of the batch. */
  alphas: Float32Array;
  betas: Float32Array;
  objective: 'ce' | 'margin';
  clip: boolean;
  /** The batch's index in the grid (its id). */
  batch: number;
}

/** A batch's values: the loss, the objective and the predicted class at each of its points. */
export interface SurfaceRowsResult {
  loss: Float32Array;
  objective: Float32Array;
  predicted: Int32Array;
}

declare module '../shards/types' {
  interface ShardTypes {
    'surface-rows': { task: SurfaceRowsTask; result: SurfaceRowsResult };
  }
}

/** The model at x + a_j d1 + b_j d2 for a batch of coefficient pairs (x, d1, d2: [1, h, w, c]; onehot: [1, k]). */
export function surfaceBatch(classifier: Classifier, x: tf.Tensor, d1: tf.Tensor, d2: tf.Tensor, onehot: tf.Tensor2D, a: Float32Array, bb: Float32Array, objectiveKind: 'ce' | 'margin', clip: boolean): SurfaceRowsResult {
  const m = a.length;
  const [l, o, p] = tf.tidy(() => {
    let imgs = tf.add(tf.add(x, tf.mul(tf.tensor4d(a, [m, 1, 1, 1]), d1)), tf.mul(tf.tensor4d(bb, [m, 1, 1, 1]), d2)) as tf.Tensor4D;
    if (clip) imgs = tf.clipByValue(imgs, 0, 1);
    const z = classifier.logits(imgs);
    const oh = tf.tile(onehot, [m, 1]) as tf.Tensor2D;
    const ce = crossEntropy(z, oh);
    return [ce, objectiveKind === 'ce' ? ce.clone() : logitMargin(z, oh), tf.argMax(z, 1)];
  });
  const out = { loss: l.dataSync() as Float32Array, objective: o.dataSync() as Float32Array, predicted: Int32Array.from(p.dataSync()) };
  l.dispose(); o.dispose(); p.dispose();
  return out;
}

/** The label as a one-hot row [1, k]. */
export function oneHotRow(label: number, k: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([label], 'int32'), k), 'float32') as tf.Tensor2D);
}

function rademacher(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => sign(tf.sub(tf.randomUniform(shape, 0, 1, 'float32', seed), 0.5)));
}

/** The batches of grid points as 'surface-rows' shards, all at once (the executor queues them); progress counts finished batches. */
async function surfaceAsShards(
  ctx: JobContext,
  executor: ShardExecutor,
  spec: ClassifierSpec,
  batches: number,
  pointsOf: (b: number) => { s: number; a: Float32Array; bb: Float32Array },
  store: (s: number, r: SurfaceRowsResult) => void,
  common: Pick<SurfaceRowsTask, 'x' | 'd1' | 'd2' | 'label' | 'objective' | 'clip'>,
): Promise<void> {
  ctx.checkpoint();
  const starts: number[] = [];
  const shards = Array.from({ length: batches }, (_, b) => {
    const { s, a, bb } = pointsOf(b);
    starts.push(s);
    // Every shard gets its own copies: an executor may transfer a task's arrays.
    const task: SurfaceRowsTask = { classifier: spec, ...common, x: common.x.slice(), d1: common.d1.slice(), d2: common.d2.slice(), alphas: a, betas: bb, batch: b };
    return { type: 'surface-rows' as const, id: shardId('surface-rows', b, [spec, common.label, common.objective, common.clip], [common.x, common.d1, common.d2, a, bb]), task };
  });
  let done = 0;
  const finished = new Uint8Array(batches);
  const results = await executor.run(shards, (i, p) => {
    if (p.total > 0 && p.step >= p.total && !finished[i]) {
      finished[i] = 1;
      ctx.progress({ step: ++done, total: batches, phase: 'loss surface' });
    }
  });
  results.forEach((r, b) => store(starts[b], r));
  if (done < batches) ctx.progress({ step: batches, total: batches, phase: 'loss surface' });
}

export async function lossSurface(
  classifier: Classifier,
  x1: Float32Array | tf.Tensor,
  label: number,
  opts: LossSurfaceOptions = {},
  ctx: JobContext = silentContext,
): Promise<LossSurface> {
  const directions = opts.directions ?? 'gradient-random';
  const range = opts.range ?? 0.3;
  const res = opts.resolution ?? 21;
  const objectiveKind = opts.objective ?? 'ce';
  const seed = opts.seed ?? 0;
  const clip = opts.clip ?? true;
  const batchSize = opts.batchSize ?? 256;
  const [h, w, c] = classifier.inputShape;
  const k = classifier.numClasses;
  if (directions !== 'gradient-random' && directions !== 'random-random') throw badInput(`directions must be 'gradient-random' or 'random-random'; got ${String(directions)}`);
  if (objectiveKind !== 'ce' && objectiveKind !== 'margin') throw badInput(`objective must be 'ce' or 'margin'; got ${String(objectiveKind)}`);
  if (!(range > 0) || !Number.isFinite(range)) throw badInput(`range must be a positive number; got ${range}`);
  if (!Number.isInteger(res) || res < 2 || res > 201) throw badInput(`resolution must be an integer in 2..201; got ${res}`);
  if (!Number.isInteger(label) || label < 0 || label >= k) throw badInput(`Label ${label} is not a class index in 0..${k - 1}`);
  const data = x1 instanceof tf.Tensor ? (x1.dataSync() as Float32Array) : x1;
  if (!(data instanceof Float32Array) || data.length !== h * w * c) {
    throw badInput(`lossSurface takes one ${h}x${w}x${c} image (${h * w * c} values); got ${data?.length ?? 'no'} values`);
  }
  for (const v of data) if (!(v >= 0 && v <= 1)) throw badInput(`Pixel values must lie in [0, 1]; found ${v}`);

  const x = tf.tensor4d(data, [1, h, w, c]);
  const onehot = oneHotRow(label, k);
  let note: string | undefined;
  const up = (z: tf.Tensor2D) => (objectiveKind === 'ce' ? crossEntropy(z, onehot) : tf.neg(logitMargin(z, onehot)));
  let d1: tf.Tensor;
  if (directions === 'gradient-random') {
    d1 = tf.tidy(() => sign(tf.grad((xi: tf.Tensor) => tf.sum(up(classifier.logits(xi as tf.Tensor4D))))(x)));
    const mass = tf.tidy(() => tf.sum(tf.abs(d1)));
    const zero = mass.dataSync()[0] === 0;
    mass.dispose();
    if (zero) {
      d1.dispose();
      d1 = rademacher([1, h, w, c], seed + 2);
      note = 'the gradient at x is zero; d1 is a random direction';
    }
  } else {
    d1 = rademacher([1, h, w, c], seed + 2);
  }
  const d2 = rademacher([1, h, w, c], seed + 1);

  const coef = Array.from({ length: res }, (_, i) => range * ((2 * i) / (res - 1) - 1));
  const total = res * res;
  const lossFlat = new Float32Array(total), objFlat = new Float32Array(total), predFlat = new Int32Array(total);
  const batches = Math.ceil(total / batchSize);
  const pointsOf = (b: number) => {
    const s = b * batchSize, m = Math.min(batchSize, total - s);
    const a = new Float32Array(m), bb = new Float32Array(m);
    for (let j = 0; j < m; j++) { a[j] = coef[Math.floor((s + j) / res)]; bb[j] = coef[(s + j) % res]; }
    return { s, a, bb };
  };
  const store = (s: number, r: SurfaceRowsResult) => {
    lossFlat.set(r.loss, s);
    objFlat.set(r.objective, s);
    predFlat.set(r.predicted, s);
  };
  try {
    if (ctx.shards && classifier.spec) {
      // With an executor (the pool, a cluster), each batch of grid points is a 'surface-rows' shard: the
      // same batches and the same ops as below, in another worker.
      await surfaceAsShards(ctx, ctx.shards, classifier.spec, batches, pointsOf, store, {
        x: data.slice(), d1: d1.dataSync() as Float32Array, d2: d2.dataSync() as Float32Array, label, objective: objectiveKind, clip,
      });
    } else {
      for (let b = 0; b < batches; b++) {
        ctx.checkpoint();
        const { s, a, bb } = pointsOf(b);
        store(s, surfaceBatch(classifier, x, d1, d2, onehot, a, bb, objectiveKind, clip));
        ctx.progress({ step: b + 1, total: batches, phase: 'loss surface' });
      }
    }
  } finally {
    x.dispose(); onehot.dispose(); d1.dispose(); d2.dispose();
  }
  const grid = (flat: Float32Array | Int32Array) => Array.from({ length: res }, (_, i) => Array.from(flat.subarray(i * res, (i + 1) * res)));
  return {
    alphas: coef,
    betas: [...coef],
    loss: grid(lossFlat),
    objective: grid(objFlat),
    objectiveKind,
    predicted: grid(predFlat),
    label,
    directions,
    ...(note ? { note } : {}),
  };
}
