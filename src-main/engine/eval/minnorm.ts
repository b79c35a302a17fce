/**
 * Minimum-norm attacks compared as AttackBench does (Cinà, Rony, Pintor, Demetrio, Demontis, Biggio,
 * Ayed & Roli, "AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples", 2024): every
 * attack gets the same budget of forward+backward passes per example; for each example the smallest
 * adversarial any attack found is the reference d*_i, and an attack's optimality is the mean over the
 * examples of d*_i / d_i (1: it found the best point everywhere; 0 where it found nothing).
 *
 * Budget B (gradient steps per example) per attack:
 *   cw-l2:  binarySearchSteps 5 x maxIterations B/5 (abort-early may stop sooner), or, as the reference
 *           the others are measured against, its own budget S x I (the paper's 9 x 1,000; `cw`);
 *   ddn, fmn, fmn-linf: B steps;
 *   fab:    FAB-T (Croce & Hein 2020; fab-t-l2 / fab-t) as a plain minimum-norm search: an unbounded radius
 *           (every adversarial counts; the smallest is kept), one target (the given one, or the class
 *           ranked highest after the label), one run, and floor((2B - 1) / 3) steps. Each FAB step is a
 *           gradient (a forward and a backward pass) plus a forward pass to check the new iterate, and the
 *           untargeted goal ranks the classes with one more forward pass, so it spends at most 2B passes
 *           counting forward and backward passes alike, as a B-step attack does (B forwards, B backwards).
 *   apgd:   a fixed-epsilon attack, run (APGD-CE, L2 or Linf) at G = 5 radii spread around the other
 *           attacks' median best distance (x 0.5, 0.75, 1, 1.5, 2), B/G steps each; an example's distance
 *           is that of its adversarial at the smallest radius that broke it. This is how AttackBench
 *           places fixed-budget attacks on the same scale, and its coarse grid is part of their cost.
 * Distance-versus-budget curves: each attack is also run at B/10 and B/3 (fresh runs with the smaller
 * budget, not snapshots), and the median distance over the examples every attack broke at B is
 * plotted, failures counting as infinitely far (over all counted examples when no example was broken
 * by every attack).
 * Attacks run elsewhere on the same examples (`given`: for instance C&W 9 x 1,000 in a session of its
 * own, run alongside the others on a second core) join the comparison as they are: their distances
 * count towards each example's best and they are scored like the rest, with the one point of their
 * curve at their own budget. They must have counted exactly the examples counted here. With no
 * attack of its own, the comparison only combines the given ones.
 */
import { childContext, silentContext, type JobContext } from '../context';
import { badInput } from '../errors';
import type { Classifier } from '../models/classifier';
import { runAttack, toImageData, toLabels } from '../attacks/base';
import type { Goal } from '../attacks/types';

/** The attacks a comparison runs when none are named (the list). */
export const MINNORM_ATTACKS = { l2: ['cw-l2', 'ddn', 'fmn', 'apgd'], linf: ['fmn-linf', 'apgd'] } as const;
/** The attacks a comparison may name in each norm: the defaults and FAB. */
export const MINNORM_CHOICES = { l2: [...MINNORM_ATTACKS.l2, 'fab'], linf: [...MINNORM_ATTACKS.linf, 'fab'] } as const;
/** Gradient steps FAB gets within a budget of b passes pairs (see the docstring: 3 passes a step, 1 to rank). */
export const fabSteps = (b: number) => Math.max(1, Math.floor((2 * Math.round(b) - 1) / 3));
const GRID = [0.5, 0.75, 1, 1.5, 2];
/** FAB's radius in the comparison: larger than any L2 distance in [0, 1]^d for d < 10^12, so every adversarial counts. */
const FAB_UNBOUNDED_L2 = 1e6;

export interface MinNormOptions {
  norm: 'l2' | 'linf';
  attacks: string[];
  /** Forward+backward passes per example per attack. Default 1000. */
  budget?: number;
  /** Also run at these fractions of the budget for the curves. Default [0.1, 1/3]. */
  curveFractions?: number[];
  goal?: Goal;
  batchSize?: number;
  /**
   * C&W at its own budget instead of the common one: binary-search steps x iterations (the paper's
   * 9 x 1,000), so that it serves as the converged reference; its curve scales the iterations.
   */
  cw?: { binarySearchSteps: number; maxIterations: number };
  /** Attacks already run on these examples, joining the comparison (see the docstring). */
  given?: GivenAttack[];
}

/** An attack run elsewhere on the same examples. */
export interface GivenAttack {
  attack: string;
  /** Per example (the images' order): its distance, null where it found none or did not count the example. */
  distances: (number | null)[];
  /** Per example: whether that run counted it (clean-correct, target not the label); must match this run's. */
  counted: boolean[];
  /** Passes per example it was given. */
  budget: number;
  seconds: number;
}

