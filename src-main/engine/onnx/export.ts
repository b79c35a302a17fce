/**
 * Exports a tfjs LayersModel (a chain of layers from an NHWC image to logits) as ONNX graphs:
 *
 * - forward: x [N, H, W, C] -> logits [N, K];
 * - vjp:     x [N, H, W, C], v [N, K] -> logits [N, K], grad [N, H, W, C], grad = d sum(v * logits) / dx,
 *   with the backward pass written out as ordinary ONNX ops (no training extensions), layer by layer
 *   in reverse:
 *   Dense y = x W + b          ->  gx = g W^T                 (Gemm with transB)
 *   Conv2D y = conv(x, W) + b  ->  gx = conv_transpose(g, W)  (the convolution of g with the flipped
 *                                   kernel, as our wasm kernel computes it; same strides and pads,
 *                                   output_padding restores the input size the stride floored away)
 *   ReLU                       ->  gx = g * [y > 0]           (tfjs's step: 0 at x = 0; the mask is taken
 *                                   in the forward pass)
 *   MaxPool                    ->  g routed to the first maximum of each window (tfjs's tie-break): square
 *                                   non-overlapping pools through SpaceToDepth + ArgMax, others through
 *                                   MaxPool's Indices + MaxUnpool
 *   AvgPool (valid)            ->  g / (ph pw) spread over each window (a depthwise ConvTranspose of ones)
 *   BatchNorm (inference)      ->  gx = g * gamma / sqrt(var + eps)
 *   Flatten, Dropout           ->  reshape / identity;
 * - forwardSaved + backward: the vjp graph cut where the backward pass starts (see ExportedModel);
 * - losses: one graph per attack loss (`LossKind`): x and the loss's inputs -> logits, the per-example loss
 *   values and grad = d sum(w * loss) / dx, the loss's gradient with respect to the logits computed in the
 *   graph and fed to the same backward pass (see lossHead). One run per attack step: the logits never
 *   leave ONNX Runtime before the backward pass, and no saved tensors cross to JS.
 *
 * ONNX convolutions are NCHW and tfjs's NHWC: the graph transposes the input once before the first
 * convolution and back before Flatten (which flattens in NHWC order, as tfjs does).
 *
 * A layer the exporter does not know makes `exportModel` throw an UnsupportedLayerError whose message
 * is the reason recorded when a job falls back to tfjs.
 */
import type * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { DataType, graph, model as modelProto, node, tensor, valueInfo, type AttributeValue, type Message } from './proto';

export const OPSET = 17;

export class UnsupportedLayerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedLayerError';
  }
}

/** A tensor the backward graph reads from the forward pass (a ReLU mask, max-pool indices, an activation). */
export interface SavedTensor {
  name: string;
  type: 'float32' | 'bool' | 'int64' | 'uint8';
}

/** The four graphs of one network (an image classifier or a sequence model). */
export interface ExportedGraphs {
  forward: Uint8Array;
  vjp: Uint8Array;
  /**
   * The vjp graph cut in two at the end of the forward pass, for callers that need the logits before they
   * know v (an attack's loss gradient with respect to the logits): `forwardSaved` maps x to the logits and
   * the `saved` tensors; `backward` maps v and the saved tensors to grad, without running the forward again.
   */
  forwardSaved: Uint8Array;
  backward: Uint8Array;
  saved: SavedTensor[];
}

/**
 * The attack losses an exported classifier computes in its own graph (Classifier.lossGradient), per example
 * with c its class (one-hot input `onehot` [N, K]) and logits Z:
 * - 'ce':     CE = softplus(logsumexp_{i != c} Z_i - Z_c) (losses.ts's crossEntropy);
 * - 'margin': min(s m, kappa), m = Z_c - max_{i != c} Z_i, s = +1 or -1 (input `sgn` [1]; `kappa` [1]).
 */
export type LossKind = 'ce' | 'margin';
export const LOSS_KINDS: readonly LossKind[] = ['ce', 'margin'];

/** The graphs of one image classifier, and what identifies them. */
export interface ExportedModel extends ExportedGraphs {
  /** Per loss: x, onehot [N, K], w [N] (and the loss's scalars) -> logits, values [N], grad (see LossKind). */
  losses: Record<LossKind, Uint8Array>;
  /** sha256 of the model's topology and weights: the cache key. */
  sha256: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** One line per exported layer, e.g. "conv2d conv1 3x3 stride 1 valid, relu". */
  layers: string[];
}

export type Layout =
  | { kind: 'nhwc'; h: number; w: number; c: number }
  | { kind: 'nchw'; h: number; w: number; c: number }
  | { kind: 'flat'; d: number };

export interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  weights: { originalName?: string; name: string }[];
}

