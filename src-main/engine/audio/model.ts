/**
 * The speech-to-text model: a character-level CTC network in the spirit of Wav2Letter
 * (Collobert et al. 2016): 1-D convolutions over log-mel frames, no recurrence, one logit vector
 * per output frame over the alphabet + blank.
 *
 *   samples [n] at the model rate -> AudioFrontend (log-mel [F, 40], per-utterance CMVN)
 *   -> conv1d k11 stride 2 -> conv1d k7 (x N) -> 1x1 conv -> 1x1 conv to 29 logits [ceil(F/2), 29]
 *
 * Every convolution is 'same'-padded with ReLU except the last (logits). Hidden kernels start He-uniform
 * (suited to ReLU; with Glorot-uniform the quick model's validation CER after 12 epochs was 50% instead
 * of 22%), the logits layer Glorot-uniform, biases zero. The network is a plain
 * tfjs Sequential (saved and loaded as a tfjs LayersModel through engine/models io); `SpeechModel`
 * wraps it with its front end and alphabet, both recorded in the model's metadata.
 *
 * Padded batches: the front end zeroes each utterance's padding frames, and `logits` applies the
 * layers one by one, zeroing padding frames again after each layer (and padding the frame count to a
 * multiple of the time stride, so that the strided layer's 'same' padding is aligned identically
 * whatever the batch). An utterance therefore gets exactly the same logits alone or in any batch,
 * during training, evaluation and the attack alike.
 */
import * as tf from '@tensorflow/tfjs';
import { badFile, badInput } from '../errors';
import { deriveSeed } from '../models/architectures';
import { loadModel, saveModel, type ModelMeta, type SavedModel } from '../models/io';
import type { JobContext } from '../context';
import { AudioFrontend, frameCount, resolveFrontend, stackSignals, type FrontendConfig } from './frontend';
import { Alphabet, DEFAULT_ALPHABET, beamSearchDecode, greedyDecode } from './decode';
import { resample } from './resample';

/** One convolution of a speech architecture (ReLU unless it is the last layer). */
export interface SpeechConvSpec {
  filters: number;
  kernel: number;
  stride: number;
}

export interface SpeechArchitecture {
  name: string;
  description: string;
  /** Hidden convolutions; a final 1x1 convolution to the alphabet's classes is appended. */
  convs: SpeechConvSpec[];
}

export const SPEECH_ARCHITECTURES = {
  /** ~671k parameters (29 classes): the model of the full `audio train` run. */
  'speech-base': {
    name: 'speech-base',
    description: 'Wav2Letter-like conv1d CTC net: k11/s2 128ch, 5 x k7 128ch, 1x1 256, 1x1 to the alphabet (receptive field 0.71 s)',
    convs: [
      { filters: 128, kernel: 11, stride: 2 },
      ...Array.from({ length: 5 }, () => ({ filters: 128, kernel: 7, stride: 1 })),
      { filters: 256, kernel: 1, stride: 1 },
    ],
  },
  /** ~126k parameters: for --quick runs and tests. */
  'speech-small': {
    name: 'speech-small',
    description: 'small conv1d CTC net: k11/s2 64ch, 3 x k7 64ch, 1x1 128, 1x1 to the alphabet (receptive field 0.47 s)',
    convs: [
      { filters: 64, kernel: 11, stride: 2 },
      ...Array.from({ length: 3 }, () => ({ filters: 64, kernel: 7, stride: 1 })),
      { filters: 128, kernel: 1, stride: 1 },
    ],
  },
  /**
   * ~1.0M parameters (29 classes): the full-alphabet model of `starter:speech`, trained on the
   * synthesized corpus plus FSDD (`advlab audio corpus`, then `advlab audio train --arch speech-large
   * --corpus DIR`). Why this shape:
   *  - conv1d only: conv1d stacks are what runs fast on tfjs-wasm, in training and in every attack
   *    iteration; a recurrent layer is a loop of small matmuls that wasm runs one time step after
   *    another, forward and backward.
   *  - stride 3 in the first layer (30 ms output frames, 33 per second): a third less work per
   *    second of audio than speech-base's stride 2 for every later layer, and still about 1.6 frames
   *    per character at the fastest speech in the corpus (espeak-ng at 200 words/min played 1.1x
   *    faster, ~20 characters/s), which CTC needs (one frame per symbol, plus a blank between repeats).
   *  - five k7 layers at stride 3 give 1.01 s of receptive field: about a word and its neighbours,
   *    which spelling English from sound needs (the FSDD-only speech-base sees 0.71 s).
   *  - 160 channels keep it near 1M parameters (4.1 MB of weights), so the starter pack stays under
   *    10 MB and training fits about an hour on a shared core.
   * Not used: dilated convolutions (tfjs has no gradient for conv dilation > 1) and separable conv1d
   * (tfjs has no such layer; a depthwise Conv2D detour costs reshapes on every layer).
   */
  'speech-large': {
    name: 'speech-large',
    description: 'conv1d CTC net: k11/s3 160ch, 5 x k7 160ch, 1x1 320, 1x1 to the alphabet (30 ms output frames, receptive field 1.01 s)',
    convs: [
      { filters: 160, kernel: 11, stride: 3 },
      ...Array.from({ length: 5 }, () => ({ filters: 160, kernel: 7, stride: 1 })),
      { filters: 320, kernel: 1, stride: 1 },
    ],
  },
} as const satisfies Record<string, SpeechArchitecture>;

