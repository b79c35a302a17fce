/**
 * runAttack: the single entry point for image attacks (Foolbox 3's `Attack.__call__`). It validates
 * everything once, resolves the goal to per-example targets, runs the attack batch by batch, clips the
 * result to [0, 1] (and to the epsilon ball of fixed-epsilon attacks), then judges success and measures
 * distortion itself, so no attack decides for itself whether it succeeded.
 */
import * as tf from '@tensorflow/tfjs';
import { silentContext, type JobContext } from '../context';
import { AdvlabError, badInput, CancelledError, formatIssues } from '../errors';
import type { Classifier } from '../models/classifier';
import { argmaxAt, batchLogits, DEFAULT_LOGITS_BATCH, softmaxAt } from '../models/predict';
import { describeValues, distances } from './distances';
import { projectBall } from './ops';
import { ATTACKS, getAttack } from './registry';
import type { ClassifierSpec, ShardExecutor } from '../shards/types';
import { shardId } from '../shards/digest';
import { heavyBatchesFirst } from '../shards/batch-order';
import {
  goalSchema,
  type AnyAttack,
  type AttackDefinition,
  type AttackProblem,
  type AttackResult,
  type AttackSummary,
  type Goal,
  type PerExample,
  type RunOptions,
} from './types';
import { mulberry32 } from '../core/random';
import { expandAllTargets, targetCases } from './all-targets';

/** Images accepted by the engine: a flat NHWC Float32Array batch or a Tensor4D, values in [0, 1]. */
export type ImageBatch = Float32Array | tf.Tensor4D;
export type LabelArray = ArrayLike<number>;

const DEFAULT_BATCH = DEFAULT_LOGITS_BATCH;

/** Validates attack parameters with the attack's strict schema; unknown or impossible ones are refused. */
export function parseAttackParams<P extends object>(def: AttackDefinition<P>, params: unknown, classifier?: Classifier): P {
  const raw = params ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badInput(`${def.id}: parameters must be an object`);
  const parsed = def.paramsSchema.safeParse(raw);
  if (!parsed.success) {
    const schema = def.paramsSchema as unknown as { shape?: Record<string, unknown> };
    const accepted = Object.keys(schema.shape ?? def.defaults);
    const problems = formatIssues(parsed.error.issues, { input: raw, accepted, root: 'parameters' });
    throw badInput(`Invalid parameters for ${def.name} (${def.id}): ${problems.join('; ')}`, { attack: def.id, issues: problems });
  }
  if (classifier && def.checkParams) def.checkParams(parsed.data, classifier);
  return parsed.data;
}

export function parseGoal(goal: unknown): Goal {
  const parsed = goalSchema.safeParse(goal ?? { kind: 'untargeted' });
  if (!parsed.success) {
    const problems = formatIssues(parsed.error.issues, { root: 'goal' }).join('; ');
    throw badInput(`Invalid goal: ${problems}. Use { kind: 'untargeted' } or { kind: 'targeted', target: <class> | <class per example> | 'next' | 'random' | 'least-likely' }`);
  }
  return parsed.data;
}

/** Reads an image batch into a flat array, checking its shape against the classifier and its range. */
export function toImageData(x: ImageBatch, classifier: Classifier): { data: Float32Array; n: number } {
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c;
  let data: Float32Array;
  if (x instanceof tf.Tensor) {
    if (x.rank !== 4) throw badInput(`Images must be a 4-D tensor [n, ${h}, ${w}, ${c}]; got shape [${x.shape.join(', ')}]`);
    const [, xh, xw, xc] = x.shape;
    if (xh !== h || xw !== w || xc !== c) {
      throw badInput(`Images have shape [${x.shape.slice(1).join(', ')}] but the classifier expects [${h}, ${w}, ${c}]`);
    }
    data = x.dataSync() as Float32Array;
  } else if (x instanceof Float32Array) {
    if (x.length === 0 || x.length % per !== 0) {
      throw badInput(`Image array has ${x.length} values, not a whole number of ${h}x${w}x${c} images (${per} values each)`);
    }
    data = x;
  } else {
    throw badInput('Images must be a Float32Array (NHWC) or a tf.Tensor4D');
  }
  const n = data.length / per;
  if (n === 0) throw badInput('No images to attack');
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isNaN(v)) throw badInput(`Image ${Math.floor(i / per)} contains NaN`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo < 0 || hi > 1) {
    throw badInput(`Pixel values must lie in [0, 1]; found ${lo}..${hi}${hi > 1.5 ? ' (0-255 values? divide by 255)' : ''}`);
  }
  return { data, n };
}

