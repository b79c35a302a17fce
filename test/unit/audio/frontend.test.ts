import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { AudioFrontend, frameCount, melFilterbank, mulberry32, resolveFrontend, stackSignals } from '../../../src-main/engine/audio';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Broadband test signal: noise plus two tones, so every mel band has energy. */
function testSignal(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, (_, i) => 0.1 * (r() - 0.5) + 0.3 * Math.sin(2 * Math.PI * 1000 * i / 8000) + 0.2 * Math.sin(2 * Math.PI * 2370 * i / 8000 + seed));
}

/** The whole front end in plain float64 JS with direct loops, written from the definitions. */
function reference(x: Float32Array, opts: { nMfcc?: number } = {}) {
  const L = 200, hop = 80, nfft = 256, nMels = 40, sr = 8000, a = 0.97, eps = 1e-6;
  const K = nfft / 2 + 1;
  const y = Array.from(x, (v, i) => (i === 0 ? v : v - a * x[i - 1]));
  const F = Math.max(1, 1 + Math.ceil((y.length - L) / hop));
  const mel = (f: number) => 1127 * Math.log(1 + f / 700); // = 2595 log10(1 + f/700)
  const imel = (m: number) => 700 * (Math.exp(m / 1127) - 1);
  const pts = Array.from({ length: nMels + 2 }, (_, i) => imel(mel(20) + (i * (mel(4000) - mel(20))) / (nMels + 1)));
  const frames: number[][] = [], power: number[][] = [], logmel: number[][] = [], mfcc: number[][] = [];
  for (let f = 0; f < F; f++) {
    const fr = Array.from({ length: L }, (_, i) => y[f * hop + i] ?? 0);
    frames.push(fr);
    const p: number[] = [];
    for (let k = 0; k < K; k++) {
      let re = 0, im = 0;
      for (let i = 0; i < L; i++) {
        const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / L);
        re += w * fr[i] * Math.cos((2 * Math.PI * k * i) / nfft);
        im -= w * fr[i] * Math.sin((2 * Math.PI * k * i) / nfft);
      }
      p.push(re * re + im * im);
    }
    power.push(p);
    const lm: number[] = [];
    for (let m = 0; m < nMels; m++) {
      let e = 0;
      for (let k = 0; k < K; k++) {
        const hz = (k * sr) / nfft;
        let w = 0;
        if (hz > pts[m] && hz <= pts[m + 1]) w = (hz - pts[m]) / (pts[m + 1] - pts[m]);
        else if (hz > pts[m + 1] && hz < pts[m + 2]) w = (pts[m + 2] - hz) / (pts[m + 2] - pts[m + 1]);
        e += w * p[k];
      }
      lm.push(Math.log(e + eps));
    }
    logmel.push(lm);
    if (opts.nMfcc) {
      mfcc.push(Array.from({ length: opts.nMfcc }, (_, k) => {
        let s = 0;
        for (let m = 0; m < nMels; m++) s += lm[m] * Math.cos((Math.PI * k * (m + 0.5)) / nMels);
        return s * Math.sqrt((k === 0 ? 1 : 2) / nMels);
      }));
    }
  }
  return { frames, power, logmel, mfcc };
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, i) => {
    expect(row.length).toBe(b[i].length);
    row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j]))));
  });
  return m;
}