export type SpeechArchName = keyof typeof SPEECH_ARCHITECTURES;
export const SPEECH_ARCH_NAMES = Object.keys(SPEECH_ARCHITECTURES) as SpeechArchName[];

export function isSpeechArch(name: string): name is SpeechArchName {
  return Object.prototype.hasOwnProperty.call(SPEECH_ARCHITECTURES, name);
}

function archOf(name: string): SpeechArchitecture {
  if (!isSpeechArch(name)) throw badInput(`Unknown speech architecture "${name}": choose ${SPEECH_ARCH_NAMES.join(' or ')}`);
  return SPEECH_ARCHITECTURES[name];
}

/** The front end speech models use by default: 8 kHz log-mel, 40 bands, per-utterance mean/variance normalisation. */
export const SPEECH_FRONTEND: Readonly<FrontendConfig> = Object.freeze(resolveFrontend({ sampleRate: 8000, nMels: 40, normalize: 'meanvar' }));

export interface BuildSpeechOptions {
  /** Features per frame (the front end's featureDim). Default 40. */
  featureDim?: number;
  /** Output classes, blank included. Default 29. */
  classes?: number;
  /** Seed of the kernel initialisers (each kernel gets its own derived seed). Default 0. */
  seed?: number;
}

/** Builds the network of a speech architecture: input [batch, frames, featureDim], output logits [batch, ceil(frames / stride), classes]. */
export function buildSpeechNetwork(arch: string, options: BuildSpeechOptions = {}): tf.Sequential {
  const spec = archOf(arch);
  const featureDim = options.featureDim ?? 40;
  const classes = options.classes ?? DEFAULT_ALPHABET.size;
  const seed = options.seed ?? 0;
  const model = tf.sequential({ name: spec.name });
  spec.convs.forEach((c, i) => {
    model.add(tf.layers.conv1d({
      ...(i === 0 ? { inputShape: [null, featureDim] } : {}),
      filters: c.filters, kernelSize: c.kernel, strides: c.stride, padding: 'same', activation: 'relu',
      kernelInitializer: tf.initializers.heUniform({ seed: deriveSeed(seed, i) }),
      name: `conv${i + 1}`,
    }));
  });
  model.add(tf.layers.conv1d({
    filters: classes, kernelSize: 1, padding: 'same',
    kernelInitializer: tf.initializers.glorotUniform({ seed: deriveSeed(seed, spec.convs.length) }),
    name: 'logits',
  }));
  return model;
}

