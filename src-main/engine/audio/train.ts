/**
 * Training a speech model with CTC on FSDD connected digits, optionally together with a synthesized
 * corpus (`corpus`, made by `advlab audio corpus`, see corpus.ts).
 *
 * With a corpus, each epoch is every synthesized "train" clip once plus `fsddUtterances` fresh FSDD
 * connected-digit utterances; validation is the corpus's "val" clips plus FSDD's validation
 * utterances; a third test part, `testVoices`, is the corpus's "test" clips: voices never heard in
 * training. FSDD's held-out speaker is the one the corpus manifest names.
 *
 * Data (all from `splitFsdd`, so no recording is shared between parts):
 *  - one speaker is held out entirely: `testUnseen` utterances are built from their recordings;
 *  - for the other speakers, recordings 0-4 (FSDD's test convention) build `testSeen` utterances,
 *    recordings 5-9 build the validation utterances (CER/WER per epoch), recordings 10-49 train.
 * Each epoch builds fresh training utterances (1-4 digits, random silences) from the training
 * recordings with a new seed, so the model sees new combinations every epoch. Half of the training
 * utterances get a little Gaussian noise ("dither", 70-40 dB below the utterance's peak) so that the
 * model knows both digital silence and a recording's noise floor. With `augment` (augment.ts, off by default) each
 * training batch is also augmented before either engine sees it (trainingBatch): speed perturbation and noise on the
 * waveforms, SpecAugment masks on the normalised features, drawn from the run's own augmentation stream (seeded, so a
 * run is reproducible and both engines train on the same batches). Validation and test are never augmented.
 *
 * Optimisation: Adam on the mean CTC loss of padded batches (utterances of similar length batched
 * together), gradients clipped to a global L2 norm, learning rate with a short linear warm-up and a
 * cosine decay to 10%.
 *
 * Engines (`engine`, resolved as image training resolves its own): 'tfjs' (the default here, and the
 * reference: tfjs autodiff through the network and ctcLoss, data-parallel on the job's shard executor when it
 * has several workers) or ONNX Runtime ('onnx', or 'auto': ONNX Runtime when the network exports for training,
 * else tfjs with the reason). On ONNX Runtime a step is the forward graph (per-frame logits, the same frame
 * masks), CTC and its logit gradient in JS (ctcLossGradient: ctcLoss's math on arrays), the backward graph (every
 * weight gradient from that upstream gradient; onnx/export-seq-train.ts), then the same clipping (clipByGlobalNorm),
 * learning-rate schedule (learningRateAt) and Adam (onnx/train-optimizer.ts's, written as tfjs's). The front end
 * stays in tfjs. The weights go back into the network before each validation and when training ends or is
 * cancelled, so the saved model is a normal tfjs speech model. Every batch is
 * reported (progress + onBatch), every epoch validated (onEpoch); `ctx.checkpoint()` once per batch
 * makes the run cancellable: a cancelled run throws CancelledError carrying the model trained so far.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { silentContext } from '../context';
import { CancelledError, badInput } from '../errors';
import { ctcLoss } from './ctc';
import { MIN_SPEECH_SHARD, shardedSpeechGrads, speechShardExecutor, speechShardSizes } from '../shards/speech-grad';
import { corpusCer, corpusWer, cer as utteranceCer } from './metrics';
import { DIGIT_WORDS, buildUtterances, fsddDir, listFsdd, mulberry32, splitFsdd, type ClipCache, type FsddClip, type Utterance } from './fsdd';
import { stackSignals } from './frontend';
import { CORPUS_MANIFEST, readCorpusClip, readCorpusManifest } from './corpus';
import { resample } from './resample';
import { SpeechModel, isSpeechArch, SPEECH_ARCH_NAMES, type TranscribeOptions } from './model';
import { ctcLossGradient, ctcMinFrames } from './ctc';
import type { EngineInfo } from '../models/classifier';
import { ENGINE_REQUESTS, type EngineRequest } from '../onnx/engines';
import { sequenceTrainingEngine } from '../onnx/seq-trainer';
import { augmentSignal, augmentIsOn, checkAugment, parseAugmentSpec, specAugment, type SpeechAugment } from './augment';

export interface SpeechTrainOptions {
  /** 'speech-base' (default) or 'speech-small' (default with quick). */
  arch?: string;
  /** Smaller model, fewer utterances and epochs: a few minutes, enough for the attack demo. */
  quick?: boolean;
  /** Default 20 (quick: 14). */
  epochs?: number;
  /** Training utterances built per epoch. Default 2700 (quick: 600). */
  utterances?: number;
  /** Validation utterances (fixed). Default 200 (quick: 60). */
  valUtterances?: number;
  /** Test utterances per test split (seen speakers, unseen speaker). Default 300 (quick: 100). */
  testUtterances?: number;
  /** Default 16. */
  batchSize?: number;
  /** Peak Adam learning rate. Default 0.001 (quick: 0.002). */
  learningRate?: number;
  /** Default 1. */
  seed?: number;
  /** FSDD recordings folder. Default $ADVLAB_DATA/fsdd/recordings. */
  fsddDir?: string;
  /** Default: the last speaker alphabetically. */
  heldOutSpeaker?: string;
  /** Fraction of training utterances that get dither noise. Default 0.5. */
  ditherFraction?: number;
  /** Gradients are clipped to this global L2 norm. Default 50. */
  clipNorm?: number;
  /** Decoder used for validation and test CER/WER. Default greedy. */
  decode?: TranscribeOptions;
  /** Decoded clips, shared between runs (tests). */
  clipCache?: ClipCache;
  /** A corpus folder (or its corpus.json) from `advlab audio corpus`: trains on it and FSDD together. */
  corpus?: string;
  /** With a corpus: FSDD utterances built per epoch. Default 600. */
  fsddUtterances?: number;
  /** Which engine computes the steps (see the module comment). Default 'tfjs'. */
  engine?: EngineRequest;
  /** ONNX Runtime intra-op threads (engine onnx/auto). Default: onnx/runtime's defaultThreads. */
  threads?: number;
  /**
   * Data augmentation of the training batches (augment.ts: speed perturbation, noise, SpecAugment), as a spec string
   * ("default", "speed=0.9-1.1,freq=2x7,time=2x20,time-frac=0.1", ...) or parsed. Default: none.
   */
  augment?: string | SpeechAugment;
}

