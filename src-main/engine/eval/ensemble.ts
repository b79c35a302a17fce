/**
 * The standard robustness evaluation (AutoAttack: Croce & Hein, "Reliable evaluation of adversarial
 * robustness with an ensemble of diverse parameter-free attacks", ICML 2020): a fixed sequence of
 * parameter-free attacks, each run only on the inputs still robust after the ones before it, so the
 * robust accuracy after the last is the fraction of inputs no attack broke.
 *
 *   standard: APGD-CE (100 iterations), APGD-T (targeted DLR, 9 target classes x 100 iterations),
 *             FAB-T (9 target classes x 100 iterations), Square (5,000 queries): AutoAttack's
 *             'standard' version, attack for attack, with its parameters;
 *   quick:    APGD-CE (50), APGD-T (3 targets x 50), Square (1,000 queries), for a first look.
 * The quick version leaves FAB-T out: each FAB step costs a gradient and a forward pass, so even
 * 3 targets x 50 steps would add as many passes as APGD-CE and APGD-T together, and in AutoAttack's
 * published runs FAB-T seldom breaks a point APGD-T left (it is there to catch gradient-masking cases
 * APGD's loss misses; the standard version keeps it).
 *
 * Per example the run records which attack broke it, after how many iterations (gradient steps) or
 * queries (Square), its adversarial image and its distance; robust accuracy after each attack is the
 * waterfall. The state (EnsembleState) is plain JSON, saved through a callback at most `checkpointSeconds`
 * apart (at chunk boundaries) and at the end; a run given a saved state continues it: attacks already
 * done are skipped and the current attack resumes at its next chunk. Chunks are fixed (the rows robust
 * when the attack started, in order, `chunkSize` at a time) and every attack draws its randomness per
 * image, so a resumed run ends with exactly the robust accuracy of an uninterrupted one. On a shard
 * executor a chunk goes out as pool-sized shards (shardSize).
 */
import { childContext, silentContext, type JobContext } from '../context';
import { badInput, CancelledError } from '../errors';
import type { Classifier } from '../models/classifier';
import { runAttack, toImageData, toLabels } from '../attacks/base';
import { argmaxAt, batchLogits } from '../models/predict';
import type { EnsembleOutcome } from './masking';

export type EnsembleVersion = 'standard' | 'quick';
export type EnsembleNorm = 'linf' | 'l2';

/** One attack of the ensemble: its name in the waterfall, the registry id and its parameters. */
export interface EnsembleAttack {
  name: string;
  attack: string;
  params: Record<string, unknown>;
  /** Uses gradients (false: Square). */
  gradient: boolean;
}

/** The attacks of a version, in order. */
export function ensembleAttacks(norm: EnsembleNorm, eps: number, version: EnsembleVersion, seed: number): EnsembleAttack[] {
  const l2 = norm === 'l2' ? '-l2' : '';
  const quick = version === 'quick';
  return [
    { name: 'apgd-ce', attack: `apgd${l2}`, params: { eps, steps: quick ? 50 : 100, loss: 'ce', restarts: 1, seed }, gradient: true },
    { name: 'apgd-t', attack: `apgd-t${l2}`, params: { eps, steps: quick ? 50 : 100, targetClasses: quick ? 3 : 9, restarts: 1, seed }, gradient: true },
    ...(quick ? [] : [{ name: 'fab-t', attack: `fab-t${l2}`, params: { eps, steps: 100, targetClasses: 9, restarts: 1, seed }, gradient: true }]),
    { name: 'square', attack: `square${l2}`, params: { eps, queries: quick ? 1000 : 5000, seed }, gradient: false },
  ];
}

export interface WaterfallStep {
  /** 'clean', then each attack's name. */
  attack: string;
  robust: number;
  robustAccuracy: number;
  /** Inputs this attack broke. */
  broken: number;
  seconds: number;
}

/** Everything a run knows, as JSON: enough to continue it after a crash. */
export interface EnsembleState {
  format: 1;
  config: { norm: EnsembleNorm; eps: number; version: EnsembleVersion; seed: number; n: number; chunkSize: number; attacks: string[]; fingerprint: string };
  cleanPred: number[];
  /** 1 while no attack has broken the input (clean errors start at 0). */
  robust: number[];
  brokenBy: (string | null)[];
  /** Gradient steps or queries the breaking attack spent on the input. */
  iterations: (number | null)[];
  /** Distance of the adversarial in the ensemble's norm. */
  distance: (number | null)[];
  advPred: (number | null)[];
  /** The adversarial image of each broken input, base64 of its float32 pixels. */
  adversarial: (string | null)[];
  waterfall: WaterfallStep[];
  done: string[];
  /** The attack in progress: its rows (robust when it started), the chunks finished, its seconds so far. */
  current: { attack: string; rows: number[]; chunksDone: number; seconds: number; broken: number } | null;
  /** How many times the run was resumed. */
  resumed: number;
}