/** Product of the strides of a network's conv layers: input frames per output frame. */
function timeStrideOf(network: tf.LayersModel): number {
  let s = 1;
  for (const layer of network.layers) {
    const strides = (layer.getConfig() as { strides?: number | number[] }).strides;
    if (strides !== undefined) s *= Array.isArray(strides) ? strides[0] : strides;
  }
  return s;
}

/** What a speech model records in its model.json (userDefinedMetadata), besides ModelMeta's fields. */
export interface SpeechMeta extends ModelMeta {
  task: 'speech-to-text';
  arch: string;
  /** The complete front-end configuration. */
  frontend: FrontendConfig;
  /** Symbols of classes 0..C-2; class C-1 is the CTC blank. */
  alphabet: string[];
  /** Input frames per output frame. */
  timeStride: number;
}

export interface TranscribeOptions {
  /** 'greedy' (best path, default) or 'beam' (prefix beam search without a language model). */
  method?: 'greedy' | 'beam';
  beamWidth?: number;
}

export interface Transcription {
  text: string;
  /** Output frames the model produced. */
  frames: number;
  /** Seconds of audio at the model rate. */
  seconds: number;
}

/**
 * A speech-to-text model: network + front end + alphabet. Holds tensors: call `dispose()`.
 */
export class SpeechModel {
  readonly network: tf.LayersModel;
  readonly frontend: AudioFrontend;
  readonly alphabet: Alphabet;
  readonly arch: string;
  /** Input frames per output frame. */
  readonly timeStride: number;
  /** Where the model was loaded from or last saved to. */
  modelJson?: string;
  /** Everything else recorded in the model's metadata (trainedBy, dataset, ...). */
  extraMeta: Record<string, unknown> = {};
  private readonly layers: tf.layers.Layer[];
  /**
   * The network on another engine (ONNX Runtime, engine/onnx `useSequenceEngine`), differentiable w.r.t. its
   * input: used by logitsFromFeatures at inference when no frame of the batch is masked (a single clip,
   * equal lengths), else the tfjs layers run. Disposed with the model.
   */
  native: { apply(x: tf.Tensor3D): tf.Tensor3D; dispose(): void } | null = null;

  constructor(network: tf.LayersModel, frontend: Partial<FrontendConfig>, alphabet: Alphabet, arch: string) {
    this.network = network;
    this.frontend = new AudioFrontend(frontend);
    this.alphabet = alphabet;
    this.arch = arch;
    this.layers = network.layers.filter((l) => l.getClassName() !== 'InputLayer');
    this.timeStride = timeStrideOf(network);
    const inShape = network.inputs[0].shape;
    if (inShape.length !== 3 || inShape[2] !== this.frontend.featureDim) {
      this.frontend.dispose();
      throw badInput(`Speech model input must be [batch, frames, ${this.frontend.featureDim}], the network takes [${inShape.map((d) => d ?? '?').join(', ')}]`);
    }
    const outShape = network.outputs[0].shape;
    if (outShape[outShape.length - 1] !== alphabet.size) {
      this.frontend.dispose();
      throw badInput(`Speech model outputs ${outShape[outShape.length - 1]} classes but its alphabet has ${alphabet.size} (blank included)`);
    }
  }

  /** A new, untrained model of a named architecture on the default (or given) front end. */
  static create(arch: string, options: { seed?: number; frontend?: Partial<FrontendConfig>; alphabet?: Alphabet } = {}): SpeechModel {
    const frontend = resolveFrontend({ ...SPEECH_FRONTEND, ...(options.frontend ?? {}) });
    const alphabet = options.alphabet ?? DEFAULT_ALPHABET;
    const featureDim = frontend.nMfcc > 0 ? frontend.nMfcc : frontend.nMels;
    const network = buildSpeechNetwork(arch, { featureDim, classes: alphabet.size, seed: options.seed });
    return new SpeechModel(network, frontend, alphabet, arch);
  }