export interface ResolvedSpeechTrainOptions {
  arch: string;
  quick: boolean;
  epochs: number;
  utterances: number;
  valUtterances: number;
  testUtterances: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  ditherFraction: number;
  clipNorm: number;
  fsddUtterances: number;
  engine: EngineRequest;
  /** Null: no augmentation. */
  augment: SpeechAugment | null;
}

export function resolveSpeechTrainOptions(o: SpeechTrainOptions = {}): ResolvedSpeechTrainOptions {
  const quick = o.quick ?? false;
  const r: ResolvedSpeechTrainOptions = {
    arch: o.arch ?? (quick ? 'speech-small' : 'speech-base'),
    quick,
    epochs: o.epochs ?? (quick ? 14 : 20),
    utterances: o.utterances ?? (quick ? 600 : 2700),
    valUtterances: o.valUtterances ?? (quick ? 60 : 200),
    testUtterances: o.testUtterances ?? (quick ? 100 : 300),
    batchSize: o.batchSize ?? 16,
    learningRate: o.learningRate ?? (quick ? 0.002 : 0.001),
    seed: o.seed ?? 1,
    ditherFraction: o.ditherFraction ?? 0.5,
    clipNorm: o.clipNorm ?? 50,
    fsddUtterances: o.fsddUtterances ?? 600,
    engine: o.engine ?? 'tfjs',
    augment: null,
  };
  if (o.augment !== undefined) {
    const a = typeof o.augment === 'string' ? parseAugmentSpec(o.augment) : { ...o.augment };
    if (typeof o.augment !== 'string') checkAugment(a);
    r.augment = augmentIsOn(a) ? a : null;
  }
  if (!isSpeechArch(r.arch)) throw badInput(`Unknown speech architecture "${r.arch}": choose ${SPEECH_ARCH_NAMES.join(' or ')}`);
  const posInt = (k: keyof ResolvedSpeechTrainOptions, min = 1) => {
    const v = r[k] as number;
    if (!Number.isInteger(v) || v < min) throw badInput(`speech training: ${k} must be an integer >= ${min}, got ${v}`);
  };
  posInt('epochs');
  posInt('utterances');
  posInt('valUtterances');
  posInt('testUtterances');
  posInt('batchSize');
  posInt('seed', 0);
  posInt('fsddUtterances', 0);
  if (!ENGINE_REQUESTS.includes(r.engine)) throw badInput(`speech training: unknown engine "${r.engine}": choose ${ENGINE_REQUESTS.join(', ')}`);
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1)) throw badInput(`speech training: threads must be an integer >= 1, got ${o.threads}`);
  if (!(r.learningRate > 0 && r.learningRate <= 1)) throw badInput(`speech training: learningRate must be in (0, 1], got ${r.learningRate}`);
  if (!(r.clipNorm > 0)) throw badInput(`speech training: clipNorm must be > 0, got ${r.clipNorm}`);
  if (!(r.ditherFraction >= 0 && r.ditherFraction <= 1)) throw badInput(`speech training: ditherFraction must be in [0, 1], got ${r.ditherFraction}`);
  return r;
}