export function toLabels(labels: LabelArray, n: number, numClasses: number): Int32Array {
  if (labels == null || typeof labels.length !== 'number') throw badInput('Labels must be an array of class indices');
  if (labels.length !== n) throw badInput(`Got ${labels.length} labels for ${n} images`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw badInput(`Label ${y} of example ${i} is not a class index in 0..${numClasses - 1}`);
    out[i] = y;
  }
  return out;
}


/** Resolves a goal to one target class per example (null when untargeted). */
export function resolveTargets(goal: Goal, labels: Int32Array, cleanLogits: Float32Array, k: number): Int32Array | null {
  if (goal.kind === 'untargeted') return null;
  if (goal.target === 'all') throw badInput("the 'all' target gives several results per image: runAttack expands it (expandAllTargets)");
  const n = labels.length;
  const t = new Int32Array(n);
  const spec = goal.target;
  const check = (c: number, i: number) => {
    if (c >= k) throw badInput(`Target class ${c}${n > 1 ? ` (example ${i})` : ''} is out of range: the classifier has classes 0..${k - 1}`);
  };
  if (typeof spec === 'number') {
    check(spec, 0);
    t.fill(spec);
  } else if (Array.isArray(spec)) {
    if (spec.length !== n) throw badInput(`Got ${spec.length} target classes for ${n} images`);
    spec.forEach((c, i) => { check(c, i); t[i] = c; });
  } else if (spec === 'next') {
    for (let i = 0; i < n; i++) t[i] = (labels[i] + 1) % k;
  } else if (spec === 'least-likely') {
    for (let i = 0; i < n; i++) {
      let best = -1, bestV = Infinity;
      for (let j = 0; j < k; j++) {
        const v = cleanLogits[i * k + j];
        if (j !== labels[i] && v < bestV) { bestV = v; best = j; }
      }
      t[i] = best;
    }
  } else {
    const r = mulberry32(goal.seed ?? 0); // seeded, so 'random' targets are reproducible
    for (let i = 0; i < n; i++) {
      let c = Math.floor(r() * (k - 1));
      if (c >= labels[i]) c++;
      t[i] = c;
    }
  }
  return t;
}

export interface Judged {
  perExample: PerExample[];
  summary: AttackSummary;
}

/**
 * Judges adversarial images against a classifier: predictions, success against the labels/targets,
 * distortions and the summary. Used by runAttack and by transfer evaluation (another classifier).
 */