  /** Loads a speech model saved by `save` (a folder or its model.json); errors name the file; `ctx` can cancel the read. */
  static async load(dirOrFile: string, opts: { ctx?: JobContext } = {}): Promise<SpeechModel> {
    const loaded = await loadModel(dirOrFile, opts);
    const meta = loaded.meta as Record<string, unknown>;
    const fail = (problem: string) => {
      loaded.model.dispose();
      return badFile(loaded.modelJson, problem);
    };
    if (meta.task !== 'speech-to-text' || typeof meta.frontend !== 'object' || meta.frontend === null || !Array.isArray(meta.alphabet)) {
      throw fail('is not a speech-to-text model (its metadata has no task "speech-to-text", front end and alphabet; train one with `advlab audio train`)');
    }
    let model: SpeechModel;
    try {
      const alphabet = new Alphabet(meta.alphabet as string[]);
      model = new SpeechModel(loaded.model, meta.frontend as Partial<FrontendConfig>, alphabet, typeof meta.arch === 'string' ? meta.arch : 'unknown');
    } catch (e) {
      throw fail(`has unusable speech metadata: ${(e as Error).message}`);
    }
    model.modelJson = loaded.modelJson;
    const { task: _t, frontend: _f, alphabet: _a, timeStride: _s, arch: _r, ...rest } = meta;
    model.extraMeta = rest;
    return model;
  }

  /** The metadata `save` writes. */
  meta(extra: ModelMeta = {}): SpeechMeta {
    return { ...this.extraMeta, ...extra, task: 'speech-to-text', arch: this.arch, frontend: { ...this.frontend.config }, alphabet: [...this.alphabet.symbols], timeStride: this.timeStride };
  }

  /** Saves as a tfjs LayersModel folder (model.json + weights.bin) with the speech metadata. */
  async save(dir: string, extra: ModelMeta = {}): Promise<SavedModel> {
    const meta = this.meta(extra);
    const saved = await saveModel(this.network, dir, meta);
    const { task: _t, frontend: _f, alphabet: _a, timeStride: _s, arch: _r, ...rest } = meta;
    this.extraMeta = rest;
    this.modelJson = saved.modelJson;
    return saved;
  }

  get sampleRate(): number {
    return this.frontend.config.sampleRate;
  }

  /** Front-end frames of a signal of n samples (at the model rate). */
  frameCount(nSamples: number): number {
    return frameCount(nSamples, this.frontend.config);
  }

  /** Output (CTC) frames of a signal of n samples (at the model rate). */
  outputFrames(nSamples: number): number {
    return Math.ceil(this.frameCount(nSamples) / this.timeStride);
  }

  outputLengths(sampleLengths: readonly number[]): number[] {
    return sampleLengths.map((n) => this.outputFrames(n));
  }

  paramCount(): number {
    return this.network.countParams();
  }