export interface SpeechBatchRow {
  step: number;
  epoch: number;
  loss: number;
  [k: string]: number;
}

export interface SpeechEpochRow {
  epoch: number;
  loss: number;
  val_cer: number;
  val_wer: number;
  seconds: number;
  [k: string]: number;
}

export interface SpeechTrainHooks {
  onBatch?: (row: SpeechBatchRow) => void | Promise<void>;
  onEpoch?: (row: SpeechEpochRow) => void | Promise<void>;
  /**
   * After each epoch's validation (after onEpoch), with the model as it is then: a checkpoint can be
   * saved here, so a stopped or killed run keeps its last finished epoch (the job saves it into the
   * session; `advlab audio train --init` continues from it). Do not dispose or train the model.
   */
  onCheckpoint?: (model: SpeechModel, row: SpeechEpochRow) => void | Promise<void>;
  /** Each training step's batch as the engine gets it (after augmentation), before the step. Do not dispose it. */
  onTrainBatch?: (batch: SpeechBatch, step: number) => void | Promise<void>;
}

export interface SpeechEvalRow {
  id: string;
  transcript: string;
  predicted: string;
  cer: number;
}

export interface SpeechEvalResult {
  cer: number;
  wer: number;
  rows: SpeechEvalRow[];
}

/** The FSDD data of a training run. */
export interface SpeechData {
  heldOutSpeaker: string;
  trainClips: FsddClip[];
  valClips: FsddClip[];
  testSeenClips: FsddClip[];
  testUnseenClips: FsddClip[];
  val: Utterance[];
  testSeen: Utterance[];
  testUnseen: Utterance[];
  /** sha256 per part over the clips read (for session manifests). */
  sha256: { val: string; testSeen: string; testUnseen: string };
  /** With a corpus: its synthesized clips by split (val is already in `val`), and what it was. */
  corpus?: {
    dir: string;
    train: Utterance[];
    testVoices: Utterance[];
    heldOutVoices: string[];
    seconds: Record<'train' | 'val' | 'test', number>;
    /** sha256 of the manifest file. */
    sha256: string;
  };
}

/** First recording index of the training part (recordings testIndices..VAL_END-1 validate). */
export const VAL_END = 10;

