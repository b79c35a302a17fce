/**
 * Conv2D backprop kernels for the wasm backend, expressed as forward convolutions.
 *
 * tfjs's wasm backend has no Conv2DBackpropFilter kernel and a slow Conv2DBackpropInput, while its
 * forward Conv2D (XNNPACK) is fast. We register both backprop kernels for 'wasm', composed only of
 * wasm's own kernels (Conv2D, Transpose, Slice, PadV2, Reshape, Reverse), so that every gradient
 * that needs them (tf.conv2d's, the fused conv2d of tf.layers, conv1d's) works and is fast:
 *  - input gradient: dy dilated by the stride (s-1 zeros between rows and columns), padded so the
 *    output is H x W, correlated with the kernel flipped in both spatial axes and its in/out
 *    channels swapped;
 *  - filter gradient: x (padded first for 'same') transposed to [ci, H, W, b], correlated with dy
 *    transposed to [oh, ow, b, co] used as the filter with dilation = stride, sliced to
 *    [ci, kh, kw, co] and transposed back to [kh, kw, ci, co].
 * NHWC only (tfjs's layers default); dilated convolutions keep tfjs's own path.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type Pads = { top: number; bottom: number; left: number; right: number };
type PadAttr = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** Runs wasm kernels by name and frees every intermediate result when done. */
class KernelScope {
  private readonly temps: Info[] = [];
  constructor(private readonly backend: tf.KernelBackend) {}

  run(name: string, inputs: Record<string, Info>, attrs: Record<string, unknown>): Info {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`wasm backend has no ${name} kernel`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap }) as Info;
    this.temps.push(out);
    return out;
  }

  /** Keeps `result` alive and frees everything else this scope created. */
  finish(result: Info): Info {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    return result;
  }

  transpose(x: Info, perm: number[]): Info { return this.run('Transpose', { x }, { perm }); }
  reshape(x: Info, shape: number[]): Info { return this.run('Reshape', { x }, { shape }); }
  slice(x: Info, begin: number[], size: number[]): Info { return this.run('Slice', { x }, { begin, size }); }
  pad(x: Info, paddings: [number, number][]): Info {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }
  conv(x: Info, filter: Info, dilations: [number, number]): Info {
    return this.run('Conv2D', { x, filter }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations, dimRoundingMode: undefined });
  }
}

function pair(v: number | number[] | undefined): [number, number] {
  if (v === undefined) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function padsOf(xShape: number[], filterShape: number[], strides: [number, number], pad: PadAttr, rounding?: 'floor' | 'round' | 'ceil'): Pads {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number], strides, 1, pad, rounding);
  return info.padInfo;
}

function checkFormat(dataFormat: unknown, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') throw new Error(`${kernel} on the wasm backend supports NHWC only`);
}

/** dx for y = conv2d(x, filter): dy [b, oh, ow, co], filter [kh, kw, ci, co] -> [b, H, W, ci]. */
export function conv2dInputGrad(s: KernelScope, dy: Info, filter: Info, xShape: number[], strides: [number, number], pads: Pads): Info {
  const [kh, kw] = filter.shape;
  const [, H, W] = xShape;
  const [sh, sw] = strides;
  const [b, oh, ow, co] = dy.shape;
  let d = dy;
  if (sh > 1 || sw > 1) {
    const spread = s.pad(s.reshape(dy, [b, oh, 1, ow, 1, co]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    d = s.slice(s.reshape(spread, [b, oh * sh, ow * sw, co]), [0, 0, 0, 0], [b, (oh - 1) * sh + 1, (ow - 1) * sw + 1, co]);
  }
  const top = kh - 1 - pads.top, left = kw - 1 - pads.left;
  const bottom = H + kh - 1 - top - d.shape[1], right = W + kw - 1 - left - d.shape[2];
  // A negative pad means rows of dy no input position reaches: crop them instead.
  const ct = Math.max(0, -top), cl = Math.max(0, -left), cb = Math.max(0, -bottom), cr = Math.max(0, -right);
  if (ct || cl || cb || cr) d = s.slice(d, [0, ct, cl, 0], [b, d.shape[1] - ct - cb, d.shape[2] - cl - cr, co]);
  const padded = s.pad(d, [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]]);
  const flipped = s.transpose(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
  return s.conv(padded, flipped, [1, 1]);
}

/** dW for y = conv2d(x, filter): x [b, H, W, ci], dy [b, oh, ow, co] -> [kh, kw, ci, co]. */
export function conv2dFilterGrad(s: KernelScope, x: Info, dy: Info, filterShape: number[], strides: [number, number], pads: Pads): Info {
  const [kh, kw, ci, co] = filterShape;
  const [sh, sw] = strides;
  const [, oh, ow] = dy.shape;
  let xp = s.pad(x, [[0, 0], [pads.top, pads.bottom], [pads.left, pads.right], [0, 0]]);
  // Rows and columns past the last window never contribute: crop so the result is kh x kw.
  const needH = (oh - 1) * sh + kh, needW = (ow - 1) * sw + kw;
  if (xp.shape[1] > needH || xp.shape[2] > needW) {
    xp = s.slice(xp, [0, 0, 0, 0], [xp.shape[0], Math.min(xp.shape[1], needH), Math.min(xp.shape[2], needW), xp.shape[3]]);
  }
  const out = s.conv(s.transpose(xp, [3, 1, 2, 0]), s.transpose(dy, [1, 2, 0, 3]), [sh, sw]); // [ci, kh', kw', co]
  return s.transpose(s.slice(out, [0, 0, 0, 0], [ci, kh, kw, co]), [1, 2, 0, 3]);
}

let registered = false;

/** Registers Conv2DBackpropInput and Conv2DBackpropFilter for 'wasm' (idempotent). */
export function registerWasmConvGradients(): void {
  if (registered) return;
  registered = true;
  const previousInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
  if (previousInput) tf.unregisterKernel(tf.Conv2DBackpropInput, 'wasm');
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs as { dy: Info; filter: Info };
      const a = attrs as unknown as { strides: number | number[]; pad: PadAttr; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil'; inputShape: number[] };
      checkFormat(a.dataFormat, 'Conv2DBackpropInput');
      const strides = pair(a.strides);
      const s = new KernelScope(backend as tf.KernelBackend);
      return s.finish(conv2dInputGrad(s, dy, filter, a.inputShape, strides, padsOf(a.inputShape, filter.shape, strides, a.pad, a.dimRoundingMode)));
    },
  });
  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: Info; dy: Info };
      const a = attrs as unknown as { strides: number | number[]; pad: PadAttr; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: number[] };
      checkFormat(a.dataFormat, 'Conv2DBackpropFilter');
      const strides = pair(a.strides);
      const s = new KernelScope(backend as tf.KernelBackend);
      return s.finish(conv2dFilterGrad(s, x, dy, a.filterShape, strides, padsOf(x.shape, a.filterShape, strides, a.pad, a.dimRoundingMode)));
    },
  });
}
