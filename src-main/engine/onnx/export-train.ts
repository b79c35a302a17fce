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
 * The layers are export.ts's emitLayer's, asking TrainBuilder (below) for what differs from the inference
 * graphs. Forward as in export.ts (Dropout in training mode: x * mask). Backward, layer by layer in reverse,
 * the input gradients as in export.ts and the weight gradients:
 *   Dense y = x W + b          ->  gW = x^T g  (Gemm with transA),  gb = sum of g over the batch
 *   Conv2D y = conv(x, K) + b  ->  gK[i, j] = x's tap (i, j) as [C, N oh ow] times g as [N oh ow, F] (one
 *                                   Gemm per tap, see export.ts's filterGradient);  gb = sum of g over N, oh, ow;
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
import { Builder, NO_GRADIENT, OPSET, UnsupportedLayerError, chainOf, emitLayer, type LayerLike, type Layout } from './export';

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

/** The layer classes the training graph holds. */
const TRAINED = ['InputLayer', 'Conv2D', 'Dense', 'MaxPooling2D', 'AveragePooling2D', 'Flatten', 'Dropout', 'Activation', 'ReLU'];

/** export.ts's Builder for the training graph: what its emitLayer asks, answered for training (module comment). */
export class TrainBuilder extends Builder {
  /** Trainable weight (the LayerVariable itself) -> its index in model.trainableWeights. */
  constructor(readonly weightIndex: Map<object, number>) {
    super(true);
  }

  readonly gradOutputs = new Map<number, string>();
  readonly dropouts: TrainingGraph['dropouts'] = [];
  /** Whether a layer with weights has been emitted yet (the input gradient is needed only above it). */
  private seenWeights = false;

  override check(layer: LayerLike, cls: string, where: string): void {
    if (cls === 'BatchNormalization') throw new UnsupportedLayerError(`${where}: batch normalisation in training mode (batch statistics) is not exported for training`);
    if (!TRAINED.includes(cls)) throw new UnsupportedLayerError(`${where} is not exported for training (supported: ${TRAINED.slice(1).join(', ')})`);
    if ((layer as TrainLayerLike).trainableWeights.length === 0 && layer.weights.length > 0) throw new UnsupportedLayerError(`${where}: frozen layers are not exported for training`);
  }

  /** The index among the model's trainable weights of a layer's weight `short` (e.g. "kernel"). */
  private index(layer: LayerLike, short: string, where: string): number {
    // (A variable's name may carry a uniquifying suffix, "conv1/kernel_1"; its originalName does not.)
    const w = (layer as TrainLayerLike).trainableWeights.find((v) => (v.originalName ?? v.name).split('/').pop() === short);
    const i = w ? this.weightIndex.get(w) : undefined;
    if (i === undefined) throw new UnsupportedLayerError(`${where}: weight "${short}" is not trainable (frozen layers are not exported for training)`);
    return i;
  }

  /** The graph input `w${i}`, transposed in the graph to `perm`. */
  override weight(layer: LayerLike, short: string, where: string, _prefix: string, _dims: number[], perm?: number[]): string {
    const w = `w${this.index(layer, short, where)}`;
    return perm ? this.op1('Transpose', [w], { perm }) : w;
  }

  override firstWithWeights(): boolean {
    const first = !this.seenWeights;
    this.seenWeights = true;
    return first;
  }

  override weightGradient(layer: LayerLike, short: string, where: string, grad: () => string): void {
    this.gradOutputs.set(this.index(layer, short, where), grad());
  }

  /**
   * None: with the kernel a graph input, not a constant, ONNX Runtime's ConvTranspose is the faster of the two on
   * all three of cw-mnist's layers that need an input gradient, by 20 to 40% of CPU time at batch 128.
   */
  override flippedKernel(): string | null {
    return null;
  }

  /** Dropout in training mode: x * mask, the mask an input (mask0, mask1, ...). */
  override dropout(layer: LayerLike, x: string, l: Layout, where: string, desc: string[]): string {
    const cfg = layer.getConfig();
    const rate = Number(cfg.rate ?? 0);
    if (cfg.noiseShape != null) throw new UnsupportedLayerError(`${where}: dropout with a noiseShape is not exported for training`);
    if (!(rate > 0)) return x;
    const j = this.dropouts.length;
    this.dropouts.push({ layer: layer.name, shape: l.kind === 'flat' ? [l.d] : [l.h, l.w, l.c], rate });
    let mask = `mask${j}`;
    if (l.kind === 'nchw') mask = this.op1('Transpose', [mask], { perm: [0, 3, 1, 2] });
    const y = this.op1('Mul', [x, mask]);
    this.onBackward((g) => this.op1('Mul', [g, mask]));
    desc.push(`dropout ${layer.name} ${rate} (training: the mask is an input)`);
    return y;
  }

  override trains(names: string[]): string {
    return ` (trains ${names.join(', ')})`;
  }

  /** Every backward step is skipped, returning NO_GRADIENT, when no gradient flows into it: below the first layer with weights. */
  override onBackward(f: (g: string) => string): void {
    super.onBackward((g) => (g === NO_GRADIENT ? NO_GRADIENT : f(g)));
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
  for (const layer of chainOf(m)) cur = emitLayer(b, layer, cur.x, cur.l, desc);
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
