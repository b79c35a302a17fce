/**
 * Image classifier architectures, built by name. Every network ends in a linear layer: it outputs
 * LOGITS, never probabilities (attacks such as C&W need logits; softmax is applied by losses).
 *
 * Each architecture is a list of layer specs, so the same description builds the tfjs model and
 * computes shapes and parameter counts without tfjs (for the UI and for input-size checks).
 *
 * Initialisation follows Keras's defaults, as in the C&W reference code: Glorot-uniform kernels,
 * zero biases. Every kernel gets its own seed derived from `seed`, so a model built twice with
 * the same seed has identical weights.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';

export const ARCHITECTURE_NAMES = ['cw-mnist', 'cw-cifar', 'small-cnn', 'mlp'] as const;
export type ArchName = (typeof ARCHITECTURE_NAMES)[number];

/** One layer of an architecture; convolutions and hidden dense layers use ReLU. */
export type LayerSpec =
  | { kind: 'conv'; filters: number; kernel: number; stride: number; padding: 'valid' | 'same' }
  | { kind: 'maxpool'; size: number }
  | { kind: 'flatten' }
  | { kind: 'dense'; units: number; relu: boolean }
  | { kind: 'dropout'; rate: number };

export interface BuildOptions {
  /** [h, w, c] of one input image. Defaults to the architecture's usual input. */
  inputShape?: [number, number, number];
  /** Number of output logits. Default 10. */
  numClasses?: number;
  /** Seed for the weight initialisers and the dropout masks. Default 0. */
  seed?: number;
  /**
   * Dropout rate after the first hidden dense layer (where the C&W code puts its Dropout(0.5)).
   * Default: 0.5 for cw-mnist and cw-cifar (as in the paper's code), 0 for small-cnn and mlp.
   * 0 removes the layer.
   */
  dropout?: number;
}

export interface ArchitectureInfo {
  name: ArchName;
  title: string;
  description: string;
  /** Where the architecture comes from, when it is a paper's. */
  reference?: string;
  defaultInputShape: [number, number, number];
  defaultDropout: number;
  /** Trainable parameters for the default input shape and 10 classes. */
  params: number;
  /** One line per layer, e.g. "conv 32 3x3 valid -> 26x26x32". */
  summary: string[];
}

interface ArchDef {
  title: string;
  description: string;
  reference?: string;
  defaultInputShape: [number, number, number];
  defaultDropout: number;
  layers(numClasses: number, dropout: number): LayerSpec[];
}

const conv = (filters: number, kernel: number, stride = 1, padding: 'valid' | 'same' = 'valid'): LayerSpec =>
  ({ kind: 'conv', filters, kernel, stride, padding });
const dense = (units: number, relu = true): LayerSpec => ({ kind: 'dense', units, relu });
const drop = (rate: number): LayerSpec[] => (rate > 0 ? [{ kind: 'dropout', rate }] : []);
const pool: LayerSpec = { kind: 'maxpool', size: 2 };
const flatten: LayerSpec = { kind: 'flatten' };

/** The C&W (2017) network: two conv blocks, two hidden dense layers, Dropout(0.5) after the first. */
function cwLayers(f: [number, number, number, number, number, number]) {
  return (numClasses: number, dropout: number): LayerSpec[] => [
    conv(f[0], 3), conv(f[1], 3), pool,
    conv(f[2], 3), conv(f[3], 3), pool,
    flatten, dense(f[4]), ...drop(dropout), dense(f[5]), dense(numClasses, false),
  ];
}

