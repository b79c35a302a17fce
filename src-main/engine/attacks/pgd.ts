/**
 * PGD, Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu 2018), Linf and L2, and
 * BIM (Kurakin, Goodfellow & Bengio 2017) = PGD without the random start.
 *
 * One fixed loop, as in Foolbox's gradient_descent_base: start at x (or a uniformly random point of
 * the eps-ball), then `steps` times: ascend the loss by `stepSize` along the normalised gradient
 * (sign(g) for Linf, g/||g||_2 for L2), project back onto the eps-ball, clip to [0, 1]. The norm only
 * changes normalize / project / random start (ops.ts).
 *
 * Per example the first iterate that meets the goal is kept. With `restarts` > 1, examples still
 * unbroken are attacked again from a new random start; across restarts each example keeps its first
 * success, else its highest-loss end point.
 *
 * Loss: 'ce' (cross-entropy) or 'margin', the C&W margin on logits, min(max_{i!=y} Z_i - Z_y, kappa).
 *
 * Linf with the margin loss: we provide PGD-Linf with the C&W margin loss ('pgd-margin') rather than
 * C&W's own Linf attack. C&W-Linf minimises the distance through an outer loop over a shrinking tau
 * and an inner loop over c, each an Adam run: tens of thousands of gradient steps per image, too slow
 * for batches on this engine. Linf evaluations ask "is there an adversarial within eps?", which PGD
 * answers directly; Madry et al.'s MNIST challenge and Croce & Hein's AutoAttack found PGD on the
 * margin ("CW") loss at least as strong as C&W-Linf at a fixed eps, and the margin loss avoids the
 * saturated softmax that weakens CE against distilled or overconfident models.
 *
 * Default step size: 2.5 * eps / steps (Madry et al.), capped at eps (eps/4 at 10 steps), so the
 * iterates can cross the whole ball even from a random start.
 * Example: runAttack('pgd', clf, x, y, { kind: 'targeted', target: 'next' }, { eps: 0.3, steps: 40 }).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { ascentObjective, type AscentLoss } from './losses';
import { ascentGradient, normalizeGradient, oneHot, projectBall, randomStart, rowWhere } from './ops';
import type { AttackDefinition, AttackOutput, AttackProblem, Paper } from './types';

/** The resolved settings of one gradient-descent attack. */
export interface GradientSettings {
  norm: 'l2' | 'linf';
  eps: number;
  steps: number;
  stepSize?: number;
  randomStart: boolean;
  restarts: number;
  loss: AscentLoss;
  kappa: number;
  seed: number;
}

/** Madry's 2.5 * eps / steps, capped at eps. */
export function defaultStepSize(eps: number, steps: number): number {
  return Math.min(eps, (2.5 * eps) / steps);
}

interface RunResult {
  adv: Float32Array;
  success: Uint8Array;
  loss: Float32Array;
  iterations: Int32Array;
}