/** Lists FSDD, splits it as described above and builds the fixed validation and test utterances. */
export async function prepareSpeechData(o: SpeechTrainOptions, sampleRate: number, ctx: JobContext = silentContext, cache: ClipCache = o.clipCache ?? new Map()): Promise<SpeechData> {
  const r = resolveSpeechTrainOptions(o);
  const corpus = o.corpus ? await loadCorpus(o.corpus, sampleRate, r.testUtterances, ctx) : undefined;
  const clips = await listFsdd(o.fsddDir ?? fsddDir());
  const split = splitFsdd(clips, { heldOutSpeaker: corpus?.heldOutSpeaker ?? o.heldOutSpeaker });
  const valClips = split.train.filter((c) => c.index < VAL_END);
  const trainClips = split.train.filter((c) => c.index >= VAL_END);
  if (trainClips.length === 0) throw badInput(`FSDD: no training recordings (index >= ${VAL_END}) besides the held-out speaker ${split.heldOutSpeaker}`);
  if (valClips.length === 0 || split.testSeen.length === 0 || split.testUnseen.length === 0) throw badInput('FSDD: a validation or test part is empty; the recordings folder is incomplete');
  const build = (pool: FsddClip[], count: number, seed: number, name: string) => buildUtterances(pool, { count, seed, sampleRate, split: name }, ctx, cache);
  const val = await build(valClips, r.valUtterances, r.seed * 7919 + 101, 'validation');
  const seen = await build(split.testSeen, r.testUtterances, r.seed * 7919 + 202, 'test-seen');
  const unseen = await build(split.testUnseen, r.testUtterances, r.seed * 7919 + 303, 'test-unseen');
  return {
    heldOutSpeaker: split.heldOutSpeaker,
    trainClips, valClips, testSeenClips: split.testSeen, testUnseenClips: split.testUnseen,
    val: [...val.utterances, ...(corpus?.val ?? [])], testSeen: seen.utterances, testUnseen: unseen.utterances,
    sha256: { val: val.source.sha256, testSeen: seen.source.sha256, testUnseen: unseen.source.sha256 },
    ...(corpus ? { corpus: { dir: corpus.dir, train: corpus.train, testVoices: corpus.test, heldOutVoices: corpus.heldOutVoices, seconds: corpus.seconds, sha256: corpus.sha256 } } : {}),
  };
}

/**
 * A corpus's synthesized clips as utterances at the model rate: every "train" clip, every "val"
 * clip, and the first `testCount` "test" clips (held-out voices; clip order is the seeded order).
 */
async function loadCorpus(dirOrFile: string, sampleRate: number, testCount: number, ctx: JobContext) {
  const { dir, manifest } = await readCorpusManifest(dirOrFile);
  const sha256 = createHash('sha256').update(await readFile(join(dir, CORPUS_MANIFEST))).digest('hex');
  const parts = { train: [] as Utterance[], val: [] as Utterance[], test: [] as Utterance[] };
  const want = manifest.clips.filter((c) => c.split !== 'test' || --testCount >= 0);
  for (let i = 0; i < want.length; i++) {
    ctx.checkpoint();
    const c = want[i];
    let x = await readCorpusClip(dir, c);
    if (manifest.sampleRate !== sampleRate) x = resample(x, manifest.sampleRate, sampleRate);
    parts[c.split].push({ id: c.id, samples: x, digits: [], transcript: c.transcript, clips: [c.file] });
    if ((i + 1) % 200 === 0) ctx.progress({ step: i + 1, total: want.length, phase: 'reading the corpus' });
  }
  if (parts.train.length === 0) throw badInput(`${dir}: the corpus has no training clips`);
  if (parts.test.length === 0) throw badInput(`${dir}: the corpus has no held-out-voice (test) clips`);
  return { dir, ...parts, heldOutVoices: manifest.heldOutVoices, heldOutSpeaker: manifest.fsdd?.heldOutSpeaker, seconds: manifest.seconds, sha256 };
}

/** Greedy (or beam) transcription of utterances; corpus CER and WER. */
export async function evaluateSpeech(model: SpeechModel, utterances: readonly Utterance[], options: TranscribeOptions & { batchSize?: number; ctx?: JobContext } = {}): Promise<SpeechEvalResult> {
  if (utterances.length === 0) throw badInput('evaluateSpeech: no utterances');
  // Similar lengths together: less padding; rows are reported in the original order.
  const order = utterances.map((_, i) => i).sort((a, b) => utterances[a].samples.length - utterances[b].samples.length);
  const batchSize = options.batchSize ?? 32;
  const predicted = new Array<string>(utterances.length);
  for (let i = 0; i < order.length; i += batchSize) {
    options.ctx?.checkpoint();
    const idx = order.slice(i, i + batchSize);
    const texts = await model.transcribeBatch(idx.map((k) => utterances[k].samples), { ...options, batchSize });
    idx.forEach((k, j) => (predicted[k] = texts[j]));
  }
  const refs = utterances.map((u) => u.transcript);
  return {
    cer: corpusCer(refs, predicted).rate,
    wer: corpusWer(refs, predicted).rate,
    rows: utterances.map((u, i) => ({ id: u.id, transcript: u.transcript, predicted: predicted[i], cer: utteranceCer(u.transcript, predicted[i]) })),
  };
}