export function evaluateAdversarials(
  classifier: Classifier,
  clean: Float32Array,
  adversarial: Float32Array,
  labels: Int32Array,
  targets: Int32Array | null,
  iterations: Int32Array,
  ms: number,
  batchSize = DEFAULT_BATCH,
  cleanLogits?: Float32Array,
): Judged {
  const n = labels.length, k = classifier.numClasses;
  const zc = cleanLogits ?? batchLogits(classifier, clean, n, batchSize);
  const za = batchLogits(classifier, adversarial, n, batchSize);
  const dist = distances(clean, adversarial, n, classifier.inputShape[2]);
  const perExample: PerExample[] = [];
  for (let i = 0; i < n; i++) {
    const cleanPred = argmaxAt(zc, i * k, k), advPred = argmaxAt(za, i * k, k);
    const label = labels[i];
    const target = targets ? targets[i] : undefined;
    const cleanCorrect = cleanPred === label;
    const success = target !== undefined ? advPred === target : advPred !== label && advPred !== classifier.rejectClass;
    const rec: PerExample = {
      index: i,
      label,
      cleanPred,
      advPred,
      cleanCorrect,
      success,
      counted: cleanCorrect && (target === undefined || target !== label),
      l0: dist.l0[i],
      l2: dist.l2[i],
      linf: dist.linf[i],
      iterations: iterations[i],
      advConfidence: softmaxAt(za, i * k, k, advPred),
      cleanLogits: Array.from(zc.subarray(i * k, (i + 1) * k)),
      advLogits: Array.from(za.subarray(i * k, (i + 1) * k)),
    };
    if (target !== undefined) rec.target = target;
    perExample.push(rec);
  }
  return { perExample, summary: summarize(perExample, targets !== null, ms) };
}

/** The batch summary: success among counted examples, distortion over the successful ones. */
export function summarize(perExample: PerExample[], targeted: boolean, ms: number): AttackSummary {
  const n = perExample.length;
  const counted = perExample.filter((e) => e.counted);
  const won = counted.filter((e) => e.success);
  const l0 = describeValues(won.map((e) => e.l0)), l2 = describeValues(won.map((e) => e.l2)), linf = describeValues(won.map((e) => e.linf));
  const cleanCorrect = perExample.filter((e) => e.cleanCorrect).length;
  return {
    n,
    cleanCorrect,
    cleanAccuracy: cleanCorrect / n,
    counted: counted.length,
    successes: won.length,
    successRate: counted.length ? won.length / counted.length : null,
    successRateOver: targeted ? 'clean-correct inputs whose target differs from their label' : 'clean-correct inputs',
    robustAccuracy: perExample.filter((e) => e.cleanCorrect && e.advPred === e.label).length / n,
    distortionOver: 'successful adversarials of counted inputs',
    meanL0: l0.mean,
    meanL2: l2.mean,
    medianL2: l2.median,
    meanLinf: linf.mean,
    percentiles: {
      l0: { p10: l0.p10, p50: l0.median, p90: l0.p90 },
      l2: { p10: l2.p10, p50: l2.median, p90: l2.p90 },
      linf: { p10: linf.p10, p50: linf.median, p90: linf.p90 },
    },
    ms,
    msPerExample: ms / n,
  };
}

/**
 * One batch of a registered attack, as an 'attack-batch' shard carries it: everything another worker
 * needs to attack it exactly as runAttack would here (handler: engine/shards/attack-batch.ts).
 */
export interface AttackBatchTask {
  classifier: ClassifierSpec;
  /** A registered attack id. */
  attack: string;
  /** The attack's parsed parameters (defaults filled in; the shard checks them again). */
  params: Record<string, unknown>;
  /** The batch's clean images, NHWC, in [0, 1]. */
  images: Float32Array;
  /** [m, h, w, c] of `images`. */
  shape: [number, number, number, number];
  labels: Int32Array;
  /** The goal resolved by runAttack: one target per example, or null when untargeted. */
  targets: Int32Array | null;
  /** The batch's index in the run (its id; the attack's randomness does not depend on it). */
  batch: number;
}

// The 'attack-batch' shard type, declared where its task is (so every program that can send one sees
// it); its handler is engine/shards/attack-batch.ts.
declare module '../shards/types' {
  interface ShardTypes {
    'attack-batch': { task: AttackBatchTask; result: BatchOutput };
  }
}

/** Whether `def` is the registry's own definition (a shard names its attack by id). */
export function isRegistered(def: AnyAttack): boolean {
  return ATTACKS.includes(def);
}

