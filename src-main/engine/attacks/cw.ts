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
 * the goal with margin kappa is kept across all of them. With abortEarly, an inner run checks the total
 * loss every maxIterations/10 steps and stops when it is not 0.01% below the previous check (the
 * reference starts from 1e6, which would stop large-logit models at once; we start from +inf).
 *
 * `objective` swaps f for the weaker choices the paper compares (section V): 'ce' (cross-entropy on the
 * target: CE(Z, t); untargeted: -log(1 - softmax(Z)_y)) and 'naive' (1 - softmax(Z)_t; untargeted:
 * softmax(Z)_y). Their gradients vanish when the softmax saturates, which is why the margin wins.
 * kappa only applies to 'margin' (and to what counts as success for every objective).
 *
 * Defaults: initialConst 1e-2 (the reference uses 1e-3; on MNIST-like data that first rung almost never
 * succeeds, so 1e-2 saves one of the nine binary-search runs), maxIterations 1000 (reference 10000).
 * Distance: L2, minimised (no eps). Shapes: x [n, h, w, c] in [0, 1].
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { logitMargin, notClassCrossEntropy, crossEntropy, probability } from './losses';
import { oneHot, rowWhere } from './ops';
import type { AttackDefinition, AttackOutput, AttackProblem } from './types';

const paramsSchema = z.strictObject({
  binarySearchSteps: z.number().int().min(1).max(50).default(9).describe('Rounds of the binary search over c.'),
  maxIterations: z.number().int().min(1).max(100_000).default(1000).describe('Adam steps per round.'),
  learningRate: z.number().positive().max(10).default(0.01).describe('Adam learning rate (in tanh space).'),
  initialConst: z.number().positive().default(0.01).describe('First c: weight of the objective against the squared L2 distance.'),
  kappa: z.number().min(0).default(0).describe('Confidence: the adversarial must win by this logit margin.'),
  abortEarly: z.boolean().default(true).describe('Stop a round when the loss stops improving (0.01% over maxIterations/10 steps).'),
  objective: z.enum(['margin', 'ce', 'naive']).default('margin').describe("f: 'margin' (C&W f6), 'ce' (cross-entropy), 'naive' (probability)."),
});
export type CwParams = z.output<typeof paramsSchema>;

const BIG = 1e10;

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

/** Carlini's `compare`: success with margin kappa, judged on logits in JS. */
function meetsGoal(z: Float32Array, off: number, k: number, cls: number, targeted: boolean, kappa: number): boolean {
  let best = -1, bestV = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = z[off + j] + (j === cls ? (targeted ? -kappa : kappa) : 0);
    if (v > bestV) { bestV = v; best = j; }
  }
  return targeted ? best === cls : best !== cls;
}

