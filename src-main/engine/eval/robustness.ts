/**
 * Robust accuracy against epsilon: the curve every defense evaluation should show ("Evaluating the
 * Robustness of Neural Network Defenses"; Carlini et al., "On Evaluating Adversarial Robustness").
 *
 * For fixed-epsilon attacks the sweep runs the attack once per epsilon, in ascending order, and only on
 * the points still unbroken: a point broken at a smaller eps is broken at every larger eps (the ball
 * contains the smaller one), so the curve is monotone and the sweep cheaper, as in torchattacks'
 * MultiAttack. For minimal-distance attacks (C&W, DDN) `robustAccuracyFromDistances` reads the same
 * curve off the per-example distances of a single run.
 */
import { childContext, silentContext, type JobContext } from '../context';
import { badInput, CancelledError } from '../errors';
import type { Classifier } from '../models/classifier';
import { argmaxAt, batchLogits } from '../models/predict';
import { resolveAttack, runAttack, toImageData, toLabels, type ImageBatch, type LabelArray } from '../attacks/base';
import type { AnyAttack, Norm, PerExample } from '../attacks/types';

/** Builds the attack for one epsilon: e.g. eps => ({ attack: 'pgd', params: { eps, steps: 20 } }). */
export type AttackFactory = (eps: number) => { attack: AnyAttack | string; params?: Record<string, unknown> };

/** A factory for an attack whose budget parameter is `eps`. */
export function fixedEpsilon(attack: AnyAttack | string, params: Record<string, unknown> = {}): AttackFactory {
  return (eps) => ({ attack, params: { ...params, eps } });
}

export interface CurvePoint {
  eps: number;
  /** Fraction of all inputs still classified correctly (clean errors count as not robust). */
  robustAccuracy: number;
  /** Fraction of clean-correct inputs broken at this eps or a smaller one; null if none were correct. */
  successRate: number | null;
  /** Points attacked at this eps (those still unbroken). */
  attacked: number;
  ms: number;
}

function checkEpsilons(epsilons: readonly number[]): number[] {
  if (!Array.isArray(epsilons) || epsilons.length === 0) throw badInput('Give at least one epsilon');
  for (const e of epsilons) if (typeof e !== 'number' || !Number.isFinite(e) || e < 0) throw badInput(`Epsilons must be finite numbers >= 0; got ${e}`);
  const sorted = [...epsilons].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) throw badInput(`Epsilon ${sorted[i]} is listed twice`);
  return sorted;
}

/**
 * Robust accuracy of `classifier` on (x, y) for each epsilon (ascending), under untargeted attacks built
 * by `attackFactory`. Progress: one step per epsilon (inner attack progress is forwarded in `phase`).
 * Cancelled after some epsilons, the CancelledError's `partial` is the curve of those (take it with keepPartial).
 */
export async function robustAccuracyCurve(
  classifier: Classifier,
  attackFactory: AttackFactory,
  x: ImageBatch,
  y: LabelArray,
  epsilons: readonly number[],
  norm: Norm,
  ctx: JobContext = silentContext,
  options: { batchSize?: number } = {},
): Promise<CurvePoint[]> {
  const eps = checkEpsilons(epsilons);
  const { data, n } = toImageData(x, classifier);
  const labels = toLabels(y, n, classifier.numClasses);
  const k = classifier.numClasses;
  const per = data.length / n;
  const z = batchLogits(classifier, data, n, options.batchSize);
  let alive: number[] = [];
  for (let i = 0; i < n; i++) if (argmaxAt(z, i * k, k) === labels[i]) alive.push(i);
  const cleanCorrect = alive.length;
  const curve: CurvePoint[] = [];
  try {
    for (let e = 0; e < eps.length; e++) {
      ctx.checkpoint();
      const t0 = performance.now();
      const attacked = alive.length;
      if (eps[e] > 0 && alive.length > 0) {
        const spec = attackFactory(eps[e]);
        const def = resolveAttack(spec.attack);
        if (def.norm !== norm) throw badInput(`${def.name} is an ${def.norm} attack; the curve is in ${norm}`);
        if (!def.epsilonBall) throw badInput(`${def.name} minimises the distance instead of using a budget: use robustAccuracyFromDistances on one run`);
        const ball = def.epsilonBall({ ...def.defaults, ...spec.params });
        if (Math.abs(ball.eps - eps[e]) > 1e-12) throw badInput(`The attack factory set eps = ${ball.eps} for epsilon ${eps[e]}`);
        const sub = new Float32Array(alive.length * per);
        alive.forEach((i, j) => sub.set(data.subarray(i * per, (i + 1) * per), j * per));
        // The bar stays at this epsilon's point while its attack runs; the phase says how far the attack is.
        const inner = childContext(ctx, { from: e, span: 0, total: eps.length, label: `eps ${eps[e]} (${e + 1}/${eps.length})` });
        const res = await runAttack(def, classifier, sub, alive.map((i) => labels[i]), { kind: 'untargeted' }, spec.params ?? {}, inner, options);
        alive = alive.filter((_, j) => !res.perExample[j].success);
      }
      const point: CurvePoint = {
        eps: eps[e],
        robustAccuracy: alive.length / n,
        successRate: cleanCorrect ? (cleanCorrect - alive.length) / cleanCorrect : null,
        attacked,
        ms: performance.now() - t0,
      };
      curve.push(point);
      ctx.progress({ step: e + 1, total: eps.length, phase: `eps ${eps[e]}`, metrics: { eps: eps[e], robustAccuracy: point.robustAccuracy } });
    }
  } catch (err) {
    // Cancelled after some epsilons: their points are complete and kept (the CancelledError's partial).
    if (err instanceof CancelledError && curve.length > 0) throw new CancelledError(err.message, [...curve]);
    throw err;
  }
  return curve;
}

/**
 * The robust-accuracy curve implied by one run of a minimal-distance attack: an input is broken at eps
 * when the attack succeeded on it with distance <= eps in `norm`.
 */
export function robustAccuracyFromDistances(perExample: readonly PerExample[], epsilons: readonly number[], norm: Norm): CurvePoint[] {
  const eps = checkEpsilons(epsilons);
  const n = perExample.length;
  if (n === 0) throw badInput('No examples');
  const cleanCorrect = perExample.filter((e) => e.cleanCorrect).length;
  return eps.map((e) => {
    const robust = perExample.filter((p) => p.cleanCorrect && !(p.success && p[norm] <= e)).length;
    return { eps: e, robustAccuracy: robust / n, successRate: cleanCorrect ? (cleanCorrect - robust) / cleanCorrect : null, attacked: cleanCorrect, ms: 0 };
  });
}