/** Emits one graph: forward nodes now, backward nodes (in reverse) when `finish` is called with grad. */
export class Builder {
  constructor(readonly withGrad: boolean) {}
  readonly nodes: { msg: Message; inputs: string[]; outputs: string[] }[] = [];
  readonly inits: { msg: Message; name: string }[] = [];
  /** Element type and dims of forward tensors the backward pass reads (what a split graph passes between its halves). */
  readonly info = new Map<string, { type: number; dims: (number | string)[] }>();
  /** Index of the first backward node (set by runBackward). */
  forwardEnd = -1;
  private count = 0;
  private readonly backward: ((g: string) => string)[] = [];
  private readonly forwardTail: (() => void)[] = [];
  /**
   * ReLU outputs whose mask is still to be taken (at the end of the forward pass): a max pool that reads one
   * sets `pooled` and masks its own, 4x smaller, gradient instead (see the max-pool case of emitLayer).
   */
  readonly relus = new Map<string, { pooled: boolean }>();

  fresh(prefix: string): string {
    return `${prefix}_${this.count++}`;
  }

  op(type: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(type.toLowerCase()));
    this.emit(type, inputs, outs, attrs);
    return outs;
  }

  /** A node with the given output names. */
  emit(type: string, inputs: string[], outputs: string[], attrs: Record<string, AttributeValue> = {}): void {
    this.nodes.push({ msg: node(type, inputs, outputs, this.fresh(`n_${type}`), attrs), inputs, outputs });
  }

  /** Records the type and dims of a forward tensor the backward pass reads; returns its name. */
  describe(name: string, dims: (number | string)[], type: number = DataType.FLOAT): string {
    this.info.set(name, { type, dims });
    return name;
  }

  op1(type: string, inputs: string[], attrs: Record<string, AttributeValue> = {}): string {
    return this.op(type, inputs, attrs)[0];
  }

  init(prefix: string, dims: number[], data: Float32Array | BigInt64Array | Uint8Array): string {
    const name = this.fresh(prefix);
    this.inits.push({ msg: tensor(name, dims, data), name });
    return name;
  }

  ints(prefix: string, values: number[]): string {
    return this.init(prefix, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  scalar(prefix: string, v: number): string {
    return this.init(prefix, [], Float32Array.of(v));
  }

  /** Registers the backward step of the op just emitted: upstream gradient name -> downstream name. */
  onBackward(f: (g: string) => string): void {
    this.backward.push(f);
  }

  /** Forward nodes emitted once the forward pass is complete, before the backward pass (they may depend on later layers). */
  atForwardEnd(f: () => void): void {
    this.forwardTail.push(f);
  }

  runBackward(g: string): string {
    for (const f of this.forwardTail) f();
    this.forwardEnd = this.nodes.length;
    for (let i = this.backward.length - 1; i >= 0; i--) g = this.backward[i](g);
    return g;
  }

  // What emitLayer asks of the graph it builds. As here: the inference and VJP graphs, weights as constants,
  // every input gradient. export-train.ts's TrainBuilder overrides them for the training graph: weights as
  // graph inputs, their gradients as outputs, dropout masks as inputs, no gradient below the first weights.

  /** Refuses a layer this graph cannot hold, before emitLayer's own checks (here: none). */
  check(_layer: LayerLike, _cls: string, _where: string): void {}

  /** A layer's weight `short` (tfjs's name: kernel, bias) as a tensor of `dims`: tfjs's layout permuted by `perm`. */
  weight(layer: LayerLike, short: string, where: string, prefix: string, dims: number[], perm?: number[]): string {
    const v = need(weightsOf(layer), short, where);
    return this.init(prefix, dims, perm ? permute(v, dims, perm) : v);
  }

  /** Called once per layer with weights, in order: whether its input gradient is never needed (here: never). */
  firstWithWeights(): boolean {
    return false;
  }

  /** The gradient of a weight, `grad` emitted in the backward pass (here: not computed). */
  weightGradient(_layer: LayerLike, _short: string, _where: string, _grad: () => string): void {}

  /**
   * The kernel of a stride-1 convolution's input gradient as a Conv, [cin, cout, kh, kw] flipped in space, or null
   * for a ConvTranspose of the kernel (here: the flipped kernel, a constant).
   */
  flippedKernel(layer: LayerLike, where: string, kh: number, kw: number, cin: number, cout: number): string | null {
    return this.init('Kflip', [cin, cout, kh, kw], flipKernel(need(weightsOf(layer), 'kernel', where), kh, kw, cin, cout));
  }

  /** A Dropout layer (here: the identity, inference). */
  dropout(layer: LayerLike, x: string, _l: Layout, _where: string, desc: string[]): string {
    desc.push(`dropout ${layer.name} (identity at inference)`);
    return x;
  }

  /** What a layer's description adds about its trained weights (here: nothing). */
  trains(_names: string[]): string {
    return '';
  }
}

/** The input gradient a backward step returns when none is needed (TrainBuilder: below the first weights). */
export const NO_GRADIENT = '';

export function asPair(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((d) => typeof d === 'number')) return [v[0], v[1]];
  throw new UnsupportedLayerError(`${what}: expected a number or a pair, got ${JSON.stringify(v)}`);
}

/** Explicit [top, bottom] padding of one spatial axis, as tfjs/TensorFlow compute 'same' and 'valid'. */
export function padAxis(size: number, k: number, s: number, padding: string): { out: number; begin: number; end: number } {
  if (padding === 'valid') return { out: Math.floor((size - k) / s) + 1, begin: 0, end: 0 };
  const out = Math.ceil(size / s);
  const total = Math.max(0, (out - 1) * s + k - size);
  return { out, begin: Math.floor(total / 2), end: total - Math.floor(total / 2) };
}

