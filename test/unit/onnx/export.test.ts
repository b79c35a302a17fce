/**
 * The ONNX exporter against tfjs autodiff (the reference, on the cpu backend): logits and VJPs of every
 * supported layer type and of every architecture we ship, max abs diff <= 1e-4 and sign agreement of
 * the input gradient >= 99.9%; unsupported layers are refused with a reason; ONNX Runtime loads in a
 * worker thread.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURE_NAMES, buildModel } from '../../../src-main/engine/models/architectures';
import { fromLayersModel, vjp, type Classifier } from '../../../src-main/engine/models/classifier';
import { onnxClassifier } from '../../../src-main/engine/onnx/classifier';
import { exportModel, unsupportedReason } from '../../../src-main/engine/onnx/export';
import { OrtSession, ortStatus } from '../../../src-main/engine/onnx/runtime';
import { classifierGradient } from '../../../src-main/engine/attacks/ops';
import { vi } from 'vitest';
import { onnxBlocker, selectEngine } from '../../../src-main/engine/onnx/select';

const TOL = 1e-4;

function compare(a: tf.Tensor, b: tf.Tensor): { maxAbs: number; signAgreement: number } {
  const x = a.dataSync(), y = b.dataSync();
  expect(x.length).toBe(y.length);
  let maxAbs = 0, same = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    if (Math.sign(x[i]) === Math.sign(y[i])) same++;
  }
  return { maxAbs, signAgreement: same / x.length };
}

/**
 * Logits and VJP of the ONNX classifier vs tfjs autodiff on n random inputs and cotangents: the vjp graph,
 * the split graphs (`linearize`: forward with saved tensors, then backward) and tfjs autodiff through the
 * ONNX logits (a tape: the split graphs again). `levels` quantizes the inputs so that max-pool windows tie.
 */
async function parity(model: tf.LayersModel, n = 3, seed = 1, levels?: number) {
  const ref = fromLayersModel(model);
  const onnx = await onnxClassifier(model, { threads: 1 });
  try {
    const [h, w, c] = ref.inputShape;
    return tf.tidy(() => {
      const u = tf.randomUniform([n, h, w, c], 0, 1, 'float32', seed) as tf.Tensor4D;
      const x = (levels ? tf.div(tf.floor(tf.mul(u, levels)), levels) : u) as tf.Tensor4D;
      const v = tf.randomNormal([n, ref.numClasses], 0, 1, 'float32', seed + 1) as tf.Tensor2D;
      const gRef = vjp(ref, x, v);
      const logits = compare(ref.logits(x), onnx.logits(x));
      const grad = compare(gRef, onnx.vjp(x, v));
      const lin = onnx.linearize(x);
      const linLogits = compare(ref.logits(x), lin.logits);
      const linGrad = compare(gRef, lin.vjp(v));
      const linAgain = compare(gRef, lin.vjp(v)); // the saved tensors serve more than one VJP
      // The same product through tfjs autodiff over the ONNX logits (tf.customGrad): what attacks get.
      const viaTape = compare(gRef, tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(onnx.logits(xi as tf.Tensor4D), v)))(x));
      const gradScale = tf.max(tf.abs(gRef)).dataSync()[0];
      return { logits, grad, viaTape, gradScale, linLogits, linGrad, linAgain };
    });
  } finally {
    onnx.dispose();
  }
}

function expectClose(r: Awaited<ReturnType<typeof parity>>) {
  expect(r.gradScale).toBeGreaterThan(1e-3); // a gradient that is not trivially zero
  expect(r.logits.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.grad.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.viaTape.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.linLogits.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.linGrad.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.linAgain.maxAbs).toBeLessThanOrEqual(TOL);
  expect(r.linGrad.signAgreement).toBeGreaterThanOrEqual(0.999);
  expect(r.grad.signAgreement).toBeGreaterThanOrEqual(0.999);
  expect(r.viaTape.signAgreement).toBeGreaterThanOrEqual(0.999);
}

const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });
const head = (k = 5): tf.layers.Layer[] => [tf.layers.flatten(), tf.layers.dense({ units: k, kernelInitializer: glorot(99), biasInitializer: 'randomNormal' })];

function seq(inputShape: [number, number, number], layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape }));
  for (const l of layers) m.add(l);
  return m;
}

const conv = (o: Partial<tf.layers.Layer> & Record<string, unknown>, seed = 3) =>
  tf.layers.conv2d({ filters: 4, kernelSize: 3, kernelInitializer: glorot(seed), biasInitializer: 'randomNormal', ...o } as never);

