/**
 * APGD, Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks", ICML 2020), Linf and L2, following the authors' code
 * (fra31/auto-attack, autopgd_base.py).
 *
 * PGD without a step size to tune. From a random point of the eps-ball, N_iter iterations of
 *     z      = P(x_k + eta_k * s(grad L(x_k)))                       s = sign (Linf) or g/||g||_2 (L2)
 *     x_k+1  = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_k-1))    alpha = 0.75 (1 at the first step)
 * where P projects onto the eps-ball and [0, 1]. The step eta starts at 2 eps and is halved, per
 * example, at checkpoints w_0 = 0, w_1 = 0.22 N, w_j+1 = w_j + max(w_j - w_j-1 - 0.03 N, 0.06 N)
 * (apgdCheckpoints) when either
 *   1. the loss rose in fewer than rho = 0.75 of the steps since the last checkpoint (oscillation), or
 *   2. the step was not halved at the last checkpoint and the best loss has not improved since;
 * on halving, the example restarts from the best point found so far (x_max). The best-loss point is
 * kept per example; a point that meets the goal is kept as soon as it is found.
 *
 * Losses: 'ce' (cross-entropy; targeted: minus the target's CE) and 'dlr', the Difference of Logits
 * Ratio, invariant to shifting and scaling the logits (so a saturated softmax, as in defensive
 * distillation, does not stop it):
 *     DLR(z, y)   = -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12)          (z sorted: z_pi1 >= z_pi2 >= ...)
 *     DLR-T(z, y, t) = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * 'apgd-t' (APGD-T, the AutoAttack variant) is untargeted in its goal: for each of the `targetClasses`
 * (default 9) classes ranked highest after the label on the clean input, it runs APGD on DLR-T towards
 * that class, on the points no earlier target broke.
 *
 * `restarts` > 1 re-runs points still unbroken from a new random start (seed + restart), as AutoAttack's
 * n_restarts does. Iterations reported per example: gradient steps spent until success (all of them
 * when unbroken), summed over restarts and targets.
 *
 * Deviations from the reference code, each small:
 * - Random start: a uniform point of the ball (as PGD's), where the code takes x + eps * t / ||t||
 *   (t uniform or Gaussian), a point on the sphere's scale; the first step, 2 eps long, reaches the
 *   boundary either way. It is drawn per image (seeded by seed + restart and the image's pixels,
 *   per-example.ts), where the code draws one tensor per batch: an image's result does not depend on
 *   the batch it is in, so evaluate can split its chunks into pool-sized shards.
 * - The oscillation count at the first checkpoint compares step 0 with the starting loss; the code
 *   compares it with a zero-filled slot (Python index -1), which counts a rise whenever the loss is > 0.
 * - The whole batch stops once every example meets the goal (the code runs all N_iter steps).
 * Defaults are the paper's: N_iter = 100, rho = 0.75, alpha = 0.75, eta_0 = 2 eps, one restart, 9 targets.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { ascentGradient, classifierGradient, normalizeGradient, type GradResult, oneHot, projectBall, rowMask, rowWhere } from './ops';
import { ballStartPerExample } from './per-example';
import type { AttackDefinition, AttackOutput, AttackProblem, Paper } from './types';

export const CROCE_HEIN_2020: Paper = {
  authors: 'Francesco Croce, Matthias Hein',
  title: 'Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks',
  venue: 'ICML',
  year: 2020,
  url: 'https://arxiv.org/abs/2003.01690',
};

/** The paper's constants. */
export const APGD_RHO = 0.75;
export const APGD_MOMENTUM = 0.75;
const P1 = 0.22, DECR = 0.03, MIN_LEN = 0.06;

/**
 * The iterations at which APGD may halve its step (the reference code's counter: the first window
 * is max(floor(0.22 N), 1) steps, each next one shorter by max(floor(0.03 N), 1) but at least
 * max(floor(0.06 N), 1)). For N = 100: 22, 41, 57, 70, 80, 87, 93, 99.
 */
