/**
 * Speech training augmentation (engine/audio/augment.ts, train.ts's trainingBatch): the spec and its bounds, speed
 * perturbation's length and pitch, SpecAugment's masks (exactly the bands and frames drawn, inside each utterance,
 * never all of them), determinism per seed, unchanged labels, no tensor leaks, the same augmented batches on both
 * engines, and validation/test never augmented.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import {
  DEFAULT_AUGMENT, SpeechModel, augmentSignal, drawSpecMasks, mulberry32, parseAugmentSpec, resolveSpeechTrainOptions, specAugment, speedPerturb,
  stackSignals, trainSpeechModel, trainingBatch, type ClipCache, type SpeechAugment, type Utterance,
} from '../../../src-main/engine/audio';
import type { SpeechBatch } from '../../../src-main/engine/audio/train';
import { audioTrainParams } from '../../../src-main/api/jobs';
import { DATA } from '../helpers';

const FSDD = join(DATA, 'fsdd', 'recordings');
const SR = 8000;

beforeAll(async () => {
  await initBackend('wasm');
});

function gaussian(rng: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

function sine(hz: number, n: number, amp = 0.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / SR));
}

/** Frequency of a sine by the DFT magnitude peak over its middle (1 Hz grid near `near`). */
function peakHz(x: Float32Array, near: number): number {
  const a = Math.floor(x.length / 4);
  const seg = x.subarray(a, a + Math.floor(x.length / 2));
  let best = 0;
  let bestHz = 0;
  for (let f = near * 0.7; f <= near * 1.4; f += 1) {
    let re = 0;
    let im = 0;
    for (let i = 0; i < seg.length; i++) {
      const w = (2 * Math.PI * f * i) / SR;
      re += seg[i] * Math.cos(w);
      im -= seg[i] * Math.sin(w);
    }
    const m = re * re + im * im;
    if (m > best) [best, bestHz] = [m, f];
  }
  return bestHz;
}

describe('the augmentation spec', () => {
  it('parses default, overrides and off; refuses impossible values with a clear error', () => {
    expect(parseAugmentSpec('default')).toEqual({ ...DEFAULT_AUGMENT, speed: [0.9, 1.1] });
    expect(parseAugmentSpec('default,snr=10-30,freq=1x5')).toMatchObject({ speed: [0.9, 1.1], snr: [10, 30], freqMasks: 1, freqWidth: 5, timeMasks: 2 });
    expect(parseAugmentSpec('speed=0.85-1.15,time=3x10,time-frac=0.2')).toMatchObject({ speed: [0.85, 1.15], timeMasks: 3, timeWidth: 10, timeFraction: 0.2, freqMasks: 0 });
    expect(parseAugmentSpec('default,off')).toMatchObject({ speed: null, freqMasks: 0, timeMasks: 0 });
    expect(() => parseAugmentSpec('speed=1.2-1.1')).toThrow(/speed needs LO-HI with LO <= HI/);
    expect(() => parseAugmentSpec('speed=0.2-1.1')).toThrow(/speed factors must lie in \[0.5, 2\]/);
    expect(() => parseAugmentSpec('freq=6x7', 40)).toThrow(/could cover all 40: need masks x width < 40/);
    expect(() => parseAugmentSpec('time=10x20,time-frac=0.1')).toThrow(/could cover all of it/);
    expect(() => parseAugmentSpec('time=2x20')).toThrow(/time-frac > 0/);
    expect(() => parseAugmentSpec('warp=1')).toThrow(/unknown item "warp=1"/);
    expect(() => parseAugmentSpec('freq=two')).toThrow(/freq needs NxW/);
  });

  it('is off unless given: resolve, the job schema (checked by the same parser) and its errors', () => {
    expect(resolveSpeechTrainOptions({}).augment).toBeNull();
    expect(resolveSpeechTrainOptions({ augment: 'off' }).augment).toBeNull();
    expect(resolveSpeechTrainOptions({ augment: 'default' }).augment).toMatchObject({ speed: [0.9, 1.1], freqMasks: 2 });
    expect(() => resolveSpeechTrainOptions({ augment: { ...DEFAULT_AUGMENT, timeMasks: 20 } })).toThrow(/could cover all of it/);
    expect(audioTrainParams.parse({}).augment).toBeUndefined();
    expect(audioTrainParams.parse({ augment: 'default,snr=10-30' }).augment).toBe('default,snr=10-30');
    const bad = audioTrainParams.safeParse({ augment: 'speed=3-4' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0].message).toMatch(/speed factors must lie in/);
  });
});

