import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import {
  SPEED_OF_SOUND, SpeechModel, applyKernel, applyTransform, directDistance, imageSourceRir, linearKernel, randomRir, resampleRoundTrip,
  robustAudioAttack, roundTripKernel, sabineT60, transformBatch, transformSets, resolveEotOptions, type ShoeboxRoom,
} from '../../../src-main/engine/audio';
import { tinySpeechModel } from './tiny-speech';

const room: ShoeboxRoom = { size: [5, 4, 3], source: [1, 1, 1.5], mic: [3.2, 2.1, 1.2], absorption: 0.4 };
const energy = (h: Float32Array, a: number, b: number) => h.subarray(a, b).reduce((s, v) => s + v * v, 0);

describe('image-source room impulse responses (Allen & Berkley 1979)', () => {
  it('the direct path arrives at distance / c with amplitude 1 / (4 pi d), nothing before it', () => {
    const fs = 16000;
    const h = imageSourceRir(room, { sampleRate: fs, seconds: 0.2 });
    const d = directDistance(room);
    const t = (d / SPEED_OF_SOUND) * fs;
    let peak = 0;
    for (let i = 1; i < h.length; i++) if (Math.abs(h[i]) > Math.abs(h[peak])) peak = i;
    expect(peak).toBe(Math.round(t));
    // Nothing arrives earlier than the direct path's sinc reaches (16 taps).
    expect(Math.max(...h.subarray(0, Math.round(t) - 17).map(Math.abs))).toBe(0);
    // The windowed sinc spreads the direct path's 1 / (4 pi d) over its taps (first reflection is > 16 taps later).
    const firstReflection = Math.hypot(3.2 - 1, 2.1 - 1, 1.2 + 1.5); // floor image
    expect((firstReflection - d) / SPEED_OF_SOUND * fs).toBeGreaterThan(32);
    const sum = h.subarray(Math.round(t) - 16, Math.round(t) + 17).reduce((s, v) => s + v, 0);
    expect(sum).toBeCloseTo(1 / (4 * Math.PI * d), 2);
    // The delay scales with the distance: move the mic 1 m further along x.
    const far = imageSourceRir({ ...room, mic: [4.2, 2.1, 1.2] }, { sampleRate: fs, seconds: 0.2 });
    let peak2 = 0;
    for (let i = 1; i < far.length; i++) if (Math.abs(far[i]) > Math.abs(far[peak2])) peak2 = i;
    expect(peak2).toBe(Math.round((Math.hypot(3.2, 1.1, 0.2) / SPEED_OF_SOUND) * fs));
  });

  it('energy decays over time, faster with more absorption; Sabine length by default', () => {
    const fs = 8000;
    const h = imageSourceRir(room, { sampleRate: fs, seconds: 0.3 });
    const w = Math.round(0.04 * fs);
    const start = Math.round((directDistance(room) / SPEED_OF_SOUND) * fs) + 17;
    const e = [0, 1, 2, 3].map((k) => energy(h, start + k * w, start + (k + 1) * w));
    for (let k = 1; k < e.length; k++) expect(e[k]).toBeLessThan(e[k - 1]);
    const damped = imageSourceRir({ ...room, absorption: 0.9 }, { sampleRate: fs, seconds: 0.3 });
    const live = imageSourceRir({ ...room, absorption: 0.1 }, { sampleRate: fs, seconds: 0.3 });
    expect(energy(damped, start, h.length)).toBeLessThan(energy(h, start, h.length));
    expect(energy(h, start, h.length)).toBeLessThan(energy(live, start, h.length));
    // Anechoic (alpha close to 1): only the direct path's taps.
    const free = imageSourceRir({ ...room, absorption: 0.999999 }, { sampleRate: fs, seconds: 0.3 });
    expect(energy(free, start, free.length)).toBeLessThan(1e-5 * energy(free, 0, start));
    expect(sabineT60(room)).toBeCloseTo((0.161 * 60) / (0.4 * 2 * (12 + 15 + 20)), 6);
    expect(imageSourceRir(room, { sampleRate: fs, maxSeconds: 10 }).length).toBe(Math.ceil(sabineT60(room) * fs));
  });

  it('random rooms are reproducible by seed, different across seeds, and unit-energy', () => {
    const a = randomRir(7, { sampleRate: 8000, maxSeconds: 0.15 });
    const b = randomRir(7, { sampleRate: 8000, maxSeconds: 0.15 });
    const c = randomRir(8, { sampleRate: 8000, maxSeconds: 0.15 });
    expect(a.room).toEqual(b.room);
    expect([...a.rir]).toEqual([...b.rir]);
    expect(a.room).not.toEqual(c.room);
    expect(energy(a.rir, 0, a.rir.length)).toBeCloseTo(1, 4);
    for (const r of [a.room, c.room]) for (let i = 0; i < 3; i++) expect(r.mic[i]).toBeGreaterThan(0);
  });

  it('refuses a source outside the room', () => {
    expect(() => imageSourceRir({ ...room, source: [6, 1, 1] }, { sampleRate: 8000 })).toThrow(/strictly inside/);
  });
});

