import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { SpeechModel, readWavFile, universalPerturbation } from '../../../src-main/engine/audio';
import { DATA } from '../helpers';
import { tinySpeechModel } from './tiny-speech';

let model: SpeechModel;
const clip = async (f: string) => (await readWavFile(join(DATA, 'fsdd', 'recordings', `${f}.wav`))).samples;

beforeAll(async () => {
  await initBackend('wasm');
  ({ model } = await tinySpeechModel());
}, 120_000);
afterAll(() => model?.dispose());

describe('universal perturbation for speech-to-text', () => {
  it('one delta turns held-out clips into the target once its bound is large enough, not at a tiny bound', async () => {
    const train = await Promise.all(['1_george_1', '2_george_1', '1_george_2', '2_george_2', '1_george_3', '2_george_3'].map(clip));
    const heldOut = await Promise.all(['1_george_4', '2_george_4', '1_george_5', '2_george_5'].map(clip));
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const r = await universalPerturbation(model, train, heldOut, { target: 'three', eps: [0.0005, 0.3], iterations: 60, batchSize: 4, learningRate: 0.05, seconds: 0.6, seed: 1, evalEvery: 20 }, ctx);
    expect(tf.memory().numTensors).toBe(before);
    const [tiny, big] = r.points;
    expect(tiny.heldOutSuccess).toBe(0);
    expect(big.heldOutSuccess).toBeGreaterThanOrEqual(0.5);
    expect(big.trainSuccess).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...r.deltas[1].map(Math.abs))).toBeLessThanOrEqual(0.3 + 1 / 32768);
    expect(big.deltaDbfs).toBeLessThanOrEqual(20 * Math.log10(0.3) + 1e-3);
    expect(big.heldOutTranscripts.filter((t) => t === 'three').length).toBe(big.heldOutHits);
    // Progress never goes back.
    const steps = ctx.events.map((e) => e.step / e.total);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]);
  }, 300_000);

  it('a cancel keeps the finished bounds', async () => {
    const x = await clip('1_george_1');
    const ctx = new LocalContext();
    let n = 0;
    const r = universalPerturbation(model, [x], [x], { target: 'three', eps: [0.01, 0.02], iterations: 4, batchSize: 1, learningRate: 0.05, seconds: 0.5, seed: 0, evalEvery: 2 }, ctx, {
      onStep: () => void (++n === 6 && ctx.cancel()),
    });
    const e = await r.then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(CancelledError);
    expect(((e as CancelledError).partial as { points: unknown[] }).points).toHaveLength(1);
  });
});
