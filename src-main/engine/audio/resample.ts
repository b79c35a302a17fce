/**
 * Band-limited resampling for any pair of rates: each output sample is the input convolved with a
 * Kaiser-windowed sinc low-pass evaluated at the output instant (the "bandlimited interpolation"
 * of Smith & Gossett, as in libsamplerate / resampy, computed exactly rather than from a table).
 *
 * The low-pass cutoff is `rolloff * min(fromRate, toRate) / 2`. With the defaults (24 zero
 * crossings per side, Kaiser beta 8.6, rolloff 0.9) the transition band spans about 0.8 to 1.0
 * of the lower Nyquist frequency and the stop band (>= about 80 dB down) starts at min(rates)/2, so
 * nothing aliases when downsampling and no images appear when upsampling. Samples outside the
 * clip count as zero.
 */
import { badInput } from '../errors';

export interface ResampleOptions {
  /** Zero crossings of the sinc kept on each side of the centre (filter half-length). Default 24. */
  zeros?: number;
  /** Kaiser window shape parameter. Default 8.6. */
  beta?: number;
  /** Cutoff as a fraction of the lower Nyquist frequency, in (0, 1]. Default 0.9. */
  rolloff?: number;
}

/** Zeroth-order modified Bessel function of the first kind (power series). */
export function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Phases cached when the rate ratio reduces to at most this many output positions per cycle. */
const MAX_PHASES = 4096;

/** Returns x resampled from `fromRate` to `toRate` (Hz); length ceil(n * toRate / fromRate). */
export function resample(x: Float32Array, fromRate: number, toRate: number, options: ResampleOptions = {}): Float32Array {
  if (!(fromRate > 0) || !(toRate > 0) || !Number.isFinite(fromRate) || !Number.isFinite(toRate)) {
    throw badInput(`resample: rates must be positive numbers, got ${fromRate} -> ${toRate}`);
  }
  const zeros = options.zeros ?? 24;
  const beta = options.beta ?? 8.6;
  const rolloff = options.rolloff ?? 0.9;
  if (!(zeros >= 1)) throw badInput(`resample: zeros must be >= 1, got ${zeros}`);
  if (!(beta >= 0)) throw badInput(`resample: beta must be >= 0, got ${beta}`);
  if (!(rolloff > 0 && rolloff <= 1)) throw badInput(`resample: rolloff must be in (0, 1], got ${rolloff}`);
  if (fromRate === toRate) return Float32Array.from(x);

  const n = x.length;
  const nOut = Math.ceil((n * toRate) / fromRate);
  const out = new Float32Array(nOut);
  // Cutoff in cycles per input sample, and the filter half-width in input samples.
  const fc = (rolloff * Math.min(fromRate, toRate)) / 2 / fromRate;
  const halfWidth = zeros / (2 * fc);
  const i0beta = besselI0(beta);

  /** Normalised taps for an output instant at input position base + frac (0 <= frac < 1). */
  const taps = (frac: number): { start: number; w: Float64Array } => {
    const start = Math.ceil(frac - halfWidth);
    const end = Math.floor(frac + halfWidth);
    const w = new Float64Array(end - start + 1);
    let sum = 0;
    for (let k = start; k <= end; k++) {
      const d = k - frac;
      const u = d / halfWidth;
      const win = besselI0(beta * Math.sqrt(Math.max(0, 1 - u * u))) / i0beta;
      const arg = 2 * fc * d;
      const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
      const v = 2 * fc * sinc * win;
      w[k - start] = v;
      sum += v;
    }
    // Unit gain at DC for every phase (removes a tiny phase-dependent gain ripple).
    for (let i = 0; i < w.length; i++) w[i] /= sum;
    return { start, w };
  };

  const apply = (base: number, t: { start: number; w: Float64Array }): number => {
    let acc = 0;
    const first = base + t.start;
    const lo = Math.max(0, -first);
    const hi = Math.min(t.w.length, n - first);
    for (let k = lo; k < hi; k++) acc += t.w[k] * x[first + k];
    return acc;
  };

  const rational = Number.isInteger(fromRate) && Number.isInteger(toRate);
  const g = rational ? gcd(fromRate, toRate) : 1;
  const up = toRate / g;
  const down = fromRate / g;
  if (rational && up <= MAX_PHASES) {
    // Output i sits at input position i * down / up = base + phase / up.
    const table = new Array<{ start: number; w: Float64Array } | undefined>(up);
    for (let i = 0; i < nOut; i++) {
      const pos = i * down;
      const base = Math.floor(pos / up);
      const phase = pos - base * up;
      const t = table[phase] ?? (table[phase] = taps(phase / up));
      out[i] = apply(base, t);
    }
  } else {
    const step = fromRate / toRate;
    for (let i = 0; i < nOut; i++) {
      const pos = i * step;
      const base = Math.floor(pos);
      out[i] = apply(base, taps(pos - base));
    }
  }
  return out;
}