describe('transformations (eot.ts)', () => {
  beforeAll(async () => void (await initBackend('wasm')));

  it('the 8k -> 16k -> 8k round trip is exactly its measured kernel', () => {
    const x = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 0.3) * 0.3 + Math.sin(i * 1.7) * 0.2);
    const exact = resampleRoundTrip(x, 8000);
    const k = roundTripKernel(8000);
    const viaKernel = applyKernel(x, k);
    let m = 0;
    for (let i = 100; i < 1900; i++) m = Math.max(m, Math.abs(exact[i] - viaKernel[i]));
    expect(m).toBeLessThan(1e-5);
  });

  it('the differentiable batch equals the exact transformations (before noise and rounding)', () => {
    const o = resolveEotOptions({ snrDb: null, reverbProbability: 1, resampleProbability: 1, maxShiftMs: 20 });
    const sets = transformSets(3, o);
    const x = Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i * 0.05) * Math.exp(-i / 2000) * 0.5);
    const ts = [...sets.step(1), { roomSeed: null, snrDb: null, noiseSeed: 0, shiftSeconds: -0.01, resample: false }, { roomSeed: null, snrDb: null, noiseSeed: 0, shiftSeconds: 0.015, resample: true }];
    const before = tf.memory().numTensors;
    const input = tf.tensor2d(x, [1, x.length]);
    const y = transformBatch(input, ts, 8000, o, x);
    const rows = y.arraySync();
    tf.dispose([input, y]);
    expect(tf.memory().numTensors).toBe(before);
    ts.forEach((t, b) => {
      const viaKernel = applyKernel(x, linearKernel(t, 8000, o));
      const exact = applyTransform(x, t, 8000, o); // + 16-bit rounding
      let mk = 0;
      let me = 0;
      for (let i = 0; i < x.length; i++) {
        mk = Math.max(mk, Math.abs(rows[b][i] - viaKernel[i]));
        if (i > 200 && i < x.length - 200) me = Math.max(me, Math.abs(rows[b][i] - exact[i]));
      }
      expect(mk).toBeLessThan(1e-4);
      expect(me).toBeLessThan(2e-4);
    });
  });

  it('held-out rooms are never in the attack\'s pool; the same seed gives the same sets', () => {
    const o = resolveEotOptions({ rooms: 16, heldOut: 50, reverbProbability: 1 });
    const a = transformSets(5, o);
    const b = transformSets(5, o);
    expect(a).toEqual({ ...b, step: a.step });
    expect(a.step(4)).toEqual(b.step(4));
    for (const t of a.heldOut) expect(a.roomPool).not.toContain(t.roomSeed);
    for (const t of [...a.check, ...a.step(9)]) expect(a.roomPool).toContain(t.roomSeed);
  });
});

describe('robust mode (EOT) vs the plain attack on held-out transformations', () => {
  let model: SpeechModel;
  let clips: Float32Array[];
  beforeAll(async () => {
    await initBackend('wasm');
    ({ model, clips } = await tinySpeechModel());
  }, 120_000);
  afterAll(() => model?.dispose());

  it('succeeds under more held-out transformations than the plain attack', async () => {
    const before = tf.memory().numTensors;
    const r = await robustAudioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 60, seed: 1 },
      { samples: 4, rooms: 8, heldOut: 12, snrDb: 20, rirMaxSeconds: 0.08, checkTransforms: 6 }, true);
    expect(tf.memory().numTensors).toBe(before);
    const held = r.heldOut!;
    expect(r.robust.success).toBe(true);
    expect(r.plain!.success).toBe(true);
    expect(held.robust.trials).toBe(12);
    expect(held.robust.hits).toBeGreaterThan(held.plain!.hits);
    expect(held.robust.successRate).toBeGreaterThanOrEqual(0.5);
    // Both stored clips are judged on the same held-out draws, one transcript per draw.
    expect(held.plain!.transcripts).toHaveLength(12);
    expect(Number.isFinite(r.robust.dbx!) && Number.isFinite(r.plain!.dbx!)).toBe(true);
  }, 300_000);

  it('a cancel during the EOT attack ends within a step and keeps its best so far', async () => {
    const ctx = new LocalContext();
    let rows = 0;
    const before = tf.memory().numTensors;
    const e = await robustAudioAttack(model, { samples: clips[1], sampleRate: 8000 }, { target: 'three', iterations: 1000, seed: 2 }, { samples: 2, rooms: 2, heldOut: 2, checkTransforms: 2 }, true, ctx, {
      onRow: () => void (++rows === 1 && ctx.cancel()),
    }).then(() => null, (err: unknown) => err);
    expect(tf.memory().numTensors).toBe(before);
    expect(e).toBeInstanceOf(CancelledError);
    const partial = (e as CancelledError).partial as { robust: { iterations: number }; plain: unknown; heldOut: unknown };
    expect(partial.robust.iterations).toBeLessThanOrEqual(11);
    expect(partial.plain).toBeNull();
    expect(partial.heldOut).toBeNull();
    const steps = ctx.events.map((p) => p.step / p.total);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]);
  });
});
