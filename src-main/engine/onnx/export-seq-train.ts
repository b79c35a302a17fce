/**
 * The training graphs of a sequence network (the speech model's Conv1D chain, export-seq.ts), for a loss computed
 * outside the graph (CTC, in JS: audio/ctc.ts's ctcLossGradient). A training step is two runs:
 *
 * - forward: x [N, T, D], the frame masks and the weights -> logits [N, T', C] and the tensors the backward run
 *   reads (`saved`: each convolution's input, the ReLU masks, the kernels in ONNX's layout);
 * - backward: dlogits [N, T', C] (d loss / d logits, the upstream gradient), the saved tensors, the frame masks
 *   -> g0..gm, the gradient of every trainable weight (tfjs layouts, model.trainableWeights order). No input
 *   gradient: nothing is computed below the first convolution.
 *
 * The weights are inputs w0..wm in tfjs's layouts (Conv1D kernel [k, cin, cout], transposed in the graph), so one
 * pair of sessions serves every step while the optimizer (train-optimizer.ts) updates them in JS.
 *
 * Frame masks, as SpeechModel.logitsFromFeatures computes a padded batch: after every layer the frames past each
 * utterance's valid length are zeroed, valid = min(T_j, ceil(frames / stride_j)) with stride_j the product of the
 * strides so far. Input `fmask${j}` [N, 1, T / s_j] holds 1 on valid frames, 0 elsewhere, for each distinct
 * cumulative stride s_j (`masks`); the layer's output is multiplied by it, and so is its gradient. T must be a
 * multiple of the network's stride (the speech model pads its frames to one), as in export-seq.ts.
 *
 * Backward, per Conv1D y = conv(x, K) + b (NCW inside the graph):
 *   gK[a, c, f] = sum over n, t of xpad[n, c, t s + a] g[n, f, t]: one Gemm per tap a on a strided slice of the
 *                 padded input as [C, N T'] times g as [N T', F] (export.ts's filterGradient in one dimension; the
 *                 slice's end comes from the input's length, T being symbolic);
 *   gb = sum of g over n and t;  gx = conv_transpose(g, K) (K is an input here: export-train.ts's reasons).
 * ReLU as in export.ts (the mask [y > 0] taken in the forward run). Dropout is not exported for training here (the
 * speech architectures have none); a layer this graph cannot hold is an UnsupportedLayerError, the recorded reason.
 */
import type * as tf from '@tensorflow/tfjs';
import { valueInfo } from './proto';
import { activation, NO_GRADIENT, protoOf, TYPE_NAMES, UnsupportedLayerError, type LayerLike, type SavedTensor } from './export';
import { TrainBuilder } from './export-train';
import { conv1dSpec } from './export-seq';

export interface SequenceTrainingGraphs {
  forward: Uint8Array;
  backward: Uint8Array;
  /** Forward outputs the backward run takes as inputs (besides dlogits, the frame masks and the weights it reads). */
  saved: SavedTensor[];
  /** Graph inputs (frame masks, weights) the backward run reads too. */
  backwardInputs: string[];
  /** Features per input frame (D) and logits per output frame (C). */
  featureDim: number;
  classes: number;
  /** Input frames per output frame: T must be a multiple of it. */
  stride: number;
  /** One per trainable weight, in model.trainableWeights order: its tfjs shape; input `w${i}`, gradient output `g${i}`. */
  weights: { name: string; shape: number[] }[];
  /** Cumulative stride of frame mask `fmask${j}` ([N, 1, T / stride]). */
  masks: number[];
  layers: string[];
}

/** The classes a sequence training graph holds. */
const SEQ_TRAINED = ['InputLayer', 'Conv1D', 'Activation', 'ReLU', 'Dropout'];

