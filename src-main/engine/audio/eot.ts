/**
 * Robust audio adversarial examples by expectation over transformations (EOT; Athalye et al. 2018,
 * "Synthesizing Robust Adversarial Examples"; for speech, Qin et al. 2019, "Imperceptible, Robust, and
 * Targeted Adversarial Examples for Automatic Speech Recognition", section 5).
 *
 * The Carlini & Wagner objective (attack.ts) is taken in expectation over a distribution T of
 * transformations of the played-back clip:
 *
 *   minimise  |delta|_2^2 + c * E_{t ~ T} CTC(f(t(x + delta)), target)   subject to  |delta|_inf < tau,
 *
 * estimated at every step with `samples` draws of t. A transformation here is what happens between
 * the file and the recogniser when it is played in a room and recorded again, in this order:
 *  1. resampling to the other telephone/wideband rate and back (8 kHz <-> 16 kHz, the project's
 *     Kaiser-windowed sinc resampler) with probability `resampleProbability`;
 *  2. reverberation: convolution with a room impulse response made by the image-source method
 *     (rir.ts, Allen & Berkley 1979) for a random shoebox room, with probability `reverbProbability`;
 *  3. a time shift of up to `maxShiftMs` either way (zeros shifted in);
 *  4. white Gaussian background noise at `snrDb` below the transformed clip's power;
 *  5. (evaluation only) rounding to 16 bits, as a recording would be stored.
 * Steps 1-3 are linear and time-invariant for a model at 8 kHz (the 8 -> 16 -> 8 kHz round trip is
 * exactly a filter, measured here as its impulse response), so during the attack they are one FIR
 * kernel applied with tfjs's conv1d and the gradient flows through them exactly; at 16 kHz the round
 * trip through 8 kHz is periodically time-varying and its phase-averaged impulse response stands in
 * for it in the gradient only. Step 4's noise is added as a constant. Judging (success checks and the
 * held-out evaluation) always runs the exact transformations on the stored 16-bit candidate.
 *
 * Success during the attack (which lowers tau, as in attack.ts) needs the target under the clean
 * pipeline AND under at least `acceptFraction` of a fixed check set of `checkTransforms` draws from T.
 * The attack draws rooms from a pool of `rooms` seeded rooms; evaluation uses `heldOut` fresh draws
 * whose rooms, noises, shifts and resampling come from a different seed stream (heldOutSeed), so no
 * held-out room was seen by the attack.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../core/random';
import { childContext, keepPartial, silentContext, type JobContext } from '../context';
import { CancelledError, badInput } from '../errors';
import { audioAttack, normalizeTarget, type AudioAttackHooks, type AudioAttackOptions, type AudioAttackResult, type AudioAttackRow } from './attack';
import { randomRir } from './rir';
import { resample } from './resample';
import { quantize16 } from './wav';
import { noiseStdForSnr } from './dbx';
import type { SpeechModel } from './model';

/** The robust mode's defaults, written once (api/jobs.ts takes its schema's defaults from here). */
export const EOT_DEFAULTS = {
  /** Transformations drawn per step. */
  samples: 4,
  /** Attack-side room pool size. */
  rooms: 16,
  reverbProbability: 0.75,
  /** Background noise level, dB below the clip's power after the other transformations. */
  snrDb: 30,
  maxShiftMs: 20,
  resampleProbability: 0.5,
  /** Longest room response, seconds (the Sabine T60, capped here). */
  rirMaxSeconds: 0.15,
  checkTransforms: 8,
  acceptFraction: 0.75,
  heldOut: 20,
  /** Offset of the held-out seed stream from the attack's seed. */
  heldOutSeedOffset: 1_000_003,
} as const;

export interface EotOptions {
  samples: number;
  rooms: number;
  reverbProbability: number;
  snrDb: number | null;
  maxShiftMs: number;
  resampleProbability: number;
  rirMaxSeconds: number;
  checkTransforms: number;
  acceptFraction: number;
  heldOut: number;
}

