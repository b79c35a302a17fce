/**
 * The frequency-masking threshold of Qin, Carlini, Cottrell, Goodfellow & Raffel (2019),
 * "Imperceptible, Robust, and Targeted Adversarial Examples for Automatic Speech Recognition",
 * Section 4.1, itself a simplified psychoacoustic model 1 (Lin & Abdulla 2015, MPEG-1).
 *
 * For each analysis frame of the clip x:
 *
 *  1. Power spectral density. With the periodic Hann window w of length N and the frame's DFT
 *     s_x(k), p_x(k) = 10 log10 |(sqrt(8/3) / N) s_x(k)|^2, then normalised so that the frame's
 *     loudest bin sits at 96 dB (the full range of 16-bit audio):
 *        bar p_x(k) = 96 - max_k p_x(k) + p_x(k).
 *     As in ART (which deviates from the authors' code, which uses one maximum for the whole clip),
 *     the maximum is taken per frame; the per-frame maximum p_max is kept to put the
 *     perturbation's spectrum on the same scale.
 *  2. Maskers. Local maxima of bar p_x (bins strictly above both neighbours); all are treated as
 *     tonal, and each masker's level is its power summed with its two neighbours',
 *        P_TM(k) = 10 log10(10^(bar p(k-1)/10) + 10^(bar p(k)/10) + 10^(bar p(k+1)/10)).
 *     Maskers under the absolute threshold of hearing are dropped; of two maskers closer than
 *     0.5 Bark the weaker one is dropped.
 *  3. Spreading. Frequencies map to the Bark scale z(f) = 13 arctan(0.00076 f) + 3.5 arctan((f/7500)^2).
 *     A masker j at z_j of level P_j masks bin i (dz = z(i) - z_j) up to
 *        T_j(i) = P_j - 6.025 - 0.275 z_j + SF(dz),
 *        SF(dz) = 27 dz                                    for dz <= 0,
 *        SF(dz) = (-27 + 0.37 max(P_j - 40, 0)) dz        for dz > 0
 *     (steep towards lower frequencies, shallower upwards for loud maskers).
 *  4. Global threshold. The individual thresholds and the absolute threshold of hearing
 *        ATH(f) = 3.64 (f/1000)^-0.8 - 6.5 exp(-0.6 (f/1000 - 3.3)^2) + 10^-3 (f/1000)^4 - 12  (dB SPL)
 *     add in power: theta_x(i) = 10 log10(sum_j 10^(T_j(i)/10) + 10^(ATH(i)/10)). Outside 20 Hz..20 kHz
 *     (here: the DC bin) ATH is +infinity, as in ART: nothing there is audible, so theta_x is
 *     +infinity too and no perturbation power counts against it.
 *
 * A perturbation delta is measured on the same frames and the same scale as x,
 *    bar p_delta(k) = 96 - p_max(x) + p_delta(k),
 * and the stage-2 loss is the hinge l_theta = mean_{frames, bins} max(0, 10^(bar p_delta/10) - 10^(theta_x/10)),
 * written without the 10 log10 as in the authors' code and ART ("stabilised"): in linear power
 * 10^(bar p_delta / 10) = 10^9.6 / 10^(p_max / 10) * (8/3) |s_delta|^2 / N^2.
 *
 * Window and hop at our rate (a deviation from the paper, with numbers). The paper analyses 16 kHz
 * audio with N = 2048 samples (128 ms, bins 7.8 Hz apart) and a hop of 512 (32 ms). Our speech models
 * run at 8 kHz, where 2048 samples would be 256 ms (hop 64 ms): a 0.4 s FSDD word would give 4 frames
 * and twice the paper's time smearing. We keep the paper's durations instead: N = 2048 * rate / 16000
 * rounded to a power of two = 1024 samples at 8 kHz (128 ms; bins 8000/1024 = 7.8 Hz apart, the
 * same resolution in Hz and so in Bark) and a hop of N / 4 = 256 (32 ms). The 513 bins cover 0-4 kHz,
 * Bark 0 to 17.3 (the paper's 1025 bins reach 8 kHz, Bark 21.3). Unlike the paper's STFT (which
 * drops the last partial frame), the end is zero-padded so that every sample lies in some frame
 * (F = 1 + ceil(max(0, n - N) / hop), as in our front end), so no part of the perturbation escapes
 * the loss.
 *
 * The tiny floor added to |.|^2 before the logarithm is 1e-16 (for samples in [-1, 1]): ART's float32
 * epsilon on 16-bit-scaled audio (1.19e-7 / 32768^2 ~ 1e-16), about -160 dB below full scale.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import { AudioFrontend, frameCount, hannWindow } from './frontend';

/** The paper's analysis: 16 kHz, 2048-sample window, hop 512. */
export const PSYCHO_REFERENCE = Object.freeze({ sampleRate: 16000, windowSize: 2048, hop: 512 });
/** The loudest bin of every frame is put at this level (dB): the range of 16-bit audio. */
export const PSD_REFERENCE_DB = 96;
/** Floor added to |(sqrt(8/3)/N) s(k)|^2 before the logarithm (samples in [-1, 1]). */
export const PSD_FLOOR = 1e-16;
/** Largest finite float32, standing for an infinite threshold inside tensors. */
const F32_MAX = 3.4e38;

