/**
 * The training graph of a tfjs LayersModel: one ONNX graph that computes, for a batch, the training loss,
 * the logits and the gradient of the loss with respect to every trainable weight. The weights are inputs
 * (in tfjs's layouts, in the order of model.trainableWeights), so one session serves every step while the
 * optimizer (onnx/train-optimizer.ts) updates them in JS.
 *
 * Inputs: x [N, H, W, C]; y [N, K] (one-hot labels or any target distribution); one dropout mask per
 * Dropout layer (rate > 0), in tfjs's layout of that layer's input ([N, d] or [N, h, w, c]), holding
 * 0 or 1 / (1 - rate): the caller draws it (seeded), so a run is reproducible and a test can give tfjs the
 * same mask; and w0..wm, the trainable weights. Outputs: loss (scalar), logits [N, K], g0..gm.
 *
 * Forward as in export.ts (Dropout in training mode: x * mask). Backward, layer by layer in reverse, the
 * input gradients as in export.ts and the weight gradients:
 *   Dense y = x W + b          ->  gW = x^T g  (Gemm with transA),  gb = sum of g over the batch
 *   Conv2D y = conv(x, K) + b  ->  gK[i, j] = x's tap (i, j) as [C, N oh ow] times g as [N oh ow, F] (one
 *                                   Gemm per tap, see filterGradient);  gb = sum of g over N, oh, ow;
 *                                   gx = conv_transpose(g, K) (for every stride: K is an input here)
 *   Dropout                    ->  gx = g * mask
 * and the loss: softmax cross-entropy of logits / T (T = 1 unless distillation), mean over the batch:
 *   d loss / d logits = (softmax(logits / T) * sum(y) - y) / (N T).
 * Nothing is computed below the first layer with weights (no input gradient).
 *
 * BatchNormalization in training mode (batch statistics, moving averages) is not exported: a model with it
 * trains on tfjs (UnsupportedLayerError, whose message is the recorded reason).
 */
import type * as tf from '@tensorflow/tfjs';
import type { LossSpec } from '../models/losses';
import { DataType, graph, model as modelProto, valueInfo, type Message } from './proto';
import {
  Builder, OPSET, UnsupportedLayerError, activation, asPair, chainOf, maxPoolArgmax, maxPoolRoute, padAxis, type LayerLike, type Layout,
} from './export';

/** The training graph of one model, and how its inputs and outputs line up with the model. */
export interface TrainingGraph {
  bytes: Uint8Array;
  inputShape: [number, number, number];
  numClasses: number;
  /** One per trainable weight, in model.trainableWeights order: its tfjs shape; input `w${i}`, gradient output `g${i}`. */
  weights: { name: string; shape: number[] }[];
  /** One per Dropout layer with rate > 0, in order: input `mask${j}`, its per-example shape (tfjs layout) and rate. */
  dropouts: { layer: string; shape: number[]; rate: number }[];
  /** One line per layer, e.g. "conv2d conv1 32 3x3 stride 1x1 valid, relu (trains K, b)". */
  layers: string[];
}

interface TrainLayerLike extends LayerLike {
  trainableWeights: { name: string; originalName?: string }[];
}

/** The backward value of "no gradient needed" (below the first layer with weights). */
const NONE = '';

class TrainBuilder extends Builder {
  /** Trainable weight (the LayerVariable itself) -> its index in model.trainableWeights. */
  constructor(readonly weightIndex: Map<object, number>) {
    super(true);
  }

  readonly gradOutputs = new Map<number, string>();
  readonly dropouts: TrainingGraph['dropouts'] = [];
  /** Whether a layer with weights has been emitted yet (the input gradient is needed only above it). */
  seenWeights = false;

  /** The graph input of a layer's weight `short` (e.g. "kernel"), by its index among the model's trainable weights. */
  weightInput(layer: TrainLayerLike, short: string, where: string): number {
    // (A variable's name may carry a uniquifying suffix, "conv1/kernel_1"; its originalName does not.)
    const w = layer.trainableWeights.find((v) => (v.originalName ?? v.name).split('/').pop() === short);
    const i = w ? this.weightIndex.get(w) : undefined;
    if (i === undefined) throw new UnsupportedLayerError(`${where}: weight "${short}" is not trainable (frozen layers are not exported for training)`);
    return i;
  }