const DEFS: Record<ArchName, ArchDef> = {
  'cw-mnist': {
    title: 'C&W MNIST network',
    description:
      'Carlini & Wagner (2017) MNIST model: conv32-conv32-maxpool-conv64-conv64-maxpool-dense200-dense200-dense10, ' +
      '3x3 valid convolutions, ReLU, dropout 0.5 after the first dense layer as in the paper\'s code.',
    reference: 'Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017 (github.com/carlini/nn_robust_attacks)',
    defaultInputShape: [28, 28, 1],
    defaultDropout: 0.5,
    layers: cwLayers([32, 32, 64, 64, 200, 200]),
  },
  'cw-cifar': {
    title: 'C&W CIFAR network',
    description:
      'Carlini & Wagner (2017) CIFAR-10 model: conv64-conv64-maxpool-conv128-conv128-maxpool-dense256-dense256-dense10, ' +
      '3x3 valid convolutions, ReLU, dropout 0.5 after the first dense layer as in the paper\'s code.',
    reference: 'Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017 (github.com/carlini/nn_robust_attacks)',
    defaultInputShape: [32, 32, 3],
    defaultDropout: 0.5,
    layers: cwLayers([64, 64, 128, 128, 256, 256]),
  },
  'small-cnn': {
    title: 'Small CNN',
    description: 'A fast network for demos and tests: conv16 5x5 stride 2, conv32 5x5 stride 2 (same padding), dense64, dense10.',
    defaultInputShape: [28, 28, 1],
    defaultDropout: 0,
    layers: (numClasses, dropout) => [
      conv(16, 5, 2, 'same'), conv(32, 5, 2, 'same'), flatten, dense(64), ...drop(dropout), dense(numClasses, false),
    ],
  },
  mlp: {
    title: 'Tiny MLP',
    description: 'A one-hidden-layer perceptron (dense64, ReLU) for tests and small detectors.',
    defaultInputShape: [28, 28, 1],
    defaultDropout: 0,
    layers: (numClasses, dropout) => [flatten, dense(64), ...drop(dropout), dense(numClasses, false)],
  },
};

export function isArchName(name: string): name is ArchName {
  return (ARCHITECTURE_NAMES as readonly string[]).includes(name);
}

function archDef(arch: string): ArchDef {
  if (!isArchName(arch)) throw badInput(`Unknown architecture "${arch}": choose one of ${ARCHITECTURE_NAMES.join(', ')}`, { arch });
  return DEFS[arch];
}

interface Resolved {
  arch: ArchName;
  inputShape: [number, number, number];
  numClasses: number;
  seed: number;
  dropout: number;
  layers: LayerSpec[];
}

function resolve(arch: string, opts: BuildOptions): Resolved {
  const def = archDef(arch);
  const inputShape = opts.inputShape ?? def.defaultInputShape;
  const numClasses = opts.numClasses ?? 10;
  const seed = opts.seed ?? 0;
  const dropout = opts.dropout ?? def.defaultDropout;
  if (inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw badInput(`Input shape must be [h, w, c] with positive integers; got [${inputShape.join(', ')}]`, { inputShape });
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) throw badInput(`numClasses must be an integer >= 2; got ${numClasses}`);
  if (!Number.isFinite(seed)) throw badInput(`seed must be a finite number; got ${seed}`);
  if (!(dropout >= 0 && dropout < 1)) throw badInput(`dropout must be in [0, 1); got ${dropout}`);
  return { arch: arch as ArchName, inputShape, numClasses, seed, dropout, layers: def.layers(numClasses, dropout) };
}

interface Walked {
  params: number;
  summary: string[];
}

/** Follows shapes through the layers; throws badInput when the input is too small for the architecture. */
function walk(r: Resolved): Walked {
  let [h, w, c] = r.inputShape;
  let flat: number | null = null;
  let params = 0;
  const summary: string[] = [];
  const shapeStr = () => (flat === null ? `${h}x${w}x${c}` : `${flat}`);
  for (const l of r.layers) {
    switch (l.kind) {
      case 'conv': {
        if (l.padding === 'valid') {
          h = Math.floor((h - l.kernel) / l.stride) + 1;
          w = Math.floor((w - l.kernel) / l.stride) + 1;
        } else {
          h = Math.ceil(h / l.stride);
          w = Math.ceil(w / l.stride);
        }
        params += l.kernel * l.kernel * c * l.filters + l.filters;
        c = l.filters;
        summary.push(`conv ${l.filters} ${l.kernel}x${l.kernel}${l.stride > 1 ? ` stride ${l.stride}` : ''} ${l.padding}, ReLU -> ${shapeStr()}`);
        break;
      }
      case 'maxpool':
        h = Math.floor(h / l.size);
        w = Math.floor(w / l.size);
        summary.push(`maxpool ${l.size}x${l.size} -> ${shapeStr()}`);
        break;
      case 'flatten':
        flat = h * w * c;
        summary.push(`flatten -> ${flat}`);
        break;
      case 'dense': {
        const fanIn = flat ?? h * w * c;
        params += fanIn * l.units + l.units;
        flat = l.units;
        summary.push(`dense ${l.units}${l.relu ? ', ReLU' : ' (logits)'} -> ${flat}`);
        break;
      }
      case 'dropout':
        summary.push(`dropout ${l.rate} (training only)`);
        break;
    }
    if (h < 1 || w < 1) {
      throw badInput(
        `Input [${r.inputShape.join(', ')}] is too small for architecture "${r.arch}" (feature map shrinks to nothing)`,
        { arch: r.arch, inputShape: r.inputShape },
      );
    }
  }
  return { params, summary };
}