export function apgdCheckpoints(steps: number): number[] {
  const out: number[] = [];
  let k = Math.max(Math.floor(P1 * steps), 1);
  const decr = Math.max(Math.floor(DECR * steps), 1), min = Math.max(Math.floor(MIN_LEN * steps), 1);
  let at = 0;
  for (;;) {
    at += k;
    if (at > steps) break;
    out.push(at);
    k = Math.max(k - decr, min);
  }
  return out;
}

/**
 * The halving rule at one checkpoint, for one example. `losses` are the losses of the iterates of the
 * window that just ended, preceded by the loss before it (length window + 1): condition 1 counts the
 * steps where the loss rose. Condition 2: not halved last time and the best loss did not improve.
 */
export function apgdShouldHalve(losses: ArrayLike<number>, rho: number, halvedLastTime: boolean, bestAtLastCheck: number, best: number): boolean {
  const window = losses.length - 1;
  let rises = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i] > losses[i - 1]) rises++;
  const oscillating = rises <= window * rho;
  const stalled = !halvedLastTime && bestAtLastCheck >= best;
  return oscillating || stalled;
}

/**
 * The `count` largest logits per row, largest first, differentiable (tfjs has no TopK gradient): each
 * is a max over the row with the earlier maxima masked out by one-hots of their (constant) positions.
 */
function sortedTop(z: tf.Tensor2D, count: number): tf.Tensor1D[] {
  const out: tf.Tensor1D[] = [];
  let masked: tf.Tensor2D = z;
  for (let j = 0; j < count; j++) {
    const at = tf.oneHot(tf.argMax(masked, 1), z.shape[1]).toFloat();
    out.push(tf.sum(tf.mul(z, at), 1) as tf.Tensor1D);
    masked = tf.add(masked, tf.mul(at, -1e30)) as tf.Tensor2D;
  }
  return out;
}

/** DLR (untargeted), per example: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12). Needs >= 3 classes. */
export function dlrLoss(z: tf.Tensor2D, onehotY: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [z1, , z3] = sortedTop(z, 3);
    const zy = tf.sum(tf.mul(z, onehotY), 1);
    const other = tf.max(tf.add(z, tf.mul(onehotY, -1e30)), 1);
    const scale = tf.add(tf.sub(z1, z3), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, other), scale)) as tf.Tensor1D;
  });
}

/** Targeted DLR, per example: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12). Needs >= 4 classes. */
export function dlrTargetedLoss(z: tf.Tensor2D, onehotY: tf.Tensor2D, onehotT: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [z1, , z3, z4] = sortedTop(z, 4);
    const zy = tf.sum(tf.mul(z, onehotY), 1);
    const zt = tf.sum(tf.mul(z, onehotT), 1);
    const scale = tf.add(tf.sub(z1, tf.mul(tf.add(z3, z4), 0.5)), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, zt), scale)) as tf.Tensor1D;
  });
}

/** The loss APGD ascends, built per run from the rows' labels and targets. */
export type ApgdLoss = 'ce' | 'dlr';

interface ApgdSettings {
  norm: 'l2' | 'linf';
  eps: number;
  steps: number;
  rho: number;
  seed: number;
}

interface RunOut {
  adv: Float32Array;
  success: Uint8Array;
  bestLoss: Float32Array;
  iterations: Int32Array;
}

/**
 * One APGD run on the rows `rows` of the batch. `objective(x)` is the gradient, logits and values of the
 * per-example loss to maximise on those rows (`objectiveGradient`). Progress: steps [stepOffset, stepOffset + steps + 1) of totalSteps.
 */