describe('speed perturbation', () => {
  it('a sine played at factor f: length n / f and its frequency times f', () => {
    const x = sine(500, 8000);
    for (const f of [0.9, 1.1, 1.2]) {
      const y = speedPerturb(x, f);
      expect(y.length).toBe(Math.ceil(8000 / f));
      expect(Math.abs(peakHz(y, 500 * f) - 500 * f)).toBeLessThanOrEqual(2);
    }
    expect(speedPerturb(x, 1)).toBe(x);
  });

  it('draws from the stream it is given: the same seed gives the same signal, another seed another', () => {
    const x = sine(300, 4000);
    const a: SpeechAugment = parseAugmentSpec('speed=0.85-1.15,snr=10-20');
    const run = (seed: number) => {
      const rng = mulberry32(seed);
      return augmentSignal(x, a, rng, gaussian(rng));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
    // The noise is at the drawn SNR (10-20 dB below the signal's power).
    const y = parseAugmentSpec('snr=15-15');
    const rng = mulberry32(1);
    const noisy = augmentSignal(x, y, rng, gaussian(rng));
    let ps = 0;
    let pn = 0;
    for (let i = 0; i < x.length; i++) [ps, pn] = [ps + x[i] ** 2, pn + (noisy[i] - x[i]) ** 2];
    expect(10 * Math.log10(ps / pn)).toBeCloseTo(15, 0);
  });
});

describe('SpecAugment', () => {
  it('zeroes exactly the bands and frames drawn, only in each utterance\'s own frames, and never all of them', () => {
    const B = 3;
    const F = 50;
    const D = 40;
    const frames = [50, 31, 12];
    const a = parseAugmentSpec('freq=2x19,time=2x100,time-frac=0.49', D);
    for (let seed = 0; seed < 12; seed++) {
      const x = Float32Array.from({ length: B * F * D }, (_, i) => 1 + (i % 7));
      const masks = specAugment(x, B, F, D, frames, a, mulberry32(seed));
      expect(masks).toEqual(Array.from({ length: B }, (_, b) => drawSpecMasks(frames[b], D, a, ((r) => { for (let k = 0; k < b; k++) drawSpecMasks(frames[k], D, a, r); return r; })(mulberry32(seed)))));
      for (let b = 0; b < B; b++) {
        const inMask = (t: number, d: number) => t < frames[b] && (masks[b].freq.some(([s, w]) => d >= s && d < s + w) || masks[b].time.some(([s, w]) => t >= s && t < s + w));
        let keptBands = 0;
        let keptFrames = 0;
        for (let t = 0; t < F; t++) {
          for (let d = 0; d < D; d++) expect(x[(b * F + t) * D + d] === 0).toBe(inMask(t, d));
        }
        for (let d = 0; d < D; d++) if (!masks[b].freq.some(([s, w]) => d >= s && d < s + w)) keptBands++;
        for (let t = 0; t < frames[b]; t++) if (!masks[b].time.some(([s, w]) => t >= s && t < s + w)) keptFrames++;
        expect(keptBands).toBeGreaterThan(0);
        expect(keptFrames).toBeGreaterThan(0);
        for (const [, w] of masks[b].time) expect(w).toBeLessThanOrEqual(Math.floor(0.49 * frames[b]));
        for (const [s, w] of masks[b].freq) expect(s + w).toBeLessThanOrEqual(D);
      }
    }
  });
});

describe('training batches', () => {
  const cache: ClipCache = new Map();

  it('the same seed gives the same batch; labels are the transcripts; without augmentation the batch is as before; no tensor leaks', async () => {
    const m = SpeechModel.create('speech-small', { seed: 1 });
    try {
      const utts: Utterance[] = ['one two', 'three', 'nine eight seven'].map((t, i) => ({ id: `u${i}`, samples: sine(200 + 90 * i, 6000 + 1500 * i, 0.3), digits: [], transcript: t, clips: [] }));
      const o = { ditherFraction: 0.5 };
      const a = parseAugmentSpec('default,snr=20-30', m.frontend.featureDim);
      const make = (seed: number, aug: SpeechAugment | null) => {
        const r = mulberry32(seed);
        const ar = mulberry32(seed + 1000);
        return trainingBatch(m, utts, o, { rng: r, normal: gaussian(r) }, aug ? { augment: aug, rng: ar, normal: gaussian(ar) } : null);
      };
      const before = tf.memory().numTensors;
      const read = async (b: SpeechBatch) => {
        const out = { feats: Array.from(await b.feats.data()), shape: b.feats.shape, frames: b.frames, outLengths: b.outLengths, labels: b.labels };
        b.feats.dispose();
        return out;
      };
      const x1 = await read(make(3, a));
      const x2 = await read(make(3, a));
      const other = await read(make(4, a));
      const plain = await read(make(3, null));
      expect(tf.memory().numTensors).toBe(before);
      expect(x1).toEqual(x2);
      expect(other.feats).not.toEqual(x1.feats);
      const labels = utts.map((u) => m.alphabet.encode(u.transcript));
      expect(x1.labels).toEqual(labels);
      expect(other.labels).toEqual(labels);
      // Speed perturbation changes lengths (frames follow the augmented signals); SpecAugment zeroes whole bands.
      expect(x1.frames).not.toEqual(plain.frames);
      // Without augmentation and dither: exactly the front end's features of the clips as they are.
      const bare = await read(trainingBatch(m, utts, { ditherFraction: 0 }, { rng: mulberry32(1), normal: () => 0 }, null));
      const { batch, lengths } = stackSignals(utts.map((u) => u.samples), m.frontend.config.frameLength);
      const ref = m.frontend.features(batch, lengths);
      expect(bare.feats).toEqual(Array.from(await ref.data()));
      expect(bare.frames).toEqual(utts.map((u) => m.frameCount(u.samples.length)));
      tf.dispose([batch, ref]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      m.dispose();
    }
  });

  it('both engines get the same augmented batches for the same seed; validation and test are never augmented', async () => {
    const TINY = { arch: 'speech-small', epochs: 1, utterances: 24, valUtterances: 6, testUtterances: 6, batchSize: 8, learningRate: 1e-9, seed: 2, fsddDir: FSDD, clipCache: cache, threads: 1 };
    const run = async (engine: 'tfjs' | 'onnx', augment?: string) => {
      const batches: Array<{ feats: number[]; frames: number[]; labels: number[][] }> = [];
      const before = tf.memory().numTensors;
      const r = await trainSpeechModel({ ...TINY, engine, ...(augment ? { augment } : {}) }, {
        onTrainBatch: async (b) => void batches.push({ feats: Array.from(await b.feats.data()), frames: b.frames, labels: b.labels }),
      });
      const out = { batches, engine: r.engine.engine, val: r.epochs[0].val_cer, seen: r.testSeen!.rows.map((x) => x.predicted), unseen: r.testUnseen!.rows.map((x) => x.predicted) };
      r.model.dispose();
      expect(tf.memory().numTensors).toBe(before);
      return out;
    };
    const tfjs = await run('tfjs', 'default,snr=20-40');
    const ort = await run('onnx', 'default,snr=20-40');
    const plain = await run('tfjs');
    expect(ort.engine).toBe('onnx');
    expect(tfjs.batches.length).toBe(3);
    expect(ort.batches).toEqual(tfjs.batches);
    // Augmented: other features, and fewer or more frames, than the same run without it; the same labels.
    expect(tfjs.batches[0].feats).not.toEqual(plain.batches[0].feats);
    expect(tfjs.batches.map((b) => b.labels)).toEqual(plain.batches.map((b) => b.labels));
    // A learning rate of 1e-9 leaves the decisions as they were: validation and test transcripts are the same with
    // and without augmentation only if neither is augmented.
    expect(tfjs.val).toBe(plain.val);
    expect(tfjs.seen).toEqual(plain.seen);
    expect(tfjs.unseen).toEqual(plain.unseen);
  }, 300_000);
});