export const resolveEotOptions = (o: Partial<EotOptions> = {}): EotOptions => ({
  samples: o.samples ?? EOT_DEFAULTS.samples,
  rooms: o.rooms ?? EOT_DEFAULTS.rooms,
  reverbProbability: o.reverbProbability ?? EOT_DEFAULTS.reverbProbability,
  snrDb: o.snrDb === undefined ? EOT_DEFAULTS.snrDb : o.snrDb,
  maxShiftMs: o.maxShiftMs ?? EOT_DEFAULTS.maxShiftMs,
  resampleProbability: o.resampleProbability ?? EOT_DEFAULTS.resampleProbability,
  rirMaxSeconds: o.rirMaxSeconds ?? EOT_DEFAULTS.rirMaxSeconds,
  checkTransforms: o.checkTransforms ?? EOT_DEFAULTS.checkTransforms,
  acceptFraction: o.acceptFraction ?? EOT_DEFAULTS.acceptFraction,
  heldOut: o.heldOut ?? EOT_DEFAULTS.heldOut,
});

/** One draw from T. */
export interface AudioTransform {
  /** Seed of the room (rir.randomRir), null: no reverberation. */
  roomSeed: number | null;
  /** Noise level in dB SNR, null: no noise. */
  snrDb: number | null;
  noiseSeed: number;
  /** Shift in seconds (positive: later). */
  shiftSeconds: number;
  /** Round trip through the other rate (8 kHz <-> 16 kHz). */
  resample: boolean;
}

/** The rate a round trip goes through: 16 kHz for clips at 8 kHz or below, 8 kHz otherwise. */
export const otherRate = (rate: number): number => (rate <= 8000 ? 16000 : 8000);

/** Draws a transformation; `roomSeeds` is the pool its room comes from (the attack's or fresh seeds). */
export function drawTransform(rng: () => number, o: EotOptions, roomSeed: () => number): AudioTransform {
  const reverb = rng() < o.reverbProbability;
  return {
    roomSeed: reverb ? roomSeed() : null,
    snrDb: o.snrDb,
    noiseSeed: Math.floor(rng() * 2 ** 31),
    shiftSeconds: Math.round((2 * rng() - 1) * o.maxShiftMs) / 1000,
    resample: rng() < o.resampleProbability,
  };
}

/**
 * The attack's and the evaluation's transformation sets for a seed: `check` (fixed, drawn from the
 * attack's room pool), a per-step sampler over the same pool, and `heldOut` (fresh rooms and draws from
 * the held-out stream).
 */
export function transformSets(seed: number, o: EotOptions): { check: AudioTransform[]; step: (iteration: number) => AudioTransform[]; heldOut: AudioTransform[]; roomPool: number[] } {
  const poolRng = mulberry32(seed ^ 0x2545f491);
  const roomPool = Array.from({ length: o.rooms }, () => Math.floor(poolRng() * 2 ** 31));
  const fromPool = (rng: () => number) => () => roomPool[Math.floor(rng() * roomPool.length)];
  const checkRng = mulberry32(seed ^ 0x68e31da4);
  const check = Array.from({ length: o.checkTransforms }, () => drawTransform(checkRng, o, fromPool(checkRng)));
  const step = (iteration: number) => {
    const rng = mulberry32(seed * 7_919 + iteration);
    return Array.from({ length: o.samples }, () => drawTransform(rng, o, fromPool(rng)));
  };
  const hRng = mulberry32(seed + EOT_DEFAULTS.heldOutSeedOffset);
  const used = new Set(roomPool);
  const freshRoom = () => {
    for (;;) {
      const s = Math.floor(hRng() * 2 ** 31);
      if (!used.has(s)) return s;
    }
  };
  const heldOut = Array.from({ length: o.heldOut }, () => drawTransform(hRng, o, freshRoom));
  return { check, step, heldOut, roomPool };
}