export interface PsychoConfig {
  sampleRate: number;
  /** Analysis window (and DFT) length, a power of two. */
  windowSize: number;
  hop: number;
}

/** The paper's durations at `sampleRate`: window 2048 * rate / 16000 rounded to a power of two, hop window / 4. */
export function psychoConfig(sampleRate: number): PsychoConfig {
  if (!Number.isInteger(sampleRate) || sampleRate < 1000) throw badInput(`psychoacoustic model: the sample rate must be an integer >= 1000 Hz, got ${sampleRate}`);
  const windowSize = 2 ** Math.round(Math.log2((PSYCHO_REFERENCE.windowSize * sampleRate) / PSYCHO_REFERENCE.sampleRate));
  return { sampleRate, windowSize, hop: windowSize / 4 };
}

/** Critical-band rate in Bark (Zwicker's approximation used by the paper). */
export function bark(fHz: number): number {
  return 13 * Math.atan(0.00076 * fHz) + 3.5 * Math.atan((fHz / 7500) ** 2);
}

/** Absolute threshold of hearing in dB SPL (Terhardt's approximation); +Infinity outside 20 Hz..20 kHz. */
export function absoluteThresholdOfHearing(fHz: number): number {
  if (!(fHz >= 20 && fHz <= 20000)) return Infinity;
  const f = fHz / 1000;
  return 3.64 * f ** -0.8 - 6.5 * Math.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f ** 4 - 12;
}

/** Frequencies (Hz) of the bins 0..N/2. */
export function binFrequencies(cfg: PsychoConfig): Float64Array {
  const K = cfg.windowSize / 2 + 1;
  return Float64Array.from({ length: K }, (_, k) => (k * cfg.sampleRate) / cfg.windowSize);
}

/** In-place iterative radix-2 FFT of (re, im), length a power of two. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const ar = re[i + k + len / 2];
        const ai = im[i + k + len / 2];
        const tr = ar * wr - ai * wi;
        const ti = ar * wi + ai * wr;
        re[i + k + len / 2] = re[i + k] - tr;
        im[i + k + len / 2] = im[i + k] - ti;
        re[i + k] += tr;
        im[i + k] += ti;
      }
    }
  }
}

function checkConfig(cfg: PsychoConfig): void {
  const N = cfg.windowSize;
  if (!Number.isInteger(N) || N < 8 || (N & (N - 1)) !== 0) throw badInput(`psychoacoustic model: windowSize must be a power of two >= 8, got ${N}`);
  if (!Number.isInteger(cfg.hop) || cfg.hop < 1 || cfg.hop > N) throw badInput(`psychoacoustic model: hop must be an integer in [1, windowSize], got ${cfg.hop}`);
}

/**
 * Un-normalised PSD in dB, p(k) = 10 log10(|(sqrt(8/3)/N) s(k)|^2 + floor), row-major [F, K],
 * frames as in the front end (start at 0, end zero-padded).
 */
export function powerSpectralDensity(audio: Float32Array, cfg: PsychoConfig): { psd: Float64Array; frames: number; bins: number } {
  checkConfig(cfg);
  const N = cfg.windowSize;
  const K = N / 2 + 1;
  const F = frameCount(audio.length, { frameLength: N, hop: cfg.hop });
  const w = hannWindow(N);
  const psd = new Float64Array(F * K);
  const re = new Float64Array(N);
  const im = new Float64Array(N);
  const gain = 8 / 3 / (N * N);
  for (let f = 0; f < F; f++) {
    const start = f * cfg.hop;
    for (let i = 0; i < N; i++) {
      const j = start + i;
      re[i] = j < audio.length ? audio[j] * w[i] : 0;
      im[i] = 0;
    }
    fft(re, im);
    for (let k = 0; k < K; k++) psd[f * K + k] = 10 * Math.log10(gain * (re[k] * re[k] + im[k] * im[k]) + PSD_FLOOR);
  }
  return { psd, frames: F, bins: K };
}

/** Bark and ATH per bin, for a config. */
export interface BinScales {
  freqs: Float64Array;
  bark: Float64Array;
  ath: Float64Array;
}