async function apgdOnce(
  problem: AttackProblem, rows: Int32Array, objective: (x: tf.Tensor4D) => GradResult, s: ApgdSettings,
  ctx: JobContext, stepOffset: number, totalSteps: number, phase: string,
): Promise<RunOut> {
  const { classifier } = problem;
  const m = rows.length;
  const rowsT = tf.tensor1d(rows, 'int32');
  const x0 = tf.gather(problem.x, rowsT) as tf.Tensor4D;
  const checkpoints = new Set(apgdCheckpoints(s.steps));
  const eta = new Float32Array(m).fill(2 * s.eps);
  const found = new Uint8Array(m);
  const iterations = new Int32Array(m).fill(s.steps);
  const bestLoss = new Float32Array(m).fill(-Infinity);
  const history: Float32Array[] = []; // losses of the iterates since the last checkpoint (first: the loss before the window)
  const halvedLast = new Uint8Array(m);
  let bestAtCheck = new Float32Array(m);
  const x0Data = x0.dataSync() as Float32Array;
  let xAdv = tf.tensor4d(ballStartPerExample(x0Data, x0Data.length / m, s.norm, s.eps, s.seed), x0.shape);
  let xPrev = tf.clone(xAdv);
  let grad: tf.Tensor4D | null = null;
  let xBest = tf.clone(xAdv); // highest-loss point
  let gBest: tf.Tensor4D | null = null;
  let advFound = tf.clone(xAdv); // first point meeting the goal
  const project = (x: tf.Tensor4D) => tf.clipByValue(projectBall(x0, x, s.norm, s.eps), 0, 1) as tf.Tensor4D;
  try {
    for (let t = 0; t <= s.steps; t++) {
      ctx.checkpoint();
      if (t > 0) {
        // The momentum step from x_k (xAdv) with the gradient at x_k.
        const a = t === 1 ? 1 : APGD_MOMENTUM;
        const g = grad!;
        const next = tf.tidy(() => {
          const etaT = rowMask(tf.tensor1d(eta), 4);
          const z1 = project(tf.add(xAdv, tf.mul(normalizeGradient(g, s.norm), etaT)) as tf.Tensor4D);
          const moved = tf.add(tf.add(xAdv, tf.mul(tf.sub(z1, xAdv), a)), tf.mul(tf.sub(xAdv, xPrev), 1 - a)) as tf.Tensor4D;
          return project(moved);
        });
        xPrev.dispose();
        xPrev = xAdv;
        xAdv = next;
      }
      const r = tf.tidy(() => {
        const g = objective(xAdv);
        return { grad: g.grad, logits: g.logits, values: g.values };
      });
      grad?.dispose();
      grad = r.grad;
      const isAdv = problem.isAdversarial(r.logits, rowsT);
      const adv = isAdv.dataSync();
      const loss = Float32Array.from(r.values.dataSync());
      tf.dispose([r.logits, r.values, isAdv]);
      for (let i = 0; i < m; i++) if (!Number.isFinite(loss[i])) throw new Error(`APGD loss became ${loss[i]} (the model or its gradient produced non-finite values)`);
      const newly = new Uint8Array(m), improved = new Uint8Array(m);
      let anyNew = false, anyImproved = false, count = 0;
      for (let i = 0; i < m; i++) {
        if (adv[i] && !found[i]) { found[i] = 1; newly[i] = 1; iterations[i] = t; anyNew = true; }
        if (loss[i] > bestLoss[i]) { bestLoss[i] = loss[i]; improved[i] = 1; anyImproved = true; }
        count += found[i];
      }
      if (anyNew) {
        const nb = tf.tidy(() => rowWhere(tf.tensor1d(newly, 'bool'), xAdv, advFound));
        advFound.dispose();
        advFound = nb;
      }
      if (anyImproved) {
        const mask = tf.tensor1d(improved, 'bool');
        const nx = tf.tidy(() => rowWhere(mask, xAdv, xBest));
        const g = grad, gb = gBest;
        const ng: tf.Tensor4D = gb ? tf.tidy(() => rowWhere(mask, g, gb)) : tf.clone(g);
        mask.dispose();
        xBest.dispose(); gBest?.dispose();
        xBest = nx; gBest = ng;
      }
      if (t === 0) bestAtCheck = Float32Array.from(bestLoss);
      history.push(loss);
      if (checkpoints.has(t)) {
        // Halve the step where the rule says so, and restart those examples from their best point.
        const halve = new Uint8Array(m);
        let anyHalve = false;
        for (let i = 0; i < m; i++) {
          const h = apgdShouldHalve(history.map((l) => l[i]), s.rho, halvedLast[i] === 1, bestAtCheck[i], bestLoss[i]);
          halvedLast[i] = h ? 1 : 0;
          if (h) { eta[i] /= 2; halve[i] = 1; anyHalve = true; }
        }
        bestAtCheck = Float32Array.from(bestLoss);
        history.splice(0, history.length - 1);
        if (anyHalve) {
          const mask = tf.tensor1d(halve, 'bool');
          const nx = tf.tidy(() => rowWhere(mask, xBest, xAdv));
          const g = grad, gb = gBest!;
          const ng = tf.tidy(() => rowWhere(mask, gb, g));
          mask.dispose();
          xAdv.dispose(); g.dispose();
          xAdv = nx; grad = ng;
        }
      }
      problem.progress(stepOffset + t, totalSteps, phase, { successRate: count / m, loss: mean(bestLoss) });
      if (count === m) break;
    }
    const out = tf.tidy(() => rowWhere(tf.tensor1d(found, 'bool'), advFound, xBest));
    const advData = out.dataSync() as Float32Array;
    out.dispose();
    return { adv: advData, success: found, bestLoss, iterations };
  } finally {
    tf.dispose([rowsT, x0, xAdv, xPrev, xBest, advFound]);
    grad?.dispose();
    gBest?.dispose();
  }
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

/** One round of runs: a label/target per row, the rows still unbroken; merges into the batch's result. */
interface Book {
  out: Float32Array;
  per: number;
  bestLoss: Float32Array;
  success: Uint8Array;
  iterations: Int32Array;
}

function merge(book: Book, rows: Int32Array, res: RunOut): void {
  rows.forEach((i, j) => {
    book.iterations[i] += res.iterations[j];
    if (res.success[j] || res.bestLoss[j] > book.bestLoss[i]) {
      book.out.set(res.adv.subarray(j * book.per, (j + 1) * book.per), i * book.per);
      book.bestLoss[i] = res.bestLoss[j];
      book.success[i] = res.success[j];
    }
  });
}

function newBook(problem: AttackProblem): Book {
  const n = problem.labels.length;
  return {
    out: Float32Array.from(problem.x.dataSync()), per: problem.x.size / n,
    bestLoss: new Float32Array(n).fill(-Infinity), success: new Uint8Array(n), iterations: new Int32Array(n),
  };
}

/**
 * The per-row objective of the plain APGD (CE or DLR; targeted when the problem has targets), as its gradient:
 * CE (minus the target's CE) through ascentGradient (one fused call where the classifier has one), DLR by
 * tfjs autodiff of the loss through classifierGradient.
 */
function rowObjective(problem: AttackProblem, rows: Int32Array, loss: ApgdLoss): { objective: (x: tf.Tensor4D) => GradResult; dispose: () => void } {
  const k = problem.numClasses;
  const { classifier } = problem;
  const labels = Int32Array.from(rows, (r) => problem.labels[r]);
  const targets = problem.targets ? Int32Array.from(rows, (r) => problem.targets![r]) : null;
  if (loss === 'ce') return { objective: (x) => ascentGradient(classifier, x, 'ce', targets ?? labels, targets !== null), dispose: () => {} };
  const ohY = oneHot(labels, k);
  const ohT = targets ? oneHot(targets, k) : null;
  const objective = (x: tf.Tensor4D) => classifierGradient(classifier, x, (z) => (ohT ? dlrTargetedLoss(z, ohY, ohT) : dlrLoss(z, ohY)));
  return { objective, dispose: () => { ohY.dispose(); ohT?.dispose(); } };
}

export interface ApgdParams {
  eps: number;
  steps: number;
  restarts: number;
  loss: ApgdLoss;
  rho: number;
  seed: number;
}

/** APGD with restarts on a whole batch ('apgd', 'apgd-l2'). */
export async function autoPgd(problem: AttackProblem, norm: 'l2' | 'linf', p: ApgdParams, ctx: JobContext): Promise<AttackOutput> {
  const n = problem.labels.length;
  const book = newBook(problem);
  let remaining = Int32Array.from({ length: n }, (_, i) => i);
  const total = p.restarts * (p.steps + 1);
  for (let r = 0; r < p.restarts && remaining.length > 0; r++) {
    const obj = rowObjective(problem, remaining, p.loss);
    try {
      const res = await apgdOnce(problem, remaining, obj.objective, { norm, eps: p.eps, steps: p.steps, rho: p.rho, seed: p.seed + r }, ctx, r * (p.steps + 1), total,
        p.restarts > 1 ? `apgd-${p.loss} restart ${r + 1}/${p.restarts}` : `apgd-${p.loss}`);
      merge(book, remaining, res);
    } finally {
      obj.dispose();
    }
    remaining = remaining.filter((i) => !book.success[i]);
  }
  return { adversarial: tf.tensor4d(book.out, problem.x.shape), iterations: book.iterations };
}

export interface ApgdTParams {
  eps: number;
  steps: number;
  restarts: number;
  targetClasses: number;
  rho: number;
  seed: number;
}

/**
 * The classes ranked 2nd, 3rd, ... (targetClasses of them) by the clean logits of each row, as
 * AutoAttack's APGD-T picks its targets (sorted logits, the top one excluded; when the clean
 * prediction is wrong, the label may be among them: that run then only moves along -z_y + z_y = 0
 * and AutoAttack does the same).
 */
export function rankedTargets(logits: Float32Array, n: number, k: number, labels: Int32Array, count: number): Int32Array[] {
  const out: Int32Array[] = [];
  const orders: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(logits.subarray(i * k, (i + 1) * k));
    orders.push(row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, j]) => j));
  }
  for (let c = 1; c <= count; c++) out.push(Int32Array.from({ length: n }, (_, i) => orders[i][c] ?? labels[i]));
  return out;
}

