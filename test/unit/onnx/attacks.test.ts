/**
 * The gradient attacks on ONNX Runtime vs tfjs on the same trained network and the same MNIST images:
 * the same success rate and mean L2 within 0.5%. The tfjs run is the reference; the ONNX run takes its
 * gradients from the exported graphs (FGSM, PGD, BIM, DDN and C&W from the fused loss graphs through
 * lossGradient; the other objectives through classifierGradient's split graphs).
 *
 * The reference runs on tfjs's cpu backend. On wasm, tfjs-backend-wasm 4.22's MaxPoolGrad routes the
 * gradient of a window whose maximum is tied (a blank region after conv + positive bias + ReLU) to
 * another position than the cpu backend and ONNX Runtime do (both take the first maximum): on a
 * network with a positive conv bias, 2,526 of 6,272 input-gradient components of 8 MNIST images had
 * a different sign on wasm than on cpu, and ONNX matched cpu to 6e-8 with none. Both are valid
 * subgradients, but they move Linf sign attacks differently (BIM margin mean L2: wasm 1.074, cpu and
 * ONNX 1.104), so the exact comparison is with cpu.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { runAttack, type AttackResult } from '../../../src-main/engine/attacks';
import { fromLayersModel, type Classifier } from '../../../src-main/engine/models/classifier';
import { onnxClassifier, type OnnxClassifier } from '../../../src-main/engine/onnx/classifier';
import { mnist, type Subset } from '../attacks/helpers';

let model: tf.LayersModel;
let ref: Classifier;
let onnx: OnnxClassifier;
let pts: Subset;

/** conv8 3x3 ReLU, maxpool 2, dense 32 ReLU, dense 10: every layer kind of cw-mnist, trained in seconds. */
async function trainConv(train: Subset): Promise<tf.LayersModel> {
  const g = (seed: number) => tf.initializers.glorotUniform({ seed });
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: g(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: g(2) }),
      tf.layers.dense({ units: 10, kernelInitializer: g(3) }),
    ],
  });
  m.compile({ optimizer: tf.train.adam(0.003), loss: (y: tf.Tensor, z: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, z) });
  const xs = tf.tensor4d(train.images, [train.n, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(train.labels, 'int32'), 10);
  await m.fit(xs, ys, { epochs: 3, batchSize: 50, shuffle: false, verbose: 0 });
  tf.dispose([xs, ys]);
  return m;
}

beforeAll(async () => {
  await initBackend('wasm'); // trains fast; the attacks below run on cpu (see above)
  model = await trainConv(mnist(0, 1000));
  await tf.setBackend('cpu');
  ref = fromLayersModel(model);
  onnx = await onnxClassifier(model, { threads: 1 });
  pts = mnist(5000, 16);
  return () => onnx.dispose();
});

async function both(attack: string, params: Record<string, unknown>, goal: Parameters<typeof runAttack>[4] = { kind: 'untargeted' }): Promise<[AttackResult, AttackResult]> {
  const a = await runAttack(attack, ref, pts.images, pts.labels, goal, params);
  const b = await runAttack(attack, onnx, pts.images, pts.labels, goal, params);
  return [a, b];
}

function expectSame(a: AttackResult, b: AttackResult) {
  expect(b.summary.successRate).toBe(a.summary.successRate);
  expect(a.summary.successRate).toBeGreaterThan(0.2); // the attack does something on this model
  const [la, lb] = [a.summary.meanL2, b.summary.meanL2];
  expect(la).not.toBeNull();
  expect(Math.abs((lb ?? Infinity) - (la ?? 0))).toBeLessThanOrEqual(0.005 * (la ?? 0));
}

describe('attacks on ONNX Runtime match tfjs on the same model and images', () => {
  it('FGSM', async () => expectSame(...(await both('fgsm', { eps: 0.1 }))));
  it('PGD-20 (Linf, cross-entropy)', async () => expectSame(...(await both('pgd', { eps: 0.1, steps: 20 }))));
  it('BIM, C&W margin loss', async () => expectSame(...(await both('bim', { eps: 0.1, loss: 'margin' }))));
  it('DDN-30, targeted next', async () => expectSame(...(await both('ddn', { steps: 30 }, { kind: 'targeted', target: 'next' }))));
  it('C&W L2 2x60, targeted next', async () => expectSame(...(await both('cw-l2', { binarySearchSteps: 2, maxIterations: 60, initialConst: 1, learningRate: 0.05 }, { kind: 'targeted', target: 'next' }))));
  it('keeps tensor counts flat', async () => {
    await runAttack('pgd', onnx, pts.images, pts.labels, { kind: 'untargeted' }, { steps: 2 });
    const before = tf.memory().numTensors;
    await runAttack('pgd', onnx, pts.images, pts.labels, { kind: 'untargeted' }, { steps: 5 });
    await runAttack('cw-l2', onnx, pts.images, pts.labels, { kind: 'untargeted' }, { binarySearchSteps: 1, maxIterations: 5 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