/** The activations the exporter writes, forward and backward (tfjs's registered gradients). */
export function activation(b: Builder, x: string, act: string, where: string, dims: (number | string)[]): string {
  switch (act) {
    case 'linear':
      return x;
    case 'relu': {
      // The mask [x > 0] = [y > 0] is taken in the forward pass from y, so the pre-activation is not kept
      // (ONNX Runtime fuses Conv + Relu) and a split graph passes one byte per element.
      const y = b.op1('Relu', [x]);
      if (b.withGrad) {
        const r = { pooled: false };
        b.relus.set(y, r);
        let mask = '';
        b.atForwardEnd(() => {
          if (!r.pooled) mask = b.describe(b.op1('Greater', [y, b.scalar('zero', 0)]), dims, DataType.BOOL);
        });
        // (Cast + Mul: ONNX Runtime's Where with a broadcast scalar is several times slower.)
        b.onBackward((g) => (r.pooled ? g : b.op1('Mul', [g, b.op1('Cast', [mask], { to: DataType.FLOAT })])));
      }
      return y;
    }
    case 'relu6': {
      const y = b.op1('Clip', [x, b.scalar('lo', 0), b.scalar('hi', 6)]);
      b.describe(x, dims);
      b.onBackward((g) => {
        const inside = b.op1('And', [b.op1('Greater', [x, b.scalar('zero', 0)]), b.op1('LessOrEqual', [x, b.scalar('six', 6)])]);
        return b.op1('Mul', [g, b.op1('Cast', [inside], { to: 1 })]);
      });
      return y;
    }
    case 'tanh': {
      const y = b.describe(b.op1('Tanh', [x]), dims);
      b.onBackward((g) => b.op1('Mul', [g, b.op1('Sub', [b.scalar('one', 1), b.op1('Mul', [y, y])])]));
      return y;
    }
    case 'sigmoid': {
      const y = b.describe(b.op1('Sigmoid', [x]), dims);
      b.onBackward((g) => b.op1('Mul', [g, b.op1('Mul', [y, b.op1('Sub', [b.scalar('one', 1), y])])]));
      return y;
    }
    case 'softplus': {
      const y = b.op1('Softplus', [x]);
      b.describe(x, dims);
      b.onBackward((g) => b.op1('Mul', [g, b.op1('Sigmoid', [x])]));
      return y;
    }
    case 'elu': {
      const y = b.describe(b.op1('Elu', [x], { alpha: { float: 1 } }), dims);
      // tfjs: dy * (y > 0 ? 1 : y + 1).
      b.onBackward((g) => b.op1('Mul', [g, b.op1('Where', [b.op1('Greater', [y, b.scalar('zero', 0)]), b.scalar('one', 1), b.op1('Add', [y, b.scalar('one', 1)])])]));
      return y;
    }
    default:
      throw new UnsupportedLayerError(`${where}: activation "${act}" is not exported (supported: linear, relu, relu6, tanh, sigmoid, softplus, elu)`);
  }
}

/** Brings the running value to NCHW (convolutions, pools, channel-wise batch norm). */
function toNchw(b: Builder, x: string, l: Layout, where: string): { x: string; l: Layout & { kind: 'nchw' } } {
  if (l.kind === 'nchw') return { x, l };
  if (l.kind === 'flat') throw new UnsupportedLayerError(`${where} after a flattening layer: expected an image-shaped input`);
  const y = b.op1('Transpose', [x], { perm: [0, 3, 1, 2] });
  b.onBackward((g) => b.op1('Transpose', [g], { perm: [0, 2, 3, 1] }));
  return { x: y, l: { kind: 'nchw', h: l.h, w: l.w, c: l.c } };
}

export function weightsOf(layer: LayerLike): Map<string, Float32Array> {
  const values = layer.getWeights();
  const out = new Map<string, Float32Array>();
  layer.weights.forEach((w, i) => {
    const short = (w.originalName ?? w.name).split('/').pop() as string;
    out.set(short, values[i].dataSync() as Float32Array);
  });
  return out;
}

export function need(ws: Map<string, Float32Array>, name: string, where: string): Float32Array {
  const v = ws.get(name);
  if (!v) throw new UnsupportedLayerError(`${where}: weight "${name}" not found`);
  return v;
}

/** A 4-d tfjs weight as `dims` = its dims permuted by `perm` (e.g. [3, 2, 0, 1]: a kernel [kh, kw, cin, cout] -> ONNX's [cout, cin, kh, kw]). */
function permute(v: Float32Array, dims: number[], perm: number[]): Float32Array {
  const src = [0, 0, 0, 0];
  perm.forEach((p, i) => { src[p] = dims[i]; });
  const stride = [src[1] * src[2] * src[3], src[2] * src[3], src[3], 1];
  const out = new Float32Array(v.length);
  let o = 0;
  for (let a = 0; a < dims[0]; a++) for (let b = 0; b < dims[1]; b++) for (let c = 0; c < dims[2]; c++) for (let d = 0; d < dims[3]; d++) {
    out[o++] = v[a * stride[perm[0]] + b * stride[perm[1]] + c * stride[perm[2]] + d * stride[perm[3]]];
  }
  return out;
}