export interface MinNormAttackResult {
  attack: string;
  /** Distance of each example's adversarial in the norm; null where the attack found none. */
  distances: (number | null)[];
  successRate: number;
  /** Mean and median over the examples this attack broke. */
  meanDistance: number | null;
  medianDistance: number | null;
  /** Mean over the examples every attack broke (comparable between attacks). */
  meanDistanceCommon: number | null;
  /** AttackBench optimality: mean over examples of best / distance (0 where it failed). */
  optimality: number;
  /**
   * Median distance at each budget over the examples every attack broke at the full budget, a failure
   * counting as infinitely far (null when more than half failed): a mean over the successes alone would
   * fall as the budget shrinks, since only the easy examples succeed.
   */
  curve: { budget: number; medianDistance: number | null; successRate: number }[];
  seconds: number;
}

export interface MinNormResult {
  norm: 'l2' | 'linf';
  budget: number;
  n: number;
  /** Clean-correct examples the comparison is over. */
  counted: number;
  attacks: MinNormAttackResult[];
  /** Per counted example: the smallest distance any attack found and which attack found it. */
  best: { index: number; distance: number | null; attack: string | null }[];
}

/** The parameters that give `attack` a budget of `b` gradient steps (b forward and b backward passes) in `norm`. */
export function budgetParams(attack: string, b: number, norm: 'l2' | 'linf' = 'l2'): { id: string; params: Record<string, unknown> } {
  const steps = Math.max(1, Math.round(b));
  switch (attack) {
    case 'cw-l2': return { id: 'cw-l2', params: { binarySearchSteps: 5, maxIterations: Math.max(1, Math.round(b / 5)) } };
    case 'ddn': return { id: 'ddn', params: { steps } };
    case 'fmn': return { id: 'fmn', params: { steps } };
    case 'fmn-linf': return { id: 'fmn-linf', params: { steps } };
    case 'fab': return { id: norm === 'l2' ? 'fab-t-l2' : 'fab-t', params: { steps: fabSteps(b), eps: norm === 'l2' ? FAB_UNBOUNDED_L2 : 1, restarts: 1, targetClasses: 1 } };
    default: throw badInput(`${attack} is not one of the minimum-norm comparison's attacks`);
  }
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : null; };
const finite = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);
const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