/** APGD-T on a whole batch ('apgd-t', 'apgd-t-l2'): targeted DLR towards each top class in turn, untargeted success. */
export async function autoPgdTargeted(problem: AttackProblem, norm: 'l2' | 'linf', p: ApgdTParams, ctx: JobContext): Promise<AttackOutput> {
  if (problem.targets) {
    // A targeted goal names the class: one targeted-DLR run towards it.
    return autoPgd(problem, norm, { eps: p.eps, steps: p.steps, restarts: p.restarts, loss: 'dlr', rho: p.rho, seed: p.seed }, ctx);
  }
  const n = problem.labels.length, k = problem.numClasses;
  const clean = tf.tidy(() => problem.classifier.logits(problem.x));
  const z0 = clean.dataSync() as Float32Array;
  clean.dispose();
  const count = Math.min(p.targetClasses, k - 1);
  const targets = rankedTargets(z0, n, k, problem.labels, count);
  const book = newBook(problem);
  let remaining = Int32Array.from({ length: n }, (_, i) => i);
  const total = count * p.restarts * (p.steps + 1);
  let run = 0;
  for (let c = 0; c < count; c++) {
    for (let r = 0; r < p.restarts && remaining.length > 0; r++, run++) {
      const ohY = oneHot(Int32Array.from(remaining, (i) => problem.labels[i]), k);
      const ohT = oneHot(Int32Array.from(remaining, (i) => targets[c][i]), k);
      try {
        const res = await apgdOnce(problem, remaining, (xi) => classifierGradient(problem.classifier, xi, (z) => dlrTargetedLoss(z, ohY, ohT)),
          { norm, eps: p.eps, steps: p.steps, rho: p.rho, seed: p.seed + r }, ctx, run * (p.steps + 1), total, `apgd-t target ${c + 1}/${count}`);
        merge(book, remaining, res);
      } finally {
        ohY.dispose(); ohT.dispose();
      }
      remaining = remaining.filter((i) => !book.success[i]);
    }
  }
  return { adversarial: tf.tensor4d(book.out, problem.x.shape), iterations: book.iterations };
}

