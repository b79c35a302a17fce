import { describe, expect, it } from 'vitest';
import { resample, rms } from '../../../src-main/engine/audio';

function tone(n: number, freq: number, rate: number, amp = 0.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}

/** Least-squares amplitude and residual of a sine/cosine pair at `freq` (middle part only). */
function fitTone(y: Float32Array, freq: number, rate: number, margin: number) {
  let ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
  const idx: number[] = [];
  for (let i = margin; i < y.length - margin; i++) idx.push(i);
  for (const i of idx) {
    const s = Math.sin((2 * Math.PI * freq * i) / rate), c = Math.cos((2 * Math.PI * freq * i) / rate);
    ss += s * s; cc += c * c; sc += s * c; ys += y[i] * s; yc += y[i] * c;
  }
  const det = ss * cc - sc * sc;
  const a = (ys * cc - yc * sc) / det, b = (yc * ss - ys * sc) / det;
  let res = 0;
  for (const i of idx) {
    const r = y[i] - a * Math.sin((2 * Math.PI * freq * i) / rate) - b * Math.cos((2 * Math.PI * freq * i) / rate);
    res += r * r;
  }
  return { amp: Math.hypot(a, b), phase: Math.atan2(b, a), residualRms: Math.sqrt(res / idx.length) };
}

describe('band-limited resampling', () => {
  it('1 kHz sine 16k -> 8k keeps frequency, amplitude and phase', () => {
    const x = tone(16000, 1000, 16000);
    const y = resample(x, 16000, 8000);
    expect(y.length).toBe(8000);
    const fit = fitTone(y, 1000, 8000, 200);
    expect(fit.amp).toBeCloseTo(0.5, 3);
    expect(Math.abs(fit.phase)).toBeLessThan(1e-3);
    expect(fit.residualRms).toBeLessThan(1e-4); // nothing but the 1 kHz tone
  });

  it('3.5 kHz tone 16k -> 4k is removed (no alias at 500 Hz)', () => {
    const y = resample(tone(16000, 3500, 16000), 16000, 4000);
    expect(y.length).toBe(4000);
    const middle = y.subarray(200, 3800);
    expect(rms(middle)).toBeLessThan(1e-4 * rms(tone(1000, 3500, 16000))); // > 80 dB down
    // Naive decimation (every 4th sample) would alias it to a loud 500 Hz tone.
    const naive = Float32Array.from({ length: 4000 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 3500 * 4 * i) / 16000));
    expect(fitTone(naive, 500, 4000, 0).amp).toBeGreaterThan(0.49);
  });

  it('just above the new Nyquist is stopped; well inside the pass band is kept', () => {
    const above = resample(tone(8000, 4100, 16000), 16000, 8000).subarray(200, 3800);
    expect(rms(above)).toBeLessThan(1e-3 * (0.5 / Math.SQRT2));
    const inside = fitTone(resample(tone(8000, 3000, 16000), 16000, 8000), 3000, 8000, 200);
    expect(inside.amp).toBeGreaterThan(0.5 * 0.99);
  });

  it('upsamples 8k -> 16k to the band-limited interpolant', () => {
    const y = resample(tone(4000, 1000, 8000), 8000, 16000);
    expect(y.length).toBe(8000);
    const exact = tone(8000, 1000, 16000);
    let m = 0;
    for (let i = 300; i < 7700; i++) m = Math.max(m, Math.abs(y[i] - exact[i]));
    expect(m).toBeLessThan(1e-3);
  });

  it('handles awkward ratios (44.1k -> 8k, 11025 -> 16k, fractional rates) without changing the tone', () => {
    for (const [from, to] of [[44100, 8000], [11025, 16000], [8000.5, 7999.25]]) {
      const x = tone(Math.round(from * 0.25), 440, from);
      const y = resample(x, from, to);
      expect(y.length).toBe(Math.ceil((x.length * to) / from));
      const fit = fitTone(y, 440, to, 150);
      expect(fit.amp).toBeCloseTo(0.5, 3);
      expect(fit.residualRms).toBeLessThan(1e-3);
    }
  });

  it('keeps DC, returns a copy for equal rates and rejects bad rates', () => {
    const dc = resample(new Float32Array(3000).fill(0.25), 16000, 6000);
    for (let i = 100; i < dc.length - 100; i++) expect(Math.abs(dc[i] - 0.25)).toBeLessThan(1e-5);
    const x = tone(10, 1, 8000);
    const same = resample(x, 8000, 8000);
    expect(same).not.toBe(x);
    expect(Array.from(same)).toEqual(Array.from(x));
    expect(() => resample(x, 0, 8000)).toThrow(/rates must be positive/);
    expect(() => resample(x, 8000, 4000, { rolloff: 1.5 })).toThrow(/rolloff/);
  });
});
