import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { AudioFrontend, ctcLoss, DEFAULT_ALPHABET, mulberry32, stackSignals, textToLabels } from '../../../src-main/engine/audio';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A tiny conv1d speech model on log-mel [F, 40]: stride 2, so T = ceil(F / 2) output frames. */
function tinyModel(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv1d({ inputShape: [null, 40], filters: 16, kernelSize: 5, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.conv1d({ filters: DEFAULT_ALPHABET.size, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

function noise(n: number, seed: number, amp = 0.1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => amp * (r() - 0.5));
}

describe('front end + conv1d model + CTC, end to end on wasm', () => {
  it('trains the model with CTC (the loss falls) and keeps the tensor count flat', async () => {
    const fe = new AudioFrontend({ normalize: 'meanvar' });
    const model = tinyModel();
    const { batch, lengths } = stackSignals([noise(2400, 1), noise(1800, 2)]);
    const feats = fe.features(batch, lengths);
    const outLengths = lengths.map((n) => Math.ceil(fe.frameCount(n) / 2));
    const labels = [textToLabels('one'), textToLabels('two')];
    const opt = tf.train.adam(0.01);
    const step = () => opt.minimize(() => ctcLoss(model.apply(feats) as tf.Tensor3D, labels, { inputLengths: outLengths, reduction: 'mean' }) as tf.Scalar, true)!;
    const first = step();
    const l0 = first.dataSync()[0];
    first.dispose();
    const before = tf.memory().numTensors;
    let last = l0;
    for (let i = 0; i < 15; i++) {
      const l = step();
      last = l.dataSync()[0];
      l.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(last).toBeLessThan(0.8 * l0);
    tf.dispose([batch, feats]);
    fe.dispose();
    opt.dispose();
  });

  it('gives the attack gradient of |delta|^2 + c * CTC(f(x + delta), target) w.r.t. delta', () => {
    const fe = new AudioFrontend();
    const model = tinyModel();
    const x = tf.tensor2d(noise(2000, 3), [1, 2000]);
    const delta = tf.variable(tf.zeros([1, 2000]));
    const target = [textToLabels('hi')];
    const T = Math.ceil(fe.frameCount(2000) / 2);
    const loss = () => tf.tidy(() => {
      const logits = model.apply(fe.features(tf.add(x, delta) as tf.Tensor2D)) as tf.Tensor3D;
      return tf.add(tf.sum(tf.square(delta)), tf.mul(10, ctcLoss(logits, target, { inputLengths: [T], reduction: 'sum' }))) as tf.Scalar;
    });
    const { value, grads } = tf.variableGrads(loss, [delta]);
    const g = grads[delta.name].dataSync() as Float32Array;
    expect(g.every(Number.isFinite)).toBe(true);
    expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(0);
    tf.dispose([value, grads[delta.name]]);
    // A few Adam steps on delta alone lower the objective.
    const opt = tf.train.adam(0.002);
    const l0 = loss().dataSync()[0];
    for (let i = 0; i < 10; i++) tf.dispose(opt.minimize(loss, true, [delta]) ?? []);
    expect(loss().dataSync()[0]).toBeLessThan(l0);
    tf.dispose([x, delta]);
    fe.dispose();
    opt.dispose();
  });
});