/** One PGD run on the rows `rows` of the batch. */
async function pgdOnce(problem: AttackProblem, rows: Int32Array, s: GradientSettings, seed: number, ctx: JobContext, stepOffset: number, totalSteps: number): Promise<RunResult> {
  const { classifier } = problem;
  const m = rows.length;
  const stepSize = s.stepSize ?? defaultStepSize(s.eps, s.steps);
  const targeted = problem.targets !== null;
  const goalClasses = problem.targets ?? problem.labels;
  const rowsT = tf.tensor1d(rows, 'int32');
  const x0 = tf.gather(problem.x, rowsT) as tf.Tensor4D;
  const classes = Int32Array.from(rows, (r) => goalClasses[r]);
  const onehot = oneHot(classes, problem.numClasses);
  const objective = (z: tf.Tensor2D) => ascentObjective(s.loss, z, onehot, targeted, s.kappa);
  let xAdv = s.randomStart ? randomStart(x0, s.norm, s.eps, seed) : tf.clone(x0);
  let best = tf.clone(x0);
  const found = new Uint8Array(m);
  const iterations = new Int32Array(m).fill(s.steps);
  let loss: Float32Array = new Float32Array(m);
  try {
    for (let t = 0; t <= s.steps; t++) {
      ctx.checkpoint();
      // Evaluate the current iterate (and, except after the last step, take a step from it).
      const last = t === s.steps;
      const r: { next?: tf.Tensor4D; logits: tf.Tensor2D; values: tf.Tensor1D } = tf.tidy(() => {
        if (last) {
          const logits = classifier.logits(xAdv);
          return { logits, values: objective(logits) };
        }
        const g = ascentGradient(classifier, xAdv, s.loss, classes, targeted, s.kappa, s.norm === 'linf');
        const moved = tf.add(xAdv, tf.mul(normalizeGradient(g.grad, s.norm), stepSize)) as tf.Tensor4D;
        return { next: tf.clipByValue(projectBall(x0, moved, s.norm, s.eps), 0, 1) as tf.Tensor4D, logits: g.logits, values: g.values };
      });
      const isAdv = problem.isAdversarial(r.logits, rowsT);
      const adv = isAdv.dataSync();
      loss = r.values.dataSync() as Float32Array;
      r.logits.dispose();
      r.values.dispose();
      const newly = new Uint8Array(m);
      let any = false, count = 0;
      for (let i = 0; i < m; i++) {
        if (adv[i] && !found[i]) { newly[i] = 1; found[i] = 1; iterations[i] = t; any = true; }
        count += found[i];
      }
      isAdv.dispose();
      if (any) {
        const current = xAdv, previous = best;
        const nb = tf.tidy(() => rowWhere(tf.tensor1d(newly, 'bool'), current, previous));
        best.dispose();
        best = nb;
      }
      problem.progress(stepOffset + t, totalSteps, s.randomStart && s.restarts > 1 ? `restart ${Math.floor(stepOffset / (s.steps + 1)) + 1}/${s.restarts}` : 'pgd', {
        successRate: count / m,
        loss: mean(loss),
      });
      if (r.next) {
        xAdv.dispose();
        xAdv = r.next;
      }
      if (count === m) break;
    }
    const out = tf.tidy(() => rowWhere(tf.tensor1d(found, 'bool'), best, xAdv));
    const advData = out.dataSync() as Float32Array;
    out.dispose();
    return { adv: advData, success: found, loss, iterations };
  } finally {
    rowsT.dispose();
    x0.dispose();
    onehot.dispose();
    xAdv.dispose();
    best.dispose();
  }
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

/** PGD with restarts on a whole batch; used by 'pgd', 'pgd-l2', 'pgd-margin' and 'bim'. */
export async function gradientDescentAttack(problem: AttackProblem, s: GradientSettings, ctx: JobContext): Promise<AttackOutput> {
  const n = problem.labels.length;
  const per = problem.x.size / n;
  const out = Float32Array.from(problem.x.dataSync());
  const bestLoss = new Float32Array(n).fill(-Infinity);
  const success = new Uint8Array(n);
  const iterations = new Int32Array(n);
  const restarts = s.randomStart ? s.restarts : 1;
  let remaining = Int32Array.from({ length: n }, (_, i) => i);
  for (let r = 0; r < restarts && remaining.length > 0; r++) {
    const res = await pgdOnce(problem, remaining, { ...s, restarts }, s.seed + r, ctx, r * (s.steps + 1), restarts * (s.steps + 1));
    remaining.forEach((i, j) => {
      iterations[i] += res.iterations[j];
      if (res.success[j] || res.loss[j] > bestLoss[i]) {
        out.set(res.adv.subarray(j * per, (j + 1) * per), i * per);
        bestLoss[i] = res.loss[j];
        success[i] = res.success[j];
      }
    });
    remaining = remaining.filter((i) => !success[i]);
  }
  return { adversarial: tf.tensor4d(out, problem.x.shape), iterations };
}

const MADRY: Paper = {
  authors: 'Aleksander Madry, Aleksandar Makelov, Ludwig Schmidt, Dimitris Tsipras, Adrian Vladu',
  title: 'Towards Deep Learning Models Resistant to Adversarial Attacks',
  venue: 'ICLR',
  year: 2018,
  url: 'https://arxiv.org/abs/1706.06083',
};

/** The Linf budget of PGD, PGD-margin and BIM. */
const linfEps = z.number().positive().max(1).default(0.3).describe('Linf budget (pixels in [0, 1]). 0.3 is the usual MNIST budget (Madry et al.); about 8/255 for CIFAR-10.');
const steps = (d: number) => z.number().int().min(1).max(100_000).default(d).describe('Gradient steps per run.');
const stepSize = z.number().positive().optional().describe('Step length per iteration (Linf: per pixel; L2: of the whole step). Default 2.5*eps/steps, at most eps.');
const randomStartField = z.boolean().default(true).describe('Start from a uniformly random point of the eps-ball (Madry) instead of x.');
const restartsField = z.number().int().min(1).max(100).default(1).describe('Runs from fresh random starts for examples still unbroken.');
const lossField = z.enum(['ce', 'margin']).default('ce').describe("'ce': cross-entropy; 'margin': C&W margin on logits.");
const kappaField = z.number().min(0).default(0).describe('Margin loss only: stop pushing once the margin exceeds kappa (confidence).');
const seedField = z.number().int().default(0).describe('Seed of the random starts.');

/** PGD's fields after its budget, the same in Linf and L2. */
const pgdFields = { steps: steps(40), stepSize, randomStart: randomStartField, restarts: restartsField, loss: lossField, kappa: kappaField, seed: seedField };

const pgdSchema = z.strictObject({
  eps: linfEps,
  ...pgdFields,
});
export type PgdParams = z.output<typeof pgdSchema>;

export const pgd: AttackDefinition<PgdParams> = {
  id: 'pgd',
  name: 'PGD (Linf)',
  norm: 'linf',
  description:
    'Projected Gradient Descent in the Linf ball: from a random start, repeated sign-gradient steps on the ' +
    'cross-entropy (or C&W margin) loss, each projected back into the eps-ball. Madry et al., "Towards Deep ' +
    'Learning Models Resistant to Adversarial Attacks", ICLR 2018.',
  paper: MADRY,
  paramsSchema: pgdSchema,
  defaults: pgdSchema.parse({}),
  epsilonBall: (p) => ({ norm: 'linf', eps: p.eps }),
  run: (problem, p, ctx) => gradientDescentAttack(problem, { norm: 'linf', ...p }, ctx),
};

const pgdL2Schema = z.strictObject({
  eps: z.number().positive().default(2).describe('L2 budget of the whole perturbation (pixels in [0, 1]).'),
  ...pgdFields,
});
export type PgdL2Params = z.output<typeof pgdL2Schema>;

export const pgdL2: AttackDefinition<PgdL2Params> = {
  id: 'pgd-l2',
  name: 'PGD (L2)',
  norm: 'l2',
  description:
    'Projected Gradient Descent in the L2 ball: steps along the L2-normalised gradient, the perturbation ' +
    'rescaled onto the eps-ball after each step; random start uniform in the ball. Madry et al., ICLR 2018.',
  paper: MADRY,
  paramsSchema: pgdL2Schema,
  defaults: pgdL2Schema.parse({}),
  epsilonBall: (p) => ({ norm: 'l2', eps: p.eps }),
  run: (problem, p, ctx) => gradientDescentAttack(problem, { norm: 'l2', ...p }, ctx),
};

const pgdMarginSchema = z.strictObject({
  eps: linfEps,
  steps: steps(40),
  stepSize,
  randomStart: randomStartField,
  restarts: restartsField,
  kappa: kappaField,
  seed: seedField,
});
export type PgdMarginParams = z.output<typeof pgdMarginSchema>;

export const pgdMargin: AttackDefinition<PgdMarginParams> = {
  id: 'pgd-margin',
  name: 'PGD-Linf, C&W margin loss',
  norm: 'linf',
  description:
    'Our Linf attack with the Carlini-Wagner loss: PGD in the Linf ball on the logit margin ' +
    'max_{i!=y} Z_i - Z_y (targeted: Z_t - max_{i!=t} Z_i), clamped at kappa. Insensitive to softmax ' +
    'saturation (distillation, overconfident logits). Carlini & Wagner, "Towards Evaluating the Robustness of ' +
    'Neural Networks", IEEE S&P 2017; PGD from Madry et al., ICLR 2018.',
  paper: {
    authors: 'Nicholas Carlini, David Wagner',
    title: 'Towards Evaluating the Robustness of Neural Networks',
    venue: 'IEEE Symposium on Security and Privacy',
    year: 2017,
    url: 'https://arxiv.org/abs/1608.04644',
  },
  paramsSchema: pgdMarginSchema,
  defaults: pgdMarginSchema.parse({}),
  epsilonBall: (p) => ({ norm: 'linf', eps: p.eps }),
  run: (problem, p, ctx) => gradientDescentAttack(problem, { norm: 'linf', loss: 'margin', ...p }, ctx),
};

const bimSchema = z.strictObject({
  eps: linfEps,
  steps: steps(10),
  stepSize,
  loss: lossField,
  kappa: kappaField,
});
export type BimParams = z.output<typeof bimSchema>;

export const bim: AttackDefinition<BimParams> = {
  id: 'bim',
  name: 'BIM (iterative FGSM)',
  norm: 'linf',
  description:
    'Basic Iterative Method: FGSM repeated with a small step, clipped to the eps-ball after each step; ' +
    'PGD without the random start. Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World", ICLR workshop 2017.',
  paper: {
    authors: 'Alexey Kurakin, Ian Goodfellow, Samy Bengio',
    title: 'Adversarial Examples in the Physical World',
    venue: 'ICLR Workshop',
    year: 2017,
    url: 'https://arxiv.org/abs/1607.02533',
  },
  paramsSchema: bimSchema,
  defaults: bimSchema.parse({}),
  epsilonBall: (p) => ({ norm: 'linf', eps: p.eps }),
  run: (problem, p, ctx) => gradientDescentAttack(problem, { norm: 'linf', randomStart: false, restarts: 1, seed: 0, ...p }, ctx),
};