  /**
   * Every backward step (export.ts's activations included) is skipped, returning NONE, when no gradient
   * flows into it: below the first layer with weights.
   */
  override onBackward(f: (g: string) => string): void {
    super.onBackward((g) => (g === NONE ? NONE : f(g)));
  }

  back(f: (g: string) => string): void {
    this.onBackward(f);
  }
}

function toNchw(b: TrainBuilder, x: string, l: Layout, where: string): { x: string; h: number; w: number; c: number } {
  if (l.kind === 'nchw') return { x, h: l.h, w: l.w, c: l.c };
  if (l.kind === 'flat') throw new UnsupportedLayerError(`${where} after a flattening layer: expected an image-shaped input`);
  const y = b.op1('Transpose', [x], { perm: [0, 3, 1, 2] });
  b.back((g) => b.op1('Transpose', [g], { perm: [0, 2, 3, 1] }));
  return { x: y, h: l.h, w: l.w, c: l.c };
}

/**
 * A convolution's filter gradient as matrix products (im2col by taps): gK[i, j, c, f] = sum over n, p, q of
 * x[n, c, p sh + i, q sw + j] g[n, f, p, q] (x padded as the forward pass pads it). The input goes to
 * [C, N, H, W] once; tap (i, j) is its strided slice [C, N, oh, ow], whose product with g as [F, N oh ow]
 * (transposed) is that tap's [C, F]; the taps stacked in order are tfjs's [kh, kw, C, F] as it lies in memory.
 * (ONNX Runtime's Conv of the input with g as the kernel, which computes the same, took 1.5 to 2 times the CPU
 * time on cw-mnist's layers at batch 128: an im2col per input channel and products only kh kw wide.)
 */
function filterGradient(
  b: TrainBuilder, x: string, g: string,
  s: { c: number; filters: number; kh: number; kw: number; sh: number; sw: number; ph: ReturnType<typeof padAxis>; pw: ReturnType<typeof padAxis> },
): string {
  const { c, filters, kh, kw, sh, sw, ph, pw } = s;
  let xt = b.op1('Transpose', [x], { perm: [1, 0, 2, 3] });
  if (ph.begin || ph.end || pw.begin || pw.end) xt = b.op1('Pad', [xt, b.ints('pads', [0, 0, ph.begin, pw.begin, 0, 0, ph.end, pw.end])]);
  const gt = b.op1('Reshape', [b.op1('Transpose', [g], { perm: [1, 0, 2, 3] }), b.ints('shape', [filters, -1])]);
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const end = [i + (ph.out - 1) * sh + 1, j + (pw.out - 1) * sw + 1];
      const tap = b.op1('Slice', [xt, b.ints('start', [i, j]), b.ints('end', end), b.ints('axes', [2, 3]), b.ints('steps', [sh, sw])]);
      taps.push(b.op1('Gemm', [b.op1('Reshape', [tap, b.ints('shape', [c, -1])]), gt], { transB: 1 }));
    }
  }
  return b.op1('Reshape', [taps.length === 1 ? taps[0] : b.op1('Concat', taps, { axis: 0 }), b.ints('shape', [kh, kw, c, filters])]);
}

