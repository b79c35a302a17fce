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
 * - outputs-are-logits: outputs are not probabilities (AutoAttack's check_range_output);
 * - square-beats-gradient: the gradient-free Square Attack does not break inputs the gradient attacks
 *   could not (AutoAttack's check_square_sr); an ensemble's own numbers are used when given;
 * - robustbench-rules: RobustBench's acceptance rules that can be measured: the forward pass is
 *   deterministic and does not depend on the batch, and it holds no optimisation loop (a forward pass
 *   costs less than an input gradient).
 *
 * "Robust accuracy" is the fraction of all n inputs classified correctly after the attack, so clean
 * errors count as broken and every comparison has the same denominator.
 */
import * as tf from '@tensorflow/tfjs';
import { childContext, silentContext, type JobContext } from '../context';
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
  /** Run only the checks with these ids (in the table's order). Default: all. */
  only?: string[];
  /** Square queries of square-beats-gradient when no ensemble outcome is given. Default 1000. */
  squareQueries?: number;
  /** An ensemble's outcome (engine/eval/ensemble.ts) for square-beats-gradient: no attack is run then. */
  ensemble?: EnsembleOutcome;
}

/** What square-beats-gradient reads off an ensemble run: robust accuracy (of all n) before and after Square. */
export interface EnsembleOutcome {
  robustAccuracyAfterGradientAttacks: number;
  robustAccuracyAfterSquare: number;
  /** Inputs Square broke (all of them survived the gradient attacks). */
  brokenOnlyBySquare: number;
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

/** The options with defaults filled in and checked. */
interface Settings {
  eps: number;
  steps: number;
  restarts: number;
  epsilons: number[];
  iterations: number[];
  tolerance: number;
  restartsMaxDrop: number;
  unboundedMaxAccuracy: number;
  shatteredThreshold: number;
  flatThreshold: number;
  seed: number;
  batchSize: number;
  surfaceImages: number;
  surfaceResolution: number;
  surrogate?: Classifier;
  only?: string[];
  squareQueries: number;
  ensemble?: EnsembleOutcome;
}

function resolveSettings(opts: MaskingCheckOptions, classifier: Classifier, n: number): Settings {
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
  if (opts.surrogate) {
    const [a, b] = [opts.surrogate.inputShape.join('x'), classifier.inputShape.join('x')];
    if (a !== b || opts.surrogate.numClasses !== classifier.numClasses) throw badInput(`The surrogate takes [${a}] with ${opts.surrogate.numClasses} classes; the model takes [${b}] with ${classifier.numClasses}`);
  }
  return {
    eps, steps, restarts, epsilons, iterations,
    tolerance: opts.tolerance ?? Math.max(0.02, 2 / n),
    restartsMaxDrop: opts.restartsMaxDrop ?? 0.1,
    unboundedMaxAccuracy: opts.unboundedMaxAccuracy ?? 0.02,
    shatteredThreshold: opts.shatteredThreshold ?? 0.25,
    flatThreshold: opts.flatThreshold ?? 0.2,
    seed: opts.seed ?? 0,
    batchSize: opts.batchSize ?? 100,
    surfaceImages: Math.min(n, opts.surfaceImages ?? 2),
    surfaceResolution: opts.surfaceResolution ?? 21,
    ...(opts.surrogate ? { surrogate: opts.surrogate } : {}),
    ...(opts.only ? { only: checkIds(opts.only) } : {}),
    squareQueries: opts.squareQueries ?? 1000,
    ...(opts.ensemble ? { ensemble: opts.ensemble } : {}),
  };
}

function checkIds(only: string[]): string[] {
  const known = MASKING_CHECKS.map((c) => c.id);
  for (const id of only) if (!known.includes(id)) throw badInput(`Unknown check "${id}"; the checks are ${known.join(', ')}`);
  return only;
}

/** The clean forward passes every check may look at. */
interface CleanPass {
  /** Logits [n * k] of two forward passes on the same inputs. */
  z1: Float32Array;
  z2: Float32Array;
  cleanAccuracy: number;
}

/**
 * What a check is run with: the model, the inputs and settings, the clean passes, measurements (one
 * progress step each) and a cache of attack runs shared between checks, so the PGD run at (eps,
 * steps) is made once for the eps curve, the iterations curve, the restarts and the transfer checks.
 */
class CheckRun {
  readonly n: number;
  readonly k: number;
  readonly surfaces: LossSurface[] = [];
  private done = 0;
  private readonly runs = new Map<string, Promise<number>>();
  private cleanPass: CleanPass | null = null;

  constructor(
    readonly classifier: Classifier, readonly data: Float32Array, readonly y: Int32Array,
    readonly s: Settings, private readonly ctx: JobContext, private readonly totalSteps: number,
  ) {
    this.n = y.length;
    this.k = classifier.numClasses;
  }

  /** Two forward passes over all inputs (computed once). */
  clean(): CleanPass {
    if (!this.cleanPass) {
      const { classifier, data, n, k, y } = this;
      const z1 = batchLogits(classifier, data, n, this.s.batchSize);
      const z2 = batchLogits(classifier, data, n, this.s.batchSize);
      let correct = 0;
      for (let i = 0; i < n; i++) if (argmaxAt(z1, i * k, k) === y[i]) correct++;
      this.cleanPass = { z1, z2, cleanAccuracy: correct / n };
    }
    return this.cleanPass;
  }

  /**
   * One measurement, one progress step: `work` gets `part(phase, from, share)`, the context of
   * [from, from + share) of the step, so the bar never goes back; the step ends named `label`.
   */
  async measure<T>(label: string, work: (part: (phase: string, from?: number, share?: number) => JobContext) => Promise<T>): Promise<T> {
    const at = this.done;
    const r = await work((phase, from = 0, share = 1) => childContext(this.ctx, { from: at + from, span: share, total: this.totalSteps, label: phase }));
    this.done++;
    this.ctx.progress({ step: Math.min(this.done, this.totalSteps), total: this.totalSteps, phase: label });
    return r;
  }

  /** Robust accuracy (of all n inputs) under an untargeted Linf attack; each distinct run is made once. */
  attack(attack: string, params: Record<string, unknown>, ctx: JobContext): Promise<number> {
    const key = JSON.stringify([attack, params]);
    let run = this.runs.get(key);
    if (!run) {
      run = runAttack(attack, this.classifier, this.data, this.y, { kind: 'untargeted' }, params, ctx, { batchSize: this.s.batchSize }).then((r) => r.summary.robustAccuracy);
      this.runs.set(key, run);
    }
    return run;
  }

  /** PGD's parameters at (e, steps) with the run's seed. */
  pgdParams(e: number, steps: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { eps: e, steps, seed: this.s.seed, ...extra };
  }

  /** Robust accuracy under PGD at (e, steps), measured (one step named `label`) unless an earlier check made the same run. */
  pgd(label: string, e: number, steps: number, extra: Record<string, unknown> = {}): Promise<number> {
    return this.measure(label, (part) => this.attack('pgd', this.pgdParams(e, steps, extra), part(label)));
  }
}

/** A check's verdict: its status, the numbers it decided on, and the explanation. */
type Verdict = Omit<MaskingCheck, 'id' | 'name'>;

/** One gradient-masking check (AutoAttack's checks.py shape): a name, the progress steps it measures, and a function returning its verdict. */
interface CheckDef {
  id: string;
  name: string;
  /** Progress steps its measurements take (cached runs still count one). */
  steps(s: Settings): number;
  /** The verdict, or null when the check cannot be made (no surrogate, no inputs to look at). */
  run(r: CheckRun): Promise<Verdict | null>;
}

/**
 * Forward time over input-gradient time above which a forward pass is taken to hold an inner loop. Measured
 * on wasm, batch 32: a dense MNIST network 0.05; the same network with 30 purification steps on its input
 * inside the forward pass 0.51.
 */
const LOOP_RATIO = 0.4;
/** How long each timing round of the robustbench-rules check calls its function (ms). */
const TIMING_ROUND_MS = 10;
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const warnUnless = (ok: boolean): CheckStatus => (ok ? 'pass' : 'warn');
/** The largest rise between consecutive points of an (x, accuracy) curve sorted by x. */
const largestRise = (curve: [number, number][]) => curve.reduce((m, [, a], i) => (i ? Math.max(m, a - curve[i - 1][1]) : m), 0);

/** The checks, in the order they run and are reported; ids are stable. */
export const MASKING_CHECKS: readonly CheckDef[] = [
  {
    // AutoAttack: check_randomized.
    id: 'deterministic', name: 'Outputs are deterministic', steps: () => 1,
    run: (r) => r.measure('determinism', async () => {
      const { z1, z2 } = r.clean();
      let maxDiff = 0;
      for (let i = 0; i < z1.length; i++) maxDiff = Math.max(maxDiff, Math.abs(z1[i] - z2[i]));
      return {
        status: warnUnless(maxDiff <= 1e-5),
        numbers: { maxAbsLogitDifference: r4(maxDiff) },
        explanation: `Two forward passes on the same ${r.n} inputs differ by at most ${maxDiff.toExponential(2)} in any logit. ` +
          'A randomized model (random transformations, dropout at test time) needs Expectation over Transformation (Athalye et al. 2018): ' +
          'a single gradient sample is noise, and plain gradient attacks understate what an attacker can do.',
      };
    }),
  },
  {
    // AutoAttack: check_range_output. Uses the determinism step's forward pass.
    id: 'outputs-are-logits', name: 'Outputs are logits, not probabilities', steps: () => 0,
    run: async (r) => {
      const { z1 } = r.clean();
      const { n, k } = r;
      let probabilityRows = 0;
      for (let i = 0; i < n; i++) {
        let sum = 0, inUnit = true;
        for (let j = 0; j < k; j++) {
          const v = z1[i * k + j];
          sum += v;
          if (v < 0 || v > 1) inUnit = false;
        }
        if (inUnit && Math.abs(sum - 1) < 1e-4) probabilityRows++;
      }
      return {
        status: warnUnless(probabilityRows / n < 0.5),
        numbers: { fractionOfRowsThatSumToOne: r4(probabilityRows / n) },
        explanation: `${probabilityRows} of ${n} output rows lie in [0, 1] and sum to 1. Attacks expect logits; computing cross-entropy or the C&W margin ` +
          'on softmax outputs saturates and masks gradients (AutoAttack checks this too).',
      };
    },
  },
  {
    // AutoAttack: check_zero_gradients.
    id: 'zero-gradients', name: 'Gradients are not zero', steps: () => 1,
    run: (r) => r.measure('zero gradients', async (part) => {
      const norms = await inputGradientNorms(r.classifier, r.data, r.y, r.s.batchSize, part('zero gradients'));
      const zeroCe = norms.ce.filter((v) => v === 0).length / r.n;
      const zeroMargin = norms.margin.filter((v) => v === 0).length / r.n;
      const median = (a: Float32Array) => { const s = Float32Array.from(a).sort(); return s.length ? s[Math.floor(s.length / 2)] : 0; };
      return {
        status: warnUnless(zeroCe === 0 && zeroMargin === 0),
        numbers: { zeroGradientFractionCe: r4(zeroCe), zeroGradientFractionMargin: r4(zeroMargin), medianGradientL1Ce: median(norms.ce), medianGradientL1Margin: median(norms.margin) },
        explanation: `${(100 * zeroCe).toFixed(1)}% of inputs have an exactly zero input gradient of the cross-entropy and ${(100 * zeroMargin).toFixed(1)}% of the logit margin. ` +
          'Gradient attacks cannot move from such points. Zero cross-entropy gradients alone mean a saturated softmax (defensive distillation): use the margin loss. ' +
          'Zero margin gradients too mean something non-differentiable sits in the model (quantisation, thermometer encoding): use BPDA (Athalye et al. 2018).',
      };
    }),
  },
  {
    id: 'iterative-beats-single-step', name: 'Iterative attacks beat single-step attacks', steps: () => 2,
    run: async (r) => {
      const { eps, steps, tolerance: tol } = r.s;
      const { cleanAccuracy } = r.clean();
      const fgsmAcc = await r.measure('fgsm', (part) => r.attack('fgsm', { eps }, part('fgsm')));
      const bimAcc = await r.measure('bim', (part) => r.attack('bim', { eps, steps }, part('bim')));
      const singleStepWins = bimAcc > fgsmAcc + tol;
      const nothingBroken = cleanAccuracy > 0 && fgsmAcc >= cleanAccuracy && bimAcc >= cleanAccuracy;
      return {
        status: singleStepWins || nothingBroken ? 'warn' : 'pass',
        numbers: { eps, steps, cleanAccuracy: r4(cleanAccuracy), fgsmRobustAccuracy: r4(fgsmAcc), bimRobustAccuracy: r4(bimAcc), tolerance: r4(tol) },
        explanation: `At eps ${eps}, robust accuracy is ${pct(fgsmAcc)} under FGSM (one step) and ${pct(bimAcc)} under BIM (${steps} steps from x, no random start); clean ${pct(cleanAccuracy)}. ` +
          'An iterative attack takes many small steps along the gradient and should do at least as well as one big step; single-step attacks winning, ' +
          'or neither changing a single prediction, means the gradient does not point towards adversarial examples (masked, shattered or zero gradients).' +
          (singleStepWins ? ' Here the single step wins.' : nothingBroken ? ' Here neither attack breaks any input.' : bimAcc === fgsmAcc ? ' Both leave the same accuracy: the inputs left are robust at this eps for both (compare the eps curve).' : ''),
      };
    },
  },
  {
    id: 'monotone-in-eps', name: 'Robust accuracy falls as eps grows', steps: (s) => s.epsilons.length + (s.epsilons.includes(s.eps) ? 0 : 1),
    run: async (r) => {
      const { eps, steps, epsilons, tolerance: tol } = r.s;
      const curve: [number, number][] = [];
      for (const e of epsilons.includes(eps) ? epsilons : [...epsilons, eps]) curve.push([e, await r.pgd(`pgd eps ${e}`, e, steps)]);
      curve.sort((a, b) => a[0] - b[0]);
      const worstRise = largestRise(curve);
      return {
        status: warnUnless(worstRise <= tol),
        numbers: { ...Object.fromEntries(curve.map(([e, a]) => [`robustAccuracy@eps=${Number(e.toFixed(4))}`, r4(a)])), largestIncrease: r4(worstRise), tolerance: r4(tol) },
        explanation: `PGD (${steps} steps, run independently at each eps on all inputs): ${curve.map(([e, a]) => `${Number(e.toFixed(4))}: ${pct(a)}`).join(', ')}. ` +
          'A larger ball contains the smaller one, so a working attack can only do better; accuracy that rises with eps means the attack gets lost, ' +
          'e.g. on a noisy or flat loss surface.',
      };
    },
  },
  {
    id: 'unbounded-reaches-zero', name: 'Unbounded attacks reach 100% success', steps: () => 1,
    run: async (r) => {
      const { steps, unboundedMaxAccuracy: max } = r.s;
      // eps = 1 covers the whole image box.
      const acc = await r.measure('unbounded', (part) => r.attack('pgd', r.pgdParams(1, steps, { randomStart: false }), part('pgd eps 1')));
      return {
        status: warnUnless(acc <= max),
        numbers: { eps: 1, steps, robustAccuracy: r4(acc), threshold: max },
        explanation: `PGD from x (no random start) with eps = 1, i.e. any image at all, leaves ${pct(acc)} accuracy. ` +
          'With no limit on the distortion an attack that follows informative gradients reaches 100% success (accuracy 0); ' +
          'when it does not, the gradients are not informative and bounded results from the same attack mean little.',
      };
    },
  },
  {
    id: 'monotone-in-iterations', name: 'More iterations do not help the model', steps: (s) => s.iterations.length,
    run: async (r) => {
      const { eps, iterations, tolerance: tol } = r.s;
      const curve: [number, number][] = [];
      for (const s of iterations) curve.push([s, await r.pgd(`pgd ${s} steps`, eps, s)]);
      const rise = largestRise(curve);
      return {
        status: warnUnless(rise <= tol),
        numbers: { eps, ...Object.fromEntries(curve.map(([s, a]) => [`robustAccuracy@steps=${s}`, r4(a)])), largestIncrease: r4(rise), tolerance: r4(tol) },
        explanation: `PGD at eps ${eps} with ${curve.map(([s, a]) => `${s} steps: ${pct(a)}`).join(', ')}. ` +
          'More steps of a working attack should not leave more inputs classified correctly; if they do, the optimisation is not converging.',
      };
    },
  },
  {
    id: 'restarts-stable', name: 'Random restarts do not change the picture much', steps: () => 1,
    run: async (r) => {
      const { eps, steps, restarts, restartsMaxDrop: maxDrop } = r.s;
      const pgdAcc = await r.attack('pgd', r.pgdParams(eps, steps), silentContext); // made by the eps check
      const restartAcc = await r.measure('restarts', (part) => r.attack('pgd', r.pgdParams(eps, steps, { restarts }), part(`pgd ${restarts} restarts`)));
      const drop = pgdAcc - restartAcc;
      return {
        status: warnUnless(drop <= maxDrop),
        numbers: { eps, steps, restarts, robustAccuracy1Restart: r4(pgdAcc), robustAccuracyRestarts: r4(restartAcc), drop: r4(drop), maxDrop },
        explanation: `PGD at eps ${eps}: ${pct(pgdAcc)} with one random start, ${pct(restartAcc)} with ${restarts}. ` +
          'Restarts help a little on a smooth loss (Madry et al.: 93.2% to 89.3% on MNIST). A large drop means the result depends on where the attack starts: ' +
          'the loss surface is rugged and a single gradient run is not a reliable bound.',
      };
    },
  },
  {
    id: 'whitebox-beats-transfer', name: 'White-box attacks beat transfer attacks', steps: (s) => (s.surrogate ? 1 : 0),
    run: async (r) => {
      const { eps, steps, surrogate, tolerance: tol, batchSize } = r.s;
      if (!surrogate) return null;
      const pgdAcc = await r.attack('pgd', r.pgdParams(eps, steps), silentContext); // made by the eps check
      // Transfer both one big step (FGSM, which transfers well) and PGD; an input counts as broken by transfer if either breaks it.
      const [tf1, tp] = await r.measure('transfer', async (part) => [
        await transferAttack('fgsm', surrogate, r.classifier, r.data, r.y, { kind: 'untargeted' }, { eps }, part('transfer fgsm', 0, 0.1), { batchSize }),
        await transferAttack('pgd', surrogate, r.classifier, r.data, r.y, { kind: 'untargeted' }, r.pgdParams(eps, steps), part('transfer pgd', 0.1, 0.9), { batchSize }),
      ]);
      let robust = 0;
      for (let i = 0; i < r.n; i++) {
        const a = tf1.target.perExample[i], b = tp.target.perExample[i];
        if (a.cleanCorrect && a.advPred === a.label && b.advPred === b.label) robust++;
      }
      const transferAcc = robust / r.n;
      return {
        status: warnUnless(pgdAcc <= transferAcc + tol),
        numbers: { eps, whiteBoxRobustAccuracy: r4(pgdAcc), transferRobustAccuracy: r4(transferAcc), transferFgsmRobustAccuracy: r4(tf1.target.summary.robustAccuracy), transferPgdRobustAccuracy: r4(tp.target.summary.robustAccuracy), surrogateCleanAccuracy: r4(tp.source.summary.cleanAccuracy), tolerance: r4(tol) },
        explanation: `PGD at eps ${eps} computed on this model leaves ${pct(pgdAcc)} accuracy; FGSM and PGD computed on an undefended surrogate ` +
          `and transferred leave ${pct(transferAcc)} (an input counts as broken if either breaks it). The white-box attacker knows strictly more, so transfer (black-box) attacks should never win; ` +
          'when they do, this model\'s own gradients are the problem.',
      };
    },
  },
  {
    // Margin objective: immune to softmax saturation.
    id: 'loss-surface-smooth', name: 'The loss surface is not shattered', steps: (s) => s.surfaceImages,
    run: async (r) => {
      const { eps, seed, surfaceImages, surfaceResolution: resolution, shatteredThreshold: shattered, flatThreshold: flatMax } = r.s;
      const { z1 } = r.clean();
      const { n, k } = r;
      // Clean-correct inputs first.
      const correct: number[] = [], wrong: number[] = [];
      for (let i = 0; i < n; i++) (argmaxAt(z1, i * k, k) === r.y[i] ? correct : wrong).push(i);
      const picks = [...correct, ...wrong].slice(0, surfaceImages);
      if (!picks.length) return null;
      const per = r.data.length / n;
      const range = Math.min(1, 2 * eps);
      const rough: { grad: SurfaceRoughness[]; rand: SurfaceRoughness[] } = { grad: [], rand: [] };
      for (const [j, i] of picks.entries()) {
        const x1 = r.data.subarray(i * per, (i + 1) * per);
        await r.measure('loss surface', async (part) => {
          const g = await lossSurface(r.classifier, x1, r.y[i], { directions: 'gradient-random', objective: 'margin', range, resolution, seed: seed + j }, part('surfaces', 0, 0.5));
          const q = await lossSurface(r.classifier, x1, r.y[i], { directions: 'random-random', objective: 'margin', range, resolution, seed: seed + j }, part('surfaces', 0.5, 0.5));
          r.surfaces.push(g, q);
          rough.grad.push(surfaceRoughness(g.objective));
          rough.rand.push(surfaceRoughness(q.objective));
        });
      }
      const mean = (a: SurfaceRoughness[], key: keyof SurfaceRoughness) => a.reduce((s, v) => s + v[key], 0) / a.length;
      const sc = Math.max(mean(rough.grad, 'signChangeFraction'), mean(rough.rand, 'signChangeFraction'));
      const fl = Math.max(mean(rough.grad, 'flatFraction'), mean(rough.rand, 'flatFraction'));
      const smoothRef = 1 / Math.max(1, resolution - 2);
      return {
        status: warnUnless(sc <= shattered && fl <= flatMax),
        numbers: {
          images: picks.length, resolution, range,
          signChangeFractionGradient: r4(mean(rough.grad, 'signChangeFraction')), signChangeFractionRandom: r4(mean(rough.rand, 'signChangeFraction')),
          flatFractionGradient: r4(mean(rough.grad, 'flatFraction')), flatFractionRandom: r4(mean(rough.rand, 'flatFraction')),
          totalVariationRatioGradient: r4(mean(rough.grad, 'meanTotalVariationRatio')),
          smoothReference: r4(smoothRef), shatteredThreshold: shattered, flatThreshold: flatMax,
        },
        explanation: `Logit-margin surfaces on ${resolution}x${resolution} grids (+-${range} Linf) around ${picks.length} input(s), along the gradient sign and a random ` +
          `direction, and along two random directions: first differences change sign at ${(100 * sc).toFixed(1)}% of steps (a smooth surface with one turning ` +
          `point per line: ${(100 * smoothRef).toFixed(1)}%; noise: ~50%) and ${(100 * fl).toFixed(1)}% of steps are exactly flat. A shattered or flat surface ` +
          'gives gradients that do not predict the loss a step away (Athalye et al. 2018).',
      };
    },
  },
  {
    // AutoAttack: check_square_sr.
    id: 'square-beats-gradient', name: 'Square does not break what gradient attacks could not', steps: (s) => (s.ensemble ? 0 : 2),
    run: async (r) => {
      const { eps, steps, tolerance: tol, ensemble, squareQueries, seed } = r.s;
      let gradientAcc: number, squareAcc: number, onlySquare: number | null = null, how: string;
      if (ensemble) {
        gradientAcc = ensemble.robustAccuracyAfterGradientAttacks;
        squareAcc = ensemble.robustAccuracyAfterSquare;
        onlySquare = ensemble.brokenOnlyBySquare;
        how = 'In the ensemble, the gradient attacks (APGD-CE, APGD-T) left';
      } else {
        gradientAcc = await r.pgd(`pgd eps ${eps}`, eps, steps);
        squareAcc = await r.measure('square', (part) => r.attack('square', { eps, queries: squareQueries, seed }, part('square')));
        how = `PGD (${steps} steps) at eps ${eps} leaves`;
      }
      const drop = gradientAcc - squareAcc;
      return {
        status: warnUnless(drop <= tol),
        numbers: { eps, robustAccuracyGradient: r4(gradientAcc), robustAccuracySquare: r4(squareAcc), ...(onlySquare !== null ? { brokenOnlyBySquare: onlySquare } : { squareQueries }), drop: r4(drop), tolerance: r4(tol) },
        explanation: `${how} ${pct(gradientAcc)} robust accuracy; ${ensemble ? 'after' : 'the'} Square Attack (score-based, no gradients) ${ensemble ? 'it is' : 'leaves'} ${pct(squareAcc)}. ` +
          'Square only reads outputs, so it cannot be fooled by masked, shattered or zero gradients; when it breaks inputs a white-box gradient attack could not, ' +
          'the gradients are what failed, not the model that held (AutoAttack warns on this as well).',
      };
    },
  },
  {
    // RobustBench's rules for accepting a model, the measurable ones.
    id: 'robustbench-rules', name: 'RobustBench rules: deterministic, batch-independent, no inner optimisation', steps: () => 1,
    run: (r) => r.measure('robustbench rules', async () => {
      const { z1, z2 } = r.clean();
      const { n, k } = r;
      const [h, w, c] = r.classifier.inputShape;
      const per = h * w * c;
      let maxDiff = 0;
      for (let i = 0; i < z1.length; i++) maxDiff = Math.max(maxDiff, Math.abs(z1[i] - z2[i]));
      // One image alone against the same image in its batch: batch statistics or test-time adaptation would differ.
      const m = Math.min(n, 8);
      let batchDiff = 0;
      for (let i = 0; i < m; i++) {
        const alone = tf.tidy(() => r.classifier.logits(tf.tensor4d(r.data.subarray(i * per, (i + 1) * per), [1, h, w, c])).dataSync());
        for (let j = 0; j < k; j++) batchDiff = Math.max(batchDiff, Math.abs(alone[j] - z1[i * k + j]));
      }
      // Timing: a forward pass against an input gradient on the same batch. Each of 5 rounds calls the function
      // until TIMING_ROUND_MS have passed and keeps the time per call; the best round counts. A small model's forward
      // pass takes ~0.25 ms here, so single calls timed alone were at the mercy of one scheduler slice on a loaded
      // machine: best of 3 single calls read 0.71 ms once (ratio 0.43, a false warning) where 0.24-0.28 is usual.
      const b = Math.min(n, 32);
      const oh = oneHot(r.y.subarray(0, b), k);
      const call = (f: () => tf.Tensor): void => {
        const out = tf.tidy(f);
        out.dataSync();
        out.dispose();
      };
      const time = (f: () => tf.Tensor): number => {
        call(f); // warm-up
        let best = Infinity;
        for (let round = 0; round < 5; round++) {
          let calls = 0;
          const t0 = performance.now();
          let elapsed = 0;
          do {
            call(f);
            calls++;
            elapsed = performance.now() - t0;
          } while (elapsed < TIMING_ROUND_MS && calls < 1000);
          best = Math.min(best, elapsed / calls);
        }
        return best;
      };
      const x = tf.tensor4d(r.data.subarray(0, b * per), [b, h, w, c]);
      let fwd: number, grad: number;
      try {
        fwd = time(() => r.classifier.logits(x));
        grad = time(() => tf.grad((xi: tf.Tensor) => tf.sum(logitMargin(r.classifier.logits(xi as tf.Tensor4D), oh)))(x));
      } finally {
        x.dispose();
        oh.dispose();
      }
      const ratio = fwd / Math.max(grad, 1e-6);
      const deterministic = maxDiff <= 1e-5, independent = batchDiff <= 1e-4, noLoop = ratio <= LOOP_RATIO;
      return {
        status: warnUnless(deterministic && independent && noLoop),
        numbers: { maxAbsLogitDifference: r4(maxDiff), maxAbsBatchDifference: batchDiff, forwardMs: r4(fwd), inputGradientMs: r4(grad), forwardToGradientRatio: r4(ratio), threshold: LOOP_RATIO, batch: b },
        explanation: `RobustBench accepts only models with a deterministic forward pass and no optimisation loop at inference. Two passes differ by ${maxDiff.toExponential(2)} ` +
          `(${deterministic ? 'deterministic' : 'RANDOMIZED'}); an image alone and in its batch differ by ${batchDiff.toExponential(2)} (${independent ? 'batch-independent' : 'the batch changes the output: batch statistics or test-time adaptation'}). ` +
          `A forward pass of ${b} images takes ${fwd.toFixed(1)} ms and an input gradient ${grad.toFixed(1)} ms (ratio ${ratio.toFixed(2)}, warn above ${LOOP_RATIO}): the gradient repeats the forward pass and adds the backward one, which on a plain network costs several forwards; ` +
          `${noLoop ? 'so it is here' : 'here the forward pass is most of the gradient\'s cost, as an inner optimisation loop that is not differentiated through (purification, test-time adaptation) makes it'}. ` +
          'These are measurements, not proofs: a loop that is cheap, or differentiated through, passes.',
      };
    }),
  },
];

/**
 * Runs the gradient-masking checks (MASKING_CHECKS, in order) on `classifier` with n images (flat
 * NHWC in [0, 1]) and labels. Attacks are untargeted, Linf. Progress: one step per attack or measurement.
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
  const s = resolveSettings(opts, classifier, n);
  const selected = MASKING_CHECKS.filter((c) => !s.only || s.only.includes(c.id));
  const run = new CheckRun(classifier, data, y, s, ctx, selected.reduce((a, c) => a + c.steps(s), 0));
  const checks: MaskingCheck[] = [];
  for (const c of selected) {
    const verdict = await c.run(run);
    if (verdict) checks.push({ id: c.id, name: c.name, ...verdict });
  }
  const warned = checks.filter((c) => c.status === 'warn').map((c) => c.id);
  return {
    checks,
    checksPassed: checks.length - warned.length,
    checksWarned: warned.length,
    warned,
    n,
    cleanAccuracy: run.clean().cleanAccuracy,
    eps: s.eps,
    settings: {
      eps: s.eps, steps: s.steps, restarts: s.restarts, epsilons: s.epsilons, iterations: s.iterations, tolerance: s.tolerance, restartsMaxDrop: s.restartsMaxDrop,
      unboundedMaxAccuracy: s.unboundedMaxAccuracy, shatteredThreshold: s.shatteredThreshold, flatThreshold: s.flatThreshold,
      surfaceImages: s.surfaceImages, surfaceResolution: s.surfaceResolution, seed: s.seed, surrogate: !!s.surrogate,
    },
    surfaces: run.surfaces,
    seconds: (performance.now() - t0) / 1000,
  };
}