/** Room responses per (seed, rate, length cap), cached: they cost milliseconds each and recur every step. */
const rirCache = new Map<string, Float32Array>();
export function roomResponse(seed: number, rate: number, maxSeconds: number): Float32Array {
  const key = `${seed}/${rate}/${maxSeconds}`;
  let h = rirCache.get(key);
  if (!h) {
    h = randomRir(seed, { sampleRate: rate, maxSeconds }).rir;
    if (rirCache.size > 512) rirCache.clear();
    rirCache.set(key, h);
  }
  return h;
}

/** x's round trip through the other rate, cut or zero-padded to x's length. */
export function resampleRoundTrip(x: Float32Array, rate: number): Float32Array {
  const o = otherRate(rate);
  const back = resample(resample(x, rate, o), o, rate);
  const out = new Float32Array(x.length);
  out.set(back.subarray(0, x.length));
  return out;
}

/**
 * The round trip's impulse response as a kernel with `lead` taps before time 0 (it is zero-phase):
 * y[i] = sum_k h[k] x[i - k + lead]. Measured by sending impulses through resampleRoundTrip (at both
 * phases of the 2:1 ratio, averaged) and trimmed where the taps fall below 1e-6 of the peak.
 */
const roundTripCache = new Map<number, { h: Float32Array; lead: number }>();
export function roundTripKernel(rate: number): { h: Float32Array; lead: number } {
  const cached = roundTripCache.get(rate);
  if (cached) return cached;
  const P = 256;
  const acc = new Float64Array(2 * P + 1);
  for (const phase of [0, 1]) {
    const e = new Float32Array(2 * P + 4);
    e[P + phase] = 1;
    const y = resampleRoundTrip(e, rate);
    for (let k = 0; k < acc.length; k++) acc[k] += y[k + phase] / 2;
  }
  let peak = 0;
  for (const v of acc) peak = Math.max(peak, Math.abs(v));
  let a = 0;
  let b = acc.length - 1;
  while (a < P && Math.abs(acc[a]) < 1e-6 * peak) a++;
  while (b > P && Math.abs(acc[b]) < 1e-6 * peak) b--;
  // acc[P + t] is the response at lag t: y[i] = sum_t acc[P + t] x[i - t]; with h[k] = acc[a + k] (lag a - P + k)
  // that is y[i] = sum_k h[k] x[i - k + lead] with lead = P - a.
  const out = { h: Float32Array.from(acc.subarray(a, b + 1)), lead: P - a };
  roundTripCache.set(rate, out);
  return out;
}

function convolveFull(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length - 1);
  for (let i = 0; i < a.length; i++) for (let j = 0; j < b.length; j++) out[i + j] += a[i] * b[j];
  return out;
}

/** Steps 1-3 of a transformation as one kernel: y[i] = sum_k h[k] x[i - k + lead]. */
export function linearKernel(t: AudioTransform, rate: number, o: Pick<EotOptions, 'rirMaxSeconds'>): { h: Float32Array; lead: number } {
  let h: Float32Array = new Float32Array([1]);
  let lead = 0;
  if (t.resample) ({ h, lead } = roundTripKernel(rate));
  if (t.roomSeed !== null) h = convolveFull(h, roomResponse(t.roomSeed, rate, o.rirMaxSeconds));
  lead -= Math.round(t.shiftSeconds * rate);
  return { h, lead };
}

/** Applies y[i] = sum_k h[k] x[i - k + lead] on Float32Arrays (same length as x). */
export function applyKernel(x: Float32Array, k: { h: Float32Array; lead: number }): Float32Array {
  const n = x.length;
  const out = new Float32Array(n);
  for (let j = 0; j < k.h.length; j++) {
    const hj = k.h[j];
    if (hj === 0) continue;
    const off = j - k.lead; // out[i] += hj * x[i - off]
    for (let i = Math.max(0, off); i < Math.min(n, n + off); i++) out[i] += hj * x[i - off];
  }
  return out;
}

/** Gaussian noise, seeded (Box-Muller over mulberry32). */
export function gaussianNoise(n: number, std: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng(), 1e-12);
    const v = rng();
    const r = std * Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}


/**
 * The exact transformation (module docstring, steps 1-5) of a clip at `rate`: the real resampler,
 * the room response, the shift, the noise, then 16-bit rounding.
 */