/** Batches of indices: shuffled, then sorted by length within windows of 8 batches, batch order shuffled. */
function lengthBuckets(lengths: readonly number[], batchSize: number, rng: () => number): number[][] {
  const idx = shuffle(lengths.map((_, i) => i), rng);
  const batches: number[][] = [];
  const window = batchSize * 8;
  for (let w = 0; w < idx.length; w += window) {
    const part = idx.slice(w, w + window).sort((a, b) => lengths[a] - lengths[b]);
    for (let b = 0; b < part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  return shuffle(batches, rng);
}

function shuffle<T>(a: T[], rng: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Standard normal deviates (Box-Muller) from a uniform generator. */
function gaussian(rng: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** x + noise whose standard deviation is 70-40 dB (uniform in dB) below the peak of x. */
function dither(x: Float32Array, rng: () => number, normal: () => number): Float32Array {
  let peak = 0;
  for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]));
  const sigma = peak * 10 ** ((-70 + 30 * rng()) / 20);
  return Float32Array.from(x, (v) => v + sigma * normal());
}

/** The random streams of training batches: the trainer's (dither) and, with augmentation, augmentation's own. */
export interface BatchRandom {
  rng: () => number;
  normal: () => number;
}

/**
 * One training step's batch from its utterances, as both engines take it: waveform augmentation (speed, noise; see
 * augment.ts), dither on a `ditherFraction` of the utterances, the front end, then SpecAugment on the normalised
 * features. Labels are the transcripts' (augmentation never changes them); frames and output lengths are those of the
 * augmented signals. The caller disposes `feats`.
 */
export function trainingBatch(net: SpeechModel, utts: readonly Utterance[], o: Pick<ResolvedSpeechTrainOptions, 'ditherFraction'>, r: BatchRandom, aug: (BatchRandom & { augment: SpeechAugment }) | null): SpeechBatch {
  const labels = utts.map((u) => net.alphabet.encode(u.transcript));
  const signals = utts.map((u, i) => {
    let x = u.samples;
    if (aug) {
      const y = augmentSignal(x, aug.augment, aug.rng, aug.normal);
      // A sped-up utterance too short for CTC to emit its transcript stays as it was.
      if (net.outputLengths([y.length])[0] >= ctcMinFrames(labels[i])) x = y;
    }
    return r.rng() < o.ditherFraction ? dither(x, r.rng, r.normal) : x;
  });
  const { batch, lengths } = stackSignals(signals, net.frontend.config.frameLength);
  const frames = lengths.map((n) => net.frameCount(n));
  const outLengths = net.outputLengths(lengths);
  let feats = net.frontend.features(batch, lengths);
  batch.dispose();
  if (aug && (aug.augment.freqMasks > 0 || aug.augment.timeMasks > 0)) {
    const [B, F, D] = feats.shape;
    const data = Float32Array.from(feats.dataSync());
    feats.dispose();
    specAugment(data, B, F, D, frames, aug.augment, aug.rng);
    feats = tf.tensor3d(data, [B, F, D]);
  }
  return { feats, frames, outLengths, labels };
}

/**
 * Gradients scaled by min(1, maxNorm / global L2 norm), as new tensors (the caller disposes both
 * sets). CTC gradients of an untrained net are large and spiky; clipping keeps the first steps from
 * wrecking the network (with the quick model, runs otherwise stalled for epochs on a blank plateau).
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    const norm = tf.sqrt(tf.addN(names.map((k) => tf.sum(tf.square(grads[k])))));
    const scale = tf.minimum(1, tf.div(maxNorm, tf.maximum(norm, 1e-12)));
    return Object.fromEntries(names.map((k) => [k, tf.mul(grads[k], scale)]));
  });
}

/** Learning rate at a step: linear warm-up over the first 5% of steps (at most 200), then cosine decay to 10% of the peak. */
export function learningRateAt(step: number, totalSteps: number, peak: number): number {
  const warm = Math.max(1, Math.min(200, Math.round(0.05 * totalSteps)));
  if (step < warm) return (peak * (step + 1)) / warm;
  const t = (step - warm) / Math.max(1, totalSteps - warm);
  return peak * (0.1 + 0.45 * (1 + Math.cos(Math.PI * Math.min(1, t))));
}

export interface SpeechTrainResult {
  model: SpeechModel;
  options: ResolvedSpeechTrainOptions;
  data: SpeechData;
  epochs: SpeechEpochRow[];
  epochsRun: number;
  /** Null in the partial result of a cancelled run. */
  testSeen: SpeechEvalResult | null;
  testUnseen: SpeechEvalResult | null;
  /** With a corpus: its held-out voices. */
  testVoices: SpeechEvalResult | null;
  /** Training time (data preparation and test evaluation excluded). */
  seconds: number;
  utterancesPerSecond: number;
  /**
   * CPU time of the whole process during the same training steps (every thread: the pool's workers when they are
   * threads of this process, ONNX Runtime's; and anything else the process runs meanwhile). On a shared machine
   * wall time depends on how many threads a run has to compete with; CPU time much less.
   */
  cpuSeconds: number;
  /** Which engine ran the steps and why. */
  engine: EngineInfo;
}

/** One training step's batch, as both engines take it: the front end's features [B, F, D] and, per utterance, its frames, output frames and labels. */
export interface SpeechBatch {
  feats: tf.Tensor3D;
  frames: number[];
  outLengths: number[];
  labels: number[][];
}

/**
 * What computes a training run's steps: the mean CTC loss and every weight gradient at the current weights (as
 * tensors named by the trainable variables: the caller clips them and disposes both), and the optimizer's update.
 */
export interface SpeechStepEngine {
  readonly info: EngineInfo;
  /** The mean CTC loss of the batch and its gradients; `step` (1-based) names the step's shards. */
  gradients(batch: SpeechBatch, step: number): Promise<{ loss: number; grads: tf.NamedTensorMap }>;
  /** Applies (clipped) gradients at learning rate lr. */
  apply(grads: tf.NamedTensorMap, lr: number): void;
  /** Writes the weights into the network (ONNX Runtime holds its own copy between steps; tfjs trains the network itself). */
  sync(): void;
  dispose(): void;
}

/**
 * The step engine of a run on `net` (see the module comment): tfjs (the reference; data-parallel on the job's
 * shard executor when it has several workers) or ONNX Runtime, resolved from `o.engine`.
 */
export async function speechStepEngine(net: SpeechModel, o: Pick<ResolvedSpeechTrainOptions, 'engine' | 'learningRate'>, ctx: JobContext = silentContext, threads?: number): Promise<SpeechStepEngine> {
  const spec = { optimizer: 'adam' as const, learningRate: o.learningRate, momentum: 0, nesterov: false, decay: 0 };
  const { trainer, info } = await sequenceTrainingEngine(net.network, o.engine, spec, { ...(threads ? { threads } : {}), ...(ctx.shards ? { shardsTo: ctx.shards.where } : {}) });
  const vars = net.network.trainableWeights.map((w) => w.read() as tf.Variable);
  if (trainer) {
    const s = net.timeStride;
    return {
      info,
      async gradients({ feats, frames, outLengths, labels }) {
        const [B, F, D] = feats.shape;
        const Fp = Math.ceil(F / s) * s;
        const fv = (await feats.data()) as Float32Array;
        // Padded to a multiple of the stride, as logitsFromFeatures pads (zero frames).
        let x = fv;
        if (Fp > F) {
          x = new Float32Array(B * Fp * D);
          for (let b = 0; b < B; b++) x.set(fv.subarray(b * F * D, (b + 1) * F * D), b * Fp * D);
        }
        const r = trainer.gradients(x, B, Fp, frames, (logits, dims) => ctcLossGradient(logits, dims, labels, { inputLengths: outLengths, reduction: 'mean' }));
        return { loss: r.loss, grads: Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(r.grads[i], v.shape)])) };
      },
      apply(grads, lr) {
        trainer.applyGradients(vars.map((v) => grads[v.name].dataSync() as Float32Array), lr);
      },
      sync: () => trainer.syncToModel(net.network),
      dispose: () => trainer.dispose(),
    };
  }
  const sharded = speechShardExecutor(ctx);
  if (sharded) ctx.log(`Training data-parallel on the ${sharded.where} (${sharded.parallelism} workers): batches of ${2 * MIN_SPEECH_SHARD} or more utterances in up to 4 shards, gradients averaged`);
  const optimizer = tf.train.adam(o.learningRate);
  return {
    info,
    async gradients({ feats, frames, outLengths, labels }, step) {
      // On a shard executor (the pool, a cluster) the batch's gradient comes from its shards (engine/shards/speech-grad.ts).
      const sizes = sharded ? speechShardSizes(labels.length) : [labels.length];
      const { value: cost, grads } = sharded && sizes.length > 1
        ? await shardedSpeechGrads(sharded, net, feats, frames, outLengths, labels, step, sizes).then((r) => ({ value: r.cost, grads: r.grads }))
        : tf.variableGrads(() => ctcLoss(net.logitsFromFeatures(feats, frames, true), labels, { inputLengths: outLengths, reduction: 'mean' }) as tf.Scalar, vars);
      try {
        return { loss: (await cost.data())[0], grads };
      } finally {
        cost.dispose();
      }
    },
    apply(grads, lr) {
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
    },
    sync: () => {},
    dispose: () => optimizer.dispose(),
  };
}