const stepsField = z.number().int().min(1).max(100_000).default(100).describe('Iterations N_iter per run (the paper: 100).');
const restartsField = z.number().int().min(1).max(100).default(1).describe('Runs from fresh random starts for points still unbroken (AutoAttack standard: 1).');
const rhoField = z.number().gt(0).lt(1).default(APGD_RHO).describe('Halve the step at a checkpoint when the loss rose in at most this fraction of the window (the paper: 0.75).');
const seedField = z.number().int().min(0).default(0).describe('Seed of the random starts.');
const linfEps = z.number().positive().max(1).default(0.3).describe('Linf budget (pixels in [0, 1]): 0.3 MNIST, 8/255 CIFAR-10.');
const l2Eps = z.number().positive().default(2).describe('L2 budget of the whole perturbation (pixels in [0, 1]): 2 MNIST, 0.5 CIFAR-10.');
const lossField = z.enum(['ce', 'dlr']).default('ce').describe("'ce': cross-entropy (APGD-CE); 'dlr': Difference of Logits Ratio, invariant to the logits' scale (APGD-DLR).");
const targetsField = z.number().int().min(1).max(1000).default(9).describe('Untargeted goal: how many of the top-ranked other classes to target in turn (AutoAttack: 9).');

const epsFor = { linf: linfEps, l2: l2Eps } as const;
const apgdSchemaFor = (norm: 'l2' | 'linf') => z.strictObject({ eps: epsFor[norm], steps: stepsField, restarts: restartsField, loss: lossField, rho: rhoField, seed: seedField });
const apgdTSchemaFor = (norm: 'l2' | 'linf') => z.strictObject({ eps: epsFor[norm], steps: stepsField, restarts: restartsField, targetClasses: targetsField, rho: rhoField, seed: seedField });

