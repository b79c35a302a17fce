/**
 * A universal targeted perturbation for speech-to-text: one delta that makes many clips transcribe as
 * one phrase (the image-domain idea of Moosavi-Dezfooli et al. 2017, "Universal adversarial
 * perturbations", made targeted and trained by gradient descent as in Neekhara et al. 2019, "Universal
 * Adversarial Perturbations for Speech Recognition Systems", here with the CTC loss of a target phrase).
 *
 * Every clip is cut or zero-padded to a window of N samples (`seconds` at the model's rate) and the same
 * delta of N samples is added to each:
 *
 *   minimise  E_{x ~ train clips} CTC(f(clip(x + delta)), target)   subject to  |delta|_inf <= eps,
 *
 * with Adam (step `learningRate * eps`) on minibatches of `batchSize` training clips drawn with the
 * seed, projecting onto the Linf ball after each step, and a little Gaussian noise (2 LSB) added to the
 * inputs as in the C&W audio attack so that the result survives 16-bit rounding. Every `evalEvery`
 * steps the current delta is judged as it would be stored: each training clip + delta, rounded to 16
 * bits, transcribed greedily; the delta with the most exact target transcripts on the training clips is
 * kept. That delta is then evaluated on the held-out clips (never used in training): the success rate
 * is the fraction transcribed exactly as the target. Each bound in `eps` is trained from zero, so the
 * result is a curve of held-out success against the perturbation's size (eps, and its level in dBFS
 * and its mean dB_x over the held-out clips).
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../core/random';
import { childContext, silentContext, type JobContext } from '../context';
import { CancelledError, badInput } from '../errors';
import { normalizeTarget, validateTarget } from './attack';
import { ctcLoss } from './ctc';
import { dB } from './dbx';
import type { SpeechModel } from './model';
import { quantize16 } from './wav';

/** The universal perturbation's defaults, written once (api/jobs.ts takes its schema's defaults from here). */
export const UNIVERSAL_DEFAULTS = {
  trainClips: 24,
  testClips: 24,
  eps: [0.01, 0.02, 0.05, 0.1],
  iterations: 300,
  batchSize: 8,
  learningRate: 0.05,
  seconds: 1,
  seed: 0,
  evalEvery: 25,
  noiseLsb: 2,
} as const;

export interface UniversalOptions {
  target: string;
  eps: readonly number[];
  iterations: number;
  batchSize: number;
  learningRate: number;
  seconds: number;
  seed: number;
  evalEvery?: number;
}

export interface UniversalPoint {
  eps: number;
  /** Level of the kept delta, dB relative to full scale (20 log10 max|delta|). */
  deltaDbfs: number;
  /** Mean dB_x of the delta over the held-out clips (dB(delta) - dB(clip)). */
  meanDbx: number;
  trainSuccess: number;
  heldOutSuccess: number;
  heldOutHits: number;
  heldOutTrials: number;
  /** Step at which the kept delta was found. */
  keptAt: number;
  /** Held-out transcripts with the kept delta, in clip order. */
  heldOutTranscripts: string[];
}

export interface UniversalResult {
  target: string;
  sampleRate: number;
  /** Window length, samples. */
  length: number;
  points: UniversalPoint[];
  /** The kept delta of each bound (model rate, 16-bit grid), in the order of `points`. */
  deltas: Float32Array[];
  /** Clean held-out transcripts (before any delta). */
  heldOutClean: string[];
  seconds: number;
}

export interface UniversalHooks {
  onStep?: (row: { eps: number; iteration: number; loss: number }) => void | Promise<void>;
  onCheck?: (row: { eps: number; iteration: number; trainSuccess: number }) => void | Promise<void>;
}

const LSB = 1 / 32768;

/** A clip cut or zero-padded to n samples. */
export function fitWindow(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  out.set(x.subarray(0, n));
  return out;
}

/** The stored adversarial of a window: clip + delta, rounded to 16 bits (and clipped). */
const stored = (x: Float32Array, delta: Float32Array) => quantize16(x.map((v, i) => v + delta[i]));

/**
 * Trains one universal delta per bound on `train` and evaluates each on `heldOut` (clips at the model's
 * rate). Cancelling throws CancelledError whose `partial` is the UniversalResult of the bounds finished.
 */
