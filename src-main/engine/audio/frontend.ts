/**
 * A differentiable speech front end made only of tfjs ops that the wasm backend runs and
 * differentiates: reshape / slice / concat for framing (no gather: wasm lacks its gradient,
 * UnsortedSegmentSum), and matrix products for the DFT (no tf.signal.stft: wasm lacks FFT).
 *
 *   signal [B, n] -> pre-emphasis -> frames [B, F, L] -> Hann window + DFT (one matmul with an
 *   [L, 2K] cos|sin matrix, the window folded in, zero-padded to nfft) -> power |X|^2 [B, F, K]
 *   -> triangular mel filter bank [K, nMels] -> log(mel + eps) -> optional DCT-II (MFCC)
 *   -> optional per-utterance mean / variance normalisation.
 *
 * Defaults suit 8 kHz speech: 25 ms windows (200 samples), 10 ms hop (80), nfft 256 (K = 129
 * bins), 40 mel bands from 20 Hz to Nyquist (HTK mel scale), pre-emphasis 0.97, eps 1e-6, on
 * samples in [-1, 1]. Frames start at sample 0; the end is zero-padded so every sample is in some
 * frame: F = 1 + ceil(max(0, n - L) / hop).
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';

export interface FrontendConfig {
  /** Hz. */
  sampleRate: number;
  /** Window length in samples (25 ms at 8 kHz = 200). */
  frameLength: number;
  /** Hop in samples (10 ms at 8 kHz = 80). */
  hop: number;
  /** DFT size (>= frameLength; frames are zero-padded to it). */
  nfft: number;
  nMels: number;
  /** Lowest and highest mel filter edge, Hz. */
  fMin: number;
  fMax: number;
  /** y[n] = x[n] - a x[n-1] over the whole signal; 0 turns it off. */
  preemphasis: number;
  /** log(mel + logEps). */
  logEps: number;
  /** 0: output log-mel energies (nMels features); k > 0: the first k MFCCs (orthonormal DCT-II). */
  nMfcc: number;
  /** Per-utterance normalisation over time of each feature: none, mean (CMN), or mean and variance (CMVN). */
  normalize: 'none' | 'mean' | 'meanvar';
}

export const DEFAULT_FRONTEND: Readonly<FrontendConfig> = Object.freeze({
  sampleRate: 8000,
  frameLength: 200,
  hop: 80,
  nfft: 256,
  nMels: 40,
  fMin: 20,
  fMax: 4000,
  preemphasis: 0.97,
  logEps: 1e-6,
  nMfcc: 0,
  normalize: 'none',
});

/**
 * Fills a partial config from the defaults and checks it. fMax defaults to the Nyquist frequency
 * of the given sample rate; frameLength and hop default to 25 ms and 10 ms at that rate.
 */
export function resolveFrontend(partial: Partial<FrontendConfig> = {}): FrontendConfig {
  const sampleRate = partial.sampleRate ?? DEFAULT_FRONTEND.sampleRate;
  const frameLength = partial.frameLength ?? Math.round(0.025 * sampleRate);
  const cfg: FrontendConfig = {
    ...DEFAULT_FRONTEND,
    frameLength,
    hop: Math.round(0.01 * sampleRate),
    nfft: 2 ** Math.ceil(Math.log2(frameLength)),
    fMax: sampleRate / 2,
    ...stripUndefined(partial),
    sampleRate,
  };
  const intPos = (k: keyof FrontendConfig) => {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v <= 0) throw badInput(`front end: ${k} must be a positive integer, got ${v}`);
  };
  intPos('sampleRate');
  intPos('frameLength');
  intPos('hop');
  intPos('nfft');
  intPos('nMels');
  if (cfg.nfft < cfg.frameLength) throw badInput(`front end: nfft (${cfg.nfft}) must be >= frameLength (${cfg.frameLength})`);
  if (!(cfg.fMin >= 0 && cfg.fMax > cfg.fMin && cfg.fMax <= cfg.sampleRate / 2)) {
    throw badInput(`front end: need 0 <= fMin < fMax <= sampleRate/2, got fMin ${cfg.fMin}, fMax ${cfg.fMax}, sampleRate ${cfg.sampleRate}`);
  }
  if (!(cfg.preemphasis >= 0 && cfg.preemphasis < 1)) throw badInput(`front end: preemphasis must be in [0, 1), got ${cfg.preemphasis}`);
  if (!(cfg.logEps > 0)) throw badInput(`front end: logEps must be > 0, got ${cfg.logEps}`);
  if (!Number.isInteger(cfg.nMfcc) || cfg.nMfcc < 0 || cfg.nMfcc > cfg.nMels) throw badInput(`front end: nMfcc must be an integer in [0, nMels], got ${cfg.nMfcc}`);
  if (!['none', 'mean', 'meanvar'].includes(cfg.normalize)) throw badInput(`front end: normalize must be none, mean or meanvar, got ${cfg.normalize}`);
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Number of frames for a signal of n samples: 1 + ceil(max(0, n - L) / hop). */
export function frameCount(nSamples: number, cfg: Pick<FrontendConfig, 'frameLength' | 'hop'> = DEFAULT_FRONTEND): number {
  return 1 + Math.ceil(Math.max(0, nSamples - cfg.frameLength) / cfg.hop);
}

