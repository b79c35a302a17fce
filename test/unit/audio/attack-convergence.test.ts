/**
 * Properties of the audio attack's loop (Carlini & Wagner 2018) that the convergence work relies on:
 * success is judged on the stored 16-bit samples, the Linf bound tau never goes up and shrinks by
 * tauDecay on each success, dB_x is the 16-bit perturbation's; and the per-frame alignment loss
 * (C&W 2018 Section 4.2, `alignmentMargin`) with its best-alignment search.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { SpeechModel, audioAttack, dbx, quantize16, type AudioAttackRow } from '../../../src-main/engine/audio';
import { bestAlignment } from '../../../src-main/engine/audio/attack';
import { tinySpeechModel } from './tiny-speech';

let model: SpeechModel;
let clips: Float32Array[];

beforeAll(async () => {
  await initBackend('wasm');
  ({ model, clips } = await tinySpeechModel());
});

afterAll(() => model?.dispose());

/** Collapse repeats, drop blanks. */
function collapse(path: ArrayLike<number>, blank: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < path.length; t++) if (path[t] !== blank && (t === 0 || path[t] !== path[t - 1])) out.push(path[t]);
  return out;
}

describe('bestAlignment (Viterbi over the CTC states)', () => {
  it('returns a path whose greedy decoding is exactly the labels, with a blank between repeats, and the most probable one', () => {
    const C = 4, blank = 3;
    for (let seed = 1; seed <= 30; seed++) {
      let r = seed;
      const rnd = () => ((r = (r * 16807) % 2147483647) / 2147483647);
      const T = 6 + Math.floor(rnd() * 6);
      const labels = [1, 1, 2].slice(0, 1 + Math.floor(rnd() * 3)); // includes a repeat
      const logp = Float32Array.from({ length: T * C }, () => Math.log(0.05 + rnd()));
      const path = bestAlignment(logp, T, C, labels, blank);
      expect(collapse(path, blank)).toEqual(labels);
      // No other valid path scores higher (brute force over all C^T paths is too many; compare with
      // every path that differs in one frame and still decodes to the labels).
      const score = (p: ArrayLike<number>) => Array.from(p).reduce((a, k, t) => a + logp[t * C + k], 0);
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < C; k++) {
          const q = Int32Array.from(path);
          q[t] = k;
          if (JSON.stringify(collapse(q, blank)) === JSON.stringify(labels)) expect(score(q)).toBeLessThanOrEqual(score(path) + 1e-9);
        }
      }
    }
  });

  it('puts the blank between repeated letters when the model prefers the letter everywhere', () => {
    // Three frames all voting for class 0 ("z"): the only alignment of "zz" is z, blank, z.
    const logp = Float32Array.from([0, -9, -9, -3, 0, -9, -9, -3, 0, -9, -9, -3]);
    expect(Array.from(bestAlignment(logp, 3, 4, [0, 0], 3))).toEqual([0, 3, 0]);
  });
});

describe('the attack loop', () => {
  for (const alignmentMargin of [null, 1] as const) {
    it(`judges success on the stored 16-bit samples, never raises tau and shrinks it by tauDecay on success (alignmentMargin ${alignmentMargin})`, async () => {
      const before = tf.memory().numTensors;
      const rows: AudioAttackRow[] = [];
      const r = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 120, alignmentMargin }, undefined, { onRow: (row) => void rows.push(row) });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.success).toBe(true);
      // Stored samples: every value a 16-bit step, and they transcribe as the target.
      expect(r.adversarial.every((v, i) => v === quantize16(r.adversarial)[i])).toBe(true);
      expect((await model.transcribe(r.adversarial, 8000)).text).toBe('three');
      // dB_x of the 16-bit perturbation against the 16-bit original.
      expect(r.dbx).toBeCloseTo(dbx(r.adversarial.map((v, i) => v - r.original[i]), r.original), 9);
      // tau: never up; after each check whose candidate reached the target it is at most 0.8 of before.
      let tau = 0.05;
      let successes = 0;
      for (const row of rows) {
        expect(row.tau).toBeLessThanOrEqual(tau);
        if (row.tau < tau) {
          successes++;
          expect(row.tau).toBeLessThanOrEqual(0.8 * tau + 1e-12);
        }
        tau = row.tau;
      }
      expect(successes).toBe(r.successes);
      expect(r.firstSuccessIteration).not.toBeNull();
      expect(r.firstSuccessIteration!).toBeLessThanOrEqual(r.successIteration!);
      expect(rows.find((x) => x.tau < 0.05)!.iteration).toBe(r.firstSuccessIteration);
    });
  }

  it('says why it stopped: the whole budget (reached or not), or the first success when asked', async () => {
    const spent = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 120 });
    expect(spent).toMatchObject({ stopReason: 'budget', iterations: 120, success: true });
    const first = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 120, stopAtFirstSuccess: true });
    expect(first).toMatchObject({ stopReason: 'first-success', success: true });
    expect(first.iterations).toBe(first.firstSuccessIteration);
    const missed = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'two', iterations: 10, learningRate: 1e-6 });
    expect(missed).toMatchObject({ stopReason: 'budget', iterations: 10, success: false });
  });

  it('with patience P, ends P checks after the last success that found none (settled), keeping that success; never before a first success', async () => {
    const rows: AudioAttackRow[] = [];
    const full = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 200 }, undefined, { onRow: (row) => void rows.push(row) });
    // The same run (same seed) stopped at the first gap of 2 checks without a success after one.
    const succ = rows.filter((row, i) => row.tau < (i ? rows[i - 1].tau : 0.05)).map((row) => row.iteration);
    const gap = succ.findIndex((it, i) => (succ[i + 1] ?? Infinity) - it > 20);
    const settled = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 200, patience: 2 });
    if (succ[gap] + 20 <= 200) {
      expect(settled).toMatchObject({ stopReason: 'settled', iterations: succ[gap] + 20, successes: gap + 1 });
      expect(settled.successIteration).toBe(succ[gap]);
    } else {
      expect(settled).toMatchObject({ stopReason: 'budget', iterations: 200, dbx: full.dbx });
    }
    const missed = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'two', iterations: 40, learningRate: 1e-6, patience: 1 });
    expect(missed).toMatchObject({ stopReason: 'budget', iterations: 40, success: false });
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', patience: 0 })).rejects.toThrow(/patience must be a positive integer/);
  });

  it('refuses a bad margin or one without a target', async () => {
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', alignmentMargin: -1 })).rejects.toThrow(/alignmentMargin must be a non-negative number/);
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: null, alignmentMargin: 1 })).rejects.toThrow(/alignment loss needs a target/);
  });
});