describe('differentiable front end (wasm)', () => {
  it('has the documented defaults and frame counts', () => {
    const c = resolveFrontend();
    expect(c).toMatchObject({ sampleRate: 8000, frameLength: 200, hop: 80, nfft: 256, nMels: 40, fMax: 4000 });
    expect(resolveFrontend({ sampleRate: 16000 })).toMatchObject({ frameLength: 400, hop: 160, nfft: 512, fMax: 8000 });
    expect(frameCount(200)).toBe(1);
    expect(frameCount(201)).toBe(2);
    expect(frameCount(8000)).toBe(99);
    expect(frameCount(50)).toBe(1);
    expect(() => resolveFrontend({ nfft: 128 })).toThrow(/nfft \(128\) must be >= frameLength/);
    expect(() => resolveFrontend({ fMax: 5000 })).toThrow(/fMax/);
    expect(() => melFilterbank({ sampleRate: 8000, nfft: 64, nMels: 80, fMin: 0, fMax: 4000 })).toThrow(/covers no DFT bin/);
    const fb = melFilterbank(c);
    for (let m = 0; m < 40; m++) {
      let s = 0;
      for (let k = 0; k < 129; k++) s += fb[k * 40 + m];
      expect(s).toBeGreaterThan(0.5);
    }
  });

  it('frames, power spectrum and log-mel match a direct-loop JS reference to 1e-3', () => {
    expect(tf.getBackend()).toBe('wasm');
    const fe = new AudioFrontend();
    const a = testSignal(1234, 1), b = testSignal(1234, 2);
    const batch = tf.tensor2d([...a, ...b], [2, 1234]);
    const frames = fe.frames(batch).arraySync() as number[][][];
    const power = fe.powerSpectrum(batch).arraySync() as number[][][];
    const feats = fe.features(batch);
    expect(feats.shape).toEqual([2, frameCount(1234), 40]);
    const logmel = feats.arraySync() as number[][][];
    [a, b].forEach((sig, i) => {
      const ref = reference(sig);
      expect(maxAbsDiff(frames[i], ref.frames)).toBeLessThan(1e-6);
      // Power is up to ~1e3: compare relative to the frame's peak.
      const scale = Math.max(...ref.power.flat());
      expect(maxAbsDiff(power[i], ref.power) / scale).toBeLessThan(1e-5);
      expect(maxAbsDiff(logmel[i], ref.logmel)).toBeLessThan(1e-3);
    });
    // Without pre-emphasis the louder 1 kHz tone peaks at bin 1000 * 256 / 8000 = 32; with it
    // (+4 dB at 2370 Hz, -2.5 dB at 1 kHz) the 2370 Hz tone wins, at bin 76 (2375 Hz).
    const flat = new AudioFrontend({ preemphasis: 0 });
    const p0 = (flat.powerSpectrum(batch).arraySync() as number[][][])[0][5];
    expect(p0.indexOf(Math.max(...p0))).toBe(32);
    const row = power[0][5];
    expect(row.indexOf(Math.max(...row))).toBe(76);
    tf.dispose([batch, feats]);
    fe.dispose();
    flat.dispose();
  });

  it('MFCCs match the reference DCT-II', () => {
    const fe = new AudioFrontend({ nMfcc: 13 });
    expect(fe.featureDim).toBe(13);
    const x = testSignal(900, 3);
    const t = tf.tensor1d(x);
    const out = fe.features(t);
    expect(maxAbsDiff((out.arraySync() as number[][][])[0], reference(x, { nMfcc: 13 }).mfcc)).toBeLessThan(2e-3);
    tf.dispose([t, out]);
    fe.dispose();
  });

  it('tf.grad through it works on wasm and matches finite differences of the reference', () => {
    const fe = new AudioFrontend();
    const x = testSignal(600, 4);
    const r = mulberry32(9);
    const wts = Array.from({ length: frameCount(600) * 40 }, () => r() - 0.5);
    const w = tf.tensor3d(wts, [1, frameCount(600), 40]);
    const loss = (s: tf.Tensor) => tf.sum(tf.mul(fe.features(s as tf.Tensor2D), w));
    const xt = tf.tensor2d(x, [1, 600]);
    const g = tf.grad(loss)(xt);
    const grad = g.dataSync() as Float32Array;
    expect(grad.every(Number.isFinite)).toBe(true);
    expect(Math.max(...grad.map(Math.abs))).toBeGreaterThan(1e-3);
    // Directional derivative along v: <grad, v> vs (f(x + hv) - f(x - hv)) / 2h in float64.
    const v = Float32Array.from({ length: 600 }, () => r() - 0.5);
    const f = (h: number) => {
      const lm = reference(Float32Array.from(x, (xi, i) => xi + h * v[i])).logmel.flat();
      return lm.reduce((s, val, i) => s + val * wts[i], 0);
    };
    const h = 1e-4;
    const numeric = (f(h) - f(-h)) / (2 * h);
    const analytic = grad.reduce((s, gi, i) => s + gi * v[i], 0);
    expect(Math.abs(analytic - numeric)).toBeLessThan(1e-2 * Math.abs(numeric) + 1e-3);
    tf.dispose([w, xt, g]);
    fe.dispose();
  });

  it('per-utterance normalisation uses each example\'s own frames in a padded batch', () => {
    const fe = new AudioFrontend({ normalize: 'meanvar' });
    const short = testSignal(700, 5), long = testSignal(1500, 6);
    const { batch, lengths } = stackSignals([short, long]);
    expect(lengths).toEqual([700, 1500]);
    // Junk in the padding (a perturbation, say) must not show when lengths are given.
    const junk = tf.tensor2d(Float32Array.from({ length: 3000 }, (_, i) => (i % 1500 >= 700 && i < 1500 ? 0.5 : 0)), [2, 1500]);
    const dirty = tf.add(batch, junk) as tf.Tensor2D;
    const both = fe.features(dirty, lengths).arraySync() as number[][][];
    tf.dispose([junk, dirty]);
    const alone = fe.features(tf.tensor1d(short)).arraySync() as number[][][];
    const Fs = frameCount(700);
    expect(maxAbsDiff(both[0].slice(0, Fs), alone[0])).toBeLessThan(1e-3);
    expect(Math.max(...both[0].slice(Fs).flat().map(Math.abs))).toBe(0);
    for (let m = 0; m < 40; m++) {
      const col = both[1].map((row) => row[m]);
      const mean = col.reduce((s, v) => s + v, 0) / col.length;
      const sd = Math.sqrt(col.reduce((s, v) => s + (v - mean) ** 2, 0) / col.length);
      expect(Math.abs(mean)).toBeLessThan(1e-4);
      expect(sd).toBeCloseTo(1, 2);
    }
    batch.dispose();
    fe.dispose();
  });

  it('keeps the tensor count flat over repeated forward + gradient steps', () => {
    const fe = new AudioFrontend({ nMfcc: 20, normalize: 'mean' });
    const x = tf.tensor2d(testSignal(2000, 7), [1, 2000]);
    const grad = tf.grad((s: tf.Tensor) => tf.sum(fe.features(s as tf.Tensor2D, [2000])));
    tf.dispose(grad(x));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(grad(x));
    for (let i = 0; i < 3; i++) tf.tidy(() => { fe.features(x); });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    fe.dispose();
    expect(() => fe.features(tf.zeros([1, 10]) as tf.Tensor2D)).toThrow(/after dispose/);
  });
});