export async function minNormComparison(
  classifier: Classifier, images: Float32Array, labels: ArrayLike<number>, opts: MinNormOptions, ctx: JobContext = silentContext,
): Promise<MinNormResult> {
  const { data, n } = toImageData(images, classifier);
  const y = toLabels(labels, n, classifier.numClasses);
  const budget = opts.budget ?? 1000;
  const allowed: readonly string[] = MINNORM_CHOICES[opts.norm];
  for (const a of opts.attacks) if (!allowed.includes(a)) throw badInput(`Attack "${a}" cannot be compared in ${opts.norm}; choose from ${allowed.join(', ')}`);
  const given = opts.given ?? [];
  if (!opts.attacks.length && !given.length) throw badInput('Give at least one attack');
  for (const [k, g] of given.entries()) {
    if (opts.attacks.includes(g.attack) || given.findIndex((h) => h.attack === g.attack) !== k) throw badInput(`${g.attack} is in the comparison twice: run it here or take it from another run, not both`);
    if (g.distances.length !== n || g.counted.length !== n) throw badInput(`${g.attack} was run on ${g.distances.length} examples, not these ${n}`);
  }
  const fractions = [...(opts.curveFractions ?? [0.1, 1 / 3]), 1];
  const cw = opts.cw;
  if (cw && !(Number.isInteger(cw.binarySearchSteps) && cw.binarySearchSteps >= 1 && Number.isInteger(cw.maxIterations) && cw.maxIterations >= 1)) {
    throw badInput(`cw budget needs whole binary-search steps and iterations >= 1; got ${cw.binarySearchSteps} x ${cw.maxIterations}`);
  }
  /** Passes per example of attack `a` at budget fraction f. */
  const passes = (a: string, f: number) => (a === 'cw-l2' && cw ? cw.binarySearchSteps * Math.max(1, Math.round(cw.maxIterations * f)) : budget * f);
  const goal = opts.goal ?? { kind: 'untargeted' };
  const order = [...opts.attacks.filter((a) => a !== 'apgd'), ...opts.attacks.filter((a) => a === 'apgd')];
  const runs = order.length * fractions.length;
  let done = 0;
  const part = (label: string) => childContext(ctx, { from: done, span: 1, total: runs, label });
  const key = opts.norm === 'l2' ? 'l2' : 'linf';
  // Per attack, its runs (one per budget, the full budget last) with a distance per example.
  const found = new Map<string, { runs: { budget: number; d: (number | null)[] }[]; seconds: number }>();
  for (const g of given) found.set(g.attack, { runs: [{ budget: g.budget, d: g.distances }], seconds: g.seconds });
  let counted: boolean[] | null = null;

  for (const a of order) {
    const runsOf: { budget: number; d: (number | null)[] }[] = [];
    const t0 = performance.now();
    for (const f of fractions) {
      const b = passes(a, f);
      let dist: (number | null)[];
      if (a === 'apgd') {
        const others = [...found.values()].flatMap((r) => r.runs[r.runs.length - 1].d.filter((v): v is number => v !== null));
        const centre = median(others) ?? (opts.norm === 'l2' ? 1 : 0.1);
        dist = new Array(n).fill(null);
        const id = opts.norm === 'l2' ? 'apgd-l2' : 'apgd';
        for (const [gi, g] of GRID.entries()) {
          const eps = opts.norm === 'linf' ? Math.min(1, centre * g) : centre * g;
          const r = await runAttack(id, classifier, data, y, goal, { eps, steps: Math.max(1, Math.round(b / GRID.length)), loss: 'ce' },
            childContext(part(`apgd at ${Number(eps.toFixed(4))} (${Math.round(b)} passes)`), { from: gi, span: 1, total: GRID.length }), { batchSize: opts.batchSize ?? 100 });
          r.perExample.forEach((e, i) => { if (e.counted && e.success && dist[i] === null) dist[i] = e[key]; });
        }
      } else {
        const { id, params } = a === 'cw-l2' && cw
          ? { id: 'cw-l2', params: { binarySearchSteps: cw.binarySearchSteps, maxIterations: Math.max(1, Math.round(cw.maxIterations * f)) } }
          : budgetParams(a, b, opts.norm);
        const r = await runAttack(id, classifier, data, y, goal, params, part(`${a} (${Math.round(b)} passes)`), { batchSize: opts.batchSize ?? 100 });
        dist = r.perExample.map((e) => (e.counted && e.success ? e[key] : null));
        counted ??= r.perExample.map((e) => e.counted);
      }
      runsOf.push({ budget: b, d: dist });
      done++;
    }
    found.set(a, { runs: runsOf, seconds: (performance.now() - t0) / 1000 });
  }
  // Nothing run here: the examples the first given attack counted (the others are checked against it).
  if (!counted && !order.length) counted = [...given[0].counted];
  if (!counted) {
    // Only apgd: counted = clean-correct (and target != label), read off a cheap run.
    const r = await runAttack('fgsm', classifier, data, y, goal, { eps: 1e-6 });
    counted = r.perExample.map((e) => e.counted);
  }
  for (const g of given) {
    if (g.counted.some((c, i) => c !== counted![i])) throw badInput(`${g.attack}'s run counted other examples than this one (a different model, images or goal?)`);
  }
  const idx = counted.flatMap((c, i) => (c ? [i] : []));
  const all = [...given.map((g) => g.attack), ...order];
  const full = (a: string) => { const runsOf = found.get(a)!.runs; return runsOf[runsOf.length - 1].d; };
  const best = idx.map((i) => {
    let bd: number | null = null, who: string | null = null;
    for (const a of all) { const v = full(a)[i]; if (v !== null && (bd === null || v < bd)) { bd = v; who = a; } }
    return { index: i, distance: bd, attack: who };
  });
  const common = idx.filter((i) => all.every((a) => full(a)[i] !== null));
  const attacks: MinNormAttackResult[] = all.map((a) => {
    const r = found.get(a)!;
    const dist = full(a);
    const ratios = best.map((b) => (b.distance === null ? null : dist[b.index] === null ? 0 : b.distance === 0 ? 1 : b.distance / dist[b.index]!)).filter((v): v is number => v !== null);
    return {
      attack: a,
      distances: dist,
      successRate: idx.length ? idx.filter((i) => dist[i] !== null).length / idx.length : 0,
      meanDistance: mean(idx.flatMap((i) => (dist[i] === null ? [] : [dist[i]!]))),
      medianDistance: median(idx.flatMap((i) => (dist[i] === null ? [] : [dist[i]!]))),
      meanDistanceCommon: mean(common.map((i) => dist[i]!)),
      optimality: ratios.length ? ratios.reduce((s, v) => s + v, 0) / ratios.length : 0,
      curve: r.runs.map((run) => ({
        budget: Math.round(run.budget),
        medianDistance: finite(median((common.length ? common : idx).map((i) => run.d[i] ?? Infinity))),
        successRate: idx.length ? idx.filter((i) => run.d[i] !== null).length / idx.length : 0,
      })),
      seconds: r.seconds,
    };
  });
  // A comparison that only combines given attacks ran nothing: it is still done (1 of 1, not 0 of 0).
  ctx.progress({ step: Math.max(1, runs), total: Math.max(1, runs), phase: 'done' });
  return { norm: opts.norm, budget, n, counted: idx.length, attacks, best };
}
