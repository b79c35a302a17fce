import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import {
  ALPHA_SCHEDULE, SpeechModel, audioAttack, maskingThreshold, maskingViolation, nextAlpha, psychoConfig, readWav,
  resample, resolveImperceptibleOptions, write16, type AudioAttackResult, type ImperceptibleRow,
} from '../../../src-main/engine/audio';
import { audioAttackParams } from '../../../src-main/api/jobs';
import { CancelledError } from '../../../src-main/engine/errors';
import { SessionStore } from '../../../src-main/engine/sessions';
import { audioAttackJob } from '../../../src-main/jobs/kinds/audio';
import type { JobEnv } from '../../../src-main/jobs/types';
import type { BackendInfo } from '../../../src-main/engine/backend';
import { DATA } from '../helpers';
import { TINY_WORDS, tinySpeechModel } from './tiny-speech';

const WORDS = TINY_WORDS;
let model: SpeechModel;
let clips: Float32Array[];
let backend: BackendInfo;

/** A tiny speech model over-fitted on three recordings until it transcribes them exactly (tiny-speech.ts). */
beforeAll(async () => {
  backend = await initBackend('wasm');
  ({ model, clips } = await tinySpeechModel());
  expect(await model.transcribeBatch(clips)).toEqual(WORDS);
});

afterAll(() => model?.dispose());

describe('the alpha schedule (reference and ART)', () => {
  it('x1.2 on success every 20 iterations, x0.8 on failure every 50, floor alpha0 / 100', () => {
    expect(nextAlpha(0.05, 20, true, 0.05)).toBeCloseTo(0.06, 12);
    expect(nextAlpha(0.05, 100, true, 0.05)).toBeCloseTo(0.06, 12);
    expect(nextAlpha(0.05, 30, true, 0.05)).toBe(0.05);
    expect(nextAlpha(0.05, 50, true, 0.05)).toBe(0.05);
    expect(nextAlpha(0.05, 50, false, 0.05)).toBeCloseTo(0.04, 12);
    expect(nextAlpha(0.05, 100, false, 0.05)).toBeCloseTo(0.04, 12);
    expect(nextAlpha(0.05, 20, false, 0.05)).toBe(0.05);
    expect(nextAlpha(0.0005, 50, false, 0.05)).toBe(0.0005);
    expect(nextAlpha(0.0006, 50, false, 0.05)).toBe(0.0005);
    expect(ALPHA_SCHEDULE).toMatchObject({ up: 1.2, down: 0.8, upEvery: 20, downEvery: 50 });
    expect(resolveImperceptibleOptions({})).toEqual({ iterations: 300, alpha: 0.05, learningRate: 3e-4 });
    expect(() => resolveImperceptibleOptions({ alpha: 0 })).toThrow(/alpha must be a positive number/);
    expect(() => resolveImperceptibleOptions({ iterations: 1.5 })).toThrow(/iterations/);
  });
});