/** TrainBuilder (weights as inputs, their gradients as outputs) for Conv1D chains. */
class SequenceTrainBuilder extends TrainBuilder {
  override check(layer: LayerLike, cls: string, where: string): void {
    if (!SEQ_TRAINED.includes(cls)) throw new UnsupportedLayerError(`${where} is not exported for sequence training (supported: ${SEQ_TRAINED.slice(1).join(', ')})`);
    if (cls === 'Dropout' && Number(layer.getConfig().rate ?? 0) > 0) throw new UnsupportedLayerError(`${where}: dropout is not exported for sequence training`);
    if ((layer as unknown as { trainableWeights: unknown[] }).trainableWeights.length === 0 && layer.weights.length > 0) throw new UnsupportedLayerError(`${where}: frozen layers are not exported for training`);
  }
}

/** gK [k, cin, cout] of a Conv1D (see the module comment); x [N, cin, T] as the forward pass read it, g [N, cout, T / s]. */
function filterGradient1d(b: TrainBuilder, x: string, g: string, o: { cin: number; filters: number; k: number; s: number; pads: [number, number] }): string {
  const { cin, filters, k, s, pads } = o;
  let xt = b.op1('Transpose', [x], { perm: [1, 0, 2] });
  if (pads[0] || pads[1]) xt = b.op1('Pad', [xt, b.ints('pads', [0, 0, pads[0], 0, 0, pads[1]])]);
  const gt = b.op1('Reshape', [b.op1('Transpose', [g], { perm: [1, 0, 2] }), b.ints('shape', [filters, -1])]);
  const length = k > 1 || s > 1 ? b.op1('Shape', [x], { start: 2, end: 3 }) : '';
  const taps: string[] = [];
  for (let a = 0; a < k; a++) {
    // Padded frames a, a + s, ..., a + T - s: T / s of them.
    const tap = k === 1 && s === 1 ? xt : b.op1('Slice', [xt, b.ints('start', [a]), b.op1('Add', [length, b.ints('end', [a - s + 1])]), b.ints('axes', [2]), b.ints('steps', [s])]);
    taps.push(b.op1('Gemm', [b.op1('Reshape', [tap, b.ints('shape', [cin, -1])]), gt], { transB: 1 }));
  }
  return b.op1('Reshape', [taps.length === 1 ? taps[0] : b.op1('Concat', taps, { axis: 0 }), b.ints('shape', [k, cin, filters])]);
}

