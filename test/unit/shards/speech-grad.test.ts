/**
 * Data-parallel speech training (engine/shards/speech-grad.ts): one step's gradient from 2 (or 4)
 * shards equals the whole batch's within 1e-5 for every weight (the CTC loss too), whatever the
 * number of workers (the split is by batch size); the worker's network leaks nothing.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { ctcLoss } from '../../../src-main/engine/audio/ctc';
import { stackSignals } from '../../../src-main/engine/audio/frontend';
import { SpeechModel } from '../../../src-main/engine/audio/model';
import { clipByGlobalNorm } from '../../../src-main/engine/audio/train';
import { InlineShardExecutor } from '../../../src-main/engine/shards/inline';
import { clearSpeechGradModel, shardedSpeechGrads, speechShardSizes } from '../../../src-main/engine/shards/speech-grad';

let net: SpeechModel;
beforeAll(async () => {
  await initBackend('wasm');
  net = SpeechModel.create('speech-small', { seed: 3 });
});
afterAll(() => {
  net?.dispose();
  clearSpeechGradModel();
});

/** A batch of `b` noisy "utterances" of different lengths with short transcripts, as train.ts prepares one. */
function batch(b: number) {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const signals = Array.from({ length: b }, (_, i) => Float32Array.from({ length: net.sampleRate * (0.4 + 0.05 * (i % 5)) }, () => 0.3 * rnd()));
  const labels = Array.from({ length: b }, (_, i) => net.alphabet.encode(['one', 'two', 'six', 'zero'][i % 4]));
  const { batch: x, lengths } = stackSignals(signals, net.frontend.config.frameLength);
  const frames = lengths.map((n) => net.frameCount(n));
  const outLengths = net.outputLengths(lengths);
  const feats = net.frontend.features(x, lengths);
  x.dispose();
  return { feats, frames, outLengths, labels };
}

describe('speech-grad shards', () => {
  it('splits by the batch size alone: 1, 2 or 4 contiguous shards of at least 8 utterances', () => {
    expect(speechShardSizes(15)).toEqual([15]);
    expect(speechShardSizes(16)).toEqual([8, 8]);
    expect(speechShardSizes(33)).toEqual([9, 8, 8, 8]);
  });

  it('one step on 2 and on 4 shards: the whole batch\'s CTC loss and gradient (1e-5 relative) and, after clipping and Adam, its weights within 1e-5; 3 workers = 2 bit for bit; no leak', async () => {
    for (const b of [16, 32]) {
      const { feats, frames, outLengths, labels } = batch(b);
      const vars = net.network.trainableWeights.map((w) => w.read() as tf.Variable);
      const whole = tf.variableGrads(() => ctcLoss(net.logitsFromFeatures(feats, frames, true), labels, { inputLengths: outLengths, reduction: 'mean' }) as tf.Scalar, vars);
      const ctx = new LocalContext();
      const sizes = speechShardSizes(b);
      expect(sizes).toHaveLength(b === 16 ? 2 : 4);
      const split = await shardedSpeechGrads(new InlineShardExecutor(ctx, 2), net, feats, frames, outLengths, labels, 1, sizes);
      // The loss is a sum over frames (tens): equal to float32 precision, 1e-5 relative.
      const wl = whole.value.dataSync()[0];
      expect(Math.abs(split.cost.dataSync()[0] - wl)).toBeLessThan(1e-5 * Math.max(1, Math.abs(wl)));
      // Gradients: CTC's reach hundreds on an untrained network, so float32 summation order shows at 2^-16;
      // equal within 1e-5 relative to their size.
      let worst = 0;
      for (const v of vars) {
        const a = whole.grads[v.name].dataSync(), c = split.grads[v.name].dataSync();
        expect(c.length).toBe(a.length);
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - c[i]) / Math.max(1, Math.abs(a[i])));
      }
      expect(worst).toBeLessThan(1e-5);
      // The step itself (train.ts: clip by global norm, then Adam) on two copies of the network: weights within 1e-5.
      const stepped = [whole.grads, split.grads].map((g) => {
        const copy = SpeechModel.create('speech-small', { seed: 3 });
        try {
          const cv = copy.network.trainableWeights.map((w) => w.read() as tf.Variable);
          const named: tf.NamedTensorMap = {};
          vars.forEach((v, j) => (named[cv[j].name] = g[v.name]));
          const clipped = clipByGlobalNorm(named, 5);
          const opt = tf.train.adam(0.001);
          opt.applyGradients(Object.entries(clipped).map(([name, tensor]) => ({ name, tensor })));
          tf.dispose(Object.values(clipped));
          opt.dispose();
          return cv.map((w) => Array.from(w.dataSync()));
        } finally {
          copy.dispose();
        }
      });
      let worstWeight = 0;
      stepped[0].forEach((w, j) => w.forEach((x, i) => (worstWeight = Math.max(worstWeight, Math.abs(x - stepped[1][j][i])))));
      expect(worstWeight).toBeLessThan(1e-5);
      tf.dispose([split.cost, ...Object.values(split.grads)]);
      // Only the worker's cached network remains (built once, weights in place): nothing per step.
      const again = await shardedSpeechGrads(new InlineShardExecutor(ctx, 2), net, feats, frames, outLengths, labels, 2, sizes);
      tf.dispose([again.cost, ...Object.values(again.grads)]);
      // 3 workers: the same shards and the same numbers as 2 (the split is by batch size).
      const settled = tf.memory().numTensors;
      const third = await shardedSpeechGrads(new InlineShardExecutor(ctx, 3), net, feats, frames, outLengths, labels, 3, sizes);
      // 3 workers: the same shards, the same numbers as 2 (the split is by batch size).
      tf.dispose([third.cost]);
      const thirdGrads = vars.map((v) => Array.from(third.grads[v.name].dataSync()));
      tf.dispose(Object.values(third.grads));
      const again2 = await shardedSpeechGrads(new InlineShardExecutor(ctx, 2), net, feats, frames, outLengths, labels, 3, sizes);
      expect(vars.map((v) => Array.from(again2.grads[v.name].dataSync()))).toEqual(thirdGrads);
      tf.dispose([again2.cost, ...Object.values(again2.grads)]);
      expect(tf.memory().numTensors).toBe(settled);
      tf.dispose([feats, whole.value, ...Object.values(whole.grads)]);
    }
  }, 120_000);
});
