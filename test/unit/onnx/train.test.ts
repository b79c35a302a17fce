/**
 * Training on ONNX Runtime against tfjs (the reference, cpu backend): the weight gradients of every layer
 * type the training exporter supports, the loss curve of a few optimizer steps with the same dropout masks,
 * the optimizers (SGD, momentum, Nesterov, Adam, with Keras's decay) against tfjs's, and refusals.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../../src-main/engine/models/architectures';
import { crossEntropyLoss, distillationLoss } from '../../../src-main/engine/models/losses';
import { exportTraining, trainingBlocker } from '../../../src-main/engine/onnx/export-train';
import { OrtTrainer } from '../../../src-main/engine/onnx/trainer';
import { JsOptimizer, learningRateAt, type OptimizerSpec } from '../../../src-main/engine/onnx/train-optimizer';
import { mulberry32 } from '../../../src-main/engine/core/random';
import { defaultSpinning } from '../../../src-main/engine/onnx/runtime';

const glorot = (seed: number) => tf.initializers.glorotUniform({ seed });
const bias = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.1, seed });

function seq(inputShape: [number, number, number], layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape }));
  for (const l of layers) m.add(l);
  return m;
}

/** Every layer type the training exporter supports, with every path of the backward pass it writes. */
function everyLayer(): tf.Sequential {
  let s = 10;
  const conv = (filters: number, kernelSize: number, strides: number, padding: 'valid' | 'same', activation: 'relu' | 'linear' = 'relu') =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding, activation, kernelInitializer: glorot(s++), biasInitializer: bias(s++) });
  return seq([14, 14, 2], [
    tf.layers.activation({ activation: 'sigmoid' }), // below the first weights: no backward at all
    conv(8, 3, 1, 'valid'), // first layer with weights: no input gradient; 2 channels
    conv(8, 3, 2, 'valid', 'linear'), // stride 2 on 12: the filter gradient's extra row sliced off; ConvTranspose input gradient
    tf.layers.activation({ activation: 'tanh' }),
    tf.layers.dropout({ rate: 0.3 }), // dropout on an image-shaped (NCHW) value
    conv(9, 2, 1, 'same'), // stride 1 on 8 channels: the flipped-kernel Conv input gradient
    tf.layers.maxPooling2d({ poolSize: 2 }), // square: SpaceToDepth + ArgMax; 5 -> 2 drops a row (Pad)
    tf.layers.averagePooling2d({ poolSize: [1, 2], strides: [1, 2] }),
    tf.layers.maxPooling2d({ poolSize: [2, 1], strides: [2, 1] }), // not square: MaxPool indices + MaxUnpool
    tf.layers.flatten(),
    tf.layers.dense({ units: 12, activation: 'relu', kernelInitializer: glorot(s++), biasInitializer: bias(s++) }),
    tf.layers.dropout({ rate: 0.5 }),
    tf.layers.dense({ units: 7, activation: 'sigmoid', kernelInitializer: glorot(s++), biasInitializer: bias(s++) }),
    tf.layers.dense({ units: 5, useBias: false, kernelInitializer: glorot(s++) }),
  ]);
}

/** tfjs's forward pass in training mode with the given dropout masks (the reference the ONNX graph is held to). */
function tfForward(model: tf.LayersModel, x: tf.Tensor, masks: Float32Array[]): tf.Tensor2D {
  let h = x, j = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    if (layer.getClassName() === 'Dropout' && Number(layer.getConfig().rate) > 0) {
      h = tf.mul(h, tf.tensor(masks[j++], h.shape));
    } else {
      h = layer.apply(h, { training: true }) as tf.Tensor;
    }
  }
  return h as tf.Tensor2D;
}