/** Attack definition by id, or the definition itself. */
export function resolveAttack(attack: AnyAttack | string): AnyAttack {
  return typeof attack === 'string' ? getAttack(attack) : attack;
}

const PROGRESS_INTERVAL_MS = 100;

/** One batch's search, projected and clipped: what runAttack keeps of it (before judging). */
export interface BatchOutput {
  /** The batch's adversarials, NHWC, projected onto the epsilon ball (fixed-epsilon attacks) and clipped to [0, 1]. */
  adversarial: Float32Array;
  iterations: Int32Array;
}

/**
 * Attacks one batch: the attack's `run` on the problem, then the projection onto its epsilon ball (for
 * fixed-epsilon attacks) and the clip to [0, 1]. This is the whole of a batch's work, whether runAttack
 * does it in place or an 'attack-batch' shard does it in another worker (engine/shards/attack-batch.ts),
 * so both give the same images. `progress` receives the attack's inner steps.
 */
export async function attackOneBatch<P extends object>(
  def: AttackDefinition<P>,
  p: P,
  classifier: Classifier,
  images: Float32Array,
  labels: Int32Array,
  targets: Int32Array | null,
  ctx: JobContext,
  progress: AttackProblem['progress'],
): Promise<BatchOutput> {
  const [h, w, c] = classifier.inputShape;
  const m = labels.length, k = classifier.numClasses;
  if (images.length !== m * h * w * c) throw badInput(`A batch of ${m} labels needs ${m * h * w * c} image values; got ${images.length}`);
  if (targets && targets.length !== m) throw badInput(`A batch of ${m} labels got ${targets.length} targets`);
  const ball = def.epsilonBall?.(p) ?? null;
  const xb = tf.tensor4d(images, [m, h, w, c]);
  const goalClass = tf.tensor1d(targets ?? labels, 'int32');
  const problem: AttackProblem = {
    classifier,
    x: xb,
    labels,
    targets,
    numClasses: k,
    isAdversarial: (logits, rows) => tf.tidy(() => {
      const pred = tf.argMax(logits, 1);
      const cls = rows ? tf.gather(goalClass, rows) : goalClass;
      if (targets) return tf.equal(pred, cls) as tf.Tensor1D;
      const away = tf.notEqual(pred, cls);
      return (classifier.rejectClass === undefined ? away : tf.logicalAnd(away, tf.notEqual(pred, classifier.rejectClass))) as tf.Tensor1D;
    }),
    progress,
  };
  try {
    const out = await def.run(problem, p, ctx);
    const clipped = tf.tidy(() => {
      const projected = ball && (ball.norm === 'l2' || ball.norm === 'linf') ? projectBall(xb, out.adversarial, ball.norm, ball.eps) : out.adversarial;
      return tf.clipByValue(projected, 0, 1);
    });
    out.adversarial.dispose();
    const adversarial = clipped.dataSync() as Float32Array;
    clipped.dispose();
    return { adversarial, iterations: Int32Array.from(out.iterations) };
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw new AdvlabError('INTERNAL', `${def.name} failed: ${(e as Error).message}`, { attack: def.id, stack: (e as Error).stack });
  } finally {
    xb.dispose();
    goalClass.dispose();
  }
}

/** What runAttack needs to know about its batches to run them (in place or as shards). */
interface BatchPlan<P extends object> {
  def: AttackDefinition<P>;
  p: P;
  classifier: Classifier;
  data: Float32Array;
  y: Int32Array;
  targets: Int32Array | null;
  n: number;
  batchSize: number;
  batches: number;
  per: number;
  /** The order the batches go out as shards (a permutation of 0..batches-1; the order only, never their composition). */
  order: number[];
  /** Where each batch's output goes (example order), and how many leading examples are done. */
  store(b: number, out: BatchOutput): void;
}

