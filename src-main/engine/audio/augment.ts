/**
 * Data augmentation for speech training (training batches only; validation and test never see it).
 *
 *  - Speed perturbation (Ko et al. 2015, Kaldi's 0.9/1.0/1.1 "3-way" perturbation, here a factor drawn per utterance
 *    uniformly from [lo, hi] and quantised to 0.01): the waveform is resampled so that, played at the model's rate, it is
 *    `factor` times faster: its length is n / factor and every frequency (pitch and formants) moves by `factor`. That
 *    changes the apparent vocal-tract length as VTLP does (Jaitly & Hinton 2013) and the tempo as well; Ko et al.
 *    found it better than VTLP on every task they tried. VTLP itself (a warp of the mel filter bank per utterance) is
 *    not offered: the front end applies one constant filter bank to the whole batch in a single matrix product, and a
 *    per-utterance warp would need a second front end (one filter-bank matrix per utterance).
 *  - Additive white Gaussian noise at an SNR drawn per utterance uniformly from [lo, hi] dB (of the utterance's power).
 *  - SpecAugment (Park et al. 2019) on the normalised features [B, F, D] (mean 0 per band after per-utterance CMVN, so
 *    a masked value of 0 is the utterance's mean): `freqMasks` frequency masks, each of width w ~ U{0..freqWidth}
 *    bands starting at f0 ~ U{0..D-w}, and `timeMasks` time masks, each of width t ~ U{0..min(timeWidth,
 *    floor(timeFraction * frames))} starting at t0 ~ U{0..frames-t}, within each utterance's own frames. Bounds are
 *    checked so that masks can never cover every band (freqMasks * freqWidth < D) or every frame
 *    (timeMasks * timeFraction < 1).
 *
 * Every draw comes from the generator the caller passes (the trainer's own augmentation stream, seeded from the run's
 * seed), so a run is reproducible and both training engines get the same batch. Written as a spec string, the one
 * syntax the CLI and the job take: comma-separated items, later ones overriding earlier ones:
 *   `default` (DEFAULT_AUGMENT), `off`, `speed=LO-HI`, `snr=LO-HI`, `freq=NxW`, `time=NxW`, `time-frac=P`.
 */
import { badInput } from '../errors';
import { resample } from './resample';
import { noiseStdForSnr } from './dbx';

export interface SpeechAugment {
  /** Speed factor range [lo, hi] (per utterance, quantised to 0.01); null: off. */
  speed: [number, number] | null;
  /** Noise SNR range [lo, hi] in dB; null: off. */
  snr: [number, number] | null;
  /** SpecAugment frequency masks and their largest width in bands. */
  freqMasks: number;
  freqWidth: number;
  /** SpecAugment time masks, their largest width in frames, and in a fraction of the utterance's frames. */
  timeMasks: number;
  timeWidth: number;
  timeFraction: number;
}

/** No augmentation: what every item of a spec starts from (`off`). */
export const NO_AUGMENT: Readonly<SpeechAugment> = Object.freeze({ speed: null, snr: null, freqMasks: 0, freqWidth: 0, timeMasks: 0, timeWidth: 0, timeFraction: 0 });

/**
 * `default`: speed 0.9-1.1 (Kaldi's range), two frequency masks of up to 7 of the 40 mel bands (Park et al.'s F = 27
 * of 80 bands, scaled to 40 and halved for the short utterances), two time masks of up to 20 frames (200 ms) and at
 * most 10% of the utterance each; no noise.
 */
export const DEFAULT_AUGMENT: Readonly<SpeechAugment> = Object.freeze({ speed: [0.9, 1.1] as [number, number], snr: null, freqMasks: 2, freqWidth: 7, timeMasks: 2, timeWidth: 20, timeFraction: 0.1 });

export const AUGMENT_SPEC_HELP = 'comma-separated: default | off | speed=LO-HI | snr=LO-HI | freq=NxW | time=NxW | time-frac=P (e.g. "default,snr=10-30")';

/** Parses a spec (see the module comment); throws badInput on an unknown item or an impossible value. `featureDim` bounds the frequency masks. */
export function parseAugmentSpec(spec: string, featureDim?: number): SpeechAugment {
  const a: SpeechAugment = { ...NO_AUGMENT };
  const fail = (msg: string) => badInput(`augment "${spec}": ${msg}; ${AUGMENT_SPEC_HELP}`);
  const range = (k: string, v: string): [number, number] => {
    const m = /^(-?[\d.]+)-(-?[\d.]+)$/.exec(v);
    const r: [number, number] = m ? [Number(m[1]), Number(m[2])] : [Number(v), Number(v)];
    if (!r.every(Number.isFinite) || r[0] > r[1]) throw fail(`${k} needs LO-HI with LO <= HI, got "${v}"`);
    return r;
  };
  const count = (k: string, v: string): [number, number] => {
    const m = /^(\d+)x(\d+)$/.exec(v);
    if (!m) throw fail(`${k} needs NxW (N masks of width <= W), got "${v}"`);
    return [Number(m[1]), Number(m[2])];
  };
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (item === 'default') Object.assign(a, DEFAULT_AUGMENT, { speed: [...DEFAULT_AUGMENT.speed!] });
    else if (item === 'off' || item === 'none') Object.assign(a, NO_AUGMENT);
    else {
      const eq = item.indexOf('=');
      const k = eq < 0 ? item : item.slice(0, eq);
      const v = eq < 0 ? '' : item.slice(eq + 1).trim();
      if (k === 'speed') a.speed = range(k, v);
      else if (k === 'snr') a.snr = range(k, v);
      else if (k === 'freq') [a.freqMasks, a.freqWidth] = count(k, v);
      else if (k === 'time') [a.timeMasks, a.timeWidth] = count(k, v);
      else if (k === 'time-frac') a.timeFraction = Number(v);
      else throw fail(`unknown item "${item}"`);
    }
  }
  checkAugment(a, featureDim, spec);
  return a;
}