/** Periodic Hann window of length L: 0.5 - 0.5 cos(2 pi n / L). */
export function hannWindow(length: number): Float64Array {
  const w = new Float64Array(length);
  for (let i = 0; i < length; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / length);
  return w;
}

export function hzToMel(hz: number): number {
  return 2595 * Math.log10(1 + hz / 700);
}

export function melToHz(mel: number): number {
  return 700 * (10 ** (mel / 2595) - 1);
}

/**
 * Triangular mel filter bank (HTK mel scale, peak 1, unnormalised), row-major [K, nMels] with
 * K = nfft/2 + 1 bins at frequencies k * sampleRate / nfft. Throws if a filter covers no bin.
 */
export function melFilterbank(cfg: Pick<FrontendConfig, 'sampleRate' | 'nfft' | 'nMels' | 'fMin' | 'fMax'>): Float32Array {
  const K = cfg.nfft / 2 + 1;
  const lo = hzToMel(cfg.fMin);
  const hi = hzToMel(cfg.fMax);
  const edges = Array.from({ length: cfg.nMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (cfg.nMels + 1)));
  const fb = new Float32Array(K * cfg.nMels);
  for (let m = 0; m < cfg.nMels; m++) {
    const [left, centre, right] = [edges[m], edges[m + 1], edges[m + 2]];
    let total = 0;
    for (let k = 0; k < K; k++) {
      const f = (k * cfg.sampleRate) / cfg.nfft;
      const w = Math.max(0, Math.min((f - left) / (centre - left), (right - f) / (right - centre)));
      fb[k * cfg.nMels + m] = w;
      total += w;
    }
    if (total === 0) {
      throw badInput(`front end: mel filter ${m} (${left.toFixed(1)}-${right.toFixed(1)} Hz) covers no DFT bin; use fewer mels, a larger nfft or a higher fMin`);
    }
  }
  return fb;
}

/**
 * The windowed DFT as a matrix, row-major [L, 2K]: column k is w[n] cos(2 pi k n / nfft), column
 * K + k is -w[n] sin(2 pi k n / nfft), so frames @ M = [Re X, Im X] of the zero-padded frame.
 */
export function windowedDftMatrix(frameLength: number, nfft: number): Float32Array {
  const K = nfft / 2 + 1;
  const w = hannWindow(frameLength);
  const m = new Float32Array(frameLength * 2 * K);
  for (let n = 0; n < frameLength; n++) {
    for (let k = 0; k < K; k++) {
      const angle = (2 * Math.PI * ((k * n) % nfft)) / nfft;
      m[n * 2 * K + k] = w[n] * Math.cos(angle);
      m[n * 2 * K + K + k] = -w[n] * Math.sin(angle);
    }
  }
  return m;
}

/** Orthonormal DCT-II as a matrix, row-major [nIn, nOut]: c_k = sum_m x_m D[m, k]. */
export function dctMatrix(nIn: number, nOut: number): Float32Array {
  const d = new Float32Array(nIn * nOut);
  for (let m = 0; m < nIn; m++) {
    for (let k = 0; k < nOut; k++) {
      const scale = k === 0 ? Math.sqrt(1 / nIn) : Math.sqrt(2 / nIn);
      d[m * nOut + k] = scale * Math.cos((Math.PI * k * (m + 0.5)) / nIn);
    }
  }
  return d;
}

/**
 * Pads clips with zeros to a common length and stacks them as a [B, n] tensor (n at least
 * `minLength`); returns their true lengths for frame masks and CTC input lengths.
 */
export function stackSignals(signals: Float32Array[], minLength = 1): { batch: tf.Tensor2D; lengths: number[] } {
  if (signals.length === 0) throw badInput('stackSignals: no signals');
  const n = Math.max(minLength, ...signals.map((s) => s.length));
  const flat = new Float32Array(signals.length * n);
  signals.forEach((s, i) => flat.set(s, i * n));
  return { batch: tf.tensor2d(flat, [signals.length, n]), lengths: signals.map((s) => s.length) };
}

