/**
 * Gradient-masking checks: warning-only sanity checks that a gradient-based robustness evaluation
 * can be trusted, from the guidelines of Carlini, Athalye, Papernot, Brendel, Rauber, Tsipras,
 * Goodfellow, Madry & Kurakin, "On Evaluating Adversarial Robustness" (arXiv:1902.06705, 2019),
 * section 5 ("basic sanity tests"), and AutoAttack's checks.py (Croce & Hein 2020).
 *
 * Each check is pass or warn, with its numbers and a one-paragraph explanation. A warning is not
 * proof of masking, and passing all checks is not proof of robustness; a warning means the numbers
 * of gradient attacks on this model should not be trusted before an adaptive attack (BPDA, EOT, a
 * different loss) has been tried.
 *
 * Checks (ids are stable):
 * - zero-gradients: examples whose input gradient is exactly zero (AutoAttack's check_zero_gradients),
 *   for the cross-entropy and for the logit-margin loss;
 * - iterative-beats-single-step: BIM (iterative FGSM, no random start) is stronger than FGSM at eps;
 * - whitebox-beats-transfer: white-box PGD is stronger than PGD transferred from an undefended surrogate;
 * - unbounded-reaches-zero: PGD at eps = 1 (Linf, the whole image box) drives accuracy to ~0;
 * - monotone-in-eps: robust accuracy does not increase with eps (independent runs at each eps);
 * - monotone-in-iterations: robust accuracy does not increase with more PGD steps;
 * - restarts-stable: random restarts lower robust accuracy only a little;
 * - loss-surface-smooth: the margin surface around inputs is neither shattered nor flat;
 * - deterministic: two forward passes agree (AutoAttack's check_randomized);
 * - outputs-are-logits: outputs are not probabilities (AutoAttack's check_range_output).
 *
 * "Robust accuracy" is the fraction of all n inputs classified correctly after the attack, so clean
 * errors count as broken and every comparison has the same denominator.
 */
import * as tf from '@tensorflow/tfjs';
import { silentContext, type JobContext, type Progress } from '../context';
import { badInput } from '../errors';
import { fromLayersModel, type Classifier } from '../models/classifier';
import { runAttack, toImageData, toLabels } from '../attacks/base';
import { argmaxAt, batchLogits } from '../models/predict';
import { transferAttack } from '../attacks/transfer';
import { crossEntropy, logitMargin } from '../attacks/losses';
import { oneHot } from '../attacks/ops';
import { lossSurface, type LossSurface } from './loss-surface';
import { buildModel, evaluate, trainClassifier } from '../models';
import type { ImageSet } from '../data/types';

export type CheckStatus = 'pass' | 'warn';

export interface MaskingCheck {
  id: string;
  name: string;
  status: CheckStatus;
  /** The numbers the decision was made on (accuracies are fractions of all n inputs). */
  numbers: Record<string, number | null>;
  /** What was measured, what a masked model looks like, and what this result means. */
  explanation: string;
}

export interface MaskingCheckOptions {
  /** Linf budget of the threat model (0.3 MNIST, 0.1 Fashion-MNIST, 8/255 CIFAR-10). */
  eps: number;
  /** PGD/BIM steps of the main attacks. Default 20. */
  steps?: number;
  /** Random restarts for the restarts check. Default 5. */
  restarts?: number;
  /** Epsilons of the monotonicity check (must include larger and smaller ones). Default eps x {1/4, 1/2, 1, 2}, at most 1. */
  epsilons?: number[];
  /** PGD step counts of the iterations check. Default {1, steps/4, steps, 2*steps}. */
  iterations?: number[];
  /** Undefended surrogate for the transfer check; without one that check is left out. */
  surrogate?: Classifier;
  /** Images whose loss surfaces are examined (clean-correct ones first). Default 2. */
  surfaceImages?: number;
  /** Grid points per axis of each surface. Default 21. */
  surfaceResolution?: number;
  /** Accuracy slack of the monotonicity and comparison checks. Default max(0.02, 2/n). */
  tolerance?: number;
  /** Largest drop of robust accuracy from restarts that still passes. Default 0.1. */
  restartsMaxDrop?: number;
  /** Largest accuracy at eps = 1 that still passes. Default 0.02. */
  unboundedMaxAccuracy?: number;
  /** Sign-change fraction above which a surface counts as shattered. Default 0.25. */
  shatteredThreshold?: number;
  /** Fraction of exactly flat steps above which a surface counts as flat (piecewise constant). Default 0.2. */
  flatThreshold?: number;
  seed?: number;
  batchSize?: number;
}