/**
 * Trains a speech model on FSDD and evaluates it on held-out utterances of seen speakers and of the
 * unseen speaker. `model` continues training an existing model (same alphabet); otherwise a new one
 * of `arch` is built. The caller owns (and disposes) the returned model. Cancelling throws
 * CancelledError whose `partial` is the SpeechTrainResult so far (the model trained so far, no test
 * results); the caller owns that model too.
 */
export async function trainSpeechModel(options: SpeechTrainOptions = {}, hooks: SpeechTrainHooks = {}, ctx: JobContext = silentContext, model?: SpeechModel): Promise<SpeechTrainResult> {
  const o = resolveSpeechTrainOptions(options);
  const cache: ClipCache = options.clipCache ?? new Map();
  const net = model ?? SpeechModel.create(o.arch, { seed: o.seed });
  let result: SpeechTrainResult;
  let cancelled = false;
  try {
    // The frequency masks' bound needs the model's feature count: checked before any data is read.
    if (o.augment) checkAugment(o.augment, net.frontend.featureDim);
    const data = await prepareSpeechData(options, net.sampleRate, ctx, cache);
    // Symbols the training transcripts contain (digit words use 15 letters and the space): the model
    // can hardly learn to emit the others, which the attack reports for targets that need them.
    const seenSymbols = new Set<string>(net.extraMeta.trainedSymbols as string[] | undefined);
    for (const c of data.trainClips) for (const ch of DIGIT_WORDS[c.digit]) seenSymbols.add(ch);
    if (data.trainClips.length) seenSymbols.add(' ');
    for (const u of data.corpus?.train ?? []) for (const ch of u.transcript) seenSymbols.add(ch);
    net.extraMeta = { ...net.extraMeta, trainedSymbols: [...seenSymbols].sort() };
    const engine = await speechStepEngine(net, o, ctx, options.threads);
    ctx.log(`Training on ${engine.info.engine}${engine.info.threads ? ` (${engine.info.threads} threads)` : ''}: ${engine.info.reason}`);
    const rng = mulberry32(o.seed * 31337 + 7);
    const normal = gaussian(rng);
    // Augmentation draws from its own stream, so a run without it draws exactly what it drew before augmentation existed.
    const augRng = mulberry32(o.seed * 7_368_787 + 11);
    const aug = o.augment ? { augment: o.augment, rng: augRng, normal: gaussian(augRng) } : null;
    const perEpoch = data.corpus ? data.corpus.train.length + o.fsddUtterances : o.utterances;
    const stepsPerEpoch = Math.ceil(perEpoch / o.batchSize);
    const totalSteps = stepsPerEpoch * o.epochs;
    const epochs: SpeechEpochRow[] = [];
    let step = 0;
    let trainSeconds = 0;
    let seenUtterances = 0;
    let cpuMicros = 0;
    try {
      for (let epoch = 1; epoch <= o.epochs && !cancelled; epoch++) {
        const built = await buildUtterances(data.trainClips, { count: data.corpus ? o.fsddUtterances : o.utterances, seed: o.seed * 1_000_003 + epoch, sampleRate: net.sampleRate, split: 'train' }, undefined, cache);
        const set = { utterances: [...built.utterances, ...(data.corpus?.train ?? [])] };
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const batches = lengthBuckets(set.utterances.map((u) => u.samples.length), o.batchSize, rng);
        let lossSum = 0;
        let lossCount = 0;
        for (const batchIdx of batches) {
          // A cancel keeps the model trained so far: training ends below with CancelledError carrying it.
          if (ctx.cancelled) {
            cancelled = true;
            break;
          }
          const utts = batchIdx.map((i) => set.utterances[i]);
          const trainBatch = trainingBatch(net, utts, o, { rng, normal }, aug);
          const { feats, labels } = trainBatch;
          let loss: number;
          try {
            await hooks.onTrainBatch?.(trainBatch, step + 1);
            const r = await engine.gradients(trainBatch, step + 1);
            loss = r.loss;
            const clipped = clipByGlobalNorm(r.grads, o.clipNorm);
            engine.apply(clipped, learningRateAt(step, totalSteps, o.learningRate));
            tf.dispose([...Object.values(r.grads), ...Object.values(clipped)]);
          } finally {
            feats.dispose();
          }
          if (!Number.isFinite(loss)) throw new Error(`speech training diverged: the CTC loss is ${loss} at step ${step + 1}`);
          step++;
          seenUtterances += utts.length;
          lossSum += loss * utts.length;
          lossCount += utts.length;
          await hooks.onBatch?.({ step, epoch, loss });
          ctx.progress({ step, total: totalSteps, phase: `epoch ${epoch}/${o.epochs}`, metrics: { loss } });
        }
        trainSeconds += (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        cpuMicros += cpu.user + cpu.system;
        if (cancelled || lossCount === 0) break;
        engine.sync();
        const val = await evaluateSpeech(net, data.val, { ...options.decode });
        const row: SpeechEpochRow = { epoch, loss: lossSum / lossCount, val_cer: val.cer, val_wer: val.wer, seconds: trainSeconds };
        epochs.push(row);
        await hooks.onEpoch?.(row);
        await hooks.onCheckpoint?.(net, row);
        ctx.progress({ step, total: totalSteps, phase: `epoch ${epoch}/${o.epochs}`, metrics: { loss: row.loss, val_cer: val.cer, val_wer: val.wer }, message: `epoch ${epoch}: loss ${row.loss.toFixed(3)}, validation CER ${(100 * val.cer).toFixed(1)}%` });
      }
    } finally {
      // The weights trained so far, in the network whatever ended the loop (a cancel, an error).
      engine.sync();
      engine.dispose();
    }
    let testSeen: SpeechEvalResult | null = null;
    let testUnseen: SpeechEvalResult | null = null;
    let testVoices: SpeechEvalResult | null = null;
    if (!cancelled) {
      ctx.progress({ step, total: totalSteps, phase: 'testing' });
      testSeen = await evaluateSpeech(net, data.testSeen, { ...options.decode });
      testUnseen = await evaluateSpeech(net, data.testUnseen, { ...options.decode });
      if (data.corpus) testVoices = await evaluateSpeech(net, data.corpus.testVoices, { ...options.decode });
    }
    result = {
      model: net, options: o, data, epochs, epochsRun: epochs.length, testSeen, testUnseen, testVoices,
      seconds: trainSeconds, utterancesPerSecond: trainSeconds > 0 ? seenUtterances / trainSeconds : 0, cpuSeconds: cpuMicros / 1e6, engine: engine.info,
    };
  } catch (e) {
    if (!model) net.dispose();
    throw e;
  }
  if (cancelled) throw new CancelledError(`Speech training cancelled after ${result.epochsRun} epoch(s)`, result);
  return result;
}
