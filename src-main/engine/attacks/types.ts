/**
 * The one contract every image attack follows (Foolbox 3's shape): `runAttack` in base.ts validates
 * the inputs, resolves the goal into per-example target classes, calls the attack's `run`, clips the
 * result to [0, 1] (and to the epsilon ball for fixed-epsilon attacks) and decides success itself.
 * An attack's `run` only searches; it never decides for the caller whether it succeeded.
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { MAX_TARGET_CLASSES } from '../limits';
import type { JobContext } from '../context';
import type { Classifier } from '../models/classifier';

/** The distance an attack minimises or is bounded in. */
export type Norm = 'l0' | 'l2' | 'linf';

/** How a goal names target classes; resolved per example by the base. */
export const targetSpecSchema = z.union([
  z.number().int().nonnegative(),
  z.array(z.number().int().nonnegative()).max(MAX_TARGET_CLASSES, { message: `at most ${MAX_TARGET_CLASSES} target classes (one per image)` }),
  z.enum(['next', 'random', 'least-likely', 'all']),
], {
  // A union reports only "Invalid input": say the bound when that is what failed.
  error: (iss) => (Array.isArray(iss.input) && iss.input.length > MAX_TARGET_CLASSES ? `at most ${MAX_TARGET_CLASSES} target classes (one per image), got ${iss.input.length}` : undefined),
});

export const goalSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('untargeted') }),
  z.strictObject({
    kind: z.literal('targeted'),
    /**
     * A class for all examples, one class per example, or a rule: 'next' = (label + 1) mod classes,
     * 'least-likely' = the class with the lowest clean logit, 'random' = a seeded random class != label,
     * 'all' = each of the other classes in turn: one result per (image, target), summarised in the
     * result's targetCases as best / average / worst case (Carlini & Wagner 2017, Table IV).
     */
    target: targetSpecSchema,
    /** Seed for 'random' targets. Default 0, so runs are reproducible. */
    seed: z.number().int().min(0).optional(),
  }),
]);

/** Untargeted: any wrong class. Targeted: the given (or resolved) class. */
export type Goal = z.infer<typeof goalSchema>;

export interface Paper {
  authors: string;
  title: string;
  venue: string;
  year: number;
  url: string;
}

/**
 * What an attack's `run` receives: one batch, already validated. Tensors belong to the base and must
 * not be disposed by the attack.
 */
export interface AttackProblem {
  classifier: Classifier;
  /** Clean images [n, h, w, c] in [0, 1]. */
  x: tf.Tensor4D;
  /** True labels, length n. */
  labels: Int32Array;
  /** Target class per example when targeted, else null. */
  targets: Int32Array | null;
  numClasses: number;
  /**
   * The criterion, as a tensor op (Foolbox's `criterion(perturbed, logits)`): true where the logits
   * already meet the goal (argmax != label, or argmax == target). Attacks use it to keep their best
   * point; the base makes the final success decision on the returned images. `rows` (int32 indices
   * into this batch) says which examples the logits belong to when the attack works on a subset.
   */
  isAdversarial(logits: tf.Tensor2D, rows?: tf.Tensor1D): tf.Tensor1D;
  /** Report inner progress; the base adds the batch index and forwards at most one event per 100 ms (and every last step). */
  progress(step: number, total: number, phase?: string, metrics?: Record<string, number>): void;
}

export interface AttackOutput {
  /** Candidate adversarial images [n, h, w, c]; the base clips and then disposes them. */
  adversarial: tf.Tensor4D;
  /** Gradient steps spent on each example. */
  iterations: Int32Array;
}

/**
 * A registry entry: what the UI lists and what `runAttack` runs. `paramsSchema` is a strict zod object
 * (unknown parameters are refused) whose every field has a default, so `{}` is a working setting.
 */
export interface AttackDefinition<P extends object = Record<string, unknown>> {
  id: string;
  name: string;
  norm: Norm;
  /** One paragraph: what the attack does, its loss, and the paper. */
  description: string;
  paper: Paper;
  paramsSchema: z.ZodType<P>;
  defaults: P;
  /** Extra checks zod cannot express; throw badInput. */
  checkParams?(params: P, classifier: Classifier): void;
  /** For fixed-epsilon attacks: the ball the base projects the result onto. Null for minimal-norm attacks. */
  epsilonBall?(params: P): { norm: Norm; eps: number };
  run(problem: AttackProblem, params: P, ctx: JobContext): Promise<AttackOutput>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAttack = AttackDefinition<any>;

/** Per-example outcome, judged by the base on the clipped adversarial. */
export interface PerExample {
  index: number;
  label: number;
  /** The resolved target class (targeted goals only). */
  target?: number;
  cleanPred: number;
  advPred: number;
  cleanCorrect: boolean;
  /** Untargeted: advPred != label. Targeted: advPred == target. */
  success: boolean;
  /** Whether the example counts in summary.successRate (clean-correct, and target != label when targeted). */
  counted: boolean;
  /** Pixels (h*w positions) where any channel changed by more than 1e-6. */
  l0: number;
  l2: number;
  linf: number;
  iterations: number;
  /** Softmax probability of advPred on the adversarial. */
  advConfidence: number;
  cleanLogits: number[];
  advLogits: number[];
}

export interface DistortionPercentiles {
  p10: number | null;
  p50: number | null;
  p90: number | null;
}

export interface AttackSummary {
  n: number;
  /** Examples the classifier got right before the attack. */
  cleanCorrect: number;
  cleanAccuracy: number;
  /** Examples counted in successRate (see successRateOver). */
  counted: number;
  successes: number;
  /** successes / counted; null when nothing was counted. */
  successRate: number | null;
  successRateOver: string;
  /** Fraction of all n inputs that are classified correctly both before and after the attack. */
  robustAccuracy: number;
  /** Distortions are over successful counted examples (null when there are none). */
  distortionOver: string;
  meanL0: number | null;
  meanL2: number | null;
  medianL2: number | null;
  meanLinf: number | null;
  percentiles: { l0: DistortionPercentiles; l2: DistortionPercentiles; linf: DistortionPercentiles };
  ms: number;
  msPerExample: number;
}

export interface AttackResult {
  /** With the 'all' target: best, average and worst case over each image's targets (all-targets.ts). */
  targetCases?: TargetCases;
  attack: string;
  norm: Norm;
  goal: Goal;
  /** The parameters actually used (defaults filled in). */
  params: Record<string, unknown>;
  /** Adversarial images, same layout as the input (NHWC), clipped to [0, 1]. */
  adversarial: Float32Array;
  shape: [number, number, number];
  perExample: PerExample[];
  summary: AttackSummary;
}

export interface RunOptions {
  /** Examples per tensor batch; larger inputs are attacked batch by batch. Default 256. */
  batchSize?: number;
}

/** Carlini & Wagner 2017 Table IV's cases over each image's targets (the 'all' goal; computed in all-targets.ts). */
export interface TargetCase {
  /** Best: images where some target was reached; average: (image, target) pairs reached; worst: images where all were. */
  successRate: number | null;
  /** Mean L2 of the case's distortion over the images (pairs, for the average case) where it is defined. */
  meanL2: number | null;
}

export interface TargetCases {
  /** Images counted: clean-correct ones. */
  images: number;
  targetsPerImage: number;
  best: TargetCase;
  average: TargetCase;
  worst: TargetCase;
}