export function applyTransform(x: Float32Array, t: AudioTransform, rate: number, o: Pick<EotOptions, 'rirMaxSeconds'>): Float32Array {
  let y = t.resample ? resampleRoundTrip(x, rate) : Float32Array.from(x);
  if (t.roomSeed !== null) y = applyKernel(y, { h: roomResponse(t.roomSeed, rate, o.rirMaxSeconds), lead: 0 });
  const s = Math.round(t.shiftSeconds * rate);
  if (s !== 0) y = applyKernel(y, { h: new Float32Array([1]), lead: -s });
  if (t.snrDb !== null) {
    const std = noiseStdForSnr(y, t.snrDb);
    const noise = gaussianNoise(y.length, std, t.noiseSeed);
    for (let i = 0; i < y.length; i++) y[i] += noise[i];
  }
  return quantize16(y);
}

/**
 * The differentiable counterpart for the attack: a [1, n] signal at `rate` to [B, n], one row per
 * transformation (steps 1-3 as a conv1d kernel, step 4's noise a constant scaled on the clean clip `x0`).
 */
export function transformBatch(input: tf.Tensor2D, ts: readonly AudioTransform[], rate: number, o: Pick<EotOptions, 'rirMaxSeconds'>, x0: Float32Array): tf.Tensor2D {
  const n = input.shape[1];
  return tf.tidy(() => {
    const x3 = input.reshape([1, n, 1]) as tf.Tensor3D;
    const rows = ts.map((t) => {
      const k = linearKernel(t, rate, o);
      const K = k.h.length;
      // tfjs conv1d correlates: out[i] = sum_j f[j] xp[i + j]; with xp = x padded by K - 1 - lead on the left,
      // f[j] = h[K - 1 - j] gives out[i] = sum_k h[k] x[i - k + lead].
      const left = K - 1 - k.lead;
      const padL = Math.max(0, left);
      const padR = Math.max(0, k.lead);
      const padded = tf.pad(x3, [[0, 0], [padL, padR], [0, 0]]) as tf.Tensor3D;
      const f = tf.tensor3d(Float32Array.from(k.h).reverse(), [K, 1, 1]);
      let y = tf.conv1d(padded, f, 1, 'valid') as tf.Tensor3D;
      const start = padL - left; // conv output m holds time m - start
      y = y.slice([0, start, 0], [1, n, 1]);
      let row = y.reshape([1, n]) as tf.Tensor2D;
      if (t.snrDb !== null) {
        const clean = applyKernel(x0, k);
        const std = noiseStdForSnr(clean, t.snrDb);
        row = tf.add(row, tf.tensor2d(gaussianNoise(n, std, t.noiseSeed), [1, n]));
      }
      return row;
    });
    return tf.concat(rows, 0) as tf.Tensor2D;
  });
}

/** Transcripts of `adv` (16-bit, at `rate`) under each transformation, and how many reached `goal`. */
export async function transcribeUnder(model: SpeechModel, adv: Float32Array, rate: number, ts: readonly AudioTransform[], o: Pick<EotOptions, 'rirMaxSeconds'>, goal: (text: string) => boolean): Promise<{ transcripts: string[]; hits: number; rate: number }> {
  if (ts.length === 0) throw badInput('transcribeUnder: no transformations');
  const signals = ts.map((t) => {
    const y = applyTransform(adv, t, rate, o);
    return rate === model.sampleRate ? y : resample(y, rate, model.sampleRate);
  });
  const transcripts = await model.transcribeBatch(signals, { batchSize: 8 });
  const hits = transcripts.filter(goal).length;
  return { transcripts, hits, rate: hits / ts.length };
}

export interface HeldOutReport {
  /** Fraction of held-out transformations under which the stored adversarial reached the goal. */
  successRate: number;
  hits: number;
  trials: number;
  transcripts: string[];
}

