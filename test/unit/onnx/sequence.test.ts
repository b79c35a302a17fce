/**
 * The sequence exporter (Conv1D chains: the speech model's network) against tfjs autodiff on the cpu
 * backend: per-frame logits and the VJP through the vjp graph, the split graphs and a tape, on each
 * supported Conv1D configuration and on the starter speech-base, max abs diff <= 1e-4 and gradient sign
 * agreement >= 99.9%.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../../../src-main/engine/models';
import { openNetwork, onnxSequenceNetwork } from '../../../src-main/engine/onnx/classifier';
import { exportSequenceModel } from '../../../src-main/engine/onnx/export-seq';
import { useSequenceEngine } from '../../../src-main/engine/onnx/select';
import { SpeechModel } from '../../../src-main/engine/audio/model';
import { ctcLoss } from '../../../src-main/engine/audio/ctc';

const TOL = 1e-4;

function compare(a: tf.Tensor, b: tf.Tensor): { maxAbs: number; signAgreement: number } {
  expect(b.shape).toEqual(a.shape);
  const x = a.dataSync(), y = b.dataSync();
  let maxAbs = 0, same = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    if (Math.sign(x[i]) === Math.sign(y[i])) same++;
  }
  return { maxAbs, signAgreement: same / x.length };
}

async function parity(model: tf.LayersModel, n: number, frames: number, seed = 1) {
  const exported = exportSequenceModel(model);
  const net = await openNetwork(exported, 1);
  try {
    return tf.tidy(() => {
      const d = exported.featureDim;
      const x = tf.randomNormal([n, frames, d], 0, 1, 'float32', seed) as tf.Tensor3D;
      const ref = model.apply(x) as tf.Tensor3D;
      const v = tf.randomNormal(ref.shape, 0, 1, 'float32', seed + 1);
      const gRef = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(model.apply(xi) as tf.Tensor, v)))(x);
      const lin = net.linearize(x);
      const r = {
        logits: compare(ref, net.apply(x)),
        grad: compare(gRef, net.vjp(x, v)),
        linLogits: compare(ref, lin.logits),
        linGrad: compare(gRef, lin.vjp(v)),
        tape: compare(gRef, tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(net.apply(xi), v)))(x)),
        scale: tf.max(tf.abs(gRef)).dataSync()[0],
      };
      return r;
    });
  } finally {
    net.dispose();
  }
}

function expectClose(r: Awaited<ReturnType<typeof parity>>) {
  expect(r.scale).toBeGreaterThan(1e-3);
  for (const k of ['logits', 'grad', 'linLogits', 'linGrad', 'tape'] as const) expect(r[k].maxAbs, k).toBeLessThanOrEqual(TOL);
  for (const k of ['grad', 'linGrad', 'tape'] as const) expect(r[k].signAgreement, k).toBeGreaterThanOrEqual(0.999);
}

const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });

function chain(d: number, layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape: [null, d] }));
  for (const l of layers) m.add(l);
  return m;
}

const conv1d = (o: Record<string, unknown>, seed: number) => tf.layers.conv1d({ kernelInitializer: glorot(seed), biasInitializer: 'randomNormal', ...o } as never);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('Conv1D export vs tfjs autodiff', () => {
  const cases: [string, () => tf.Sequential, number][] = [
    ['k11 stride 2 same, 16 channels in (ConvTranspose gradient), ReLU', () => chain(16, [conv1d({ filters: 12, kernelSize: 11, strides: 2, padding: 'same', activation: 'relu' }, 1), conv1d({ filters: 5, kernelSize: 1, padding: 'same' }, 2)]), 2],
    ['k7 stride 1 same, 12 channels in (flipped-kernel conv gradient), ReLU', () => chain(12, [conv1d({ filters: 10, kernelSize: 7, padding: 'same', activation: 'relu' }, 3), conv1d({ filters: 4, kernelSize: 1, padding: 'same' }, 4)]), 1],
    ['k4 stride 1 same (uneven padding), 3 channels in', () => chain(3, [conv1d({ filters: 6, kernelSize: 4, padding: 'same', activation: 'tanh' }, 5)]), 1],
    ['k2 stride 3 same (kernel shorter than the stride)', () => chain(4, [conv1d({ filters: 6, kernelSize: 2, strides: 3, padding: 'same', activation: 'relu' }, 6), conv1d({ filters: 3, kernelSize: 3, padding: 'same' }, 7)]), 3],
    ['k5 stride 1 valid, no bias, then Activation relu', () => chain(9, [conv1d({ filters: 8, kernelSize: 5, useBias: false }, 8), tf.layers.activation({ activation: 'relu' }), conv1d({ filters: 3, kernelSize: 1 }, 9)]), 1],
  ];
  for (const [name, model, stride] of cases) {
    it(name, async () => {
      const m = model();
      expect(exportSequenceModel(m).stride).toBe(stride);
      expectClose(await parity(m, 2, 12 * stride + (name.includes('valid') ? 5 : 0)));
    });
  }

  it('refuses what it cannot export exactly', () => {
    expect(() => exportSequenceModel(chain(4, [conv1d({ filters: 3, kernelSize: 3, strides: 2, padding: 'valid' }, 1)]))).toThrow(/padding "valid" with stride 2/);
    expect(() => exportSequenceModel(chain(4, [conv1d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' }, 1)]))).toThrow(/dilated/);
    expect(() => exportSequenceModel(chain(4, [tf.layers.lstm({ units: 3, returnSequences: true })]))).toThrow(/LSTM.*not exported/);
  });
});

describe('the starter speech-base on ONNX Runtime', () => {
  it('matches tfjs: logits and input gradients of log-mel features (1 clip of 2 s and a batch of 2)', async () => {
    const loaded = await loadModel(join(import.meta.dirname, '../../../resources/starter/models/speech-base/model.json'));
    try {
      expect(exportSequenceModel(loaded.model).stride).toBe(2);
      expectClose(await parity(loaded.model, 1, 200, 3));
      expectClose(await parity(loaded.model, 2, 64, 4));
      const net = await onnxSequenceNetwork(loaded.model, { threads: 1 });
      try {
        expect(() => net.apply(tf.zeros([1, 63, 40]) as tf.Tensor3D)).toThrow(/not a multiple of its stride 2/);
      } finally {
        net.dispose();
      }
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('SpeechModel on ONNX Runtime (useSequenceEngine)', () => {
  it('gives the tfjs logits and the same CTC gradient w.r.t. the samples (through the tfjs front end); padded batches stay on tfjs', async () => {
    const model = await SpeechModel.load(join(import.meta.dirname, '../../../resources/starter/models/speech-base'));
    try {
      const n = 8000;
      const signal = tf.tidy(() => tf.mul(tf.randomNormal([1, n], 0, 1, 'float32', 11), 0.1)) as tf.Tensor2D;
      const labels = [model.alphabet.encode('one two')];
      const T = model.outputLengths([n]);
      const run = () => tf.tidy(() => {
        const z = model.logits(signal);
        const g = tf.grad((s: tf.Tensor) => ctcLoss(model.logits(s as tf.Tensor2D), labels, { inputLengths: T, reduction: 'sum' }))(signal);
        return { z: tf.keep(z), g: tf.keep(g) };
      });
      const ref = run();
      const info = await useSequenceEngine(model, 'auto', 1);
      expect(info).toMatchObject({ engine: 'onnx', reason: 'auto: every layer is exported' });
      expect(model.native).not.toBeNull();
      const onnx = run();
      expect(compare(ref.z, onnx.z).maxAbs).toBeLessThanOrEqual(TOL);
      const scale = tf.max(tf.abs(ref.g)).dataSync()[0];
      expect(scale).toBeGreaterThan(0);
      const g = compare(ref.g, onnx.g);
      expect(g.maxAbs / scale).toBeLessThanOrEqual(TOL);
      expect(g.signAgreement).toBeGreaterThanOrEqual(0.999);
      // The ONNX network is really what ran: poisoned, it changes the logits of a single clip...
      const native = model.native!;
      model.native = { apply: (x) => tf.mul(native.apply(x), 0) as tf.Tensor3D, dispose: () => native.dispose() };
      expect(tf.tidy(() => tf.max(tf.abs(model.logits(signal))).dataSync()[0])).toBe(0);
      // ...but not of a padded batch, whose masked frames need the tfjs layers.
      const two = tf.concat([signal, tf.tidy(() => tf.concat([tf.slice(signal, [0, 0], [1, 6000]), tf.zeros([1, 2000])], 1))]) as tf.Tensor2D;
      expect(tf.tidy(() => tf.max(tf.abs(model.logits(two, [n, 6000]))).dataSync()[0])).toBeGreaterThan(0);
      model.native = native;
      expect(await useSequenceEngine(model, 'tfjs')).toMatchObject({ engine: 'tfjs' });
      expect(model.native).toBeNull();
      tf.dispose([signal, two, ref.z, ref.g, onnx.z, onnx.g]);
    } finally {
      model.dispose();
    }
  });
});