export function binScales(cfg: PsychoConfig): BinScales {
  const freqs = binFrequencies(cfg);
  return { freqs, bark: freqs.map(bark), ath: freqs.map(absoluteThresholdOfHearing) };
}

/** Maskers of one normalised PSD frame: bins and levels (dB) after the ATH and 0.5-Bark filters. */
export function findMaskers(psd: ArrayLike<number>, scales: BinScales): { bins: number[]; levels: number[] } {
  let bins: number[] = [];
  let levels: number[] = [];
  for (let k = 1; k < psd.length - 1; k++) {
    if (psd[k] > psd[k - 1] && psd[k] > psd[k + 1]) {
      const level = 10 * Math.log10(10 ** (psd[k - 1] / 10) + 10 ** (psd[k] / 10) + 10 ** (psd[k + 1] / 10));
      if (level > scales.ath[k]) {
        bins.push(k);
        levels.push(level);
      }
    }
  }
  // Of two maskers within 0.5 Bark keep the stronger; scan left to right against the last kept one.
  const keptBins: number[] = [];
  const keptLevels: number[] = [];
  for (let j = 0; j < bins.length; j++) {
    const last = keptBins.length - 1;
    if (last >= 0 && scales.bark[bins[j]] - scales.bark[keptBins[last]] < 0.5) {
      if (levels[j] > keptLevels[last]) {
        keptBins[last] = bins[j];
        keptLevels[last] = levels[j];
      }
    } else {
      keptBins.push(bins[j]);
      keptLevels.push(levels[j]);
    }
  }
  bins = keptBins;
  levels = keptLevels;
  return { bins, levels };
}

/** The global masking threshold (dB) of one normalised PSD frame. */
export function frameThreshold(psd: ArrayLike<number>, scales: BinScales): Float64Array {
  const { bins, levels } = findMaskers(psd, scales);
  const K = psd.length;
  const out = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let power = 10 ** (scales.ath[i] / 10);
    for (let j = 0; j < bins.length; j++) {
      const zj = scales.bark[bins[j]];
      const dz = scales.bark[i] - zj;
      const spread = dz <= 0 ? 27 * dz : (-27 + 0.37 * Math.max(levels[j] - 40, 0)) * dz;
      power += 10 ** ((levels[j] - 6.025 - 0.275 * zj + spread) / 10);
    }
    // The sum includes the ATH's power, so this is >= ATH; max() only removes the rounding of log(10^x).
    out[i] = Math.max(10 * Math.log10(power), scales.ath[i]);
  }
  return out;
}

/** A clip's masking threshold, frame by frame. */
export interface MaskingThreshold {
  config: PsychoConfig;
  frames: number;
  bins: number;
  /** Samples analysed. */
  length: number;
  /** theta_x in dB on the 96 dB scale, row-major [F, K]; +Infinity where ATH is undefined (DC). */
  threshold: Float64Array;
  /** The clip's normalised PSD bar p_x (dB), [F, K]. */
  psd: Float64Array;
  /** Per-frame maximum of the un-normalised PSD, p_max (dB), [F]. */
  psdMax: Float64Array;
}

/** theta_x for every frame of `audio` (samples in [-1, 1] at cfg.sampleRate). */
export function maskingThreshold(audio: Float32Array, cfg: PsychoConfig): MaskingThreshold {
  if (audio.length === 0) throw badInput('psychoacoustic model: the clip is empty');
  const { psd: raw, frames: F, bins: K } = powerSpectralDensity(audio, cfg);
  const scales = binScales(cfg);
  const psd = new Float64Array(F * K);
  const psdMax = new Float64Array(F);
  const threshold = new Float64Array(F * K);
  for (let f = 0; f < F; f++) {
    const row = raw.subarray(f * K, (f + 1) * K);
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, row[k]);
    psdMax[f] = m;
    for (let k = 0; k < K; k++) psd[f * K + k] = PSD_REFERENCE_DB - m + row[k];
    threshold.set(frameThreshold(psd.subarray(f * K, (f + 1) * K), scales), f * K);
  }
  return { config: cfg, frames: F, bins: K, length: audio.length, threshold, psd, psdMax };
}

/** bar p_delta: the perturbation's PSD (dB) on the clip's per-frame scale, [F, K]. */
export function perturbationPsd(delta: Float32Array, mt: MaskingThreshold): Float64Array {
  if (delta.length !== mt.length) throw badInput(`psychoacoustic model: the perturbation has ${delta.length} samples, the clip ${mt.length}`);
  const { psd } = powerSpectralDensity(delta, mt.config);
  const K = mt.bins;
  for (let f = 0; f < mt.frames; f++) for (let k = 0; k < K; k++) psd[f * K + k] += PSD_REFERENCE_DB - mt.psdMax[f];
  return psd;
}