export interface EnsembleOptions {
  norm: EnsembleNorm;
  eps: number;
  version?: EnsembleVersion;
  seed?: number;
  /** Inputs per attack call (and per resumable step). Default 100. */
  chunkSize?: number;
  /** Seconds between saves of the state. Default 60. */
  checkpointSeconds?: number;
}

export interface EnsembleHooks {
  /** A saved state to continue. */
  state?: EnsembleState;
  /** Persists the state (crash-safely); awaited. */
  save?: (state: EnsembleState) => Promise<void>;
  now?: () => number;
}

export interface EnsemblePerExample {
  index: number;
  label: number;
  cleanPred: number;
  cleanCorrect: boolean;
  robust: boolean;
  brokenBy: string | null;
  iterations: number | null;
  distance: number | null;
  advPred: number | null;
}

export interface EnsembleResult {
  n: number;
  norm: EnsembleNorm;
  eps: number;
  version: EnsembleVersion;
  attacks: EnsembleAttack[];
  cleanAccuracy: number;
  robustAccuracy: number;
  waterfall: WaterfallStep[];
  perExample: EnsemblePerExample[];
  /** For the square-beats-gradient check. */
  outcome: EnsembleOutcome;
  state: EnsembleState;
}

/** FNV-1a over the images' bits and the labels: a resumed run must see the same inputs. */
function fingerprint(data: Float32Array, labels: Int32Array): string {
  let h = 0x811c9dc5;
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i], 0x01000193) >>> 0;
  for (let i = 0; i < labels.length; i++) h = Math.imul(h ^ labels[i], 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

export const toBase64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
export function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function initialState(classifier: Classifier, data: Float32Array, y: Int32Array, config: EnsembleState['config']): EnsembleState {
  const n = y.length, k = classifier.numClasses;
  const z = batchLogits(classifier, data, n, config.chunkSize);
  const cleanPred = Array.from({ length: n }, (_, i) => argmaxAt(z, i * k, k));
  const robust: number[] = cleanPred.map((p, i) => (p === y[i] ? 1 : 0));
  const correct = robust.reduce((a, b) => a + b, 0);
  return {
    format: 1, config, cleanPred, robust,
    brokenBy: new Array(n).fill(null), iterations: new Array(n).fill(null), distance: new Array(n).fill(null),
    advPred: new Array(n).fill(null), adversarial: new Array(n).fill(null),
    waterfall: [{ attack: 'clean', robust: correct, robustAccuracy: correct / n, broken: n - correct, seconds: 0 }],
    done: [], current: null, resumed: 0,
  };
}

/**
 * Inputs per runAttack batch: the whole chunk in this thread; with a shard executor (the pool, a
 * cluster), the chunk split evenly over its parallelism, so every worker gets a shard. Every attack of
 * the ensemble draws its randomness per image (attacks/per-example.ts), so the split changes nothing
 * in the per-example results (tested), and a resumed run may use another pool size.
 */
export function shardSize(rows: number, ctx: JobContext): number {
  const width = ctx.shards ? Math.max(1, Math.floor(ctx.shards.parallelism)) : 1;
  return Math.max(1, Math.ceil(rows / width));
}

/**
 * Runs the ensemble on n images (flat NHWC in [0, 1]) and labels, or continues `hooks.state`. Progress:
 * one unit per attack, split over its chunks. A cancel ends with CancelledError whose `partial` is the
 * state (consistent as of the last finished chunk), so the caller can save it and resume later.
 */
export async function runEnsemble(
  classifier: Classifier, images: Float32Array, labels: ArrayLike<number>, opts: EnsembleOptions,
  ctx: JobContext = silentContext, hooks: EnsembleHooks = {},
): Promise<EnsembleResult> {
  const { data, n } = toImageData(images, classifier);
  const y = toLabels(labels, n, classifier.numClasses);
  const version = opts.version ?? 'standard', seed = opts.seed ?? 0, chunkSize = opts.chunkSize ?? 100;
  if (!(opts.eps > 0) || (opts.norm === 'linf' && opts.eps > 1)) throw badInput(`eps must be in (0, ${opts.norm === 'linf' ? 1 : 'inf'}) for ${opts.norm}; got ${opts.eps}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw badInput(`chunkSize must be a positive integer; got ${chunkSize}`);
  const attacks = ensembleAttacks(opts.norm, opts.eps, version, seed);
  const config: EnsembleState['config'] = { norm: opts.norm, eps: opts.eps, version, seed, n, chunkSize, attacks: attacks.map((a) => a.name), fingerprint: fingerprint(data, y) };
  let state: EnsembleState;
  if (hooks.state) {
    state = hooks.state;
    const mismatch = (Object.keys(config) as (keyof typeof config)[]).filter((key) => JSON.stringify(state.config?.[key]) !== JSON.stringify(config[key]));
    if (state.format !== 1 || mismatch.length) throw badInput(`The saved evaluation does not match this one (${mismatch.join(', ') || 'format'} differ): resume it with the model, images and settings it was started with`);
    state.resumed++;
  } else {
    state = initialState(classifier, data, y, config);
  }
  const now = hooks.now ?? (() => Date.now());
  const interval = (opts.checkpointSeconds ?? 60) * 1000;
  let lastSave = now();
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c;
  const total = attacks.length;

  try {
    for (const [ai, a] of attacks.entries()) {
      if (state.done.includes(a.name)) continue;
      if (!state.current || state.current.attack !== a.name) {
        state.current = { attack: a.name, rows: state.robust.flatMap((r, i) => (r ? [i] : [])), chunksDone: 0, seconds: 0, broken: 0 };
      }
      const cur = state.current;
      const chunks = Math.ceil(cur.rows.length / chunkSize);
      for (let ci = cur.chunksDone; ci < chunks; ci++) {
        ctx.checkpoint();
        const t0 = now();
        const rows = cur.rows.slice(ci * chunkSize, (ci + 1) * chunkSize);
        const xs = new Float32Array(rows.length * per);
        rows.forEach((r, j) => xs.set(data.subarray(r * per, (r + 1) * per), j * per));
        const part = childContext(ctx, { from: ai + ci / chunks, span: 1 / chunks, total, label: `${a.name} (${cur.rows.length} robust)` });
        const res = await runAttack(a.attack, classifier, xs, Int32Array.from(rows, (r) => y[r]), { kind: 'untargeted' }, a.params, part, { batchSize: shardSize(rows.length, ctx) });
        res.perExample.forEach((e, j) => {
          if (!e.success) return;
          const r = rows[j];
          state.robust[r] = 0;
          state.brokenBy[r] = a.name;
          state.iterations[r] = e.iterations;
          state.distance[r] = opts.norm === 'l2' ? e.l2 : e.linf;
          state.advPred[r] = e.advPred;
          state.adversarial[r] = toBase64(res.adversarial.slice(j * per, (j + 1) * per));
          cur.broken++;
        });
        cur.chunksDone = ci + 1;
        cur.seconds += (now() - t0) / 1000;
        if (hooks.save && now() - lastSave >= interval) {
          await hooks.save(state);
          lastSave = now();
        }
      }
      const robust = state.robust.reduce((s, v) => s + v, 0);
      state.waterfall.push({ attack: a.name, robust, robustAccuracy: robust / n, broken: cur.broken, seconds: cur.seconds });
      state.done.push(a.name);
      state.current = null;
      ctx.progress({ step: ai + 1, total, phase: a.name, metrics: { robustAccuracy: robust / n } });
      ctx.log(`${a.name}: robust accuracy ${(100 * robust / n).toFixed(1)}% (${cur.broken} broken)`);
    }
  } catch (e) {
    if (e instanceof CancelledError && e.partial === undefined) throw new CancelledError(e.message, state);
    throw e;
  }
  await hooks.save?.(state);
  return resultOf(state, attacks, y);
}

/** The result a finished state describes. */
export function resultOf(state: EnsembleState, attacks: EnsembleAttack[], y: Int32Array): EnsembleResult {
  const { n, norm, eps, version } = state.config;
  const perExample: EnsemblePerExample[] = state.robust.map((r, i) => ({
    index: i, label: y[i], cleanPred: state.cleanPred[i], cleanCorrect: state.cleanPred[i] === y[i], robust: r === 1,
    brokenBy: state.brokenBy[i], iterations: state.iterations[i], distance: state.distance[i], advPred: state.advPred[i],
  }));
  const robust = state.robust.reduce((s, v) => s + v, 0);
  const squareAt = state.waterfall.findIndex((s) => s.attack === 'square');
  const beforeSquare = squareAt > 0 ? state.waterfall[squareAt - 1].robustAccuracy : robust / n;
  return {
    n, norm, eps, version, attacks,
    cleanAccuracy: state.waterfall[0].robustAccuracy,
    robustAccuracy: robust / n,
    waterfall: state.waterfall,
    perExample,
    outcome: {
      robustAccuracyAfterGradientAttacks: beforeSquare,
      robustAccuracyAfterSquare: robust / n,
      brokenOnlyBySquare: state.brokenBy.filter((b) => b === 'square').length,
    },
    state,
  };
}

/** The masking checks an evaluation runs (AutoAttack's and RobustBench's), in MASKING_CHECKS order. */
export const EVALUATE_CHECKS = ['deterministic', 'outputs-are-logits', 'zero-gradients', 'square-beats-gradient', 'robustbench-rules'];
