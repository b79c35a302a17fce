/**
 * The exporter for sequence networks (issue 13: "Conv1D and the speech front end's matmuls"): a chain of
 * Conv1D layers (and Activation, ReLU, Dropout) from features [N, T, D] to per-frame logits [N, T', C],
 * T' = T / (product of the strides), as the speech model's network is. The same four graphs as an image
 * classifier's (forward, vjp, and the vjp graph split for `linearize`; see export.ts), with a symbolic T.
 *
 * Conv1D y = conv(x, W) + b  ->  gx = conv(g, W flipped, transposed)  (stride 1, >= 8 input channels)
 *                                 gx = conv_transpose(g, W)           (otherwise)
 *
 * ONNX's Conv is NCW and tfjs's NWC: the graph transposes the input once and the logits back.
 * Padding 'same' depends on the length in TensorFlow (total = max(0, (ceil(L/s) - 1) s + k - L)); it is
 * max(0, k - s), fixed, when L is a multiple of s. The graphs are therefore exact for inputs whose length
 * is a multiple of the product of the strides (the speech model pads its frames to one: `timeStride`),
 * and `sequenceStride` says which multiple; 'valid' padding is exported at stride 1 only.
 */
import type * as tf from '@tensorflow/tfjs';
import { activation, assemble, Builder, modelHash, need, UnsupportedLayerError, weightsOf, type ExportedGraphs, type LayerLike } from './export';

export interface ExportedSequenceModel extends ExportedGraphs {
  sha256: string;
  /** Features per input frame (D). */
  featureDim: number;
  /** Logits per output frame (C). */
  classes: number;
  /** Input frames per output frame: inputs must have a multiple of it. */
  stride: number;
  layers: string[];
}

/** [k, cin, cout] (tfjs) -> [cout, cin, k] (ONNX). */
function kernel1d(w: Float32Array, k: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < k; a++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) out[(o * cin + i) * k + a] = w[(a * cin + i) * cout + o];
  return out;
}

/** [k, cin, cout] (tfjs) -> [cin, cout, k] flipped in time: the kernel of the stride-1 input gradient. */
function flipped1d(w: Float32Array, k: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < k; a++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) out[(i * cout + o) * k + (k - 1 - a)] = w[(a * cin + i) * cout + o];
  return out;
}

/** A Conv1D layer's configuration as the sequence graphs export it, or an UnsupportedLayerError naming why not. */
export function conv1dSpec(layer: LayerLike, where: string): { k: number; s: number; padding: string; filters: number; bias: boolean; pads: [number, number]; act: string } {
  const cfg = layer.getConfig();
  if (layer.getClassName() !== 'Conv1D') throw new UnsupportedLayerError(`${where} is not exported in a sequence model (supported: Conv1D, Activation, ReLU, Dropout)`);
  const one = (v: unknown) => (Array.isArray(v) ? Number(v[0]) : Number(v));
  const k = one(cfg.kernelSize), s = one(cfg.strides ?? 1), dil = one(cfg.dilationRate ?? 1);
  const padding = String(cfg.padding ?? 'valid');
  if (dil !== 1) throw new UnsupportedLayerError(`${where}: dilated convolutions are not exported`);
  if (padding !== 'same' && !(padding === 'valid' && s === 1)) throw new UnsupportedLayerError(`${where}: padding "${padding}" with stride ${s} is not exported ('same', or 'valid' at stride 1)`);
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new UnsupportedLayerError(`${where}: dataFormat ${String(cfg.dataFormat)} is not exported`);
  const total = padding === 'same' ? Math.max(0, k - s) : 0;
  return { k, s, padding, filters: Number(cfg.filters), bias: cfg.useBias !== false, pads: [Math.floor(total / 2), total - Math.floor(total / 2)], act: String(cfg.activation ?? 'linear') };
}