/** How far a perturbation's spectrum rises above the clip's masking threshold. */
export interface MaskingViolation {
  /** The stage-2 loss l_theta: mean over frames and bins of max(0, 10^(bar p_delta/10) - 10^(theta_x/10)). */
  loss: number;
  /** Mean over frames and bins of max(0, bar p_delta - theta_x), in dB. */
  meanExcessDb: number;
  /** Fraction of (frame, bin) cells where bar p_delta > theta_x. */
  aboveFraction: number;
}

export function maskingViolation(delta: Float32Array, mt: MaskingThreshold): MaskingViolation {
  const pd = perturbationPsd(delta, mt);
  let loss = 0;
  let excess = 0;
  let above = 0;
  for (let i = 0; i < pd.length; i++) {
    const d = pd[i] - mt.threshold[i];
    if (d > 0) {
      loss += 10 ** (pd[i] / 10) - 10 ** (mt.threshold[i] / 10);
      excess += d;
      above++;
    }
  }
  const cells = pd.length;
  return { loss: loss / cells, meanExcessDb: excess / cells, aboveFraction: above / cells };
}

/**
 * One frame of the analysis, for display: frequencies, theta_x, bar p_x and bar p_delta (dB), with
 * +Infinity (the DC bin's threshold) written as null so the result is JSON.
 */
export interface MaskingFrame {
  frame: number;
  /** Frame start in seconds. */
  start: number;
  freqs: number[];
  threshold: (number | null)[];
  clip: number[];
  perturbation: number[];
}

export function maskingFrames(delta: Float32Array, mt: MaskingThreshold): MaskingFrame[] {
  const pd = perturbationPsd(delta, mt);
  const freqs = Array.from(binFrequencies(mt.config), (v) => Number(v.toFixed(2)));
  const r = (v: number) => (Number.isFinite(v) ? Number(v.toFixed(2)) || 0 : null);
  const K = mt.bins;
  return Array.from({ length: mt.frames }, (_, f) => ({
    frame: f,
    start: (f * mt.config.hop) / mt.config.sampleRate,
    freqs,
    threshold: Array.from(mt.threshold.subarray(f * K, (f + 1) * K), r),
    clip: Array.from(mt.psd.subarray(f * K, (f + 1) * K), (v) => r(v) ?? -999),
    perturbation: Array.from(pd.subarray(f * K, (f + 1) * K), (v) => r(v) ?? -999),
  }));
}

/**
 * The differentiable l_theta for perturbations of one clip's length: the clip's threshold and
 * per-frame scale held as tensors, the perturbation's power spectrum from the front end's framing and
 * DFT matmul (the same periodic Hann window and frames as `powerSpectralDensity`). Call `dispose()`.
 */
export class MaskingLoss {
  private readonly frontend: AudioFrontend;
  private readonly thresholdLin: tf.Tensor3D;
  private readonly scale: tf.Tensor3D;
  private disposed = false;

  constructor(readonly mt: MaskingThreshold) {
    const { windowSize: N, hop, sampleRate } = mt.config;
    this.frontend = new AudioFrontend({ sampleRate, frameLength: N, hop, nfft: N, preemphasis: 0, nMels: 8, fMin: 0, fMax: sampleRate / 2 });
    const th = Float32Array.from(mt.threshold, (v) => (Number.isFinite(v) ? Math.min(10 ** (v / 10), F32_MAX) : F32_MAX));
    this.thresholdLin = tf.tensor3d(th, [1, mt.frames, mt.bins]);
    // 10^(bar p_delta / 10) = 10^9.6 / 10^(p_max/10) * (8/3) |s|^2 / N^2
    const sc = Float32Array.from(mt.psdMax, (m) => 10 ** ((PSD_REFERENCE_DB - m) / 10) * (8 / 3) / (N * N));
    this.scale = tf.tensor3d(sc, [1, mt.frames, 1]);
  }

  /** l_theta of a [1, n] perturbation (n = the clip's length), as a scalar. */
  loss(delta: tf.Tensor2D): tf.Scalar {
    if (this.disposed) throw new Error('MaskingLoss used after dispose()');
    if (delta.shape[1] !== this.mt.length) throw badInput(`masking loss: the perturbation has ${delta.shape[1]} samples, the clip ${this.mt.length}`);
    return tf.tidy(() => {
      const power = tf.mul(this.frontend.powerSpectrum(delta), this.scale);
      return tf.mean(tf.relu(tf.sub(power, this.thresholdLin))) as tf.Scalar;
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.frontend.dispose();
    tf.dispose([this.thresholdLin, this.scale]);
  }
}