/** [kh, kw, cin, cout] (tfjs) -> [cin, cout, kh, kw] flipped in space: the kernel of the stride-1 input gradient. */
function flipKernel(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(k.length);
  for (let a = 0; a < kh; a++) for (let bb = 0; bb < kw; bb++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) {
    out[((i * cout + o) * kh + (kh - 1 - a)) * kw + (kw - 1 - bb)] = k[((a * kw + bb) * cin + i) * cout + o];
  }
  return out;
}

/**
 * Square non-overlapping max pooling (pool B x B, stride B), forward half of its gradient: which element of
 * each window is its first maximum in row-major order (tfjs's tie-break), as a uint8 [N, 1, C, oh, ow]:
 * the windows become channels (SpaceToDepth: channel (i B + j) C + c holds window element (i, j) of channel c)
 * and ArgMax takes the first maximum over them. ONNX Runtime's MaxPool with its Indices output is several
 * times slower than its plain MaxPool, which computes the pooled values.
 */
export function maxPoolArgmax(b: Builder, x: string, B: number, c: number, h: number, w: number, oh: number, ow: number): string {
  const xc = oh * B === h && ow * B === w ? x : b.op1('Slice', [x, b.ints('start', [0, 0]), b.ints('end', [oh * B, ow * B]), b.ints('axes', [2, 3])]);
  const windows = b.op1('Reshape', [b.op1('SpaceToDepth', [xc], { blocksize: B }), b.ints('shape', [0, B * B, c, oh, ow])]);
  const first = b.op1('ArgMax', [windows], { axis: 1, keepdims: 1 });
  return b.describe(b.op1('Cast', [first], { to: DataType.UINT8 }), ['N', 1, c, oh, ow], DataType.UINT8);
}

/**
 * Backward half: g [N, C, oh, ow] to the first maximum of each window, zeros elsewhere (and in the rows the pool
 * dropped). The windows are axes 3 and 5 of [N, C, oh, B, ow, B], which is [N, C, oh B, ow B] in memory: the
 * one-hot of each window's argmax and g are broadcast there, with no transpose (ONNX Runtime's DepthToSpace,
 * the inverse of the forward's SpaceToDepth, took 6 of the backward graph's 48 ms on cw-mnist at batch 100).
 */