describe('stage 2 (Qin et al. 2019)', () => {
  it('lowers the masking violation and keeps the exact target transcript, on the stored 16-bit file', async () => {
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const rows: ImperceptibleRow[] = [];
    const r = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 60, stage2: { iterations: 100, learningRate: 1e-3 } }, ctx, { onStage2Row: (row) => void rows.push(row) });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.success).toBe(true);
    const s = r.stage2!;
    expect(s).not.toBeNull();
    expect(s.transcript).toBe('three');
    expect((await model.transcribe(readWav(write16(s.adversarial, 8000)).samples, 8000)).text).toBe('three');
    // Stage 1's result stays as it was; stage 2 starts from it and ends below its violation.
    expect(r.transcriptAfter).toBe('three');
    const mt = maskingThreshold(r.original, psychoConfig(8000));
    const v1 = maskingViolation(r.perturbation, mt);
    expect(s.violationBefore.loss).toBeCloseTo(v1.loss, 6);
    expect(s.improved).toBe(true);
    expect(s.violationAfter.loss).toBeLessThan(0.9 * s.violationBefore.loss);
    expect(maskingViolation(s.perturbation, mt).loss).toBeCloseTo(s.violationAfter.loss, 6);
    // Inside stage 1's bound (up to 16-bit rounding).
    expect(s.linf).toBeLessThanOrEqual(r.linf + 1 / 32768 + 1e-9);
    // Rows at the schedule's checks (every 20 and every 50) and the last iteration; alpha follows the schedule.
    expect(rows.map((x) => x.iteration)).toEqual([20, 40, 50, 60, 80, 100]);
    expect(rows).toEqual(s.history);
    let alpha = 0.05;
    for (const row of rows) {
      alpha = nextAlpha(alpha, row.iteration, row.success === 1, 0.05);
      expect(row.alpha).toBeCloseTo(alpha, 12);
    }
    expect(s.alpha).toBeCloseTo(alpha, 12);
    // Progress runs over both stages and never goes back.
    const steps = ctx.events.map((e) => e.step!);
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]);
    expect(ctx.events.at(-1)).toMatchObject({ step: 160, total: 160 });
    expect(ctx.events.at(-1)!.phase).toMatch(/stage 2/);
  });

  it('on a clip at another rate, optimises at the model rate and measures the stored clip at its own rate', async () => {
    const x16 = resample(clips[0], 8000, 16000);
    const r = await audioAttack(model, { samples: x16, sampleRate: 16000 }, { target: 'three', iterations: 60, stopAtFirstSuccess: true, stage2: { iterations: 20, learningRate: 1e-3 } });
    const s = r.stage2!;
    expect(s.adversarial.length).toBe(x16.length);
    expect(s.threshold.config).toEqual({ sampleRate: 16000, windowSize: 2048, hop: 512 });
    expect(s.transcript).toBe('three');
    expect((await model.transcribe(s.adversarial, 16000)).text).toBe('three');
    const mt = maskingThreshold(r.original, psychoConfig(16000));
    expect(maskingViolation(s.perturbation, mt).loss).toBeCloseTo(s.violationAfter.loss, 6);
    expect(s.violationAfter.loss).toBeLessThanOrEqual(s.violationBefore.loss);
  });

  it('refuses stage 2 for the untargeted attack, and skips it when stage 1 fails', async () => {
    await expect(audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: null, stage2: {} })).rejects.toThrow(/needs a target phrase/);
    const r = await audioAttack(model, { samples: clips[0], sampleRate: 8000 }, { target: 'three', iterations: 1, stage2: {} });
    expect(r.success).toBe(false);
    expect(r.stage2).toBeNull();
  });

  it('stops within a step when cancelled during stage 2 and carries the best example so far', async () => {
    const ctx = new LocalContext();
    const before = tf.memory().numTensors;
    const err = await audioAttack(model, { samples: clips[2], sampleRate: 8000 }, { target: 'two', iterations: 60, stage2: { iterations: 500 } }, ctx, { onStage2Row: () => ctx.cancel() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as AudioAttackResult;
    expect(r.stage2).not.toBeNull();
    expect(r.stage2!.iterations).toBe(20);
    expect(r.stage2!.transcript).toBe('two');
    expect(r.stage2!.adversarial.length).toBe(clips[2].length);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('stage 2 in the audio-attack job and the CLI', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'advlab-psy-'));
    await model.save(join(root, 'model'), { dataset: 'fsdd (three clips)' });
    await writeFile(join(root, 'one.wav'), write16(clips[0], 8000));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('takes strict stage-2 params with defaults from one place', () => {
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav' }).stage2).toBeNull();
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav', stage2: {} }).stage2).toEqual(resolveImperceptibleOptions({}));
    expect(() => audioAttackParams.parse({ model: 'm', wav: 'x.wav', stage2: { alhpa: 1 } })).toThrow(/Unrecognized key.*alhpa/);
    expect(() => audioAttackParams.parse({ model: 'm', wav: 'x.wav', stage2: { alpha: -1 } })).toThrow();
  });

  it('writes both stages\' clips, the per-frame masking analysis, stage2.jsonl and the summary', async () => {
    const env: JobEnv = { backend, dataDirs: [DATA], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
    await expect(audioAttackJob({ model: join(root, 'model'), wav: join(root, 'one.wav'), target: null, stage2: {} }, new LocalContext(), env)).rejects.toThrow(/needs a target phrase/);
    const r = (await audioAttackJob({ model: join(root, 'model'), wav: join(root, 'one.wav'), target: 'three', iterations: 60, stage2: { iterations: 40, learningRate: 1e-3 } }, new LocalContext(), env)) as Record<string, unknown>;
    const store = new SessionStore(env.sessionsRoot);
    const m = await store.manifest(r.session as string);
    expect(m.summary).toMatchObject({ success: true, transcriptAfter: 'three', stage2: true, transcriptStage2: 'three', stage2Iterations: 40 });
    for (const k of ['dbx', 'dbxStage2', 'violationStage1', 'violationStage2', 'violationDbStage1', 'violationDbStage2', 'stage2Seconds']) expect(m.summary[k]).toEqual(expect.any(Number));
    expect(m.summary.violationStage2 as number).toBeLessThanOrEqual(m.summary.violationStage1 as number);
    const art = join(store.dir(r.session as string), 'artifacts');
    const one = readWav(await readFile(join(art, 'adversarial.wav')));
    const two = readWav(await readFile(join(art, 'adversarial-stage2.wav')));
    const orig = readWav(await readFile(join(art, 'original.wav')));
    expect(two.samples.length).toBe(orig.samples.length);
    expect((await model.transcribe(two.samples, 8000)).text).toBe('three');
    expect((await model.transcribe(one.samples, 8000)).text).toBe('three');
    const mt = maskingThreshold(orig.samples, psychoConfig(8000));
    expect(maskingViolation(two.samples.map((v, i) => v - orig.samples[i]), mt).loss).toBeCloseTo(m.summary.violationStage2 as number, 6);
    const masking = JSON.parse(await readFile(join(art, 'masking.json'), 'utf8')) as { freqs: number[]; windowSize: number; frames: { threshold: (number | null)[]; clip: number[]; stage1: number[]; stage2: number[] }[] };
    expect(masking.windowSize).toBe(1024);
    expect(masking.freqs.length).toBe(513);
    expect(masking.frames.length).toBe(mt.frames);
    for (const f of masking.frames) for (const k of ['threshold', 'clip', 'stage1', 'stage2'] as const) expect(f[k].length).toBe(513);
    const rows = (await readFile(join(store.dir(r.session as string), 'metrics', 'stage2.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(rows.map((x) => x.iteration)).toEqual([20, 40]);
    expect(Object.keys(rows[0]).sort()).toEqual(['alpha', 'ctc', 'dbx', 'iteration', 'loss', 'success', 'violation', 'violationDb']);
  });

  it('advlab audio attack --stage2 reports both stages in its JSON; stage-2 flags need --stage2', () => {
    const bin = resolve(import.meta.dirname, '../../../bin/advlab.mjs');
    const run = (args: string[]) => {
      const p = spawnSync(process.execPath, [bin, 'audio', 'attack', '--model', join(root, 'model'), '--wav', join(root, 'one.wav'), '--sessions', join(root, 'cli-sessions'), '--json', ...args], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, ADVLAB_DATA: DATA } });
      return { status: p.status, json: JSON.parse(p.stdout.trim().split('\n').at(-1) ?? 'null') as Record<string, unknown> };
    };
    const lone = run(['--target', 'three', '--alpha', '0.1']);
    expect(lone.status).toBe(2);
    expect(lone.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/add --stage2/) } });
    const ok = run(['--target', 'three', '--iterations', '60', '--stage2', '--stage2-iterations', '20', '--stage2-lr', '0.001']);
    expect(ok.status).toBe(0);
    expect(ok.json).toMatchObject({ success: true, transcriptAfter: 'three', stage2: { transcript: 'three', iterations: 20 } });
    const s2 = ok.json.stage2 as Record<string, number>;
    expect(s2.violationAfter).toBeLessThanOrEqual(s2.violationBefore);
    expect(typeof s2.dbx).toBe('number');
  });
});