/** The training graphs of a Conv1D chain (see the module comment), or an UnsupportedLayerError naming why not. */
export function exportSequenceTraining(m: tf.LayersModel): SequenceTrainingGraphs {
  const shape = m.inputs[0].shape;
  if (m.inputs.length !== 1 || m.outputs.length !== 1 || shape.length !== 3 || typeof shape[2] !== 'number') throw new UnsupportedLayerError(`sequence models take [batch, frames, features]; got [${shape.join(', ')}]`);
  if (m.getClassName() !== 'Sequential') throw new UnsupportedLayerError('only Sequential sequence models are exported');
  const d = shape[2];
  const weights = m.trainableWeights.map((v) => ({ name: v.name, shape: v.shape as number[] }));
  const b = new SequenceTrainBuilder(new Map(m.trainableWeights.map((v, i) => [v as object, i])));
  const desc: string[] = [];
  const masks: number[] = [];
  let x = b.describe(b.op1('Transpose', ['x'], { perm: [0, 2, 1] }), ['N', d, 'T']);
  b.onBackward((g) => (g === NO_GRADIENT ? g : b.op1('Transpose', [g], { perm: [0, 2, 1] })));
  let ch = d, stride = 1;
  for (const layer of m.layers as unknown as LayerLike[]) {
    const cls = layer.getClassName();
    const where = `layer "${layer.name}" (${cls})`;
    b.check(layer, cls, where);
    if (cls === 'InputLayer' || cls === 'Dropout') continue;
    const dims = () => ['N', ch, `T${stride}`];
    if (cls === 'Activation' || cls === 'ReLU') {
      const act = cls === 'ReLU' ? 'relu' : String(layer.getConfig().activation);
      x = activation(b, x, act, where, dims());
      desc.push(`activation ${layer.name} ${act}`);
      continue;
    }
    const { k, s, padding, filters, bias, pads, act } = conv1dSpec(layer, where);
    const cin = ch;
    const xIn = b.describe(x, dims());
    // tfjs [k, cin, cout] -> ONNX [cout, cin, k]
    const W = b.describe(b.weight(layer, 'kernel', where, 'K', [filters, cin, k], [2, 1, 0]), [filters, cin, k]);
    const inputs = [x, W];
    if (bias) inputs.push(b.weight(layer, 'bias', where, 'b', [filters]));
    const z = b.op1('Conv', inputs, { kernel_shape: [k], strides: [s], pads });
    const first = b.firstWithWeights();
    b.onBackward((g) => {
      b.weightGradient(layer, 'kernel', where, () => filterGradient1d(b, xIn, g, { cin, filters, k, s, pads }));
      if (bias) b.weightGradient(layer, 'bias', where, () => b.op1('ReduceSum', [g, b.ints('axes', [0, 2])], { keepdims: 0 }));
      if (first) return NO_GRADIENT;
      return b.op1('ConvTranspose', [g, W], { kernel_shape: [k], strides: [s], pads, output_padding: [Math.max(0, s - k - pads[0] - pads[1])] });
    });
    ch = filters;
    stride *= s;
    x = activation(b, z, act, where, dims());
    if (!masks.includes(stride)) masks.push(stride);
    const mask = `fmask${masks.indexOf(stride)}`;
    x = b.op1('Mul', [x, mask]);
    b.onBackward((g) => b.op1('Mul', [g, mask]));
    desc.push(`conv1d ${layer.name} ${filters} k${k} stride ${s} ${padding}, ${act}, frames masked${b.trains(bias ? ['K', 'b'] : ['K'])}`);
  }
  if (weights.length === 0) throw new UnsupportedLayerError('the network has no trainable weights');
  const y = b.op1('Transpose', [x], { perm: [0, 2, 1] });
  b.onBackward((g) => b.op1('Transpose', [g], { perm: [0, 2, 1] }));
  b.emit('Identity', [y], ['logits']);
  b.runBackward('dlogits');
  weights.forEach((_, i) => {
    const g = b.gradOutputs.get(i);
    if (!g) throw new UnsupportedLayerError(`trainable weight "${weights[i].name}" is not reached by the exported layers`);
    b.emit('Identity', [g], [`g${i}`]);
  });

  // The split: what the backward nodes read from the forward nodes is saved; graph inputs they read are fed to both.
  const fwd = b.nodes.slice(0, b.forwardEnd), bwd = b.nodes.slice(b.forwardEnd);
  const produced = new Set(fwd.flatMap((n) => n.outputs));
  const graphInputs = [...masks.map((_, j) => `fmask${j}`), ...weights.map((_, i) => `w${i}`)];
  const read = new Set(bwd.flatMap((n) => n.inputs));
  const savedNames = [...read].filter((n) => produced.has(n));
  const infoOf = (n: string) => {
    const i = b.info.get(n);
    if (!i) throw new Error(`sequence training exporter: the backward pass reads "${n}", whose type was not recorded`);
    return i;
  };
  const saved = savedNames.map((n) => ({ name: n, type: TYPE_NAMES[infoOf(n).type] }));
  const savedInfos = savedNames.map((n) => valueInfo(n, infoOf(n).dims, infoOf(n).type));
  const maskInfo = (j: number) => valueInfo(`fmask${j}`, ['N', 1, `T${masks[j]}`]);
  const inputInfo = (name: string) => (name.startsWith('fmask') ? maskInfo(Number(name.slice(5))) : valueInfo(name, weights[Number(name.slice(1))].shape));
  const backwardInputs = graphInputs.filter((n) => read.has(n));
  const logitsDims = ['N', `T${stride}`, ch];
  const forward = protoOf(b, 'advlab_seq_train_forward', fwd, [valueInfo('x', ['N', 'T', d]), ...graphInputs.map(inputInfo)], [valueInfo('logits', logitsDims), ...savedInfos]);
  const backward = protoOf(b, 'advlab_seq_train_backward', bwd, [valueInfo('dlogits', logitsDims), ...savedInfos, ...backwardInputs.map(inputInfo)], weights.map((v, i) => valueInfo(`g${i}`, v.shape)));
  return { forward, backward, saved, backwardInputs, featureDim: d, classes: ch, stride, weights, masks, layers: desc };
}
