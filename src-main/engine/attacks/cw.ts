/**
 * C&W L2 (Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017),
 * following the authors' reference code (nn_robust_attacks/l2_attack.py).
 *
 * Change of variables x' = (tanh(w) + 1) / 2 keeps x' in the box without clipping. For each example,
 * Adam (learningRate, default 0.01) minimises
 *     ||x' - x||_2^2 + c * f(x')
 *     f = max(max_{i!=t} Z_i - Z_t, -kappa)      (targeted, class t)
 *     f = max(Z_y - max_{i!=y} Z_i, -kappa)      (untargeted, label y)
 * over w, starting at w = atanh(2x - 1) each time. A binary search over c per example (upper bound
 * found: bisect; none yet: c *= 10) runs `binarySearchSteps` times; the smallest-L2 point that meets
 * the goal with margin kappa is kept across all of them. With abortEarly, every maxIterations/10 steps
 * each example's loss ||x' - x||^2 + c f(x') is compared with its previous check and the example stops
 * for the round when it is not 0.01% lower. The reference code checks its batch's total loss, but its
 * default batch is one example; checking per example keeps that behaviour in a batch, where one slow
 * example would otherwise keep the whole batch running (on 100 MNIST images the batch check never
 * fired). Stopped examples leave the batch, so later, easier rounds cost less. (The reference starts
 * the check from 1e6, which would stop large-logit models at once; we start from +inf.)
 *
 * `objective` swaps f for the weaker choices the paper compares (section V): 'ce' (cross-entropy on the
 * target: CE(Z, t); untargeted: -log(1 - softmax(Z)_y)) and 'naive' (1 - softmax(Z)_t; untargeted:
 * softmax(Z)_y). Their gradients vanish when the softmax saturates, which is why the margin wins.
 * kappa only applies to 'margin' (and to what counts as success for every objective).
 *
 * A classifier with a reject class (a detector's "detected" logit, Carlini & Wagner 2017's combined
 * classifier G; see defenses/detector-attack.ts) counts that class with the label for an untargeted
 * goal: f sees max(Z_y, Z_reject) as the label's logit and the other classes without the reject class,
 * so success means a wrong class that is not "detected".
 *
 * Defaults: initialConst 1e-2 (the reference uses 1e-3; on MNIST-like data that first rung almost never
 * succeeds, so 1e-2 saves one of the nine binary-search runs), maxIterations 1000 (reference 10000).
 * Distance: L2, minimised (no eps). Shapes: x [n, h, w, c] in [0, 1].
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { logitMargin, notClassCrossEntropy, crossEntropy, probability } from './losses';
import { classifierGradient, lossGradient, oneHot } from './ops';
import type { AttackDefinition, AttackOutput, AttackProblem } from './types';

const paramsSchema = z.strictObject({
  binarySearchSteps: z.number().int().min(1).max(50).default(9).describe('Rounds of the binary search over c.'),
  maxIterations: z.number().int().min(1).max(100_000).default(1000).describe('Adam steps per round.'),
  learningRate: z.number().positive().max(10).default(0.01).describe('Adam learning rate (in tanh space).'),
  initialConst: z.number().positive().default(0.01).describe('First c: weight of the objective against the squared L2 distance.'),
  kappa: z.number().min(0).default(0).describe('Confidence: the adversarial must win by this logit margin.'),
  abortEarly: z.boolean().default(true).describe('Per example, stop a round when its loss stops improving (0.01% over maxIterations/10 steps).'),
  objective: z.enum(['margin', 'ce', 'naive']).default('margin').describe("f: 'margin' (C&W f6), 'ce' (cross-entropy), 'naive' (probability)."),
});
export type CwParams = z.output<typeof paramsSchema>;

const BIG = 1e10;

/**
 * Untargeted with a reject class r: the label's logit becomes max(Z_y, Z_r) and r drops out of the other
 * classes (its logit masked with -1e30), so every objective below reads "wrong class, not rejected".
 */
function foldReject(z: tf.Tensor2D, onehot: tf.Tensor2D, rejectMask: tf.Tensor2D): tf.Tensor2D {
  const zy = tf.sum(tf.mul(z, onehot), 1, true);
  const zr = tf.sum(tf.mul(z, rejectMask), 1, true);
  return tf.add(tf.add(z, tf.mul(onehot, tf.relu(tf.sub(zr, zy)))), tf.mul(rejectMask, -1e30)) as tf.Tensor2D;
}