/** The batches one after another in this thread, progress as batch b of all (today's path without an executor). */
async function runBatchesHere<P extends object>(plan: BatchPlan<P>, ctx: JobContext): Promise<number> {
  const { def, p, classifier, data, y, targets, n, batchSize, batches, per } = plan;
  let lastEmit = -Infinity;
  let innerTotal = 0;
  for (let b = 0; b < batches; b++) {
    ctx.checkpoint();
    const s = b * batchSize, m = Math.min(batchSize, n - s);
    const out = await attackOneBatch(def, p, classifier, data.subarray(s * per, (s + m) * per), y.slice(s, s + m), targets ? targets.slice(s, s + m) : null, ctx,
      (step, total, phase, metrics) => {
        innerTotal = total;
        const now = performance.now();
        if (step < total && now - lastEmit < PROGRESS_INTERVAL_MS) return;
        lastEmit = now;
        ctx.progress({
          step: b * total + step,
          total: batches * total,
          phase: batches > 1 ? `batch ${b + 1}/${batches}${phase ? `: ${phase}` : ''}` : phase,
          metrics,
        });
      });
    plan.store(b, out);
  }
  return innerTotal;
}

/** A batch's shard id: its index and a digest of its task, so the same batch of the same attack is the same shard (stored once). */
function batchShardId(task: AttackBatchTask): string {
  return shardId('attack-batch', task.batch, [task.classifier, task.attack, task.params, task.targets === null], [task.images, task.labels, task.targets ?? new Int32Array(0)]);
}

/**
 * The batches as 'attack-batch' shards on the context's executor: at most `parallelism` in flight
 * (so jobs sharing a pool interleave and a cancel leaves few to stop), each batch exactly as
 * runBatchesHere would attack it (same split, same seeds: a batch's randomness comes from the
 * attack's parameters, never from where it runs). Progress is the sum of the shards' steps and
 * never goes back; a cancel or failure waits for the shards in flight, so the done prefix is known.
 */
async function runBatchesAsShards<P extends object>(plan: BatchPlan<P>, ctx: JobContext, executor: ShardExecutor, spec: ClassifierSpec): Promise<number> {
  const { def, p, classifier, data, y, targets, n, batchSize, batches, per, order } = plan;
  const [h, w, c] = classifier.inputShape;
  const steps = new Float64Array(batches), totals = new Float64Array(batches);
  let innerTotal = 0, lastEmit = -Infinity, lastFraction = 0, latest = '';
  const report = (force: boolean) => {
    const t = Math.max(innerTotal, 1);
    let step = 0;
    for (let b = 0; b < batches; b++) step += totals[b] > 0 ? (Math.min(steps[b], totals[b]) / totals[b]) * t : 0;
    const fraction = step / (batches * t);
    const now = performance.now();
    if (fraction < lastFraction || (!force && now - lastEmit < PROGRESS_INTERVAL_MS)) return;
    lastEmit = now;
    lastFraction = fraction;
    const done = totals.reduce((a, tot, b) => a + (tot > 0 && steps[b] >= tot ? 1 : 0), 0);
    ctx.progress({ step: Math.round(step), total: batches * t, phase: batches > 1 ? `${done}/${batches} batches${latest ? `: ${latest}` : ''}` : latest || undefined });
  };
  const task = (b: number): AttackBatchTask => {
    const s = b * batchSize, m = Math.min(batchSize, n - s);
    return {
      classifier: spec,
      attack: def.id,
      params: { ...p } as Record<string, unknown>,
      images: data.slice(s * per, (s + m) * per),
      shape: [m, h, w, c],
      labels: y.slice(s, s + m),
      targets: targets ? targets.slice(s, s + m) : null,
      batch: b,
    };
  };
  const width = Math.max(1, Math.floor(executor.parallelism));
  let next = 0, failure: unknown = null;
  const one = async (b: number) => {
    const t = task(b);
    const [out] = await executor.run([{ type: 'attack-batch', id: batchShardId(t), task: t }], (_, pr) => {
      if (pr.total > 0) {
        innerTotal = Math.max(innerTotal, pr.total);
        totals[b] = pr.total;
        steps[b] = Math.max(steps[b], pr.step);
        if (pr.phase) latest = pr.phase;
        report(pr.step >= pr.total);
      }
    });
    if (!out) throw new AdvlabError('INTERNAL', `Shard ${b} of ${def.id} returned no result`, { attack: def.id, batch: b });
    if (totals[b] === 0) totals[b] = Math.max(innerTotal, 1);
    steps[b] = totals[b];
    plan.store(b, out);
  };
  await new Promise<void>((resolve) => {
    let active = 0;
    const pump = () => {
      while (failure === null && active < width && next < batches) {
        try {
          ctx.checkpoint();
        } catch (e) {
          failure = e;
          break;
        }
        const b = order[next++];
        active++;
        one(b).catch((e) => { failure ??= e; }).finally(() => {
          active--;
          pump();
        });
      }
      if (active === 0 && (failure !== null || next >= batches)) resolve();
    };
    pump();
  });
  if (failure !== null) throw failure;
  return innerTotal;
}

