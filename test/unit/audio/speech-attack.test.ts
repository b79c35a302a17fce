import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import {
  SpeechModel, audioAttack, audiblePerturbation, dbx, normalizeTarget, readWav, resample, validateTarget, write16,
  type AudioAttackResult, type AudioAttackRow,
} from '../../../src-main/engine/audio';
import { CancelledError } from '../../../src-main/engine/errors';
import { TINY_WORDS, tinySpeechModel } from './tiny-speech';

const WORDS = TINY_WORDS;
let model: SpeechModel;
let clips: Float32Array[];
const LSB = 1 / 32768;

/**
 * A tiny speech model over-fitted on three recordings ("one", "two", "three" by one speaker) until
 * it transcribes all three exactly: a real, if tiny, speech-to-text model to attack.
 */
beforeAll(async () => {
  await initBackend('wasm');
  ({ model, clips } = await tinySpeechModel());
  expect(await model.transcribeBatch(clips)).toEqual(WORDS);
});

afterAll(() => model?.dispose());

describe('audioAttack (Carlini & Wagner 2018)', () => {
  it('makes "one" transcribe as "three" inside the Linf bound, and the stored 16-bit file says so too', async () => {
    const before = tf.memory().numTensors;
    const rows: AudioAttackRow[] = [];
    const ctx = new LocalContext();
    const r = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'Three', iterations: 150, tau0: 0.05 }, ctx, { onRow: (row) => void rows.push(row) });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.mode).toBe('targeted');
    expect(r.target).toBe('three');
    expect(r.transcriptBefore).toBe('one');
    expect(r.success).toBe(true);
    expect(r.transcriptAfter).toBe('three');
    // The bound is respected after 16-bit rounding (at most half a step over).
    expect(r.linf).toBeLessThanOrEqual(0.05 + LSB);
    expect(r.dbx).not.toBeNull();
    expect(Number.isFinite(r.dbx!)).toBe(true);
    expect(r.dbx!).toBeLessThan(-10);
    // dB_x is measured on the stored audio: adversarial - original, both 16-bit.
    const stored = readWav(write16(r.adversarial, 8000)).samples;
    expect(stored.length).toBe(r.adversarial.length);
    expect(stored.every((v, i) => v === r.adversarial[i])).toBe(true);
    expect(r.dbx).toBeCloseTo(dbx(stored.map((v, i) => v - r.original[i]), r.original), 6);
    expect((await model.transcribe(stored, 8000)).text).toBe('three');
    // A row every 10 iterations, tau never grows and shrank after the first success.
    expect(rows.map((x) => x.iteration)).toEqual(Array.from({ length: rows.length }, (_, i) => 10 * (i + 1)));
    expect(rows).toEqual(r.history);
    for (let i = 1; i < rows.length; i++) expect(rows[i].tau).toBeLessThanOrEqual(rows[i - 1].tau);
    expect(rows.at(-1)!.tau).toBeLessThan(0.05);
    expect(r.successes).toBeGreaterThanOrEqual(1);
    // The progress reports the perturbation's level: a finite dB_x, below the clip's.
    expect(ctx.events.at(-1)!.metrics!.dbx).toSatisfy((v: unknown) => typeof v === 'number' && Number.isFinite(v) && v < 0);
  });

  it('changes the transcript in untargeted mode', async () => {
    const r = await audioAttack(model, { samples: clips[1], sampleRate: 8000 }, { target: null, iterations: 60 });
    expect(r.mode).toBe('untargeted');
    expect(r.transcriptBefore).toBe('two');
    expect(r.success).toBe(true);
    expect(r.transcriptAfter).not.toBe('two');
    expect(r.linf).toBeLessThanOrEqual(0.05 + LSB);
  });

  it('attacks a clip at another sample rate and stores it at that rate', async () => {
    const x16 = resample(clips[0], 8000, 16000);
    const r = await audioAttack(model, { samples: x16, sampleRate: 16000 }, { target: 'three', iterations: 60, stopAtFirstSuccess: true });
    expect(r.sampleRate).toBe(16000);
    expect(r.adversarial.length).toBe(x16.length);
    expect(r.transcriptBefore).toBe('one');
    // Success is judged on the stored 16 kHz audio, resampled by the model's own pipeline.
    expect(r.success).toBe(true);
    expect(r.transcriptAfter).toBe('three');
    expect((await model.transcribe(r.adversarial, 16000)).text).toBe('three');
    // The resampled perturbation is clipped to the bound too (a sinc interpolation can overshoot).
    expect(r.linf).toBeLessThanOrEqual(0.05 + LSB);
  });

  it('refuses targets outside the alphabet or too long for the clip, clearly', async () => {
    expect(normalizeTarget('  Open   the Door ')).toBe('open the door');
    expect(() => validateTarget(model, 'héllo', clips[0].length)).toThrow(/character "é" at position 1 is not in the alphabet/);
    expect(() => validateTarget(model, 'open the door!', clips[0].length)).toThrow(/"!"/);
    expect(() => validateTarget(model, 'a'.repeat(100), clips[0].length)).toThrow(/too long for this clip: it needs at least 199 output frames .* gives 28/);
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'ok google?' })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(audioAttack(model, { samples: new Float32Array(4000), sampleRate: 8000 }, { target: 'one' })).rejects.toThrow(/silent/);
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'one', tau0: 2 })).rejects.toThrow(/tau0 must be in \(0, 1\]/);
  });

  it('stops at the next iteration when cancelled and throws CancelledError carrying what it has', async () => {
    const ctx = new LocalContext();
    const before = tf.memory().numTensors;
    const err = await audioAttack(model, { samples: clips[2], sampleRate: 8000 }, { target: 'two', iterations: 500 }, ctx, { onRow: () => ctx.cancel() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as AudioAttackResult;
    expect(r.iterations).toBe(10);
    expect(r.adversarial.length).toBe(clips[2].length);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('scales the perturbation to a 0.9 full-scale peak for listening', () => {
    const p = Float32Array.from([0, 0.01, -0.02, 0.005]);
    const a = audiblePerturbation(p);
    expect(a.gain).toBeCloseTo(45, 4);
    expect(Math.max(...a.samples.map(Math.abs))).toBeCloseTo(0.9, 6);
    expect(audiblePerturbation(new Float32Array(3)).gain).toBe(1);
  });
});