const needClasses = (min: number, why: string) => (_p: unknown, classifier: { numClasses: number }) => {
  if (classifier.numClasses < min) throw badInput(`${why} needs at least ${min} classes; the classifier has ${classifier.numClasses}`);
};

const APGD_DESCRIPTION =
  'Auto-PGD: PGD with momentum 0.75 whose step size (2 eps at first) is halved per example at fixed checkpoints ' +
  'when the loss stops rising, restarting from the best point; cross-entropy or the scale-invariant DLR loss. ' +
  'Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks", ICML 2020.';

const APGD_T_DESCRIPTION =
  'APGD-T: Auto-PGD on the targeted DLR loss -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), run towards each of the ' +
  '9 classes ranked highest after the label in turn, on the points still unbroken; success is any wrong class. ' +
  'The second attack of AutoAttack (Croce & Hein, ICML 2020).';

const NORM_NAME = { linf: 'Linf', l2: 'L2' } as const;

/** APGD in one norm ('apgd', 'apgd-l2'): the Linf and L2 entries differ only in the norm and the eps default. */
function apgdDefinition(norm: 'l2' | 'linf') {
  const schema = apgdSchemaFor(norm);
  const def: AttackDefinition<z.output<typeof schema>> = {
    id: norm === 'linf' ? 'apgd' : 'apgd-l2', name: `APGD (${NORM_NAME[norm]})`, norm, description: APGD_DESCRIPTION, paper: CROCE_HEIN_2020,
    paramsSchema: schema, defaults: schema.parse({}),
    checkParams: (p, c) => { if (p.loss === 'dlr') needClasses(4, 'The DLR loss')(p, c); },
    epsilonBall: (p) => ({ norm, eps: p.eps }),
    run: (problem, p, ctx) => autoPgd(problem, norm, p, ctx),
  };
  return def;
}

/** APGD-T in one norm ('apgd-t', 'apgd-t-l2'). */
function apgdTDefinition(norm: 'l2' | 'linf') {
  const schema = apgdTSchemaFor(norm);
  const def: AttackDefinition<z.output<typeof schema>> = {
    id: norm === 'linf' ? 'apgd-t' : 'apgd-t-l2', name: `APGD-T (${NORM_NAME[norm]}, targeted DLR)`, norm, description: APGD_T_DESCRIPTION, paper: CROCE_HEIN_2020,
    paramsSchema: schema, defaults: schema.parse({}),
    checkParams: needClasses(4, 'APGD-T (targeted DLR)'),
    epsilonBall: (p) => ({ norm, eps: p.eps }),
    run: (problem, p, ctx) => autoPgdTargeted(problem, norm, p, ctx),
  };
  return def;
}

export const apgd = apgdDefinition('linf');
export const apgdL2 = apgdDefinition('l2');
export const apgdT = apgdTDefinition('linf');
export const apgdTL2 = apgdTDefinition('l2');