export interface MaskingReport {
  checks: MaskingCheck[];
  checksPassed: number;
  checksWarned: number;
  /** Ids of the checks that warned. */
  warned: string[];
  n: number;
  cleanAccuracy: number;
  eps: number;
  /** The options as used (defaults filled in; the surrogate as a flag). */
  settings: Record<string, number | boolean | number[]>;
  /** The loss surfaces the smoothness check looked at (for plotting). */
  surfaces: LossSurface[];
  seconds: number;
}

/** Smoothness of a grid of values, along rows and columns. */
export interface SurfaceRoughness {
  /** Among consecutive pairs of non-flat steps, the fraction whose signs differ (turning points). */
  signChangeFraction: number;
  /** Fraction of steps with no change at all (relative 1e-6). */
  flatFraction: number;
  /** Total variation over the range (max - min) of each line, averaged: 1 monotone, 2 one turning point, large for noise. */
  meanTotalVariationRatio: number;
}

/**
 * Roughness of a surface: a smooth function sampled on a grid turns (first differences change sign)
 * only at its few extrema, so with resolution r a line with one turning point scores 1/(r-2); a
 * shattered surface (Athalye et al. 2018's "shattered gradients") scores near 0.5, and a piecewise
 * constant one (a non-differentiable quantiser) has mostly flat steps.
 */
export function surfaceRoughness(grid: number[][]): SurfaceRoughness {
  const lines: number[][] = [];
  for (const row of grid) lines.push(row);
  const cols = grid[0]?.length ?? 0;
  for (let j = 0; j < cols; j++) lines.push(grid.map((r) => r[j]));
  let scale = 0;
  for (const l of lines) for (const v of l) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  const tiny = 1e-6 * Math.max(1, scale);
  let steps = 0, flat = 0, pairs = 0, changes = 0, tvSum = 0, tvLines = 0;
  for (const l of lines) {
    let prevSign = 0, tv = 0, lo = Infinity, hi = -Infinity;
    for (const v of l) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (let i = 1; i < l.length; i++) {
      const d = l[i] - l[i - 1];
      steps++;
      tv += Math.abs(d);
      if (!(Math.abs(d) > tiny)) { flat++; continue; }
      const s = Math.sign(d);
      if (prevSign !== 0) { pairs++; if (s !== prevSign) changes++; }
      prevSign = s;
    }
    if (hi - lo > tiny) { tvSum += tv / (hi - lo); tvLines++; }
  }
  return {
    signChangeFraction: pairs ? changes / pairs : 0,
    flatFraction: steps ? flat / steps : 0,
    meanTotalVariationRatio: tvLines ? tvSum / tvLines : 1,
  };
}

/** Per-example L1 norms of the input gradient of the CE and margin losses, batched. */
export async function inputGradientNorms(classifier: Classifier, data: Float32Array, labels: Int32Array, batchSize = 100, ctx: JobContext = silentContext): Promise<{ ce: Float32Array; margin: Float32Array }> {
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c, n = labels.length, k = classifier.numClasses;
  const ce = new Float32Array(n), margin = new Float32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    ctx.checkpoint();
    const m = Math.min(batchSize, n - s);
    const oh = oneHot(labels.subarray(s, s + m), k);
    const [a, b] = tf.tidy(() => {
      const x = tf.tensor4d(data.subarray(s * per, (s + m) * per), [m, h, w, c]);
      const l1 = (g: tf.Tensor) => tf.sum(tf.abs(g), [1, 2, 3]);
      const gCe = tf.grad((xi: tf.Tensor) => tf.sum(crossEntropy(classifier.logits(xi as tf.Tensor4D), oh)))(x);
      const gMargin = tf.grad((xi: tf.Tensor) => tf.sum(logitMargin(classifier.logits(xi as tf.Tensor4D), oh)))(x);
      return [l1(gCe), l1(gMargin)];
    });
    ce.set(await a.data(), s);
    margin.set(await b.data(), s);
    a.dispose(); b.dispose(); oh.dispose();
    await new Promise((r) => setImmediate(r));
  }
  return { ce, margin };
}