export async function carliniWagnerL2(problem: AttackProblem, p: CwParams, ctx: JobContext): Promise<AttackOutput> {
  const { classifier, x } = problem;
  const n = problem.labels.length, k = problem.numClasses;
  const targeted = problem.targets !== null;
  const cls = problem.targets ?? problem.labels;
  const onehot = oneHot(cls, k);
  // Reference code: w0 = arctanh((x - 0.5) * 2 * 0.999999); distances are to tanh(w0)/2 + 0.5.
  const w0 = tf.tidy(() => tf.atanh(tf.mul(tf.sub(tf.mul(x, 2), 1), 0.999999)) as tf.Tensor4D);
  const x0 = tf.tidy(() => tf.add(tf.div(tf.tanh(w0), 2), 0.5) as tf.Tensor4D);
  let bestAttack = tf.clone(x);
  const bestL2 = new Float64Array(n).fill(BIG);
  const lower = new Float64Array(n).fill(0);
  const upper = new Float64Array(n).fill(BIG);
  const c = new Float64Array(n).fill(p.initialConst);
  const repeat = p.binarySearchSteps >= 10;
  const beta1 = 0.9, beta2 = 0.999, adamEps = 1e-8;
  const totalSteps = p.binarySearchSteps * p.maxIterations;
  const abortEvery = Math.max(1, Math.floor(p.maxIterations / 10));
  let stepsRun = 0;
  let returned = false;
  let modifier: tf.Tensor4D | null = null, m1: tf.Tensor4D | null = null, m2: tf.Tensor4D | null = null;

  try {
    for (let outer = 0; outer < p.binarySearchSteps; outer++) {
      if (repeat && outer === p.binarySearchSteps - 1) for (let i = 0; i < n; i++) c[i] = upper[i];
      const constT = tf.tensor1d(Float32Array.from(c));
      modifier = tf.zerosLike(x);
      m1 = tf.zerosLike(x);
      m2 = tf.zerosLike(x);
      const roundFound = new Uint8Array(n);
      let prev = Infinity;
      try {
        for (let it = 0; it < p.maxIterations; it++) {
          ctx.checkpoint();
          const step = it + 1;
          const mod = modifier!, a = m1!, b = m2!;
          const r = tf.tidy(() => {
            const kept: { z?: tf.Tensor2D; l2?: tf.Tensor1D; img?: tf.Tensor4D } = {};
            const { value, grad } = tf.valueAndGrad((md: tf.Tensor) => {
              const img = tf.add(tf.div(tf.tanh(tf.add(md, w0)), 2), 0.5) as tf.Tensor4D;
              const l2 = tf.sum(tf.square(tf.sub(img, x0)), [1, 2, 3]) as tf.Tensor1D;
              const z = classifier.logits(img);
              const f = objectiveOf(p.objective, z, onehot, targeted, p.kappa);
              kept.z = tf.keep(tf.clone(z));
              kept.l2 = tf.keep(tf.clone(l2));
              kept.img = tf.keep(tf.clone(img));
              return tf.add(tf.sum(l2), tf.sum(tf.mul(constT, f)));
            })(mod);
            // Adam as in TF1: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t).
            const lrT = (p.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
            const na = tf.add(tf.mul(a, beta1), tf.mul(grad, 1 - beta1)) as tf.Tensor4D;
            const nb = tf.add(tf.mul(b, beta2), tf.mul(tf.square(grad), 1 - beta2)) as tf.Tensor4D;
            const nm = tf.sub(mod, tf.mul(tf.div(na, tf.add(tf.sqrt(nb), adamEps)), lrT)) as tf.Tensor4D;
            return { value, nm, na, nb, z: kept.z!, l2: kept.l2!, img: kept.img! };
          });
          mod.dispose(); a.dispose(); b.dispose();
          modifier = r.nm; m1 = r.na; m2 = r.nb;
          const loss = r.value.dataSync()[0];
          const l2s = r.l2.dataSync();
          const zs = r.z.dataSync() as Float32Array;
          r.value.dispose(); r.l2.dispose(); r.z.dispose();
          if (!Number.isFinite(loss)) {
            r.img.dispose();
            throw new Error(`C&W loss became ${loss} (non-finite logits or gradient)`);
          }
          // Book-keeping on the iterate the loss was computed at (as the reference code does).
          const improved = new Uint8Array(n);
          let anyImproved = false;
          for (let i = 0; i < n; i++) {
            if (!meetsGoal(zs, i * k, k, cls[i], targeted, p.kappa)) continue;
            roundFound[i] = 1;
            if (l2s[i] < bestL2[i]) { bestL2[i] = l2s[i]; improved[i] = 1; anyImproved = true; }
          }
          if (anyImproved) {
            const nbst = tf.tidy(() => rowWhere(tf.tensor1d(improved, 'bool'), r.img, bestAttack));
            bestAttack.dispose();
            bestAttack = nbst;
          }
          r.img.dispose();
          stepsRun++;
          let found = 0, sumL2 = 0;
          for (let i = 0; i < n; i++) if (bestL2[i] < BIG) { found++; sumL2 += Math.sqrt(bestL2[i]); }
          problem.progress(outer * p.maxIterations + step, totalSteps, `binary search ${outer + 1}/${p.binarySearchSteps}`, {
            loss,
            found: found / n,
            meanL2: found ? sumL2 / found : 0,
          });
          if (p.abortEarly && it % abortEvery === 0) {
            if (loss > prev * 0.9999) break;
            prev = loss;
          }
        }
      } finally {
        constT.dispose();
        modifier?.dispose(); m1?.dispose(); m2?.dispose();
        modifier = m1 = m2 = null;
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
      ctx.log(`C&W round ${outer + 1}: ${Array.from(roundFound).reduce((s, v) => s + v, 0)}/${n} found`);
    }
    returned = true;
    return { adversarial: bestAttack, iterations: new Int32Array(n).fill(stepsRun) };
  } finally {
    if (!returned) bestAttack.dispose();
    onehot.dispose();
    w0.dispose();
    x0.dispose();
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