/** Trainable parameter count of an architecture for an input shape, computed without tfjs. */
export function paramCount(arch: string, opts: BuildOptions = {}): number {
  return walk(resolve(arch, opts)).params;
}

/** The architectures for the UI: name, description, default input and parameter count. */
export function listArchitectures(): ArchitectureInfo[] {
  return ARCHITECTURE_NAMES.map((name) => {
    const def = DEFS[name];
    const w = walk(resolve(name, {}));
    return {
      name,
      title: def.title,
      description: def.description,
      ...(def.reference ? { reference: def.reference } : {}),
      defaultInputShape: def.defaultInputShape,
      defaultDropout: def.defaultDropout,
      params: w.params,
      summary: w.summary,
    };
  });
}

/** A 32-bit mix of (seed, index), never 0 (tfjs's normal initialisers treat a seed of 0 as "unseeded"). */
export function deriveSeed(seed: number, index: number): number {
  let h = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = (h + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h === 0 ? 1 : h;
}

/**
 * Dropout whose mask is seeded and different at every training call (tfjs's own Dropout, given a
 * seed, draws the SAME mask at every call; without one it draws from Math.random). It serialises
 * as a plain Keras/tfjs "Dropout" without a seed, so saved models load anywhere; at inference it
 * is the identity, like Dropout.
 */
export class SeededDropout extends tf.layers.Layer {
  static className = 'Dropout';
  readonly rate: number;
  private readonly seed: number;
  private calls = 0;
  constructor(rate: number, seed: number, name: string) {
    super({ name });
    this.rate = rate;
    this.seed = seed;
  }
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs['training'] || this.rate === 0) return x;
    const seed = deriveSeed(this.seed, this.calls++);
    return tf.tidy(() => tf.dropout(x, this.rate, undefined, seed));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
  /**
   * The multiplier its next training call would draw for an input of `shape` (0 or 1 / (1 - rate) per
   * element, tf.dropout's own computation with the same seed), advancing to the call after as that
   * call would. Sharded training draws a whole batch's multiplier here and gives each shard its rows,
   * so a sharded step drops exactly the units the unsharded step drops.
   */
  nextMultiplier(shape: number[]): tf.Tensor {
    if (this.rate === 0) return tf.ones(shape);
    const seed = deriveSeed(this.seed, this.calls++);
    const keep = 1 - this.rate;
    return tf.tidy(() => tf.div(tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', seed), keep)), keep));
  }
}

/**
 * Builds an architecture as a tfjs Sequential model that outputs logits. Layers are named
 * conv1.., dense1.., logits, so model.json is readable and weight names are stable.
 */
export function buildModel(arch: string, opts: BuildOptions = {}): tf.Sequential {
  const r = resolve(arch, opts);
  walk(r); // validates the input size
  const model = tf.sequential({ name: r.arch.replace(/-/g, '_') });
  let convs = 0, denses = 0, pools = 0, drops = 0, seedIndex = 0;
  let first = true;
  const input = () => (first ? { inputShape: r.inputShape } : {});
  for (const l of r.layers) {
    const isLogits = l.kind === 'dense' && !l.relu;
    switch (l.kind) {
      case 'conv':
        model.add(tf.layers.conv2d({
          ...input(), name: `conv${++convs}`, filters: l.filters, kernelSize: l.kernel, strides: l.stride, padding: l.padding,
          activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: deriveSeed(r.seed, seedIndex++) }),
          biasInitializer: 'zeros',
        }));
        break;
      case 'maxpool':
        model.add(tf.layers.maxPooling2d({ ...input(), name: `pool${++pools}`, poolSize: l.size, strides: l.size, padding: 'valid' }));
        break;
      case 'flatten':
        model.add(tf.layers.flatten({ ...input(), name: 'flatten' }));
        break;
      case 'dense':
        model.add(tf.layers.dense({
          ...input(), name: isLogits ? 'logits' : `dense${++denses}`, units: l.units, activation: l.relu ? 'relu' : 'linear',
          kernelInitializer: tf.initializers.glorotUniform({ seed: deriveSeed(r.seed, seedIndex++) }), biasInitializer: 'zeros',
        }));
        break;
      case 'dropout':
        model.add(new SeededDropout(l.rate, deriveSeed(r.seed, 1000 + drops), `dropout${++drops}`));
        break;
    }
    first = false;
  }
  return model;
}
