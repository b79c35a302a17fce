import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import {
  AudioFrontend, MaskingLoss, absoluteThresholdOfHearing, bark, binFrequencies, maskingFrames, maskingThreshold, maskingViolation, mulberry32,
  perturbationPsd, powerSpectralDensity, psychoConfig, readWavFile, type PsychoConfig,
} from '../../../src-main/engine/audio';
import { DATA } from '../helpers';

const CFG = psychoConfig(8000);

function tone(freq: number, n: number, amp = 0.5, rate = 8000): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}

function noise(n: number, amp: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => amp * (2 * r() - 1));
}

/**
 * The threshold written out plainly from the paper's equations, independent of psycho.ts: a direct
 * O(N^2) DFT per frame, the masker search, both filters and the spreading function as loops.
 */
function referenceThreshold(audio: Float32Array, cfg: PsychoConfig): number[][] {
  const N = cfg.windowSize;
  const K = N / 2 + 1;
  const F = 1 + Math.ceil(Math.max(0, audio.length - N) / cfg.hop);
  const f = (k: number) => (k * cfg.sampleRate) / N;
  const z = (k: number) => 13 * Math.atan(0.00076 * f(k)) + 3.5 * Math.atan((f(k) / 7500) ** 2);
  const ath = (k: number) => {
    const khz = f(k) / 1000;
    return f(k) < 20 ? Infinity : 3.64 * khz ** -0.8 - 6.5 * Math.exp(-0.6 * (khz - 3.3) ** 2) + 0.001 * khz ** 4 - 12;
  };
  const out: number[][] = [];
  for (let fr = 0; fr < F; fr++) {
    const p: number[] = [];
    for (let k = 0; k < K; k++) {
      let re = 0;
      let im = 0;
      for (let i = 0; i < N; i++) {
        const s = fr * cfg.hop + i < audio.length ? audio[fr * cfg.hop + i] : 0;
        const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N);
        re += s * w * Math.cos((2 * Math.PI * k * i) / N);
        im -= s * w * Math.sin((2 * Math.PI * k * i) / N);
      }
      p.push(10 * Math.log10(((Math.sqrt(8 / 3) / N) ** 2) * (re * re + im * im) + 1e-16));
    }
    const pmax = Math.max(...p);
    const pn = p.map((v) => 96 - pmax + v);
    let maskers: { k: number; P: number }[] = [];
    for (let k = 1; k < K - 1; k++) {
      if (pn[k] > pn[k - 1] && pn[k] > pn[k + 1]) {
        const P = 10 * Math.log10(10 ** (pn[k - 1] / 10) + 10 ** (pn[k] / 10) + 10 ** (pn[k + 1] / 10));
        if (P > ath(k)) maskers.push({ k, P });
      }
    }
    const kept: { k: number; P: number }[] = [];
    for (const m of maskers) {
      const last = kept.at(-1);
      if (last && z(m.k) - z(last.k) < 0.5) {
        if (m.P > last.P) kept[kept.length - 1] = m;
      } else kept.push(m);
    }
    maskers = kept;
    const row: number[] = [];
    for (let i = 0; i < K; i++) {
      let sum = 10 ** (ath(i) / 10);
      for (const m of maskers) {
        const dz = z(i) - z(m.k);
        const sf = dz <= 0 ? 27 * dz : (-27 + 0.37 * Math.max(m.P - 40, 0)) * dz;
        sum += 10 ** ((m.P - 6.025 - 0.275 * z(m.k) + sf) / 10);
      }
      row.push(10 * Math.log10(sum));
    }
    out.push(row);
  }
  return out;
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('the frequency-masking threshold (Qin et al. 2019)', () => {
  it('keeps the paper\'s 128 ms window and 32 ms hop at the model\'s rate', () => {
    expect(psychoConfig(16000)).toEqual({ sampleRate: 16000, windowSize: 2048, hop: 512 });
    expect(psychoConfig(8000)).toEqual({ sampleRate: 8000, windowSize: 1024, hop: 256 });
    expect(() => psychoConfig(0)).toThrow(/sample rate/);
    expect(binFrequencies(CFG)[1]).toBeCloseTo(7.8125, 6);
    // Zwicker's Bark and Terhardt's ATH at known points.
    expect(bark(1000)).toBeCloseTo(8.51, 2);
    expect(absoluteThresholdOfHearing(1000)).toBeCloseTo(3.64 - 6.5 * Math.exp(-0.6 * 2.3 ** 2) + 0.001 - 12, 9);
    expect(absoluteThresholdOfHearing(10)).toBe(Infinity);
  });

  it('a pure tone raises the threshold around its frequency and not far below it', () => {
    const x = tone(1000, 4000);
    const mt = maskingThreshold(x, CFG);
    const freqs = binFrequencies(CFG);
    const K = mt.bins;
    const f = 2; // a frame fully inside the tone
    const th = mt.threshold.subarray(f * K, (f + 1) * K);
    const k1000 = Math.round(1000 / (8000 / 1024));
    // The tone's own bin: near 96 dB - 6.025 - 0.275 z (the masker's offset), far above hearing.
    expect(th[k1000]).toBeGreaterThan(96 - 6.025 - 0.275 * bark(1000) - 3);
    expect(th[k1000] - absoluteThresholdOfHearing(1000)).toBeGreaterThan(60);
    // Within 0.5 Bark: still raised by > 40 dB over the ATH.
    for (let k = 0; k < K; k++) {
      if (Math.abs(bark(freqs[k]) - bark(1000)) < 0.5) expect(th[k] - absoluteThresholdOfHearing(freqs[k])).toBeGreaterThan(40);
    }
    // 5 Bark or more below: the steep lower slope (27 dB/Bark) leaves only the ATH (and the Hann
    // window's leakage, 40 dB+ down, does not make maskers above it).
    let checked = 0;
    for (let k = 1; k < K; k++) {
      if (bark(freqs[k]) < bark(1000) - 5) {
        expect(th[k]).toBeCloseTo(absoluteThresholdOfHearing(freqs[k]), 1);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
    // Falls away from the tone on both sides (up to the ATH floor).
    expect(th[k1000]).toBeGreaterThan(th[k1000 - 20]);
    expect(th[k1000 - 20]).toBeGreaterThan(th[k1000 - 60]);
    expect(th[k1000]).toBeGreaterThan(th[k1000 + 60]);
    expect(th[k1000 + 60]).toBeGreaterThan(th[k1000 + 200]);
    // A tone elsewhere does not raise it at 1 kHz from below.
    const other = maskingThreshold(tone(3000, 4000), CFG);
    expect(other.threshold[f * K + k1000]).toBeLessThan(th[k1000] - 40);
  });

  it('is never below the absolute threshold of hearing', async () => {
    const clip = (await readWavFile(join(DATA, 'fsdd', 'recordings', '3_theo_0.wav'))).samples;
    const signals = [clip, noise(3000, 0.3, 1), tone(440, 2500, 0.2), new Float32Array(2000), Float32Array.from(tone(300, 3000), (v, i) => v + 0.01 * noise(3000, 1, 2)[i])];
    const freqs = binFrequencies(CFG);
    for (const s of signals) {
      const mt = maskingThreshold(s, CFG);
      for (let f = 0; f < mt.frames; f++) {
        for (let k = 0; k < mt.bins; k++) expect(mt.threshold[f * mt.bins + k]).toBeGreaterThanOrEqual(absoluteThresholdOfHearing(freqs[k]));
      }
      // Every frame's loudest bin sits at 96 dB.
      for (let f = 0; f < mt.frames; f++) expect(Math.max(...mt.psd.subarray(f * mt.bins, (f + 1) * mt.bins))).toBeCloseTo(96, 9);
    }
  });

  it('matches a straightforward computation of the paper\'s equations', async () => {
    const cfg: PsychoConfig = { sampleRate: 8000, windowSize: 256, hop: 64 }; // small, for the O(N^2) DFT
    const clip = (await readWavFile(join(DATA, 'fsdd', 'recordings', '7_jackson_0.wav'))).samples.subarray(1000, 1700);
    for (const s of [clip, Float32Array.from(tone(700, 700, 0.3), (v, i) => v + tone(2100, 700, 0.05)[i] + noise(700, 0.001, 5)[i])]) {
      const mt = maskingThreshold(s, cfg);
      const ref = referenceThreshold(s, cfg);
      expect(mt.frames).toBe(ref.length);
      for (let f = 0; f < mt.frames; f++) {
        for (let k = 0; k < mt.bins; k++) {
          const a = mt.threshold[f * mt.bins + k];
          const b = ref[f][k];
          if (b === Infinity) expect(a).toBe(Infinity);
          else expect(Math.abs(a - b)).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('puts a perturbation on the clip\'s per-frame scale and measures what rises above the threshold', () => {
    const x = Float32Array.from(tone(500, 3000, 0.4), (v, i) => v + noise(3000, 0.01, 3)[i]);
    const mt = maskingThreshold(x, CFG);
    // The clip itself, as a "perturbation", has the clip's normalised PSD.
    const same = perturbationPsd(x, mt);
    for (let i = 0; i < same.length; i += 37) expect(same[i]).toBeCloseTo(mt.psd[i], 6);
    // A quiet perturbation near the tone hides; the same energy far above it does not.
    const hidden = maskingViolation(tone(520, 3000, 0.001), mt);
    const exposed = maskingViolation(tone(3500, 3000, 0.001), mt);
    expect(hidden.aboveFraction).toBeLessThan(exposed.aboveFraction);
    expect(exposed.loss).toBeGreaterThan(hidden.loss);
    expect(maskingViolation(new Float32Array(3000), mt)).toEqual({ loss: 0, meanExcessDb: 0, aboveFraction: 0 });
    // Doubling the perturbation never lowers the violation.
    const d = noise(3000, 0.003, 4);
    expect(maskingViolation(d.map((v) => 2 * v), mt).loss).toBeGreaterThan(maskingViolation(d, mt).loss);
    // Frames for display: JSON-safe (the DC threshold is null), one per analysis frame.
    const frames = maskingFrames(d, mt);
    expect(frames.length).toBe(mt.frames);
    expect(frames[0].threshold[0]).toBeNull();
    expect(JSON.parse(JSON.stringify(frames))).toEqual(frames);
  });

  it('the differentiable loss equals the measured violation, has a gradient and leaks no tensors', () => {
    const x = Float32Array.from(tone(600, 2600, 0.4), (v, i) => v + noise(2600, 0.02, 6)[i]);
    const mt = maskingThreshold(x, CFG);
    const d = noise(2600, 0.004, 7);
    const before = tf.memory().numTensors;
    const ml = new MaskingLoss(mt);
    const dt = tf.tensor2d(d, [1, d.length]);
    const l = ml.loss(dt);
    const expected = maskingViolation(d, mt).loss;
    expect(expected).toBeGreaterThan(0);
    expect(Math.abs(l.dataSync()[0] - expected) / expected).toBeLessThan(2e-3);
    const g = tf.grad((v: tf.Tensor) => ml.loss(v as tf.Tensor2D))(dt);
    const gv = g.dataSync();
    expect(gv.every(Number.isFinite)).toBe(true);
    expect(gv.some((v) => v !== 0)).toBe(true);
    const short = tf.zeros([1, 10]) as tf.Tensor2D;
    expect(() => ml.loss(short)).toThrow(/2600/);
    tf.dispose([dt, l, g, short]);
    ml.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => ml.loss(dt)).toThrow(/dispose/);
  });

  it('computes the same spectrum as the front end\'s framing and DFT (the loss\'s path)', () => {
    const x = noise(1500, 0.2, 9);
    const { psd, frames, bins } = powerSpectralDensity(x, CFG);
    expect(frames).toBe(1 + Math.ceil((1500 - 1024) / 256));
    expect(bins).toBe(513);
    const fe = new AudioFrontend({ sampleRate: 8000, frameLength: 1024, hop: 256, nfft: 1024, preemphasis: 0, nMels: 8, fMin: 0, fMax: 4000 });
    const xt = tf.tensor2d(x, [1, x.length]);
    const p = fe.powerSpectrum(xt);
    const v = p.dataSync();
    tf.dispose([xt, p]);
    fe.dispose();
    expect(v.length).toBe(frames * bins);
    for (let i = 0; i < v.length; i += 11) expect(10 * Math.log10((8 / 3 / 1024 ** 2) * v[i] + 1e-16)).toBeCloseTo(psd[i], 2);
  });
});