/**
 * Runs an attack on a batch. Returns the clipped adversarials, a per-example record and a summary.
 * Throws badInput for impossible inputs/parameters and CancelledError when ctx is cancelled (within
 * one attack step); once some batches are done, the error's `partial` is the AttackResult over their
 * examples (take it with keepPartial).
 *
 * With a shard executor on the context (ctx.shards: the local pool, a cluster) and a classifier
 * another worker can rebuild (classifier.spec: a saved model), a registered attack's batches go out
 * as 'attack-batch' shards, whatever the executor's parallelism: one path for one worker or many, so
 * the per-example results are the same for any number of workers (the split is `batchSize`, never the
 * worker count). Clean logits, goal resolution and the judging of success stay here, on the clipped
 * images the shards return. A classifier built in memory (no spec), or an attack definition that is
 * not in the registry, runs in place, as without an executor.
 */
export async function runAttack(
  attack: AnyAttack | string,
  classifier: Classifier,
  x: ImageBatch,
  labels: LabelArray,
  goal: Goal = { kind: 'untargeted' },
  params: Record<string, unknown> = {},
  ctx: JobContext = silentContext,
  options: RunOptions = {},
): Promise<AttackResult> {
  const def = resolveAttack(attack);
  const p = parseAttackParams(def, params, classifier);
  const g = parseGoal(goal);
  if (g.kind === 'targeted' && g.target === 'all') return runAllTargets(def, classifier, x, labels, g, params, ctx, options);
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw badInput(`batchSize must be a positive integer; got ${batchSize}`);
  if (classifier.numClasses < 2) throw badInput(`The classifier has ${classifier.numClasses} classes; attacks need at least 2`);
  const { data, n } = toImageData(x, classifier);
  const y = toLabels(labels, n, classifier.numClasses);
  const t0 = performance.now();
  const k = classifier.numClasses;
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c;

  const cleanLogits = batchLogits(classifier, data, n, batchSize);
  const targets = resolveTargets(g, y, cleanLogits, k);
  const adversarial = new Float32Array(n * per);
  const iterations = new Int32Array(n);
  const batches = Math.ceil(n / batchSize);
  /** Which batches are done; a cancel keeps the examples of the done prefix (the CancelledError's partial). */
  const done = new Uint8Array(batches);
  const attackedPrefix = () => {
    let b = 0;
    while (b < batches && done[b]) b++;
    return Math.min(n, b * batchSize);
  };

  /** The result over the first `count` examples (all of them, or the batches done before a cancel). */
  const resultOf = (count: number): AttackResult => {
    const whole = count === n;
    const adv = whole ? adversarial : adversarial.slice(0, count * per);
    const judged = evaluateAdversarials(
      classifier, whole ? data : data.subarray(0, count * per), adv, whole ? y : y.subarray(0, count),
      targets && !whole ? targets.subarray(0, count) : targets, whole ? iterations : iterations.subarray(0, count), 0, batchSize,
      whole ? cleanLogits : cleanLogits.subarray(0, count * k),
    );
    judged.summary.ms = performance.now() - t0;
    judged.summary.msPerExample = judged.summary.ms / count;
    return { attack: def.id, norm: def.norm, goal: g, params: { ...p } as Record<string, unknown>, adversarial: adv, shape: [h, w, c], perExample: judged.perExample, summary: judged.summary };
  };

  const plan: BatchPlan<typeof p> = {
    def, p, classifier, data, y, targets, n, batchSize, batches, per,
    // A minimum-norm attack's batches are uneven (abort-early): the ones likely to run longest go out first
    // (engine/shards/batch-order.ts). Fixed-epsilon attacks (a fixed number of steps) keep index order.
    order: def.epsilonBall ? Array.from({ length: batches }, (_, b) => b) : heavyBatchesFirst({ n, batchSize, cleanLogits, k, labels: y, targets, rejectClass: classifier.rejectClass }),
    store: (b, out) => {
      const s = b * batchSize, m = Math.min(batchSize, n - s);
      if (out.adversarial.length !== m * per || out.iterations.length !== m) {
        throw new AdvlabError('INTERNAL', `Batch ${b} of ${def.id} came back with ${out.adversarial.length} values and ${out.iterations.length} iteration counts for ${m} images`, { attack: def.id, batch: b });
      }
      adversarial.set(out.adversarial, s * per);
      iterations.set(out.iterations, s);
      done[b] = 1;
    },
  };
  const executor = ctx.shards;
  const spec = classifier.spec;
  let innerTotal: number;
  try {
    innerTotal = executor && spec && isRegistered(def)
      ? await runBatchesAsShards(plan, ctx, executor, spec)
      : await runBatchesHere(plan, ctx);
  } catch (e) {
    // Cancelled after some batches: what they found is kept (an AttackResult over those examples).
    const attacked = attackedPrefix();
    if (e instanceof CancelledError && e.partial === undefined && attacked > 0) throw new CancelledError(e.message, resultOf(attacked));
    throw e;
  }
  const result = resultOf(n);
  const all = Math.max(1, batches * innerTotal);
  ctx.progress({ step: all, total: all, phase: 'done', metrics: { successRate: result.summary.successRate ?? 0 } });
  return result;
}

