import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { SpeechModel, audioAttack, ctcLoss, quantize16, recheckSaved, write16 } from '../../../src-main/engine/audio';
import { TINY_WORDS as WORDS, tinySpeechModel } from './tiny-speech';

const LSB = 1 / 32768;
let model: SpeechModel;
let clips: Float32Array[];
let dir: string;
let modelJson: string;

/** The tiny over-fitted model (tiny-speech.ts), saved to a file. */
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-survival-'));
  ({ model, clips } = await tinySpeechModel());
  expect(await model.transcribeBatch(clips)).toEqual(WORDS);
  modelJson = (await model.save(join(dir, 'model'))).modelJson;
}, 120_000);

afterAll(() => {
  model?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('survival re-check (file read back, model loaded afresh)', () => {
  it('an attack rendered at 16 bits survives: the second copy says the target', async () => {
    const r = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 150, stopAtFirstSuccess: true });
    expect(r.success).toBe(true);
    const file = join(dir, 'adv.wav');
    writeFileSync(file, write16(r.adversarial, 8000));
    const before = tf.memory().numTensors;
    const check = await recheckSaved(file, modelJson, r.transcriptAfter);
    expect(tf.memory().numTensors).toBe(before); // the fresh instance is disposed
    expect(check).toMatchObject({ survived: true, inMemory: 'three', secondCopy: 'three', modelFile: modelJson });
    expect(check.fileSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a perturbation finer than one 16-bit step works in memory and does not survive the file', async () => {
    // In memory: a quiet recording (the clip at a 100-LSB peak, on the 16-bit grid) plus a float
    // perturbation bounded by 0.45 LSB, pushed towards "three" by signed-gradient steps. Written as
    // 16-bit, every sample rounds back to the clip's own, so the second copy hears the original.
    let peak = 0;
    for (const v of clips[0]) peak = Math.max(peak, Math.abs(v));
    const x = quantize16(clips[0].map((v) => (v * 100 * LSB) / peak));
    const n = x.length;
    const original = (await model.transcribe(x, 8000)).text;
    const xt = tf.tensor2d(x, [1, n]);
    const delta = tf.variable(tf.zeros([1, n]));
    const labels = [model.alphabet.encode('three')];
    const T = [model.outputFrames(n)];
    const bound = 0.45 * LSB;
    const g = tf.grad((d: tf.Tensor) => ctcLoss(model.logits(tf.add(xt, d) as tf.Tensor2D), labels, { inputLengths: T, reduction: 'sum' }));
    let inMemory = '';
    for (let step = 1; step <= 300; step++) {
      tf.tidy(() => delta.assign(tf.clipByValue(tf.sub(delta, tf.mul(tf.sign(g(delta)), bound / 4)), -bound, bound)));
      if (step % 20 === 0) {
        const adv = (await tf.add(xt, delta).data()) as Float32Array;
        inMemory = (await model.transcribe(adv, 8000)).text;
        if (inMemory !== original) break;
      }
    }
    const adv = (await tf.add(xt, delta).data()) as Float32Array;
    tf.dispose([xt, delta]);
    expect(inMemory).not.toBe(original);
    expect((await model.transcribe(adv, 8000)).text).toBe(inMemory);
    const file = join(dir, 'float-only.wav');
    writeFileSync(file, write16(adv, 8000));
    const check = await recheckSaved(file, modelJson, inMemory);
    expect(check.survived).toBe(false);
    expect(check.secondCopy).toBe(original);
    expect(check.inMemory).toBe(inMemory);
  }, 120_000);
});