function emitTrainLayer(b: TrainBuilder, layer: TrainLayerLike, x: string, l: Layout, desc: string[]): { x: string; l: Layout } {
  const cls = layer.getClassName();
  const cfg = layer.getConfig();
  const where = `layer "${layer.name}" (${cls})`;
  const hasWeights = layer.trainableWeights.length > 0;
  if (!hasWeights && layer.weights.length > 0 && cls !== 'InputLayer') throw new UnsupportedLayerError(`${where}: frozen layers are not exported for training`);
  switch (cls) {
    case 'InputLayer':
      return { x, l };
    case 'Dropout': {
      const rate = Number(cfg.rate ?? 0);
      if (cfg.noiseShape != null) throw new UnsupportedLayerError(`${where}: dropout with a noiseShape is not exported for training`);
      if (!(rate > 0)) return { x, l };
      const j = b.dropouts.length;
      const shape = l.kind === 'flat' ? [l.d] : [l.h, l.w, l.c];
      b.dropouts.push({ layer: layer.name, shape, rate });
      let mask = `mask${j}`;
      if (l.kind === 'nchw') mask = b.op1('Transpose', [mask], { perm: [0, 3, 1, 2] });
      const y = b.op1('Mul', [x, mask]);
      b.back((g) => b.op1('Mul', [g, mask]));
      desc.push(`dropout ${layer.name} ${rate} (training: the mask is an input)`);
      return { x: y, l };
    }
    case 'Activation':
    case 'ReLU': {
      const act = cls === 'ReLU' ? 'relu' : String(cfg.activation);
      if (cls === 'ReLU' && (cfg.maxValue != null)) throw new UnsupportedLayerError(`${where}: maxValue is not exported`);
      desc.push(`activation ${layer.name} ${act}`);
      return { x: activation(b, x, act, where, []), l };
    }
    case 'Flatten': {
      if (l.kind === 'flat') return { x, l };
      let nhwc = x;
      const { h, w, c } = l;
      if (l.kind === 'nchw') {
        nhwc = b.op1('Transpose', [x], { perm: [0, 2, 3, 1] });
        b.back((g) => b.op1('Transpose', [g], { perm: [0, 3, 1, 2] }));
      }
      const y = b.op1('Reshape', [nhwc, b.ints('shape', [0, -1])]);
      b.back((g) => b.op1('Reshape', [g, b.ints('shape', [-1, h, w, c])]));
      desc.push(`flatten -> ${h * w * c}`);
      return { x: y, l: { kind: 'flat', d: h * w * c } };
    }
    case 'Dense': {
      if (l.kind !== 'flat') throw new UnsupportedLayerError(`${where}: Dense on an image-shaped input is not exported (flatten first)`);
      const units = Number(cfg.units);
      const wi = b.weightInput(layer, 'kernel', where);
      const W = `w${wi}`;
      const inputs = [x, W];
      const bi = cfg.useBias !== false ? b.weightInput(layer, 'bias', where) : -1;
      if (bi >= 0) inputs.push(`w${bi}`);
      const z = b.op1('Gemm', inputs);
      const first = !b.seenWeights;
      b.seenWeights = true;
      b.onBackward((g) => {
        b.gradOutputs.set(wi, b.op1('Gemm', [x, g], { transA: 1 }));
        if (bi >= 0) b.gradOutputs.set(bi, b.op1('ReduceSum', [g, b.ints('axes', [0])], { keepdims: 0 }));
        return first ? NONE : b.op1('Gemm', [g, W], { transB: 1 });
      });
      const act = String(cfg.activation ?? 'linear');
      desc.push(`dense ${layer.name} ${units}, ${act} (trains W${bi >= 0 ? ', b' : ''})`);
      return { x: activation(b, z, act, where, []), l: { kind: 'flat', d: units } };
    }
    case 'Conv2D': {
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayerError(`${where}: dataFormat ${String(cfg.dataFormat)} is not exported`);
      const [dh, dw] = asPair(cfg.dilationRate ?? 1, `${where} dilationRate`);
      if (dh !== 1 || dw !== 1) throw new UnsupportedLayerError(`${where}: dilated convolutions are not exported`);
      const [kh, kw] = asPair(cfg.kernelSize, `${where} kernelSize`);
      const [sh, sw] = asPair(cfg.strides ?? 1, `${where} strides`);
      const padding = String(cfg.padding ?? 'valid');
      if (padding !== 'valid' && padding !== 'same') throw new UnsupportedLayerError(`${where}: padding "${padding}" is not exported`);
      const n = toNchw(b, x, l, where);
      const { h, w, c } = n;
      const ph = padAxis(h, kh, sh, padding), pw = padAxis(w, kw, sw, padding);
      const filters = Number(cfg.filters);
      const ki = b.weightInput(layer, 'kernel', where);
      // tfjs [kh, kw, cin, cout] -> ONNX [cout, cin, kh, kw]
      const K = b.op1('Transpose', [`w${ki}`], { perm: [3, 2, 0, 1] });
      const inputs = [n.x, K];
      const bi = cfg.useBias !== false ? b.weightInput(layer, 'bias', where) : -1;
      if (bi >= 0) inputs.push(`w${bi}`);
      const pads = [ph.begin, pw.begin, ph.end, pw.end];
      const z = b.op1('Conv', inputs, { kernel_shape: [kh, kw], strides: [sh, sw], pads });
      const first = !b.seenWeights;
      b.seenWeights = true;
      b.onBackward((g) => {
        b.gradOutputs.set(ki, filterGradient(b, n.x, g, { c, filters, kh, kw, sh, sw, ph, pw }));
        if (bi >= 0) b.gradOutputs.set(bi, b.op1('ReduceSum', [g, b.ints('axes', [0, 2, 3])], { keepdims: 0 }));
        if (first) return NONE;
        // (Not export.ts's flipped-kernel Conv for stride 1: with the kernel a graph input, not a constant, ONNX Runtime's
        // ConvTranspose is the faster of the two on all three of cw-mnist's layers that need it, by 20 to 40%.)
        const op = [h - ((ph.out - 1) * sh + kh - ph.begin - ph.end), w - ((pw.out - 1) * sw + kw - pw.begin - pw.end)];
        return b.op1('ConvTranspose', [g, K], { kernel_shape: [kh, kw], strides: [sh, sw], pads, output_padding: op });
      });
      const act = String(cfg.activation ?? 'linear');
      desc.push(`conv2d ${layer.name} ${filters} ${kh}x${kw} stride ${sh}x${sw} ${padding}, ${act} (trains K${bi >= 0 ? ', b' : ''})`);
      return { x: activation(b, z, act, where, []), l: { kind: 'nchw', h: ph.out, w: pw.out, c: filters } };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayerError(`${where}: dataFormat ${String(cfg.dataFormat)} is not exported`);
      const [kh, kw] = asPair(cfg.poolSize ?? 2, `${where} poolSize`);
      const [sh, sw] = asPair(cfg.strides ?? cfg.poolSize ?? 2, `${where} strides`);
      const padding = String(cfg.padding ?? 'valid');
      if (padding !== 'valid') throw new UnsupportedLayerError(`${where}: padding "${padding}" is not exported (valid only)`);
      if (cls === 'MaxPooling2D' && (sh < kh || sw < kw)) throw new UnsupportedLayerError(`${where}: overlapping max pooling (stride < pool size) is not exported`);
      const n = toNchw(b, x, l, where);
      const { h, w, c } = n;
      const ph = padAxis(h, kh, sh, 'valid'), pw = padAxis(w, kw, sw, 'valid');
      const attrs = { kernel_shape: [kh, kw], strides: [sh, sw] };
      let y: string;
      if (cls === 'MaxPooling2D') {
        if (kh === kw && sh === kh && sw === kw && kh * kw <= 255) {
          y = b.op1('MaxPool', [n.x], attrs);
          const mask = maxPoolArgmax(b, n.x, kh, c, h, w, ph.out, pw.out);
          // As export.ts: after a ReLU, its mask is applied to the pooled gradient, [max > 0].
          const relu = b.relus.get(n.x);
          let positive = '';
          if (relu) {
            relu.pooled = true;
            positive = b.op1('Cast', [b.op1('Greater', [y, b.scalar('zero', 0)])], { to: DataType.FLOAT });
          }
          b.back((g) => maxPoolRoute(b, relu ? b.op1('Mul', [g, positive]) : g, mask, kh, c, h, w, ph.out, pw.out));
        } else {
          const [out, idx] = b.op('MaxPool', [n.x], attrs, 2);
          y = out;
          const shape = b.op1('Shape', [n.x]);
          b.back((g) => b.op1('MaxUnpool', [g, idx, shape], attrs));
        }
      } else {
        y = b.op1('AveragePool', [n.x], attrs);
        b.back((g) => {
          const ones = b.init('avg', [c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1 / (kh * kw)));
          const op = [h - ((ph.out - 1) * sh + kh), w - ((pw.out - 1) * sw + kw)];
          return b.op1('ConvTranspose', [g, ones], { ...attrs, group: c, output_padding: op });
        });
      }
      desc.push(`${cls === 'MaxPooling2D' ? 'maxpool' : 'avgpool'} ${layer.name} ${kh}x${kw} stride ${sh}x${sw}`);
      return { x: y, l: { kind: 'nchw', h: ph.out, w: pw.out, c } };
    }
    case 'BatchNormalization':
      throw new UnsupportedLayerError(`${where}: batch normalisation in training mode (batch statistics) is not exported for training`);
    default:
      throw new UnsupportedLayerError(`${where} is not exported for training (supported: Conv2D, Dense, MaxPooling2D, AveragePooling2D, Flatten, Dropout, Activation, ReLU)`);
  }
}