  /**
   * Logits [B, T, C] of features [B, F, D] whose example b has frameLengths[b] valid frames.
   * Differentiable w.r.t. the features and the weights. `training` only matters for layers that
   * behave differently in training (none in the built-in architectures).
   */
  logitsFromFeatures(features: tf.Tensor3D, frameLengths?: readonly number[], training = false): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, F, D] = features.shape;
      const lengths = frameLengths ?? new Array<number>(B).fill(F);
      if (lengths.length !== B) throw badInput(`speech model: ${lengths.length} frame lengths for a batch of ${B}`);
      const s = this.timeStride;
      const Fp = Math.ceil(F / s) * s;
      let h: tf.Tensor3D = Fp > F ? tf.concat([features, tf.zeros([B, Fp - F, D])], 1) : features;
      if (this.native && !training && !this.masks(Fp, lengths)) return this.native.apply(h);
      let stride = 1;
      for (const layer of this.layers) {
        h = layer.apply(h, { training }) as tf.Tensor3D;
        const strides = (layer.getConfig() as { strides?: number | number[] }).strides;
        if (strides !== undefined) stride *= Array.isArray(strides) ? strides[0] : strides;
        const T = h.shape[1];
        const valid = lengths.map((n) => Math.min(T, Math.ceil(n / stride)));
        if (valid.some((v) => v < T)) {
          const mask = new Float32Array(B * T);
          valid.forEach((v, b) => mask.fill(1, b * T, b * T + v));
          h = tf.mul(h, tf.tensor3d(mask, [B, T, 1]));
        }
      }
      return h;
    });
  }

  /** Whether logitsFromFeatures zeroes frames after some layer for these lengths (padded to Fp frames). */
  private masks(Fp: number, lengths: readonly number[]): boolean {
    let T = Fp, stride = 1;
    for (const layer of this.layers) {
      const strides = (layer.getConfig() as { strides?: number | number[] }).strides;
      const s = strides === undefined ? 1 : Array.isArray(strides) ? strides[0] : strides;
      stride *= s;
      T = Math.ceil(T / s);
      if (lengths.some((n) => Math.min(T, Math.ceil(n / stride)) < T)) return true;
    }
    return false;
  }

  /**
   * Logits [B, T, C] of a padded batch of signals [B, n] (at the model rate) whose example b has
   * sampleLengths[b] samples. Differentiable w.r.t. the signal (the audio attack) and the weights.
   */
  logits(signal: tf.Tensor2D, sampleLengths?: readonly number[], training = false): tf.Tensor3D {
    return tf.tidy(() => {
      const lengths = sampleLengths ? [...sampleLengths] : undefined;
      const feats = this.frontend.features(signal, lengths);
      const frames = (lengths ?? new Array<number>(signal.shape[0]).fill(signal.shape[1])).map((n) => this.frameCount(n));
      return this.logitsFromFeatures(feats, frames, training);
    });
  }

  /** Decodes logits [B, T, C] with valid output lengths to text. */
  async decode(logits: tf.Tensor3D, outputLengths: readonly number[], options: TranscribeOptions = {}): Promise<string[]> {
    const data = (await logits.array()) as number[][][];
    return data.map((frames, b) => this.decodeFrames(frames.slice(0, outputLengths[b]), options));
  }

  /** Decodes one utterance's frame scores [T][C]. */
  decodeFrames(frames: readonly ArrayLike<number>[], options: TranscribeOptions = {}): string {
    const blank = this.alphabet.blank;
    const labels = options.method === 'beam'
      ? beamSearchDecode(frames, { blank, beamWidth: options.beamWidth ?? 16 })[0].labels
      : greedyDecode(frames, { blank });
    return this.alphabet.decode(labels);
  }

  /** Transcribes signals already at the model rate, in batches. */
  async transcribeBatch(signals: readonly Float32Array[], options: TranscribeOptions & { batchSize?: number } = {}): Promise<string[]> {
    const batchSize = options.batchSize ?? 32;
    const out: string[] = [];
    for (let i = 0; i < signals.length; i += batchSize) {
      const chunk = signals.slice(i, i + batchSize);
      const { batch, lengths } = stackSignals([...chunk], this.frontend.config.frameLength);
      const logits = this.logits(batch, lengths);
      batch.dispose();
      try {
        out.push(...(await this.decode(logits, this.outputLengths(lengths), options)));
      } finally {
        logits.dispose();
      }
    }
    return out;
  }

  /** Transcribes a clip at any sample rate (resampled to the model rate first). */
  async transcribe(samples: Float32Array, sampleRate: number = this.sampleRate, options: TranscribeOptions = {}): Promise<Transcription> {
    if (samples.length === 0) throw badInput('transcribe: the clip is empty');
    const x = sampleRate === this.sampleRate ? samples : resample(samples, sampleRate, this.sampleRate);
    const [text] = await this.transcribeBatch([x], options);
    return { text, frames: this.outputFrames(x.length), seconds: x.length / this.sampleRate };
  }

  dispose(): void {
    this.native?.dispose();
    this.native = null;
    this.network.dispose();
    this.frontend.dispose();
  }
}