/** Sets a BatchNormalization layer's moving statistics and affine parameters to non-trivial values. */
function randomizeBatchNorm(layer: tf.layers.Layer, seed: number) {
  const ws = layer.getWeights();
  layer.setWeights(ws.map((w, i) => {
    const name = layer.weights[i].originalName ?? layer.weights[i].name;
    if (/moving_variance/.test(name)) return tf.randomUniform(w.shape, 0.5, 2, 'float32', seed + i);
    return tf.randomNormal(w.shape, /gamma/.test(name) ? 1 : 0, 0.5, 'float32', seed + i);
  }));
}

const LAYER_CASES: { name: string; model: () => tf.LayersModel }[] = [
  { name: 'Conv2D 3x3 stride 1 valid, ReLU', model: () => seq([9, 9, 2], [conv({ activation: 'relu' }), ...head()]) },
  { name: 'Conv2D 4x2 stride 1 same (uneven padding, flipped-kernel gradient)', model: () => seq([7, 8, 3], [conv({ kernelSize: [4, 2], padding: 'same', activation: 'relu' }), ...head()]) },
  { name: 'Conv2D 3x3 stride 2 same (odd input)', model: () => seq([9, 9, 2], [conv({ strides: 2, padding: 'same', activation: 'relu' }), ...head()]) },
  { name: 'Conv2D 5x4 stride 3 same on 10x11', model: () => seq([10, 11, 3], [conv({ kernelSize: [5, 4], strides: 3, padding: 'same' }), ...head()]) },
  { name: 'Conv2D 4x4 stride 3 valid on 11x12 (stride drops rows)', model: () => seq([11, 12, 1], [conv({ kernelSize: 4, strides: 3 }), ...head()]) },
  { name: 'Conv2D without bias, then Activation tanh', model: () => seq([8, 8, 2], [conv({ useBias: false }), tf.layers.activation({ activation: 'tanh' }), ...head()]) },
  { name: 'MaxPooling2D 2x2 on 9x9 (floor)', model: () => seq([9, 9, 2], [conv({ activation: 'relu' }), tf.layers.maxPooling2d({ poolSize: 2 }), ...head()]) },
  { name: 'MaxPooling2D 3x3 on raw input', model: () => seq([9, 9, 2], [tf.layers.maxPooling2d({ poolSize: 3 }), ...head()]) },
  { name: 'MaxPooling2D 2x3 stride 2x3 on raw input (non-square: indices path)', model: () => seq([8, 9, 2], [tf.layers.maxPooling2d({ poolSize: [2, 3], strides: [2, 3] }), ...head()]) },
  { name: 'AveragePooling2D 2x2', model: () => seq([9, 9, 2], [conv({}), tf.layers.averagePooling2d({ poolSize: 2 }), ...head()]) },
  { name: 'AveragePooling2D 3x3 stride 2 (overlapping)', model: () => seq([10, 9, 2], [tf.layers.averagePooling2d({ poolSize: 3, strides: 2 }), ...head()]) },
  { name: 'BatchNormalization after Conv2D (inference)', model: () => {
    const bn = tf.layers.batchNormalization();
    const m = seq([8, 8, 2], [conv({}), bn, tf.layers.reLU(), ...head()]);
    randomizeBatchNorm(bn, 11);
    return m;
  } },
  { name: 'BatchNormalization after Dense, Dropout', model: () => {
    const bn = tf.layers.batchNormalization({ epsilon: 0.01 });
    const m = seq([6, 6, 1], [tf.layers.flatten(), tf.layers.dense({ units: 12, kernelInitializer: glorot(5) }), bn, tf.layers.dropout({ rate: 0.5 }), tf.layers.dense({ units: 4, kernelInitializer: glorot(6) })]);
    randomizeBatchNorm(bn, 21);
    return m;
  } },
  ...(['relu', 'relu6', 'tanh', 'sigmoid', 'softplus', 'elu'] as const).map((activation) => ({
    name: `Dense, ${activation}`,
    model: () => seq([5, 5, 2], [tf.layers.flatten(), tf.layers.dense({ units: 16, activation, kernelInitializer: glorot(7), biasInitializer: 'randomNormal' }), tf.layers.dense({ units: 4, kernelInitializer: glorot(8) })]),
  })),
  { name: 'functional chain (tf.model)', model: () => {
    const input = tf.input({ shape: [7, 7, 1] });
    let t = conv({ activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    t = tf.layers.flatten().apply(t) as tf.SymbolicTensor;
    t = tf.layers.dense({ units: 3, kernelInitializer: glorot(4) }).apply(t) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: t });
  } },
];

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('ONNX Runtime', () => {
  it('loads here (the CPU provider inside the npm package, no postinstall download)', () => {
    expect(ortStatus()).toMatchObject({ available: true, version: '1.31.1' });
  });

  it('loads and runs an exported graph in a worker thread', async () => {
    const model = buildModel('mlp');
    const bytes = exportModel(model).forward;
    const x = new Float32Array(2 * 784).fill(0.5);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const ort = require('onnxruntime-node');
      (async () => {
        const s = await ort.InferenceSession.create(workerData.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
        const r = await s.run({ x: new ort.Tensor('float32', workerData.x, [2, 28, 28, 1]) });
        parentPort.postMessage(Array.from(r.logits.data));
      })().catch((e) => parentPort.postMessage(String(e)));`;
    const worker = new Worker(code, { eval: true, workerData: { bytes, x } });
    const out = await new Promise<unknown>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    const expected = (model.predict(tf.tensor4d(x, [2, 28, 28, 1])) as tf.Tensor).dataSync();
    expect(Array.isArray(out)).toBe(true);
    (out as number[]).forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(TOL));
  });
});

describe('ONNX exporter vs tfjs autodiff, per layer type', () => {
  for (const c of LAYER_CASES) {
    it(c.name, async () => {
      expectClose(await parity(c.model()));
    });
  }
});

describe('max pooling routes ties to the first maximum of each window, as tfjs does', () => {
  // Inputs on 3 levels: most 2x2 and 3x3 windows hold equal maxima; a gradient routed to another of them
  // changes signs and values (tfjs-cpu, the reference, takes the first in row-major order).
  const cases: [string, () => tf.LayersModel][] = [
    ['2x2 on raw input (SpaceToDepth + ArgMax)', () => seq([8, 8, 2], [tf.layers.maxPooling2d({ poolSize: 2 }), ...head()])],
    ['2x2 on 9x9 (cropped rows)', () => seq([9, 9, 2], [tf.layers.maxPooling2d({ poolSize: 2 }), ...head()])],
    ['3x3 on 9x9', () => seq([9, 9, 1], [tf.layers.maxPooling2d({ poolSize: 3 }), ...head()])],
    ['2x3 (indices)', () => seq([8, 9, 2], [tf.layers.maxPooling2d({ poolSize: [2, 3], strides: [2, 3] }), ...head()])],
    // A ReLU before the pool: its mask is applied to the pooled gradient ([max > 0]); windows of zeros tie and get none.
    ['2x2 after a conv + ReLU', () => seq([8, 8, 2], [tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: glorot(5), biasInitializer: tf.initializers.randomNormal({ seed: 3 }) }), tf.layers.maxPooling2d({ poolSize: 2 }), ...head()])],
    ['2x2 after a conv + ReLU, cropped rows', () => seq([9, 9, 1], [tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'relu', kernelInitializer: glorot(4), biasInitializer: tf.initializers.randomNormal({ seed: 2 }) }), tf.layers.maxPooling2d({ poolSize: 2 }), ...head()])],
  ];
  for (const [name, model] of cases) {
    it(name, async () => {
      const r = await parity(model(), 3, 7, 3);
      expectClose(r);
      expect(r.linGrad.signAgreement).toBe(1);
    });
  }
});

describe('ONNX exporter vs tfjs autodiff, shipped architectures', () => {
  for (const arch of ARCHITECTURE_NAMES) {
    it(arch, async () => {
      const r = await parity(buildModel(arch, { seed: 3 }), arch === 'cw-cifar' ? 2 : 4, 5);
      expectClose(r);
    });
  }
});

describe('one forward pass per gradient step', () => {
  it('a tape through the ONNX logits (C&W) and classifierGradient (FGSM, PGD, DDN) run 2 graphs: forward with saved tensors, then backward', async () => {
    const model = buildModel('cw-mnist', { seed: 3 });
    const onnx = await onnxClassifier(model, { threads: 1 });
    const runs = vi.spyOn(OrtSession.prototype, 'runTyped');
    try {
      const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
      tf.tidy(() => tf.valueAndGrad((xi: tf.Tensor) => tf.sum(tf.square(onnx.logits(tf.tanh(xi) as tf.Tensor4D))))(x).grad.dataSync());
      expect(runs).toHaveBeenCalledTimes(2);
      expect(runs.mock.calls[0][1]).toEqual(['logits', ...onnx.exported.saved.map((t) => t.name)]);
      expect(Object.keys(runs.mock.calls[1][0]).sort()).toEqual(['v', ...onnx.exported.saved.map((t) => t.name)].sort());
      runs.mockClear();
      const r = classifierGradient(onnx, x, (z) => tf.logSumExp(z, 1) as tf.Tensor1D);
      expect(runs).toHaveBeenCalledTimes(2);
      tf.dispose([r.grad, r.logits, r.values, x]);
      // Outside a tape the logits come from the plain forward graph (no saved tensors).
      runs.mockClear();
      tf.tidy(() => onnx.logits(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D).dataSync());
      expect(runs).toHaveBeenCalledTimes(1);
      expect(runs.mock.calls[0][1]).toEqual(['logits']);
    } finally {
      runs.mockRestore();
      onnx.dispose();
    }
  });
});

describe('unsupported models fall back to tfjs with the reason', () => {
  it('names the layer the exporter does not know', async () => {
    const dilated = seq([9, 9, 1], [conv({ dilationRate: 2 }), ...head()]);
    expect(unsupportedReason(dilated)).toMatch(/dilated/);
    const softmax = seq([4, 4, 1], [tf.layers.flatten(), tf.layers.dense({ units: 3, activation: 'softmax' })]);
    expect(unsupportedReason(softmax)).toMatch(/activation "softmax"/);
    const overlapping = seq([9, 9, 1], [tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }), ...head()]);
    expect(unsupportedReason(overlapping)).toMatch(/overlapping max pooling/);
    const upsample = seq([4, 4, 1], [tf.layers.upSampling2d({ size: [2, 2] }), ...head()]);
    expect(unsupportedReason(upsample)).toMatch(/UpSampling2D.*not exported/);
    expect(unsupportedReason(buildModel('cw-mnist'))).toBeNull();
  });

  it('auto picks tfjs for an unsupported layer or a defended wrapper, onnx otherwise; onnx refuses with the reason', async () => {
    const dilated = seq([9, 9, 1], [conv({ dilationRate: 2 }), ...head()]);
    const plain = fromLayersModel(dilated);
    const auto = await selectEngine({ model: dilated, classifier: plain });
    expect(auto.engine).toMatchObject({ engine: 'tfjs', reason: expect.stringMatching(/exporter: .*dilated/) });
    expect(auto.logits).toBe(plain.logits);
    await expect(selectEngine({ model: dilated, classifier: plain }, 'onnx')).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/dilated/) });

    const m = buildModel('mlp');
    const wrapped: Classifier = { ...fromLayersModel(m) };
    expect(onnxBlocker({ model: m, classifier: wrapped, wrapper: 'thermometer encoding' })).toMatch(/defended wrapper \(thermometer encoding\)/);
    expect(onnxBlocker({ model: m, classifier: { ...wrapped, rejectClass: 10 } })).toMatch(/detector/);
    expect((await selectEngine({ model: m, classifier: wrapped, wrapper: 'thermometer encoding' })).engine?.engine).toBe('tfjs');
    expect((await selectEngine({ model: m, classifier: wrapped }, 'tfjs')).engine).toMatchObject({ engine: 'tfjs', reason: expect.stringMatching(/requested/) });
    // Shards going to a cluster keep auto on tfjs (the workers rebuild the classifier from its spec); the local pool does not.
    const spec = { kind: 'saved' as const, modelJson: '/m/model.json', sha256: 'x', gradient: 'real' as const };
    const forCluster = await selectEngine({ model: m, classifier: { ...wrapped, spec }, shardsTo: 'cluster' });
    expect(forCluster.engine).toMatchObject({ engine: 'tfjs', reason: expect.stringMatching(/cluster/) });
    expect(forCluster.spec).toEqual(spec);
    await expect(selectEngine({ model: m, classifier: wrapped, shardsTo: 'cluster' }, 'onnx')).resolves.toMatchObject({ engine: { engine: 'onnx' } });
    const forPool = await selectEngine({ model: m, classifier: wrapped, shardsTo: 'pool', threads: 1 });
    expect(forPool.engine?.engine).toBe('onnx');
    forPool.dispose?.();

    const onnx = await selectEngine({ model: m, classifier: wrapped, threads: 1 });
    expect(onnx.engine).toMatchObject({ engine: 'onnx', threads: 1, reason: expect.stringMatching(/auto/) });
    onnx.dispose?.();
    expect(() => onnx.logits(tf.zeros([1, 28, 28, 1]))).toThrow(/after dispose/);
  });
});