/** f(x') per example for the chosen objective (to be minimised, >= -kappa for margin). */
function objectiveOf(kind: CwParams['objective'], z: tf.Tensor2D, onehot: tf.Tensor2D, targeted: boolean, kappa: number): tf.Tensor1D {
  if (kind === 'margin') {
    const m = logitMargin(z, onehot); // Z_c - max_{i!=c} Z_i
    return tf.maximum(targeted ? tf.neg(m) : m, -kappa) as tf.Tensor1D;
  }
  if (kind === 'ce') return targeted ? crossEntropy(z, onehot) : notClassCrossEntropy(z, onehot);
  const p = probability(z, onehot);
  return (targeted ? tf.sub(1, p) : p) as tf.Tensor1D;
}

/** Carlini's `compare`: success with margin kappa, judged on logits in JS (reject: see foldReject). */
function meetsGoal(z: Float32Array, off: number, k: number, cls: number, targeted: boolean, kappa: number, reject?: number): boolean {
  let best = -1, bestV = -Infinity;
  const fold = !targeted && reject !== undefined;
  for (let j = 0; j < k; j++) {
    if (fold && j === reject) continue;
    const zj = fold && j === cls ? Math.max(z[off + j], z[off + (reject as number)]) : z[off + j];
    const v = zj + (j === cls ? (targeted ? -kappa : kappa) : 0);
    if (v > bestV) { bestV = v; best = j; }
  }
  return targeted ? best === cls : best !== cls;
}