function batch(model: tf.LayersModel, n: number, seed: number): { x: Float32Array; y: Float32Array } {
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  const k = model.outputs[0].shape[1] as number;
  const rng = mulberry32(seed);
  const x = Float32Array.from({ length: n * h * w * c }, () => rng());
  const y = new Float32Array(n * k);
  for (let i = 0; i < n; i++) y[i * k + Math.floor(rng() * k)] = 1;
  return { x, y };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const spec = (o: Partial<OptimizerSpec>): OptimizerSpec => ({ optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: false, decay: 0, ...o });

describe('ONNX training graph: weight gradients against tfjs autodiff', () => {
  it('every supported layer type: loss, logits and every weight gradient within 1e-4 (dropout masks shared)', async () => {
    const model = everyLayer();
    const trainer = await OrtTrainer.create(model, spec({}), { threads: 1, reason: 'test' });
    try {
      expect(trainer.graph.dropouts.map((d) => d.shape)).toEqual([[5, 5, 8], [12]]);
      const n = 6;
      const { x, y } = batch(model, n, 3);
      const masks = trainer.masks(n, mulberry32(5));
      expect(masks[0].some((v) => v === 0) && masks[0].some((v) => v > 1)).toBe(true);
      const r = trainer.gradients(x, y, n, masks);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const ref = tf.tidy(() => {
        const xt = tf.tensor(x, [n, 14, 14, 2]), yt = tf.tensor2d(y, [n, 5]);
        let logits: tf.Tensor | null = null;
        const { value, grads } = tf.variableGrads(() => {
          const z = tfForward(model, xt, masks);
          logits = tf.keep(z);
          return crossEntropyLoss(z, yt);
        }, vars);
        return { loss: value.dataSync()[0], logits: logits!.dataSync(), grads: vars.map((v) => grads[v.name].dataSync()) };
      });
      expect(Math.abs(r.loss - ref.loss)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(r.logits, ref.logits)).toBeLessThanOrEqual(1e-4);
      expect(r.grads).toHaveLength(model.trainableWeights.length);
      r.grads.forEach((g, i) => {
        const name = model.trainableWeights[i].name;
        expect(maxAbs(ref.grads[i]), `${name} has a gradient`).toBeGreaterThan(1e-4);
        expect(maxAbsDiff(g, ref.grads[i]), name).toBeLessThanOrEqual(1e-4);
      });
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('cw-mnist (the benchmark network) and the distillation loss at T = 20', async () => {
    const model = buildModel('cw-mnist', { seed: 3 });
    const loss = distillationLoss(20);
    const trainer = await OrtTrainer.create(model, spec({}), { threads: 1, reason: 'test', loss: loss.spec });
    try {
      const n = 4;
      const { x, y } = batch(model, n, 9);
      const masks = trainer.masks(n, mulberry32(1));
      const r = trainer.gradients(x, y, n, masks);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const ref = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => loss(tfForward(model, tf.tensor(x, [n, 28, 28, 1]), masks), tf.tensor2d(y, [n, 10]), null as never), vars);
        return { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync()) };
      });
      expect(Math.abs(r.loss - ref.loss)).toBeLessThanOrEqual(1e-5);
      r.grads.forEach((g, i) => {
        const scale = Math.max(1e-3, maxAbs(ref.grads[i]));
        expect(maxAbsDiff(g, ref.grads[i]) / scale, model.trainableWeights[i].name).toBeLessThanOrEqual(1e-3);
      });
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('refuses what it does not train, with the reason', () => {
    const bn = seq([8, 8, 1], [tf.layers.conv2d({ filters: 2, kernelSize: 3 }), tf.layers.batchNormalization(), tf.layers.flatten(), tf.layers.dense({ units: 3 })]);
    expect(trainingBlocker(bn)).toMatch(/batch normalisation in training mode/);
    const frozen = seq([8, 8, 1], [tf.layers.conv2d({ filters: 2, kernelSize: 3, trainable: false }), tf.layers.flatten(), tf.layers.dense({ units: 3 })]);
    expect(trainingBlocker(frozen)).toMatch(/frozen/);
    const ok = seq([8, 8, 1], [tf.layers.flatten(), tf.layers.dense({ units: 3 })]);
    expect(trainingBlocker(ok)).toBeNull();
    expect(exportTraining(ok).weights.map((w) => w.shape)).toEqual([[64, 3], [3]]);
    [bn, frozen, ok].forEach((m) => m.dispose());
  });
});

describe('ONNX Runtime threads', () => {
  it('pool threads sleep between parallel sections unless ADVLAB_ORT_SPINNING=1; 2 threads, spinning or not, give the gradients of 1', async () => {
    expect(defaultSpinning({})).toBe(false);
    expect(defaultSpinning({ ADVLAB_ORT_SPINNING: '0' })).toBe(false);
    expect(defaultSpinning({ ADVLAB_ORT_SPINNING: '1' })).toBe(true);
    const model = buildModel('cw-mnist', { seed: 4 });
    const n = 8;
    const { x, y } = batch(model, n, 2);
    const saved = process.env.ADVLAB_ORT_SPINNING;
    const runs: Float32Array[][] = [];
    let masks: Float32Array[] | null = null; // (drawn once: a SeededDropout layer gives the next mask on every draw)
    try {
      for (const [threads, spinning] of [[1, '0'], [2, '0'], [2, '1']] as const) {
        process.env.ADVLAB_ORT_SPINNING = spinning;
        const trainer = await OrtTrainer.create(model, spec({}), { threads, reason: 'test' });
        try {
          expect(trainer.engine.threads).toBe(threads);
          masks ??= trainer.masks(n, mulberry32(7));
          runs.push(trainer.gradients(x, y, n, masks).grads);
        } finally {
          trainer.dispose();
        }
      }
    } finally {
      if (saved === undefined) delete process.env.ADVLAB_ORT_SPINNING;
      else process.env.ADVLAB_ORT_SPINNING = saved;
      model.dispose();
    }
    for (const r of runs.slice(1)) r.forEach((g, i) => expect(maxAbsDiff(g, runs[0][i])).toBeLessThanOrEqual(1e-5));
  });
});

describe('ONNX training: the same loss curve as tfjs', () => {
  const cases: [string, OptimizerSpec][] = [
    ['sgd', spec({ optimizer: 'sgd', learningRate: 0.1 })],
    ['momentum', spec({ optimizer: 'momentum', learningRate: 0.05 })],
    ['nesterov + decay', spec({ optimizer: 'momentum', learningRate: 0.05, nesterov: true, decay: 0.2 })],
    ['adam + decay', spec({ optimizer: 'adam', learningRate: 0.01, decay: 0.1 })],
  ];
  for (const [label, s] of cases) {
    it(`${label}: 5 steps, every loss within 1e-4 and the weights after within 1e-4`, async () => {
      const a = everyLayer(), b = everyLayer();
      const trainer = await OrtTrainer.create(a, s, { threads: 1, reason: 'test' });
      const vars = b.trainableWeights.map((w) => w.read() as tf.Variable);
      const opt: tf.Optimizer = s.optimizer === 'adam' ? tf.train.adam(s.learningRate) : s.optimizer === 'sgd' ? tf.train.sgd(s.learningRate) : tf.train.momentum(s.learningRate, s.momentum, s.nesterov);
      const before = tf.memory().numTensors;
      try {
        const onnx: number[] = [], ref: number[] = [];
        const rng = mulberry32(11);
        for (let t = 0; t < 5; t++) {
          const n = 5 + t; // batch sizes vary
          const { x, y } = batch(a, n, 100 + t);
          const masks = trainer.masks(n, rng);
          onnx.push(trainer.step(x, y, n, masks).loss);
          const lr = learningRateAt(s, t);
          if (s.optimizer === 'adam') (opt as unknown as { learningRate: number }).learningRate = lr;
          else (opt as tf.SGDOptimizer).setLearningRate(lr);
          ref.push(tf.tidy(() => {
            const { value, grads } = tf.variableGrads(() => crossEntropyLoss(tfForward(b, tf.tensor(x, [n, 14, 14, 2]), masks), tf.tensor2d(y, [n, 5])), vars);
            opt.applyGradients(grads);
            return value.dataSync()[0];
          }));
        }
        expect(new Set(onnx.map((v) => v.toFixed(3))).size).toBeGreaterThan(1); // it trains
        onnx.forEach((v, i) => expect(Math.abs(v - ref[i]), `step ${i}`).toBeLessThanOrEqual(1e-4));
        trainer.syncToModel(a);
        a.trainableWeights.forEach((w, i) => expect(maxAbsDiff(w.read().dataSync(), vars[i].dataSync()), w.name).toBeLessThanOrEqual(1e-4));
        expect(trainer.iterations).toBe(5);
      } finally {
        trainer.dispose();
        opt.dispose();
      }
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before); // syncToModel and the steps leak nothing
      a.dispose(); b.dispose();
    });
  }

  it("Keras's decay: lr / (1 + decay t)", () => {
    expect(learningRateAt({ learningRate: 0.01, decay: 1e-6 }, 0)).toBe(0.01);
    expect(learningRateAt({ learningRate: 0.01, decay: 1e-6 }, 1e6)).toBeCloseTo(0.005, 12);
    expect(learningRateAt({ learningRate: 0.01, decay: 0 }, 1e9)).toBe(0.01);
    const o = new JsOptimizer(spec({ optimizer: 'sgd', learningRate: 1, decay: 1 }), [1]);
    const w = [Float32Array.of(0)];
    o.apply(w, [Float32Array.of(1)]); // lr 1
    o.apply(w, [Float32Array.of(1)]); // lr 1/2
    expect(w[0][0]).toBeCloseTo(-1.5, 6);
  });
});