export function maxPoolRoute(b: Builder, g: string, argmax: string, B: number, c: number, h: number, w: number, oh: number, ow: number): string {
  const H = oh * B, W = ow * B;
  const slotOf = Uint8Array.from({ length: H * W }, (_, p) => (Math.floor(p / W) % B) * B + ((p % W) % B));
  const slots = b.init('slots', [1, 1, H, W], slotOf);
  const scales = b.init('scales', [4], Float32Array.of(1, 1, B, B));
  const up = (t: string) => b.op1('Resize', [t, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  const at = up(b.op1('Reshape', [argmax, b.ints('shape', [0, c, oh, ow])]));
  const onehot = b.op1('Cast', [b.op1('Equal', [at, slots])], { to: DataType.FLOAT });
  const full = b.op1('Mul', [up(g), onehot]);
  if (H === h && W === w) return full;
  return b.op1('Pad', [full, b.ints('pads', [0, 0, 0, 0, 0, 0, h - H, w - W])]);
}

/** The ONNX dims of a value in a layout (batch symbolic). */
function dimsOf(l: Layout): (number | string)[] {
  if (l.kind === 'flat') return ['N', l.d];
  return l.kind === 'nhwc' ? ['N', l.h, l.w, l.c] : ['N', l.c, l.h, l.w];
}

/**
 * A convolution's filter gradient (training graphs) as matrix products, im2col by taps: gK[i, j, c, f] = sum over
 * n, p, q of x[n, c, p sh + i, q sw + j] g[n, f, p, q] (x padded as the forward pass pads it). The input goes to
 * [C, N, H, W] once; tap (i, j) is its strided slice [C, N, oh, ow], whose product with g as [F, N oh ow]
 * (transposed) is that tap's [C, F]; the taps stacked in order are tfjs's [kh, kw, C, F] as it lies in memory.
 * (ONNX Runtime's Conv of the input with g as the kernel, which computes the same, took 1.5 to 2 times the CPU
 * time on cw-mnist's layers at batch 128: an im2col per input channel and products only kh kw wide.)
 */
export function filterGradient(
  b: Builder, x: string, g: string,
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

/**
 * One layer, forward (and its backward registered on the builder), for every graph: what differs between the
 * inference/VJP graphs and the training graph (weights, their gradients, dropout) is asked of the builder.
 */
export function emitLayer(b: Builder, layer: LayerLike, x: string, l: Layout, desc: string[]): { x: string; l: Layout } {
  const cls = layer.getClassName();
  const cfg = layer.getConfig();
  const where = `layer "${layer.name}" (${cls})`;
  b.check(layer, cls, where);
  switch (cls) {
    case 'InputLayer':
      return { x, l };
    case 'Dropout':
      return { x: b.dropout(layer, x, l, where, desc), l };
    case 'Activation':
    case 'ReLU': {
      const act = cls === 'ReLU' ? 'relu' : String(cfg.activation);
      if (cls === 'ReLU' && (cfg.maxValue != null)) throw new UnsupportedLayerError(`${where}: maxValue is not exported`);
      desc.push(`activation ${layer.name} ${act}`);
      return { x: activation(b, x, act, where, dimsOf(l)), l };
    }
    case 'Flatten': {
      if (l.kind === 'flat') return { x, l };
      let nhwc = x;
      const { h, w, c } = l;
      if (l.kind === 'nchw') {
        nhwc = b.op1('Transpose', [x], { perm: [0, 2, 3, 1] });
        b.onBackward((g) => b.op1('Transpose', [g], { perm: [0, 3, 1, 2] }));
      }
      const y = b.op1('Reshape', [nhwc, b.ints('shape', [0, -1])]);
      b.onBackward((g) => b.op1('Reshape', [g, b.ints('shape', [-1, h, w, c])]));
      desc.push(`flatten -> ${h * w * c}`);
      return { x: y, l: { kind: 'flat', d: h * w * c } };
    }
    case 'Dense': {
      if (l.kind !== 'flat') throw new UnsupportedLayerError(`${where}: Dense on an image-shaped input is not exported (flatten first)`);
      const units = Number(cfg.units);
      const bias = cfg.useBias !== false;
      const W = b.weight(layer, 'kernel', where, 'W', [l.d, units]);
      const inputs = [x, W];
      if (bias) inputs.push(b.weight(layer, 'bias', where, 'b', [units]));
      const z = b.op1('Gemm', inputs);
      const first = b.firstWithWeights();
      b.onBackward((g) => {
        b.weightGradient(layer, 'kernel', where, () => b.op1('Gemm', [x, g], { transA: 1 }));
        if (bias) b.weightGradient(layer, 'bias', where, () => b.op1('ReduceSum', [g, b.ints('axes', [0])], { keepdims: 0 }));
        return first ? NO_GRADIENT : b.op1('Gemm', [g, W], { transB: 1 });
      });
      const act = String(cfg.activation ?? 'linear');
      desc.push(`dense ${layer.name} ${units}, ${act}${b.trains(bias ? ['W', 'b'] : ['W'])}`);
      return { x: activation(b, z, act, where, ['N', units]), l: { kind: 'flat', d: units } };
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
      const { h, w, c } = n.l;
      const ph = padAxis(h, kh, sh, padding), pw = padAxis(w, kw, sw, padding);
      const filters = Number(cfg.filters);
      const bias = cfg.useBias !== false;
      // tfjs [kh, kw, cin, cout] -> ONNX [cout, cin, kh, kw]
      const W = b.weight(layer, 'kernel', where, 'K', [filters, c, kh, kw], [3, 2, 0, 1]);
      const inputs = [n.x, W];
      if (bias) inputs.push(b.weight(layer, 'bias', where, 'b', [filters]));
      const pads = [ph.begin, pw.begin, ph.end, pw.end];
      const z = b.op1('Conv', inputs, { kernel_shape: [kh, kw], strides: [sh, sw], pads });
      const first = b.firstWithWeights();
      b.onBackward((g) => {
        b.weightGradient(layer, 'kernel', where, () => filterGradient(b, n.x, g, { c, filters, kh, kw, sh, sw, ph, pw }));
        if (bias) b.weightGradient(layer, 'bias', where, () => b.op1('ReduceSum', [g, b.ints('axes', [0, 2, 3])], { keepdims: 0 }));
        if (first) return NO_GRADIENT;
        const flipped = sh === 1 && sw === 1 && c >= 8 ? b.flippedKernel(layer, where, kh, kw, c, filters) : null;
        if (flipped) {
          // Stride 1: dx is the cross-correlation of g with the kernel flipped in space and transposed in
          // channels, padded by k - 1 - pad on each side (ONNX Runtime's Conv is faster than its ConvTranspose,
          // except when the input has few channels: on cw-mnist's first layer (1 channel) the Conv took 7x the time
          // of the ConvTranspose below, which is therefore used for c < 8).
          return b.op1('Conv', [g, flipped], { kernel_shape: [kh, kw], pads: [kh - 1 - ph.begin, kw - 1 - pw.begin, kh - 1 - ph.end, kw - 1 - pw.end] });
        }
        // (out - 1) s + k - pads: the input size ConvTranspose reaches; output_padding adds the rows the stride dropped.
        const op = [h - ((ph.out - 1) * sh + kh - ph.begin - ph.end), w - ((pw.out - 1) * sw + kw - pw.begin - pw.end)];
        return b.op1('ConvTranspose', [g, W], { kernel_shape: [kh, kw], strides: [sh, sw], pads, output_padding: op });
      });
      const act = String(cfg.activation ?? 'linear');
      desc.push(`conv2d ${layer.name} ${filters} ${kh}x${kw} stride ${sh}x${sw} ${padding}, ${act}${b.trains(bias ? ['K', 'b'] : ['K'])}`);
      return { x: activation(b, z, act, where, ['N', filters, ph.out, pw.out]), l: { kind: 'nchw', h: ph.out, w: pw.out, c: filters } };
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
      const { h, w, c } = n.l;
      const ph = padAxis(h, kh, sh, 'valid'), pw = padAxis(w, kw, sw, 'valid');
      const attrs = { kernel_shape: [kh, kw], strides: [sh, sw] };
      let y: string;
      if (cls === 'MaxPooling2D') {
        if (b.withGrad && kh === kw && sh === kh && sw === kw && kh * kw <= 255) {
          y = b.op1('MaxPool', [n.x], attrs);
          const mask = maxPoolArgmax(b, n.x, kh, c, h, w, ph.out, pw.out);
          // After a ReLU, the ReLU's mask at each window's argmax is [max > 0]: it is applied to the pooled
          // gradient (elsewhere the route leaves zeros anyway), and the ReLU takes no full-size mask.
          const relu = b.relus.get(n.x);
          let positive = '';
          if (relu) {
            relu.pooled = true;
            positive = b.describe(b.op1('Greater', [y, b.scalar('zero', 0)]), ['N', c, ph.out, pw.out], DataType.BOOL);
          }
          b.onBackward((g) => maxPoolRoute(b, relu ? b.op1('Mul', [g, b.op1('Cast', [positive], { to: DataType.FLOAT })]) : g, mask, kh, c, h, w, ph.out, pw.out));
        } else if (b.withGrad) {
          const [out, idx] = b.op('MaxPool', [n.x], attrs, 2);
          y = out;
          b.describe(idx, ['N', c, ph.out, pw.out], DataType.INT64);
          const shape = b.describe(b.op1('Shape', [n.x]), [4], DataType.INT64);
          b.onBackward((g) => b.op1('MaxUnpool', [g, idx, shape], attrs));
        } else {
          y = b.op1('MaxPool', [n.x], attrs);
        }
      } else {
        y = b.op1('AveragePool', [n.x], attrs);
        b.onBackward((g) => {
          const ones = b.init('avg', [c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1 / (kh * kw)));
          const op = [h - ((ph.out - 1) * sh + kh), w - ((pw.out - 1) * sw + kw)];
          return b.op1('ConvTranspose', [g, ones], { ...attrs, group: c, output_padding: op });
        });
      }
      desc.push(`${cls === 'MaxPooling2D' ? 'maxpool' : 'avgpool'} ${layer.name} ${kh}x${kw} stride ${sh}x${sw}`);
      return { x: y, l: { kind: 'nchw', h: ph.out, w: pw.out, c } };
    }
    case 'BatchNormalization': {
      const axis = Number(cfg.axis ?? -1);
      const rank = l.kind === 'flat' ? 2 : 4;
      if (axis !== -1 && axis !== rank - 1) throw new UnsupportedLayerError(`${where}: batch norm over axis ${axis} is not exported (channels only)`);
      const ws = weightsOf(layer);
      const mean = need(ws, 'moving_mean', where), variance = need(ws, 'moving_variance', where);
      const ch = mean.length;
      const gamma = cfg.scale === false ? new Float32Array(ch).fill(1) : need(ws, 'gamma', where);
      const beta = cfg.center === false ? new Float32Array(ch) : need(ws, 'beta', where);
      const eps = Number(cfg.epsilon ?? 1e-3);
      const scale = Float32Array.from(gamma, (g, i) => g / Math.sqrt(variance[i] + eps));
      const shift = Float32Array.from(beta, (bt, i) => bt - mean[i] * scale[i]);
      let input = x, lay = l;
      if (l.kind !== 'flat') ({ x: input, l: lay } = toNchw(b, x, l, where));
      const dims = lay.kind === 'flat' ? [ch] : [ch, 1, 1];
      const S = b.init('bn_scale', dims, scale);
      const y = b.op1('Add', [b.op1('Mul', [input, S]), b.init('bn_shift', dims, shift)]);
      b.onBackward((g) => b.op1('Mul', [g, S]));
      desc.push(`batchnorm ${layer.name} (inference)`);
      return { x: y, l: lay };
    }
    default:
      throw new UnsupportedLayerError(`${where} is not exported (supported: Conv2D, Dense, MaxPooling2D, AveragePooling2D, Flatten, Dropout, BatchNormalization, Activation, ReLU)`);
  }
}

/** The layers of a model as one chain, or an UnsupportedLayerError naming why not. */
export function chainOf(m: tf.LayersModel): LayerLike[] {
  const layers = m.layers as unknown as (LayerLike & { inboundNodes: { inboundLayers: unknown[] }[] })[];
  if (m.inputs.length !== 1 || m.outputs.length !== 1) throw new UnsupportedLayerError('models with several inputs or outputs are not exported');
  if (m.getClassName() !== 'Sequential') {
    layers.forEach((layer, i) => {
      if (i === 0) return;
      const inbound = layer.inboundNodes;
      if (inbound.length !== 1 || inbound[0].inboundLayers.length !== 1 || inbound[0].inboundLayers[0] !== layers[i - 1]) {
        throw new UnsupportedLayerError(`layer "${layer.name}" is not fed by the layer before it (only chains of layers are exported)`);
      }
    });
  }
  return layers;
}

export interface Built {
  bytes: Uint8Array;
  desc: string[];
  inputShape: [number, number, number];
  k: number;
  split?: { forwardSaved: Uint8Array; backward: Uint8Array; saved: SavedTensor[] };
}

export const TYPE_NAMES: Record<number, SavedTensor['type']> = { [DataType.FLOAT]: 'float32', [DataType.BOOL]: 'bool', [DataType.INT64]: 'int64', [DataType.UINT8]: 'uint8' };

function build(m: tf.LayersModel, withGrad: boolean, loss?: LossKind): Built {
  const shape = m.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d == null)) throw new UnsupportedLayerError(`input must be [batch, h, w, c]; got [${shape.join(', ')}]`);
  const [h, w, c] = shape.slice(1) as [number, number, number];
  const b = new Builder(withGrad);
  b.describe('x', ['N', h, w, c]);
  const desc: string[] = [];
  let cur = { x: 'x', l: { kind: 'nhwc', h, w, c } as Layout };
  for (const layer of chainOf(m)) cur = emitLayer(b, layer, cur.x, cur.l, desc);
  if (cur.l.kind !== 'flat') throw new UnsupportedLayerError('the model does not end in a [batch, classes] output');
  const k = cur.l.d;
  if (loss) return { bytes: assembleLoss(b, cur.x, loss, ['N', h, w, c], k), desc, inputShape: [h, w, c], k };
  return { ...assemble(b, cur.x, ['N', h, w, c], ['N', k]), desc, inputShape: [h, w, c], k };
}

/**
 * The loss head on logits z: the per-example values [N] and dL/dz [N, K] of L = sum_n w_n loss_n, written as
 * tfjs's registered gradients of losses.ts's formulas compute them (the reference): max passes its gradient to
 * every element equal to the maximum; min(a, kappa) passes it to a where a <= kappa; softplus' is sigmoid;
 * logsumexp's is the softmax. The class c is masked with -1e30 (its softmax and its "max other" indicator are 0).
 */
function lossHead(b: Builder, z: string, kind: LossKind): { values: string; dz: string } {
  const axes = b.ints('axes', [1]);
  const masked = b.op1('Add', [z, b.op1('Mul', ['onehot', b.scalar('big', -1e30)])]);
  const zc = b.op1('ReduceSum', [b.op1('Mul', [z, 'onehot']), axes], { keepdims: 1 });
  const w = b.op1('Unsqueeze', ['w', axes]);
  const top = b.op1('ReduceMax', [masked], { axes: [1], keepdims: 1 });
  if (kind === 'ce') {
    const lse = b.op1('Add', [top, b.op1('Log', [b.op1('ReduceSum', [b.op1('Exp', [b.op1('Sub', [masked, top])]), axes], { keepdims: 1 })])]);
    const d = b.op1('Sub', [lse, zc]);
    const values = b.op1('Squeeze', [b.op1('Softplus', [d]), axes]);
    // Input `dir` [1]: 1 leaves out the factor sigmoid(d) > 0 (LogitLoss.direction), 0 keeps the exact gradient.
    const factor = b.op1('Where', [b.op1('Greater', ['dir', b.scalar('zero', 0)]), b.scalar('one', 1), stableSigmoid(b, d)]);
    const dz = b.op1('Mul', [b.op1('Mul', [w, factor]), b.op1('Sub', [b.op1('Softmax', [masked], { axis: 1 }), 'onehot'])]);
    return { values, dz };
  }
  const u = b.op1('Mul', [b.op1('Sub', [zc, top]), 'sgn']);
  const values = b.op1('Squeeze', [b.op1('Min', [u, 'kappa']), axes]);
  const gate = b.op1('Cast', [b.op1('LessOrEqual', [u, 'kappa'])], { to: DataType.FLOAT });
  const other = b.op1('Cast', [b.op1('Equal', [masked, top])], { to: DataType.FLOAT });
  const dz = b.op1('Mul', [b.op1('Mul', [b.op1('Mul', [w, gate]), 'sgn']), b.op1('Sub', ['onehot', other])]);
  return { values, dz };
}

/**
 * sigmoid(d) written with Exp, exact down to exp's float32 range: e = exp(-|d|), then 1 / (1 + e) for d >= 0 and
 * e / (1 + e) below. ONNX Runtime's Sigmoid (MLAS's approximation) returns 0 well before float32 does: for a
 * confident example d = logsumexp_{i != c} Z_i - Z_c is about -40, where tfjs gives sigmoid 4e-18 and ORT's
 * Sigmoid 0, so the CE gradient vanished and FGSM on the starter cw-mnist fell from 93% to 24% (bench, 2026-12-05).
 */
function stableSigmoid(b: Builder, d: string): string {
  const e = b.op1('Exp', [b.op1('Neg', [b.op1('Abs', [d])])]);
  const onePlus = b.op1('Add', [b.scalar('one', 1), e]);
  const nonNegative = b.op1('GreaterOrEqual', [d, b.scalar('zero', 0)]);
  return b.op1('Where', [nonNegative, b.op1('Div', [b.scalar('one', 1), onePlus]), b.op1('Div', [e, onePlus])]);
}

/** A loss graph (see ExportedModel.losses): the forward pass, the loss head, then the backward pass from its dL/dz. */
function assembleLoss(b: Builder, out: string, kind: LossKind, xDims: (number | string)[], k: number): Uint8Array {
  b.emit('Identity', [out], ['logits']);
  const head = lossHead(b, 'logits', kind);
  b.emit('Identity', [head.values], ['values']);
  b.emit('Identity', [b.runBackward(head.dz)], ['grad']);
  const inputs = [valueInfo('x', xDims), valueInfo('onehot', ['N', k]), valueInfo('w', ['N'])];
  if (kind === 'margin') inputs.push(valueInfo('sgn', [1]), valueInfo('kappa', [1]));
  else inputs.push(valueInfo('dir', [1]));
  return protoOf(b, `advlab_loss_${kind}`, b.nodes, inputs, [valueInfo('logits', ['N', k]), valueInfo('values', ['N']), valueInfo('grad', xDims)]);
}

/** A ModelProto of some of a builder's nodes, with the initializers they read. */
export function protoOf(b: Builder, name: string, nodes: Builder['nodes'], inputs: Message[], outputs: Message[]): Uint8Array {
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const inits = b.inits.filter((i) => used.has(i.name)).map((i) => i.msg);
  return modelProto(graph(name, nodes.map((n) => n.msg), inits, inputs, outputs), OPSET, 'advlab');
}

/**
 * The graphs of a built forward pass whose output is `out`: forward alone (withGrad false), or the vjp
 * graph and its split (see ExportedModel).
 */
export function assemble(b: Builder, out: string, xDims: (number | string)[], outDims: (number | string)[]): { bytes: Uint8Array; split?: NonNullable<Built['split']> } {
  b.emit('Identity', [out], ['logits']);
  const xInfo = valueInfo('x', xDims);
  const logitsInfo = valueInfo('logits', outDims);
  const vInfo = valueInfo('v', outDims);
  const gradInfo = valueInfo('grad', xDims);
  const proto = (name: string, nodes: Builder['nodes'], inputs: Message[], outputs: Message[]) => protoOf(b, name, nodes, inputs, outputs);
  if (!b.withGrad) return { bytes: proto('advlab_forward', b.nodes, [xInfo], [logitsInfo]) };

  const g = b.runBackward('v');
  b.emit('Identity', [g], ['grad']);
  const bytes = proto('advlab_vjp', b.nodes, [xInfo, vInfo], [logitsInfo, gradInfo]);
  // The split: what the backward nodes read from the forward nodes becomes the first graph's outputs and the second's inputs.
  const fwd = b.nodes.slice(0, b.forwardEnd), bwd = b.nodes.slice(b.forwardEnd);
  const produced = new Set(['x', ...fwd.flatMap((n) => n.outputs)]);
  const savedNames = [...new Set(bwd.flatMap((n) => n.inputs))].filter((n) => produced.has(n));
  const infoOf = (n: string) => {
    const i = b.info.get(n);
    if (!i) throw new Error(`exporter: the backward pass reads "${n}", whose type was not recorded`);
    return i;
  };
  const saved = savedNames.map((n) => ({ name: n, type: TYPE_NAMES[infoOf(n).type] }));
  const savedInfos = savedNames.map((n) => valueInfo(n, infoOf(n).dims, infoOf(n).type));
  const forwardSaved = proto('advlab_forward_saved', fwd, [xInfo], [logitsInfo, ...savedInfos.filter((_, i) => savedNames[i] !== 'x')]);
  const backward = proto('advlab_backward', bwd, [vInfo, ...savedInfos], [gradInfo]);
  return { bytes, split: { forwardSaved, backward, saved } };
}

/** sha256 of a model's topology and weights (what the exported graphs depend on). */
export function modelHash(m: tf.LayersModel): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(m.toJSON(null, false)));
  for (const t of m.getWeights()) {
    const d = t.dataSync() as Float32Array;
    hash.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return hash.digest('hex');
}

const cache = new Map<string, ExportedModel>();
const CACHE_MAX = 8;

/** The graphs of a model, cached per model sha256 (a few models per worker at most). */
export function exportModel(m: tf.LayersModel): ExportedModel {
  const sha256 = modelHash(m);
  const hit = cache.get(sha256);
  if (hit) return hit;
  const f = build(m, false);
  const v = build(m, true);
  const split = v.split as NonNullable<Built['split']>;
  const losses = Object.fromEntries(LOSS_KINDS.map((kind) => [kind, build(m, true, kind).bytes])) as Record<LossKind, Uint8Array>;
  const out: ExportedModel = { forward: f.bytes, vjp: v.bytes, ...split, losses, sha256, inputShape: f.inputShape, numClasses: f.k, layers: f.desc };
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(sha256, out);
  return out;
}

/** Why a model cannot be exported, or null when it can (without building the graphs). */
export function unsupportedReason(m: tf.LayersModel): string | null {
  try {
    exportModel(m);
    return null;
  } catch (e) {
    if (e instanceof UnsupportedLayerError) return e.message;
    throw e;
  }
}
