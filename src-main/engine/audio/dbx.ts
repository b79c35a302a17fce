/**
 * Loudness and distortion measures for audio adversarial examples, and the statistics of
 * listening tests.
 *
 * Carlini & Wagner (2018) measure a perturbation delta against its clip x by
 *   dB(v) = 20 log10(max_i |v_i|),   dB_x(delta) = dB(delta) - dB(x),
 * so dB_x = -30 means the perturbation's peak is 30 dB below the clip's peak.
 */
import { badInput } from '../errors';

/** 20 log10 of the peak magnitude; -Infinity for an all-zero signal. */
export function dB(v: ArrayLike<number>): number {
  let peak = 0;
  for (let i = 0; i < v.length; i++) peak = Math.max(peak, Math.abs(v[i]));
  return 20 * Math.log10(peak);
}

/** dB_x(delta) = dB(delta) - dB(x): the perturbation's loudness relative to the clip. */
export function dbx(delta: ArrayLike<number>, x: ArrayLike<number>): number {
  if (delta.length !== x.length) throw badInput(`dbx: perturbation has ${delta.length} samples, the clip ${x.length}`);
  const ref = dB(x);
  if (ref === -Infinity) throw badInput('dbx: the clip is silent (all zeros), so dB_x is undefined');
  return dB(delta) - ref;
}

/** Root mean square. */
export function rms(v: ArrayLike<number>): number {
  if (v.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / v.length);
}

/**
 * The standard deviation of white noise `snrDb` below v's mean power: sqrt(mean(v^2) / 10^(snrDb/10)). The one
 * definition of "noise at an SNR" for robust mode's transformations (eot.ts) and training augmentation (augment.ts).
 */
export function noiseStdForSnr(v: ArrayLike<number>, snrDb: number): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / Math.max(1, v.length) / 10 ** (snrDb / 10));
}

/** RMS level in dB relative to full scale 1.0 (20 log10 rms; a full-scale sine is -3.01 dBFS). */
export function rmsDbfs(v: ArrayLike<number>): number {
  return 20 * Math.log10(rms(v));
}

export interface LoudnessMatched {
  /** The clips, each scaled to `targetDbfs` RMS. */
  clips: Float32Array[];
  /** Gain applied to each clip, dB. */
  gainsDb: number[];
  /** The common RMS level, dBFS (lowered from the request if a clip would have clipped). */
  targetDbfs: number;
}

/**
 * Scales clips to the same RMS level for loudness-matched playback in listening tests (so that
 * listeners cannot tell clips apart by level alone). If any clip's peak would exceed `peakLimit`
 * at the requested level, the common level is lowered for all clips. Silent clips are an error.
 */
export function matchLoudness(clips: readonly Float32Array[], targetDbfs = -23, peakLimit = 0.99): LoudnessMatched {
  if (clips.length === 0) throw badInput('matchLoudness: no clips');
  const levels = clips.map((c, i) => {
    const l = rmsDbfs(c);
    if (!Number.isFinite(l)) throw badInput(`matchLoudness: clip ${i} is silent`);
    return l;
  });
  // Headroom: the highest level at which every clip's peak stays within peakLimit.
  const limitDb = 20 * Math.log10(peakLimit);
  const maxTarget = Math.min(...clips.map((c, i) => limitDb - (dB(c) - levels[i])));
  const target = Math.min(targetDbfs, maxTarget);
  const gainsDb = levels.map((l) => target - l);
  const out = clips.map((c, i) => {
    const g = 10 ** (gainsDb[i] / 20);
    return Float32Array.from(c, (v) => v * g);
  });
  return { clips: out, gainsDb, targetDbfs: target };
}

/**
 * One-sided exact binomial test: P(X >= successes) for X ~ Binomial(trials, p0), i.e. the p-value
 * against H0 "listeners are at chance p0" (default 0.5) in favour of "better than chance".
 */
export function binomialTest(successes: number, trials: number, p0 = 0.5): number {
  if (!Number.isInteger(trials) || trials < 0) throw badInput(`binomialTest: trials must be a non-negative integer, got ${trials}`);
  if (!Number.isInteger(successes) || successes < 0 || successes > trials) throw badInput(`binomialTest: successes must be an integer in [0, ${trials}], got ${successes}`);
  if (!(p0 > 0 && p0 < 1)) throw badInput(`binomialTest: p0 must be in (0, 1), got ${p0}`);
  if (successes === 0) return 1;
  const lp = Math.log(p0);
  const lq = Math.log1p(-p0);
  // log C(n, k) built up from log C(n, 0) = 0; sum the upper tail in the log domain.
  let logC = 0;
  let acc = -Infinity;
  for (let k = 0; k <= trials; k++) {
    if (k > 0) logC += Math.log(trials - k + 1) - Math.log(k);
    if (k >= successes) {
      const term = logC + k * lp + (trials - k) * lq;
      acc = acc === -Infinity ? term : Math.max(acc, term) + Math.log1p(Math.exp(-Math.abs(acc - term)));
    }
  }
  return Math.min(1, Math.exp(acc));
}