/**
 * The front end with its constant matrices held as tensors. Call `dispose()` when done.
 * `features` is differentiable w.r.t. the signal on every backend (tested on wasm).
 */
export class AudioFrontend {
  readonly config: FrontendConfig;
  /** Features per frame: nMels, or nMfcc when MFCCs are on. */
  readonly featureDim: number;
  /** DFT bins, nfft/2 + 1. */
  readonly bins: number;
  private readonly dft: ConstMatrix;
  private readonly melStacked: ConstMatrix;
  private readonly dct: ConstMatrix | null;
  private disposed = false;

  constructor(config: Partial<FrontendConfig> = {}) {
    this.config = resolveFrontend(config);
    const c = this.config;
    this.bins = c.nfft / 2 + 1;
    this.featureDim = c.nMfcc > 0 ? c.nMfcc : c.nMels;
    const fb = melFilterbank(c);
    // [Re^2, Im^2] @ [mel; mel] = |X|^2 @ mel: the power and the mel projection in one matmul.
    const stacked = new Float32Array(2 * fb.length);
    stacked.set(fb, 0);
    stacked.set(fb, fb.length);
    this.dft = new ConstMatrix(windowedDftMatrix(c.frameLength, c.nfft), c.frameLength, 2 * this.bins);
    this.melStacked = new ConstMatrix(stacked, 2 * this.bins, c.nMels);
    this.dct = c.nMfcc > 0 ? new ConstMatrix(dctMatrix(c.nMels, c.nMfcc), c.nMels, c.nMfcc) : null;
  }

  /** Frames for a signal of n samples. */
  frameCount(nSamples: number): number {
    return frameCount(nSamples, this.config);
  }

  /**
   * Pre-emphasised, zero-padded frames [B, F, L] (before the window), by reshape + slice + concat.
   * With `lengths` (samples per example of a padded batch) the pre-emphasised signal is zeroed
   * past each example's end, so an example gives the same frames alone or in a batch, and
   * whatever lies in the padding (e.g. a perturbation) neither shows nor gets a gradient.
   */
  frames(signal: tf.Tensor1D | tf.Tensor2D, lengths?: number[]): tf.Tensor3D {
    this.check();
    return tf.tidy(() => {
      const x = as2d(signal);
      const [B, n] = x.shape;
      checkLengths(lengths, B, n);
      const { frameLength: L, hop, preemphasis: a } = this.config;
      let y: tf.Tensor2D = x;
      if (a > 0 && n > 1) {
        const rest: tf.Tensor2D = tf.sub(tf.slice(x, [0, 1], [B, n - 1]), tf.mul(tf.slice(x, [0, 0], [B, n - 1]), a));
        y = tf.concat([tf.slice(x, [0, 0], [B, 1]), rest], 1);
      }
      if (lengths && lengths.some((k) => k < n)) {
        const mask = new Float32Array(B * n);
        lengths.forEach((k, b) => mask.fill(1, b * n, b * n + k));
        y = tf.mul(y, tf.tensor2d(mask, [B, n]));
      }
      const F = frameCount(n, this.config);
      const Q = Math.ceil(L / hop); // hop-sized chunks a frame touches
      const M = F - 1 + Q;
      const padded = M * hop > n ? tf.pad(y, [[0, 0], [0, M * hop - n]]) : y;
      const chunks = tf.reshape(padded, [B, M, hop]) as tf.Tensor3D;
      // Frame f = chunk f ++ chunk f+1 ++ ... truncated to L samples.
      const parts: tf.Tensor3D[] = [];
      for (let j = 0; j < Q; j++) parts.push(tf.slice(chunks, [0, j, 0], [B, F, Math.min(hop, L - j * hop)]));
      return parts.length === 1 ? parts[0] : tf.concat(parts, 2);
    });
  }

  /** Power spectrum |X|^2 [B, F, K] of the windowed frames (for spectrogram displays). */
  powerSpectrum(signal: tf.Tensor1D | tf.Tensor2D, lengths?: number[]): tf.Tensor3D {
    this.check();
    return tf.tidy(() => {
      const fr = this.frames(signal, lengths);
      const [B, F, L] = fr.shape;
      const spec = this.dft.apply(tf.reshape(fr, [B * F, L]) as tf.Tensor2D);
      const K = this.bins;
      const re = tf.slice(spec, [0, 0], [B * F, K]);
      const im = tf.slice(spec, [0, K], [B * F, K]);
      return tf.reshape(tf.add(tf.square(re), tf.square(im)), [B, F, K]) as tf.Tensor3D;
    });
  }