/**
 * The 'all' target: each image attacked towards each other class (expandAllTargets), as one attack on
 * the repeated images with one target per row; rows keep their image's index, and targetCases holds
 * the best / average / worst case. A cancel keeps the rows done, as runAttack does.
 */
async function runAllTargets(
  def: AnyAttack, classifier: Classifier, x: ImageBatch, labels: LabelArray, goal: Goal, params: Record<string, unknown>, ctx: JobContext, options: RunOptions,
): Promise<AttackResult> {
  const { data, n } = toImageData(x, classifier);
  const y = toLabels(labels, n, classifier.numClasses);
  const per = data.length / n;
  const { source, targets } = expandAllTargets(y, classifier.numClasses);
  const rows = new Float32Array(source.length * per);
  source.forEach((i, r) => rows.set(data.subarray(i * per, (i + 1) * per), r * per));
  const remap = (r: AttackResult): AttackResult => {
    const perExample = r.perExample.map((e, j) => ({ ...e, index: source[j] }));
    return { ...r, goal, perExample, targetCases: targetCases(perExample) };
  };
  try {
    return remap(await runAttack(def, classifier, rows, Array.from(source, (i) => y[i]), { kind: 'targeted', target: targets }, params, ctx, options));
  } catch (e) {
    if (e instanceof CancelledError && e.partial !== undefined) throw new CancelledError(e.message, remap(e.partial as AttackResult));
    throw e;
  }
}