export async function universalPerturbation(model: SpeechModel, train: readonly Float32Array[], heldOut: readonly Float32Array[], options: UniversalOptions, ctx: JobContext = silentContext, hooks: UniversalHooks = {}): Promise<UniversalResult> {
  const t0 = performance.now();
  if (train.length === 0 || heldOut.length === 0) throw badInput('universal perturbation: needs at least one training clip and one held-out clip');
  const rate = model.sampleRate;
  const n = Math.round(options.seconds * rate);
  const target = normalizeTarget(options.target);
  const { labels } = validateTarget(model, target, n);
  const evalEvery = options.evalEvery ?? UNIVERSAL_DEFAULTS.evalEvery;
  const trainW = train.map((x) => quantize16(fitWindow(x, n)));
  const testW = heldOut.map((x) => quantize16(fitWindow(x, n)));
  const T = model.outputFrames(n);
  const successOf = async (clips: Float32Array[], delta: Float32Array) => {
    const texts = await model.transcribeBatch(clips.map((x) => stored(x, delta)), { batchSize: 8 });
    return { texts, hits: texts.filter((t) => t === target).length };
  };
  const heldOutClean = await model.transcribeBatch(testW, { batchSize: 8 });
  const result: UniversalResult = { target, sampleRate: rate, length: n, points: [], deltas: [], heldOutClean, seconds: 0 };
  const B = Math.min(options.batchSize, trainW.length);
  const trainTensor = tf.tensor2d(Float32Array.from(trainW.flatMap((x) => [...x])), [trainW.length, n]);
  const noiseStd = UNIVERSAL_DEFAULTS.noiseLsb * LSB;
  const bounds = [...options.eps];
  try {
    for (let k = 0; k < bounds.length; k++) {
      const eps = bounds[k];
      const sub = childContext(ctx, { from: k, span: 1, total: bounds.length, label: `eps ${eps}` });
      const zeros = tf.zeros([1, n]);
      const delta = tf.variable(zeros, true, `universal-delta-${Math.random().toString(36).slice(2)}`);
      zeros.dispose();
      const opt = tf.train.adam(options.learningRate * eps);
      const rng = mulberry32(options.seed * 8_191 + k);
      let kept: { delta: Float32Array; hits: number; at: number } = { delta: new Float32Array(n), hits: -1, at: 0 };
      try {
        for (let it = 1; it <= options.iterations; it++) {
          if (ctx.cancelled) throw new CancelledError(`universal perturbation cancelled at eps ${eps}, step ${it}`);
          const idx = Array.from({ length: B }, () => Math.floor(rng() * trainW.length));
          const cost = opt.minimize(() => tf.tidy(() => {
            const xb = tf.gather(trainTensor, idx);
            let input = tf.clipByValue(tf.add(xb, delta), -1, 32767 / 32768);
            input = tf.add(input, tf.randomNormal([B, n], 0, noiseStd, 'float32', options.seed * 100_003 + k * 10_007 + it));
            return tf.div(ctcLoss(model.logits(input as tf.Tensor2D), Array(B).fill(labels), { inputLengths: Array(B).fill(T), reduction: 'sum' }), B) as tf.Scalar;
          }), true, [delta])!;
          tf.tidy(() => delta.assign(tf.clipByValue(delta, -eps, eps)));
          const loss = (await cost.data())[0];
          cost.dispose();
          if (!Number.isFinite(loss)) throw new Error(`universal perturbation diverged: the loss is ${loss} at eps ${eps}, step ${it}`);
          await hooks.onStep?.({ eps, iteration: it, loss });
          if (it % evalEvery === 0 || it === options.iterations) {
            const d = quantize16((await delta.data()) as Float32Array);
            const { hits } = await successOf(trainW, d);
            if (hits >= kept.hits) kept = { delta: d, hits, at: it };
            await hooks.onCheck?.({ eps, iteration: it, trainSuccess: hits / trainW.length });
            sub.progress({ step: it, total: options.iterations, metrics: { loss, trainSuccess: hits / trainW.length }, message: `eps ${eps}: step ${it}, ${hits}/${trainW.length} training clips say "${target}"` });
          }
        }
      } finally {
        delta.dispose();
        opt.dispose();
      }
      const test = await successOf(testW, kept.delta);
      const level = dB(kept.delta);
      const dbxs = testW.map((x) => level - dB(x)).filter(Number.isFinite);
      result.points.push({
        eps,
        deltaDbfs: level,
        meanDbx: dbxs.length ? dbxs.reduce((a, b) => a + b, 0) / dbxs.length : Number.NaN,
        trainSuccess: kept.hits / trainW.length,
        heldOutSuccess: test.hits / testW.length,
        heldOutHits: test.hits,
        heldOutTrials: testW.length,
        keptAt: kept.at,
        heldOutTranscripts: test.texts,
      });
      result.deltas.push(kept.delta);
    }
  } catch (e) {
    if (e instanceof CancelledError) {
      result.seconds = (performance.now() - t0) / 1000;
      throw new CancelledError(e.message, result);
    }
    throw e;
  } finally {
    trainTensor.dispose();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