function build(m: tf.LayersModel, withGrad: boolean): { bytes: Uint8Array; split?: ReturnType<typeof assemble>['split']; d: number; c: number; stride: number; desc: string[] } {
  const shape = m.inputs[0].shape;
  if (m.inputs.length !== 1 || m.outputs.length !== 1 || shape.length !== 3 || typeof shape[2] !== 'number') throw new UnsupportedLayerError(`sequence models take [batch, frames, features]; got [${shape.join(', ')}]`);
  if (m.getClassName() !== 'Sequential') throw new UnsupportedLayerError('only Sequential sequence models are exported');
  const d = shape[2];
  const b = new Builder(withGrad);
  b.describe('x', ['N', 'T', d]);
  const desc: string[] = [];
  let x = b.op1('Transpose', ['x'], { perm: [0, 2, 1] });
  b.onBackward((g) => b.op1('Transpose', [g], { perm: [0, 2, 1] }));
  let ch = d, stride = 1;
  for (const layer of m.layers as unknown as LayerLike[]) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const where = `layer "${layer.name}" (${cls})`;
    const dims = () => ['N', ch, `T${stride}`];
    if (cls === 'InputLayer') continue;
    if (cls === 'Dropout') {
      desc.push(`dropout ${layer.name} (identity at inference)`);
      continue;
    }
    if (cls === 'Activation' || cls === 'ReLU') {
      const act = cls === 'ReLU' ? 'relu' : String(cfg.activation);
      x = activation(b, x, act, where, dims());
      desc.push(`activation ${layer.name} ${act}`);
      continue;
    }
    const { k, s, padding, filters, bias, pads, act } = conv1dSpec(layer, where);
    const ws = weightsOf(layer);
    const kernel = need(ws, 'kernel', where);
    const W = b.init('K', [filters, ch, k], kernel1d(kernel, k, ch, filters));
    const inputs = [x, W];
    if (bias) inputs.push(b.init('b', [filters], need(ws, 'bias', where)));
    const z = b.op1('Conv', inputs, { kernel_shape: [k], strides: [s], pads });
    const cin = ch;
    b.onBackward((g) => {
      if (s === 1 && cin >= 8) {
        const F = b.init('Kflip', [cin, filters, k], flipped1d(kernel, k, cin, filters));
        return b.op1('Conv', [g, F], { kernel_shape: [k], pads: [k - 1 - pads[0], k - 1 - pads[1]] });
      }
      // (L/s - 1) s + k - total = L when k >= s; output_padding adds the s - k frames otherwise.
      return b.op1('ConvTranspose', [g, W], { kernel_shape: [k], strides: [s], pads, output_padding: [Math.max(0, s - k - pads[0] - pads[1])] });
    });
    ch = filters;
    stride *= s;
    x = activation(b, z, act, where, dims());
    desc.push(`conv1d ${layer.name} ${filters} k${k} stride ${s} ${padding}, ${act}`);
  }
  const y = b.op1('Transpose', [x], { perm: [0, 2, 1] });
  b.onBackward((g) => b.op1('Transpose', [g], { perm: [0, 2, 1] }));
  const out = assemble(b, y, ['N', 'T', d], ['N', `T${stride}`, ch]);
  return { ...out, d, c: ch, stride, desc };
}

const cache = new Map<string, ExportedSequenceModel>();

/** The graphs of a sequence network, cached per model sha256. Throws UnsupportedLayerError. */
export function exportSequenceModel(m: tf.LayersModel): ExportedSequenceModel {
  const sha256 = modelHash(m);
  const hit = cache.get(sha256);
  if (hit) return hit;
  const f = build(m, false);
  const v = build(m, true);
  const split = v.split as NonNullable<typeof v.split>;
  const out: ExportedSequenceModel = { forward: f.bytes, vjp: v.bytes, ...split, sha256, featureDim: f.d, classes: f.c, stride: f.stride, layers: f.desc };
  if (cache.size >= 4) cache.delete(cache.keys().next().value as string);
  cache.set(sha256, out);
  return out;
}