/** The loss and d loss / d logits (see the module comment); `y` is the targets input. */
function emitLoss(b: TrainBuilder, logits: string, loss: LossSpec): { loss: string; grad: string } {
  const T = loss.kind === 'distillation' ? loss.temperature : 1;
  const z = T === 1 ? logits : b.op1('Div', [logits, b.scalar('T', T)]);
  const ls = b.op1('LogSoftmax', [z], { axis: -1 });
  const perExample = b.op1('ReduceSum', [b.op1('Mul', ['y', ls]), b.ints('axes', [1])], { keepdims: 0 });
  const value = b.op1('Neg', [b.op1('ReduceMean', [perExample], { keepdims: 0 })]);
  const n = b.op1('Cast', [b.op1('Shape', [logits], { start: 0, end: 1 })], { to: DataType.FLOAT });
  const ySum = b.op1('ReduceSum', ['y', b.ints('axes', [1])], { keepdims: 1 });
  const diff = b.op1('Sub', [b.op1('Mul', [b.op1('Softmax', [z], { axis: -1 }), ySum]), 'y']);
  const scale = T === 1 ? n : b.op1('Mul', [n, b.scalar('T', T)]);
  return { loss: value, grad: b.op1('Div', [diff, scale]) };
}

/** The training graph of `model` for the named loss, or an UnsupportedLayerError naming why not. */
export function exportTraining(m: tf.LayersModel, loss: LossSpec = { kind: 'cross-entropy' }): TrainingGraph {
  const shape = m.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d == null)) throw new UnsupportedLayerError(`input must be [batch, h, w, c]; got [${shape.join(', ')}]`);
  if (loss.kind !== 'cross-entropy' && loss.kind !== 'distillation') throw new UnsupportedLayerError(`the loss "${String((loss as { kind?: unknown }).kind)}" is not exported`);
  const [h, w, c] = shape.slice(1) as [number, number, number];
  const weights = m.trainableWeights.map((v) => ({ name: v.name, shape: v.shape as number[] }));
  if (weights.some((v) => v.shape.some((d) => d == null))) throw new UnsupportedLayerError('a trainable weight has an unknown dimension');
  const b = new TrainBuilder(new Map(m.trainableWeights.map((v, i) => [v as object, i])));
  const desc: string[] = [];
  let cur = { x: 'x', l: { kind: 'nhwc', h, w, c } as Layout };
  for (const layer of chainOf(m)) cur = emitTrainLayer(b, layer as unknown as TrainLayerLike, cur.x, cur.l, desc);
  if (cur.l.kind !== 'flat') throw new UnsupportedLayerError('the model does not end in a [batch, classes] output');
  const k = cur.l.d;
  b.emit('Identity', [cur.x], ['logits']);
  const { loss: value, grad } = emitLoss(b, cur.x, loss);
  b.emit('Identity', [value], ['loss']);
  b.runBackward(grad);
  weights.forEach((_, i) => {
    const g = b.gradOutputs.get(i);
    if (!g) throw new UnsupportedLayerError(`trainable weight "${weights[i].name}" is not reached by the exported layers`);
    b.emit('Identity', [g], [`g${i}`]);
  });
  const used = new Set(b.nodes.flatMap((nd) => nd.inputs));
  const inits: Message[] = b.inits.filter((i) => used.has(i.name)).map((i) => i.msg);
  const inputs = [
    valueInfo('x', ['N', h, w, c]), valueInfo('y', ['N', k]),
    ...b.dropouts.map((d, j) => valueInfo(`mask${j}`, ['N', ...d.shape])),
    ...weights.map((v, i) => valueInfo(`w${i}`, v.shape)),
  ];
  const outputs = [valueInfo('loss', []), valueInfo('logits', ['N', k]), ...weights.map((v, i) => valueInfo(`g${i}`, v.shape))];
  const bytes = modelProto(graph('advlab_train', b.nodes.map((nd) => nd.msg), inits, inputs, outputs), OPSET, 'advlab');
  return { bytes, inputShape: [h, w, c], numClasses: k, weights, dropouts: b.dropouts, layers: desc };
}

/** Why a model cannot train on ONNX Runtime with this loss, or null when it can. */
export function trainingBlocker(m: tf.LayersModel, loss?: LossSpec): string | null {
  try {
    exportTraining(m, loss);
    return null;
  } catch (e) {
    if (e instanceof UnsupportedLayerError) return e.message;
    throw e;
  }
}