/** Throws badInput when an augmentation is impossible (see the module comment for the bounds). */
export function checkAugment(a: SpeechAugment, featureDim?: number, spec = ''): void {
  const fail = (msg: string) => badInput(`augment${spec ? ` "${spec}"` : ''}: ${msg}`);
  if (a.speed && !(a.speed[0] >= 0.5 && a.speed[1] <= 2)) throw fail(`speed factors must lie in [0.5, 2], got ${a.speed.join('-')}`);
  if (a.snr && !(a.snr[0] >= -20 && a.snr[1] <= 100)) throw fail(`snr must lie in [-20, 100] dB, got ${a.snr.join('-')}`);
  if (!(Number.isFinite(a.timeFraction) && a.timeFraction >= 0 && a.timeFraction <= 1)) throw fail(`time-frac must be in [0, 1], got ${a.timeFraction}`);
  if (a.timeMasks > 0 && !(a.timeWidth >= 1 && a.timeFraction > 0)) throw fail(`time masks need a width >= 1 and time-frac > 0 (got width ${a.timeWidth}, time-frac ${a.timeFraction})`);
  if (a.timeMasks * a.timeFraction >= 1) throw fail(`${a.timeMasks} time masks of up to ${a.timeFraction} of the utterance could cover all of it: need masks x time-frac < 1`);
  if (a.freqMasks > 0 && a.freqWidth < 1) throw fail('frequency masks need a width >= 1');
  if (featureDim !== undefined && a.freqMasks * a.freqWidth >= featureDim) throw fail(`${a.freqMasks} frequency masks of up to ${a.freqWidth} bands could cover all ${featureDim}: need masks x width < ${featureDim}`);
}

/** True when the augmentation changes anything. */
export function augmentIsOn(a: SpeechAugment | null | undefined): a is SpeechAugment {
  return !!a && (a.speed !== null || a.snr !== null || a.freqMasks > 0 || a.timeMasks > 0);
}

/** A speed factor drawn from [lo, hi], quantised to 0.01 (so the resampler's ratio reduces to at most 100 phases). */
export function drawSpeed(range: [number, number], rng: () => number): number {
  return Math.round(100 * (range[0] + (range[1] - range[0]) * rng())) / 100;
}

/** x played `factor` times faster: length ceil(n / factor), every frequency times `factor` (band-limited resampling). */
export function speedPerturb(x: Float32Array, factor: number): Float32Array {
  const q = Math.round(100 * factor);
  if (q === 100) return x;
  return resample(x, q, 100);
}

/** x + white Gaussian noise at `snrDb` below x's mean power. */
export function addNoise(x: Float32Array, snrDb: number, normal: () => number): Float32Array {
  const sigma = noiseStdForSnr(x, snrDb);
  return Float32Array.from(x, (v) => v + sigma * normal());
}

/** The waveform part of the augmentation (speed, then noise) for one utterance. */
export function augmentSignal(x: Float32Array, a: SpeechAugment, rng: () => number, normal: () => number): Float32Array {
  let y = x;
  if (a.speed) y = speedPerturb(y, drawSpeed(a.speed, rng));
  if (a.snr) y = addNoise(y, a.snr[0] + (a.snr[1] - a.snr[0]) * rng(), normal);
  return y;
}

/** One utterance's SpecAugment masks: [start, width) in bands and in frames. */
export interface SpecMasks {
  freq: Array<[number, number]>;
  time: Array<[number, number]>;
}

/** Draws SpecAugment masks for an utterance of `frames` frames and D features. */
export function drawSpecMasks(frames: number, D: number, a: SpeechAugment, rng: () => number): SpecMasks {
  const int = (n: number) => Math.floor(rng() * (n + 1)); // uniform on 0..n
  const freq: Array<[number, number]> = [];
  for (let i = 0; i < a.freqMasks; i++) {
    const w = int(Math.min(a.freqWidth, D - 1));
    freq.push([int(D - w), w]);
  }
  const time: Array<[number, number]> = [];
  const tMax = Math.min(a.timeWidth, Math.floor(a.timeFraction * frames));
  for (let i = 0; i < a.timeMasks; i++) {
    const w = int(tMax);
    time.push([int(frames - w), w]);
  }
  return { freq, time };
}

/**
 * SpecAugment on a batch of features, row-major [B, F, D] (changed in place and returned): utterance b's masks cover
 * only its own first `frames[b]` frames. Returns the masks drawn, per utterance.
 */
export function specAugment(feats: Float32Array, B: number, F: number, D: number, frames: readonly number[], a: SpeechAugment, rng: () => number): SpecMasks[] {
  const all: SpecMasks[] = [];
  for (let b = 0; b < B; b++) {
    const n = Math.min(F, frames[b]);
    const m = drawSpecMasks(n, D, a, rng);
    all.push(m);
    const base = b * F * D;
    for (const [f0, w] of m.freq) for (let t = 0; t < n; t++) feats.fill(0, base + t * D + f0, base + t * D + f0 + w);
    for (const [t0, w] of m.time) feats.fill(0, base + t0 * D, base + (t0 + w) * D);
  }
  return all;
}