export interface RobustAudioAttackResult {
  /** The EOT attack's result (its `adversarial` is the robust example). */
  robust: AudioAttackResult;
  /** The plain attack on the same clip and options (null when not compared, or cancelled before it ran). */
  plain: AudioAttackResult | null;
  /** The held-out evaluation of each (null when cancelled before it). */
  heldOut: { robust: HeldOutReport; plain: HeldOutReport | null } | null;
  /** The held-out transformations, in order (the rows of the reports' transcripts). */
  heldOutTransforms: AudioTransform[];
  /** The attack's check set (success during the attack needs acceptFraction of these). */
  checkTransforms: AudioTransform[];
  eot: EotOptions;
  seconds: number;
}

/**
 * Robust mode: the EOT attack (module docstring), then (with `compare`) the plain attack on the same
 * clip with the same options, then both stored adversarials under the held-out transformations.
 * Cancelling throws CancelledError whose `partial` is the RobustAudioAttackResult so far.
 */
export async function robustAudioAttack(
  model: SpeechModel,
  clip: { samples: Float32Array; sampleRate: number },
  options: AudioAttackOptions,
  eotOptions: Partial<EotOptions> = {},
  compare = true,
  ctx: JobContext = silentContext,
  hooks: { onRow?: (which: 'robust' | 'plain', row: AudioAttackRow) => void | Promise<void> } = {},
): Promise<RobustAudioAttackResult> {
  const t0 = performance.now();
  const o = resolveEotOptions(eotOptions);
  const seed = options.seed ?? 0;
  const sets = transformSets(seed, o);
  const x0 = quantize16(clip.samples);
  const rate = clip.sampleRate;
  const modelRate = model.sampleRate;
  const xm = rate === modelRate ? x0 : resample(x0, rate, modelRate);
  const before = (await model.transcribe(x0, rate)).text;
  const goalText = options.target === null ? null : normalizeTarget(options.target);
  const goal = (text: string) => (goalText === null ? text !== before : text === goalText);
  const spans = compare ? [0.6, 0.3, 0.1] : [0.9, 0, 0.1];
  const out: RobustAudioAttackResult = {
    robust: undefined as unknown as AudioAttackResult, plain: null, heldOut: null,
    heldOutTransforms: sets.heldOut, checkTransforms: sets.check, eot: o, seconds: 0,
  };
  const partial = (e: unknown) => {
    out.seconds = (performance.now() - t0) / 1000;
    return e instanceof CancelledError ? new CancelledError(e.message, out) : e;
  };
  const robustHooks: AudioAttackHooks = {
    onRow: (row) => hooks.onRow?.('robust', row),
    transform: (input, it) => transformBatch(input, sets.step(it), modelRate, o, xm),
    accept: async (adv) => (await transcribeUnder(model, adv, rate, sets.check, o, goal)).rate >= o.acceptFraction,
  };
  const robustCtx = childContext(ctx, { from: 0, span: spans[0], total: 1, label: 'robust (EOT)' });
  const r1 = await keepPartial(audioAttack(model, clip, options, robustCtx, robustHooks));
  out.robust = r1.value;
  if (r1.cancel) throw partial(r1.cancel);
  if (compare) {
    const plainCtx = childContext(ctx, { from: spans[0], span: spans[1], total: 1, label: 'plain (for comparison)' });
    const r2 = await keepPartial(audioAttack(model, clip, options, plainCtx, { onRow: (row) => hooks.onRow?.('plain', row) }));
    out.plain = r2.value;
    if (r2.cancel) throw partial(r2.cancel);
  }
  ctx.checkpoint();
  ctx.progress({ step: spans[0] + spans[1], total: 1, phase: `held-out transformations (${o.heldOut})` });
  const report = async (r: AudioAttackResult): Promise<HeldOutReport> => {
    const u = await transcribeUnder(model, r.adversarial, rate, sets.heldOut, o, goal);
    return { successRate: u.rate, hits: u.hits, trials: sets.heldOut.length, transcripts: u.transcripts };
  };
  out.heldOut = { robust: await report(out.robust), plain: out.plain ? await report(out.plain) : null };
  ctx.progress({ step: 1, total: 1, phase: 'done' });
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}