/**
 * An undefended surrogate for the transfer check: `arch` (default small-cnn) trained normally for
 * `epochs` (default 2) on `trainSet`. Returns the model (the caller disposes it) and its classifier.
 */
export async function trainSurrogate(
  trainSet: ImageSet, opts: { arch?: string; epochs?: number; seed?: number; testSet?: ImageSet } = {}, ctx: JobContext = silentContext,
): Promise<{ model: tf.LayersModel; classifier: Classifier; testAccuracy: number | null }> {
  const model = buildModel(opts.arch ?? 'small-cnn', { inputShape: trainSet.shape, numClasses: trainSet.classNames.length, seed: opts.seed ?? 7 });
  try {
    await trainClassifier(model, trainSet, { epochs: opts.epochs ?? 2, batchSize: 64, seed: opts.seed ?? 7 }, {}, ctx);
    const testAccuracy = opts.testSet ? (await evaluate(model, opts.testSet)).accuracy : null;
    return { model, classifier: fromLayersModel(model), testAccuracy };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

const r4 = (v: number | null) => (v == null || !Number.isFinite(v) ? null : Math.round(v * 1e4) / 1e4);

/**
 * Runs the gradient-masking checks on `classifier` with n images (flat NHWC in [0, 1]) and labels.
 * Attacks are untargeted, Linf. Progress: one step per attack or measurement.
 */
export async function gradientMaskingChecks(
  classifier: Classifier,
  images: Float32Array | tf.Tensor4D,
  labels: ArrayLike<number>,
  opts: MaskingCheckOptions,
  ctx: JobContext = silentContext,
): Promise<MaskingReport> {
  const t0 = performance.now();
  const { data, n } = toImageData(images, classifier);
  const y = toLabels(labels, n, classifier.numClasses);
  const eps = opts.eps;
  if (!(eps > 0 && eps <= 1)) throw badInput(`eps must be in (0, 1] (Linf, pixels in [0, 1]); got ${eps}`);
  const steps = opts.steps ?? 20;
  if (!Number.isInteger(steps) || steps < 1) throw badInput(`steps must be a positive integer; got ${steps}`);
  const restarts = opts.restarts ?? 5;
  if (!Number.isInteger(restarts) || restarts < 2) throw badInput(`restarts must be an integer >= 2 (the check compares 1 with more); got ${restarts}`);
  const epsilons = [...new Set(opts.epsilons ?? [eps / 4, eps / 2, eps, 2 * eps].map((e) => Math.min(1, e)))].sort((a, b) => a - b);
  if (epsilons.length < 2 || epsilons.some((e) => !(e > 0 && e <= 1))) throw badInput(`epsilons must hold at least two values in (0, 1]; got ${epsilons.join(', ')}`);
  const iterations = [...new Set(opts.iterations ?? [1, Math.max(2, Math.round(steps / 4)), steps, 2 * steps])].sort((a, b) => a - b);
  if (iterations.length < 2 || iterations.some((s) => !Number.isInteger(s) || s < 1)) throw badInput(`iterations must hold at least two positive integers; got ${iterations.join(', ')}`);
  const tol = opts.tolerance ?? Math.max(0.02, 2 / n);
  const restartsMaxDrop = opts.restartsMaxDrop ?? 0.1;
  const unboundedMax = opts.unboundedMaxAccuracy ?? 0.02;
  const shattered = opts.shatteredThreshold ?? 0.25;
  const flatMax = opts.flatThreshold ?? 0.2;
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize ?? 100;
  const nSurfaces = opts.surfaceImages ?? 2;
  const resolution = opts.surfaceResolution ?? 21;
  if (opts.surrogate) {
    const [a, b] = [opts.surrogate.inputShape.join('x'), classifier.inputShape.join('x')];
    if (a !== b || opts.surrogate.numClasses !== classifier.numClasses) throw badInput(`The surrogate takes [${a}] with ${opts.surrogate.numClasses} classes; the model takes [${b}] with ${classifier.numClasses}`);
  }

  // determinism, zero gradients, fgsm, bim, unbounded, restarts; one per eps, step count, surrogate, surface.
  const totalSteps = 6 + epsilons.length + iterations.length + (opts.surrogate ? 1 : 0) + nSurfaces + (epsilons.includes(eps) ? 0 : 1);
  let done = 0;
  /** Progress of one piece of the current step: [from, from + share) of it, so the bar never goes back. */
  const sub = (phase: string, from = 0, share = 1): JobContext => ({
    progress: (p: Progress) => ctx.progress({ step: Math.min(totalSteps, done + from + share * (p.total ? Math.min(1, p.step / p.total) : 0)), total: totalSteps, phase: `${phase}${p.phase ? `: ${p.phase}` : ''}`, metrics: p.metrics }),
    checkpoint: () => ctx.checkpoint(),
    get cancelled() { return ctx.cancelled; },
    log: (m: string) => ctx.log(m),
  });
  const finishStep = (phase: string) => { done++; ctx.progress({ step: Math.min(done, totalSteps), total: totalSteps, phase }); };
  const run = async (attack: string, params: Record<string, unknown>, phase: string) => {
    const r = await runAttack(attack, classifier, data, y, { kind: 'untargeted' }, params, sub(phase), { batchSize });
    return r.summary.robustAccuracy;
  };
  const pgdParams = (e: number, s: number, extra: Record<string, unknown> = {}) => ({ eps: e, steps: s, seed, ...extra });

  const checks: MaskingCheck[] = [];
  const k = classifier.numClasses;

  // Deterministic outputs and logits (AutoAttack: check_randomized, check_range_output).
  const z1 = batchLogits(classifier, data, n, batchSize);
  const z2 = batchLogits(classifier, data, n, batchSize);
  let maxDiff = 0, cleanCorrect = 0, probabilityRows = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0, inUnit = true;
    for (let j = 0; j < k; j++) {
      const v = z1[i * k + j];
      maxDiff = Math.max(maxDiff, Math.abs(v - z2[i * k + j]));
      sum += v;
      if (v < 0 || v > 1) inUnit = false;
    }
    if (argmaxAt(z1, i * k, k) === y[i]) cleanCorrect++;
    if (inUnit && Math.abs(sum - 1) < 1e-4) probabilityRows++;
  }
  const cleanAccuracy = cleanCorrect / n;
  checks.push({
    id: 'deterministic', name: 'Outputs are deterministic', status: maxDiff <= 1e-5 ? 'pass' : 'warn',
    numbers: { maxAbsLogitDifference: r4(maxDiff) },
    explanation: `Two forward passes on the same ${n} inputs differ by at most ${maxDiff.toExponential(2)} in any logit. ` +
      'A randomized model (random transformations, dropout at test time) needs Expectation over Transformation (Athalye et al. 2018): ' +
      'a single gradient sample is noise, and plain gradient attacks understate what an attacker can do.',
  });
  checks.push({
    id: 'outputs-are-logits', name: 'Outputs are logits, not probabilities', status: probabilityRows / n < 0.5 ? 'pass' : 'warn',
    numbers: { fractionOfRowsThatSumToOne: r4(probabilityRows / n) },
    explanation: `${probabilityRows} of ${n} output rows lie in [0, 1] and sum to 1. Attacks expect logits; computing cross-entropy or the C&W margin ` +
      'on softmax outputs saturates and masks gradients (AutoAttack checks this too).',
  });
  finishStep('determinism');

  // Zero gradients (AutoAttack: check_zero_gradients).
  const norms = await inputGradientNorms(classifier, data, y, batchSize, ctx);
  const zeroCe = norms.ce.filter((v) => v === 0).length / n;
  const zeroMargin = norms.margin.filter((v) => v === 0).length / n;
  const median = (a: Float32Array) => { const s = Float32Array.from(a).sort(); return s.length ? s[Math.floor(s.length / 2)] : 0; };
  checks.push({
    id: 'zero-gradients', name: 'Gradients are not zero', status: zeroCe === 0 && zeroMargin === 0 ? 'pass' : 'warn',
    numbers: { zeroGradientFractionCe: r4(zeroCe), zeroGradientFractionMargin: r4(zeroMargin), medianGradientL1Ce: median(norms.ce), medianGradientL1Margin: median(norms.margin) },
    explanation: `${(100 * zeroCe).toFixed(1)}% of inputs have an exactly zero input gradient of the cross-entropy and ${(100 * zeroMargin).toFixed(1)}% of the logit margin. ` +
      'Gradient attacks cannot move from such points. Zero cross-entropy gradients alone mean a saturated softmax (defensive distillation): use the margin loss. ' +
      'Zero margin gradients too mean something non-differentiable sits in the model (quantisation, thermometer encoding): use BPDA (Athalye et al. 2018).',
  });
  finishStep('zero gradients');

  // Iterative beats single-step.
  const fgsmAcc = await run('fgsm', { eps }, 'fgsm');
  finishStep('fgsm');
  const bimAcc = await run('bim', { eps, steps }, 'bim');
  finishStep('bim');
  const singleStepWins = bimAcc > fgsmAcc + tol;
  const nothingBroken = cleanAccuracy > 0 && fgsmAcc >= cleanAccuracy && bimAcc >= cleanAccuracy;
  checks.push({
    id: 'iterative-beats-single-step', name: 'Iterative attacks beat single-step attacks', status: singleStepWins || nothingBroken ? 'warn' : 'pass',
    numbers: { eps, steps, cleanAccuracy: r4(cleanAccuracy), fgsmRobustAccuracy: r4(fgsmAcc), bimRobustAccuracy: r4(bimAcc), tolerance: r4(tol) },
    explanation: `At eps ${eps}, robust accuracy is ${(100 * fgsmAcc).toFixed(1)}% under FGSM (one step) and ${(100 * bimAcc).toFixed(1)}% under BIM (${steps} steps from x, no random start); clean ${(100 * cleanAccuracy).toFixed(1)}%. ` +
      'An iterative attack takes many small steps along the gradient and should do at least as well as one big step; single-step attacks winning, ' +
      'or neither changing a single prediction, means the gradient does not point towards adversarial examples (masked, shattered or zero gradients).' +
      (singleStepWins ? ' Here the single step wins.' : nothingBroken ? ' Here neither attack breaks any input.' : bimAcc === fgsmAcc ? ' Both leave the same accuracy: the inputs left are robust at this eps for both (compare the eps curve).' : ''),
  });

  // Main PGD (1 restart), also the first point of several curves.
  const byEps = new Map<number, number>();
  for (const e of epsilons) {
    byEps.set(e, await run('pgd', pgdParams(e, steps), `pgd eps ${e}`));
    finishStep(`pgd eps ${e}`);
  }
  if (!byEps.has(eps)) { byEps.set(eps, await run('pgd', pgdParams(eps, steps), `pgd eps ${eps}`)); finishStep(`pgd eps ${eps}`); }
  const pgdAcc = byEps.get(eps)!;
  const epsCurve = [...byEps.entries()].sort((a, b) => a[0] - b[0]);
  let worstRise = 0;
  for (let i = 1; i < epsCurve.length; i++) worstRise = Math.max(worstRise, epsCurve[i][1] - epsCurve[i - 1][1]);
  checks.push({
    id: 'monotone-in-eps', name: 'Robust accuracy falls as eps grows', status: worstRise <= tol ? 'pass' : 'warn',
    numbers: { ...Object.fromEntries(epsCurve.map(([e, a]) => [`robustAccuracy@eps=${Number(e.toFixed(4))}`, r4(a)])), largestIncrease: r4(worstRise), tolerance: r4(tol) },
    explanation: `PGD (${steps} steps, run independently at each eps on all inputs): ${epsCurve.map(([e, a]) => `${Number(e.toFixed(4))}: ${(100 * a).toFixed(1)}%`).join(', ')}. ` +
      'A larger ball contains the smaller one, so a working attack can only do better; accuracy that rises with eps means the attack gets lost, ' +
      'e.g. on a noisy or flat loss surface.',
  });

  // Unbounded: eps = 1 covers the whole image box.
  const unboundedAcc = await run('pgd', pgdParams(1, steps, { randomStart: false }), 'pgd eps 1');
  finishStep('unbounded');
  checks.push({
    id: 'unbounded-reaches-zero', name: 'Unbounded attacks reach 100% success', status: unboundedAcc <= unboundedMax ? 'pass' : 'warn',
    numbers: { eps: 1, steps, robustAccuracy: r4(unboundedAcc), threshold: unboundedMax },
    explanation: `PGD from x (no random start) with eps = 1, i.e. any image at all, leaves ${(100 * unboundedAcc).toFixed(1)}% accuracy. ` +
      'With no limit on the distortion an attack that follows informative gradients reaches 100% success (accuracy 0); ' +
      'when it does not, the gradients are not informative and bounded results from the same attack mean little.',
  });

  // Iterations.
  const byIter = new Map<number, number>();
  for (const s of iterations) {
    byIter.set(s, s === steps && byEps.has(eps) ? pgdAcc : await run('pgd', pgdParams(eps, s), `pgd ${s} steps`));
    finishStep(`pgd ${s} steps`);
  }
  const iterCurve = [...byIter.entries()].sort((a, b) => a[0] - b[0]);
  let iterRise = 0;
  for (let i = 1; i < iterCurve.length; i++) iterRise = Math.max(iterRise, iterCurve[i][1] - iterCurve[i - 1][1]);
  checks.push({
    id: 'monotone-in-iterations', name: 'More iterations do not help the model', status: iterRise <= tol ? 'pass' : 'warn',
    numbers: { eps, ...Object.fromEntries(iterCurve.map(([s, a]) => [`robustAccuracy@steps=${s}`, r4(a)])), largestIncrease: r4(iterRise), tolerance: r4(tol) },
    explanation: `PGD at eps ${eps} with ${iterCurve.map(([s, a]) => `${s} steps: ${(100 * a).toFixed(1)}%`).join(', ')}. ` +
      'More steps of a working attack should not leave more inputs classified correctly; if they do, the optimisation is not converging.',
  });

  // Restarts.
  const restartAcc = await run('pgd', pgdParams(eps, steps, { restarts }), `pgd ${restarts} restarts`);
  finishStep('restarts');
  const drop = pgdAcc - restartAcc;
  checks.push({
    id: 'restarts-stable', name: 'Random restarts do not change the picture much', status: drop <= restartsMaxDrop ? 'pass' : 'warn',
    numbers: { eps, steps, restarts, robustAccuracy1Restart: r4(pgdAcc), robustAccuracyRestarts: r4(restartAcc), drop: r4(drop), maxDrop: restartsMaxDrop },
    explanation: `PGD at eps ${eps}: ${(100 * pgdAcc).toFixed(1)}% with one random start, ${(100 * restartAcc).toFixed(1)}% with ${restarts}. ` +
      'Restarts help a little on a smooth loss (Madry et al.: 93.2% to 89.3% on MNIST). A large drop means the result depends on where the attack starts: ' +
      'the loss surface is rugged and a single gradient run is not a reliable bound.',
  });

  // White-box beats transfer.
  if (opts.surrogate) {
    // Transfer both one big step (FGSM, which transfers well) and PGD; an input counts as broken by transfer if either breaks it.
    const tf1 = await transferAttack('fgsm', opts.surrogate, classifier, data, y, { kind: 'untargeted' }, { eps }, sub('transfer fgsm', 0, 0.1), { batchSize });
    const tp = await transferAttack('pgd', opts.surrogate, classifier, data, y, { kind: 'untargeted' }, pgdParams(eps, steps), sub('transfer pgd', 0.1, 0.9), { batchSize });
    finishStep('transfer');
    let robust = 0;
    for (let i = 0; i < n; i++) {
      const a = tf1.target.perExample[i], b = tp.target.perExample[i];
      if (a.cleanCorrect && a.advPred === a.label && b.advPred === b.label) robust++;
    }
    const transferAcc = robust / n;
    checks.push({
      id: 'whitebox-beats-transfer', name: 'White-box attacks beat transfer attacks', status: pgdAcc <= transferAcc + tol ? 'pass' : 'warn',
      numbers: { eps, whiteBoxRobustAccuracy: r4(pgdAcc), transferRobustAccuracy: r4(transferAcc), transferFgsmRobustAccuracy: r4(tf1.target.summary.robustAccuracy), transferPgdRobustAccuracy: r4(tp.target.summary.robustAccuracy), surrogateCleanAccuracy: r4(tp.source.summary.cleanAccuracy), tolerance: r4(tol) },
      explanation: `PGD at eps ${eps} computed on this model leaves ${(100 * pgdAcc).toFixed(1)}% accuracy; FGSM and PGD computed on an undefended surrogate ` +
        `and transferred leave ${(100 * transferAcc).toFixed(1)}% (an input counts as broken if either breaks it). The white-box attacker knows strictly more, so transfer (black-box) attacks should never win; ` +
        'when they do, this model\'s own gradients are the problem.',
    });
  }

  // Loss surfaces (margin objective: immune to softmax saturation).
  const surfaces: LossSurface[] = [];
  const correct: number[] = [], wrong: number[] = [];
  for (let i = 0; i < n; i++) {
    (argmaxAt(z1, i * k, k) === y[i] ? correct : wrong).push(i);
  }
  const picks = [...correct, ...wrong].slice(0, nSurfaces);
  const per = data.length / n;
  const rough: { grad: SurfaceRoughness[]; rand: SurfaceRoughness[] } = { grad: [], rand: [] };
  for (const [j, i] of picks.entries()) {
    const x1 = data.subarray(i * per, (i + 1) * per);
    const range = Math.min(1, 2 * eps);
    const g = await lossSurface(classifier, x1, y[i], { directions: 'gradient-random', objective: 'margin', range, resolution, seed: seed + j }, sub('surfaces', 0, 0.5));
    const r = await lossSurface(classifier, x1, y[i], { directions: 'random-random', objective: 'margin', range, resolution, seed: seed + j }, sub('surfaces', 0.5, 0.5));
    surfaces.push(g, r);
    rough.grad.push(surfaceRoughness(g.objective));
    rough.rand.push(surfaceRoughness(r.objective));
    finishStep('loss surface');
  }
  if (picks.length) {
    const mean = (a: SurfaceRoughness[], key: keyof SurfaceRoughness) => a.reduce((s, v) => s + v[key], 0) / a.length;
    const sc = Math.max(mean(rough.grad, 'signChangeFraction'), mean(rough.rand, 'signChangeFraction'));
    const fl = Math.max(mean(rough.grad, 'flatFraction'), mean(rough.rand, 'flatFraction'));
    const smoothRef = 1 / Math.max(1, resolution - 2);
    checks.push({
      id: 'loss-surface-smooth', name: 'The loss surface is not shattered', status: sc <= shattered && fl <= flatMax ? 'pass' : 'warn',
      numbers: {
        images: picks.length, resolution, range: Math.min(1, 2 * eps),
        signChangeFractionGradient: r4(mean(rough.grad, 'signChangeFraction')), signChangeFractionRandom: r4(mean(rough.rand, 'signChangeFraction')),
        flatFractionGradient: r4(mean(rough.grad, 'flatFraction')), flatFractionRandom: r4(mean(rough.rand, 'flatFraction')),
        totalVariationRatioGradient: r4(mean(rough.grad, 'meanTotalVariationRatio')),
        smoothReference: r4(smoothRef), shatteredThreshold: shattered, flatThreshold: flatMax,
      },
      explanation: `Logit-margin surfaces on ${resolution}x${resolution} grids (+-${Math.min(1, 2 * eps)} Linf) around ${picks.length} input(s), along the gradient sign and a random ` +
        `direction, and along two random directions: first differences change sign at ${(100 * sc).toFixed(1)}% of steps (a smooth surface with one turning ` +
        `point per line: ${(100 * smoothRef).toFixed(1)}%; noise: ~50%) and ${(100 * fl).toFixed(1)}% of steps are exactly flat. A shattered or flat surface ` +
        'gives gradients that do not predict the loss a step away (Athalye et al. 2018).',
    });
  }

  const warned = checks.filter((c) => c.status === 'warn').map((c) => c.id);
  return {
    checks,
    checksPassed: checks.length - warned.length,
    checksWarned: warned.length,
    warned,
    n,
    cleanAccuracy,
    eps,
    settings: { eps, steps, restarts, epsilons, iterations, tolerance: tol, restartsMaxDrop, unboundedMaxAccuracy: unboundedMax, shatteredThreshold: shattered, flatThreshold: flatMax, surfaceImages: picks.length, surfaceResolution: resolution, seed, surrogate: !!opts.surrogate },
    surfaces,
    seconds: (performance.now() - t0) / 1000,
  };
}