export async function carliniWagnerL2(problem: AttackProblem, p: CwParams, ctx: JobContext): Promise<AttackOutput> {
  const { classifier, x } = problem;
  const n = problem.labels.length, k = problem.numClasses;
  const rowSize = x.size / Math.max(1, n);
  const [, h, wd, ch] = x.shape;
  const targeted = problem.targets !== null;
  const cls = problem.targets ?? problem.labels;
  const reject = targeted ? undefined : classifier.rejectClass;
  // f as a loss the classifier may compute in its own engine (lossGradient: one ONNX Runtime run per step):
  // the margin is -min(+-m, kappa), i.e. the LogitLoss margin weighted -c; CE toward a target is CE weighted c.
  // The other objectives and a reject class are written in tfjs below.
  const fusable = reject === undefined && (p.objective === 'margin' || (p.objective === 'ce' && targeted));
  const onehot = oneHot(cls, k);
  const rejectMask = reject === undefined ? null : oneHot(Int32Array.of(reject), k);
  // Reference code: w0 = arctanh((x - 0.5) * 2 * 0.999999); distances are to tanh(w0)/2 + 0.5.
  const [w0, x0] = tf.tidy(() => {
    const w = tf.atanh(tf.mul(tf.sub(tf.mul(x, 2), 1), 0.999999));
    return [w.dataSync() as Float32Array, tf.add(tf.div(tf.tanh(w), 2), 0.5).dataSync() as Float32Array];
  });
  // The best attack so far, row by row, on the CPU: rows are copied in as examples improve.
  const best = x.dataSync().slice() as Float32Array;
  const bestL2 = new Float64Array(n).fill(BIG);
  const lower = new Float64Array(n).fill(0);
  const upper = new Float64Array(n).fill(BIG);
  const c = new Float64Array(n).fill(p.initialConst);
  const iterations = new Int32Array(n);
  const repeat = p.binarySearchSteps >= 10;
  const beta1 = 0.9, beta2 = 0.999, adamEps = 1e-8;
  const totalSteps = p.binarySearchSteps * p.maxIterations;
  const abortEvery = Math.max(1, Math.floor(p.maxIterations / 10));
  /** Rows `keep` (indices into the active rows) of a [rows, rowSize] array. */
  const rowsOf = (a: Float32Array, keep: number[]) => {
    const out = new Float32Array(keep.length * rowSize);
    keep.forEach((r, j) => out.set(a.subarray(r * rowSize, (r + 1) * rowSize), j * rowSize));
    return out;
  };
  /**
   * c grad f(x'), the logits and f at x' = img (the active rows): one fused call when the classifier can
   * compute f, else tfjs autodiff of f through the classifier's gradient.
   */
  const gradientOf = (img: Float32Array, active: Int32Array): { cg: Float32Array; z: Float32Array; f: Float32Array } => {
    const m = active.length;
    const xi = tf.tensor4d(img, [m, h, wd, ch]);
    // (Typed arrays are read outside tf.tidy, which would walk them element by element looking for tensors.)
    let r: { grad: tf.Tensor; logits: tf.Tensor; values: tf.Tensor };
    let negate = false;
    try {
      if (fusable) {
        const classes = Int32Array.from(active, (i) => cls[i]);
        negate = p.objective === 'margin';
        const weights = Float32Array.from(active, (i) => (negate ? -c[i] : c[i]));
        r = lossGradient(classifier, xi, negate ? { kind: 'margin', classes, weights, kappa: p.kappa, toward: targeted } : { kind: 'ce', classes, weights });
      } else {
        r = tf.tidy(() => {
          const oh = tf.gather(onehot, tf.tensor1d(active, 'int32')) as tf.Tensor2D;
          const cT = tf.tensor1d(Float32Array.from(active, (i) => c[i]));
          const kept: { f?: tf.Tensor1D } = {};
          const g = classifierGradient(classifier, xi, (z) => {
            const f = objectiveOf(p.objective, rejectMask ? foldReject(z, oh, rejectMask) : z, oh, targeted, p.kappa);
            kept.f = tf.keep(tf.clone(f));
            return tf.mul(cT, f) as tf.Tensor1D;
          });
          g.values.dispose();
          return { grad: g.grad, logits: g.logits, values: kept.f! };
        });
      }
    } finally {
      xi.dispose();
    }
    try {
      const values = r.values.dataSync() as Float32Array;
      return { cg: r.grad.dataSync() as Float32Array, z: r.logits.dataSync() as Float32Array, f: negate ? values.map((v) => -v) : values };
    } finally {
      tf.dispose([r.grad, r.logits, r.values]);
    }
  };

  try {
    for (let outer = 0; outer < p.binarySearchSteps; outer++) {
      if (repeat && outer === p.binarySearchSteps - 1) for (let i = 0; i < n; i++) c[i] = upper[i];
      let active = Int32Array.from({ length: n }, (_, i) => i);
      // The round's state, restricted to the active rows, as Float32Arrays: w0 and x0, the modifier and Adam's moments.
      let w = w0.slice(), xr = x0.slice();
      let mod = new Float32Array(n * rowSize), m1 = new Float32Array(n * rowSize), m2 = new Float32Array(n * rowSize);
      const roundFound = new Uint8Array(n);
      // Steps run this round and their summed batch sizes (abort-early shrinks the batch): for the log.
      let steps = 0, rows = 0;
      const prev = new Float64Array(n).fill(Infinity);
      for (let it = 0; it < p.maxIterations && active.length > 0; it++) {
        ctx.checkpoint();
        const step = it + 1;
        steps++;
        rows += active.length;
        const m = active.length, size = m * rowSize;
        // x' = (tanh(w) + 1) / 2 with w = w0 + modifier (the reference optimises the modifier), and ||x' - x||^2.
        const t = new Float32Array(size), img = new Float32Array(size), diff = new Float32Array(size);
        const l2s = new Float32Array(m);
        for (let a = 0, e = 0; a < m; a++) {
          let sum = 0;
          for (let j = 0; j < rowSize; j++, e++) {
            t[e] = Math.tanh(Math.fround(mod[e] + w[e]));
            img[e] = t[e] / 2 + 0.5;
            diff[e] = img[e] - xr[e];
            sum += diff[e] * diff[e];
          }
          l2s[a] = sum;
        }
        // c grad f(x') and the logits at x', through the classifier's own backward pass when it has one.
        const { cg, z: zs, f: fs } = gradientOf(img, active);
        // The chain rule through the change of variables, then Adam as in TF1: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t).
        // d/dw (||x' - x||^2 + c f(x')) = (2 (x' - x) + c grad f(x')) / 2 * (1 - tanh(w)^2).
        const lrT = (p.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
        for (let e = 0; e < size; e++) {
          const g = Math.fround(((2 * diff[e] + cg[e]) / 2) * (1 - t[e] * t[e]));
          m1[e] = m1[e] * beta1 + g * (1 - beta1);
          m2[e] = m2[e] * beta2 + g * g * (1 - beta2);
          mod[e] = mod[e] - (m1[e] / (Math.sqrt(m2[e]) + adamEps)) * lrT;
        }
        // The objective ||x' - x||^2 + c f(x') summed over the batch (c in float32, as the gradient used it).
        let loss = 0;
        for (let a = 0; a < m; a++) loss += l2s[a] + Math.fround(c[active[a]]) * fs[a];
        if (!Number.isFinite(loss)) throw new Error(`C&W loss became ${loss} (non-finite logits or gradient)`);
        // Book-keeping on the iterate the loss was computed at (as the reference code does).
        for (let a = 0; a < m; a++) {
          const i = active[a];
          iterations[i]++;
          if (!meetsGoal(zs, a * k, k, cls[i], targeted, p.kappa, reject)) continue;
          roundFound[i] = 1;
          if (l2s[a] < bestL2[i]) {
            bestL2[i] = l2s[a];
            best.set(img.subarray(a * rowSize, (a + 1) * rowSize), i * rowSize);
          }
        }
        let found = 0, sumL2 = 0;
        for (let i = 0; i < n; i++) if (bestL2[i] < BIG) { found++; sumL2 += Math.sqrt(bestL2[i]); }
        problem.progress(outer * p.maxIterations + step, totalSteps, `binary search ${outer + 1}/${p.binarySearchSteps}`, {
          loss,
          found: found / n,
          meanL2: found ? sumL2 / found : 0,
          active: m / n,
        });
        // Abort early, per example: the reference checks its batch's loss, with a batch of one by default.
        if (p.abortEarly && it % abortEvery === 0) {
          const keep: number[] = [];
          for (let a = 0; a < m; a++) {
            const i = active[a], li = l2s[a] + c[i] * fs[a];
            if (li > prev[i] * 0.9999) continue;
            prev[i] = li;
            keep.push(a);
          }
          if (keep.length < m) {
            active = Int32Array.from(keep, (a) => active[a]);
            if (active.length === 0) break;
            [w, xr, mod, m1, m2] = [w, xr, mod, m1, m2].map((arr) => rowsOf(arr, keep));
          }
        }
      }
      // Binary search over c, per example.
      for (let i = 0; i < n; i++) {
        if (roundFound[i]) {
          upper[i] = Math.min(upper[i], c[i]);
          if (upper[i] < 1e9) c[i] = (lower[i] + upper[i]) / 2;
        } else {
          lower[i] = Math.max(lower[i], c[i]);
          c[i] = upper[i] < 1e9 ? (lower[i] + upper[i]) / 2 : c[i] * 10;
        }
      }
      ctx.log(`C&W round ${outer + 1}: ${Array.from(roundFound).reduce((s, v) => s + v, 0)}/${n} found, ${steps} steps, mean batch ${(rows / Math.max(1, steps)).toFixed(1)}`);
    }
    return { adversarial: tf.tensor(best, x.shape) as tf.Tensor4D, iterations };
  } finally {
    rejectMask?.dispose();
    onehot.dispose();
  }
}

export const cwL2: AttackDefinition<CwParams> = {
  id: 'cw-l2',
  name: 'Carlini & Wagner L2',
  norm: 'l2',
  description:
    'Minimises ||x\'-x||_2^2 + c*f(x\') with Adam in tanh space, f the logit margin max(max_{i!=t} Z_i - Z_t, -kappa); ' +
    'a binary search over c per example keeps the smallest successful L2. Carlini & Wagner, "Towards Evaluating ' +
    'the Robustness of Neural Networks", IEEE S&P 2017.',
  paper: {
    authors: 'Nicholas Carlini, David Wagner',
    title: 'Towards Evaluating the Robustness of Neural Networks',
    venue: 'IEEE Symposium on Security and Privacy',
    year: 2017,
    url: 'https://arxiv.org/abs/1608.04644',
  },
  paramsSchema,
  defaults: paramsSchema.parse({}),
  run: carliniWagnerL2,
};