  /**
   * Log-mel (or MFCC) features [B, F, featureDim] of a [B, n] (or [n]) signal.
   * `lengths` (samples per example, for padded batches) ignores samples past each example's
   * end, restricts per-utterance normalisation to each example's own frames and zeroes its
   * padding frames afterwards.
   */
  features(signal: tf.Tensor1D | tf.Tensor2D, lengths?: number[]): tf.Tensor3D {
    this.check();
    const c = this.config;
    return tf.tidy(() => {
      const fr = this.frames(signal, lengths);
      const [B, F, L] = fr.shape;
      const spec = this.dft.apply(tf.reshape(fr, [B * F, L]) as tf.Tensor2D);
      const mel = this.melStacked.apply(tf.square(spec));
      let feat: tf.Tensor2D = tf.log(tf.add(mel, c.logEps));
      if (this.dct) feat = this.dct.apply(feat);
      let out = tf.reshape(feat, [B, F, this.featureDim]) as tf.Tensor3D;
      if (c.normalize !== 'none') out = this.normalizeUtterances(out, lengths);
      return out;
    });
  }

  private normalizeUtterances(feat: tf.Tensor3D, lengths: number[] | undefined): tf.Tensor3D {
    const [B, F] = feat.shape;
    const counts = lengths ? lengths.map((n) => Math.min(F, frameCount(n, this.config))) : new Array<number>(B).fill(F);
    const maskData = new Float32Array(B * F);
    counts.forEach((k, b) => maskData.fill(1, b * F, b * F + k));
    const mask = tf.tensor3d(maskData, [B, F, 1]);
    const count = tf.tensor3d(counts, [B, 1, 1]);
    const mean = tf.div(tf.sum(tf.mul(feat, mask), 1, true), count);
    let centred = tf.mul(tf.sub(feat, mean), mask);
    if (this.config.normalize === 'meanvar') {
      const variance = tf.div(tf.sum(tf.square(centred), 1, true), count);
      centred = tf.div(centred, tf.sqrt(tf.add(variance, 1e-5)));
    }
    return centred as tf.Tensor3D;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.dft.dispose();
    this.melStacked.dispose();
    this.dct?.dispose();
  }

  private check(): void {
    if (this.disposed) throw new Error('AudioFrontend used after dispose()');
  }
}

/**
 * A constant right-hand matrix W for x @ W, kept together with its transpose so that the gradient
 * dy @ W^T is a plain matmul: wasm's BatchMatMul with a transposed operand is about 10x slower
 * (178 ms instead of 16 ms for the DFT of 16 x 2.5 s, measured here).
 */
class ConstMatrix {
  private readonly w: tf.Tensor2D;
  private readonly wT: tf.Tensor2D;
  private readonly op: (x: tf.Tensor2D) => tf.Tensor2D;

  constructor(data: Float32Array, rows: number, cols: number) {
    // tf.keep: the constants must outlive any tf.tidy the constructor happens to run in.
    this.w = tf.keep(tf.tensor2d(data, [rows, cols]));
    this.wT = tf.keep(tf.transpose(this.w));
    const grad = tf.customGrad(((x: tf.Tensor) => ({
      value: tf.matMul(x as tf.Tensor2D, this.w),
      gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, this.wT),
    })) as Parameters<typeof tf.customGrad<tf.Tensor2D>>[0]);
    this.op = (x) => grad(x);
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.op(x);
  }

  dispose(): void {
    this.w.dispose();
    this.wT.dispose();
  }
}

function checkLengths(lengths: number[] | undefined, B: number, n: number): void {
  if (!lengths) return;
  if (lengths.length !== B) throw badInput(`front end: ${lengths.length} lengths for a batch of ${B}`);
  lengths.forEach((k, b) => {
    if (!Number.isInteger(k) || k < 0 || k > n) throw badInput(`front end: length ${k} of example ${b} is outside [0, ${n}]`);
  });
}

function as2d(signal: tf.Tensor1D | tf.Tensor2D): tf.Tensor2D {
  if (signal.rank === 1) return tf.expandDims(signal, 0) as tf.Tensor2D;
  if (signal.rank !== 2) throw badInput(`front end: signal must be [n] or [batch, n], got shape [${signal.shape.join(', ')}]`);
  return signal as tf.Tensor2D;
}
