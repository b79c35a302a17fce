/**
 * The alignment loss (C&W 2018 Section 4.2, engine/audio/attack.ts `alignmentMargin`) end to end: the
 * audio-attack job's schema (default from AUDIO_ATTACK_DEFAULTS, bounds, robust mode refusing it), the job
 * passing it to the engine and recording it in the session, and `advlab audio attack --alignment-margin`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioAttackParams, audioRobustParams } from '../../../src-main/api/jobs';
import { initBackend, type BackendInfo } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { write16 } from '../../../src-main/engine/audio';
import { AUDIO_ATTACK_DEFAULTS } from '../../../src-main/engine/audio/attack';
import { SessionStore } from '../../../src-main/engine/sessions';
import { audioAttackJob } from '../../../src-main/jobs/kinds/audio';
import type { JobEnv } from '../../../src-main/jobs/types';
import { DATA } from '../helpers';
import { tinySpeechModel } from './tiny-speech';

let dir: string;
let modelDir: string;
let wav: string;
let env: JobEnv;
const opened: string[] = [];

beforeAll(async () => {
  const backend: BackendInfo = await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-align-'));
  const { model, clips } = await tinySpeechModel();
  modelDir = join(dir, 'model');
  await model.save(modelDir);
  model.dispose();
  wav = join(dir, 'one.wav');
  writeFileSync(wav, write16(clips[0], 8000));
  env = { backend, dataDirs: [DATA], sessionsRoot: join(dir, 'sessions'), onSession: (id) => void opened.push(id) };
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const jsonl = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

describe('alignmentMargin in the audio-attack job', () => {
  it('the schema: {} gives the engine default (written once, in AUDIO_ATTACK_DEFAULTS), a non-negative number or null is accepted, anything else refused; robust mode refuses it', () => {
    expect(AUDIO_ATTACK_DEFAULTS.alignmentMargin).toBeNull();
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav' }).alignmentMargin).toBe(AUDIO_ATTACK_DEFAULTS.alignmentMargin);
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav', alignmentMargin: 0.5 }).alignmentMargin).toBe(0.5);
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav', alignmentMargin: 0 }).alignmentMargin).toBe(0);
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav', alignmentMargin: null }).alignmentMargin).toBeNull();
    for (const bad of [-0.1, 101, '0.5', Number.NaN]) expect(audioAttackParams.safeParse({ model: 'm', wav: 'x.wav', alignmentMargin: bad }).success, String(bad)).toBe(false);
    expect(() => audioRobustParams.parse({ model: 'm', wav: 'x.wav', alignmentMargin: 0.5 })).toThrow(/Unrecognized key.*alignmentMargin/);
  });

  it('the job passes it to the engine (the objective changes once the alignment exists) and records it in the session\'s params and summary', async () => {
    const run = async (alignmentMargin?: number) => {
      const r = (await audioAttackJob({ model: modelDir, wav, target: 'three', iterations: 20, seed: 1, engine: 'tfjs', ...(alignmentMargin === undefined ? {} : { alignmentMargin }) }, new LocalContext(), env)) as Record<string, unknown>;
      const store = new SessionStore(env.sessionsRoot);
      const m = await store.manifest(r.session as string);
      return { m, rows: jsonl(join(store.dir(r.session as string), 'metrics', 'attack.jsonl')) };
    };
    const off = await run();
    expect(off.m.params.alignmentMargin).toBeNull();
    expect(off.m.summary.alignmentMargin).toBeNull();
    const on = await run(5);
    expect(on.m.params.alignmentMargin).toBe(5);
    expect(on.m.summary.alignmentMargin).toBe(5);
    // Same seed and noise: the first check (iteration 10) computes the alignment, so the objectives agree up to
    // there and differ after it, by the alignment term (non-negative, and positive with a margin of 5 logits).
    expect(on.rows[0].loss).toBeCloseTo(off.rows[0].loss, 4);
    expect(on.rows[1].loss).toBeGreaterThan(off.rows[1].loss + 1e-3);
  }, 120_000);

  it('an untargeted attack with the alignment loss is refused before a session opens', async () => {
    const count = opened.length;
    await expect(audioAttackJob({ model: modelDir, wav, target: null, alignmentMargin: 1 }, new LocalContext(), env)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/alignment loss needs a target/) });
    expect(opened.length).toBe(count);
  });

  it('advlab audio attack --alignment-margin K|none reaches the job; bad values are refused', () => {
    const bin = resolve(import.meta.dirname, '../../../bin/advlab.mjs');
    const sessions = join(dir, 'cli-sessions');
    const cli = (args: string[]) => {
      const p = spawnSync(process.execPath, [bin, 'audio', 'attack', '--model', modelDir, '--wav', wav, '--sessions', sessions, '--json', ...args], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, ADVLAB_DATA: DATA } });
      return { status: p.status, json: JSON.parse(p.stdout.trim().split('\n').at(-1) ?? 'null') as Record<string, unknown> };
    };
    const on = cli(['--target', 'three', '--iterations', '10', '--alignment-margin', '0.5']);
    expect(on.status).toBe(0);
    expect(on.json).toMatchObject({ alignmentMargin: 0.5, stopReason: 'budget', iterations: 10 });
    const params = JSON.parse(readFileSync(join(sessions, on.json.session as string, 'manifest.json'), 'utf8')).params;
    expect(params.alignmentMargin).toBe(0.5);
    const none = cli(['--target', 'three', '--iterations', '10', '--alignment-margin', 'none']);
    expect(none.json).toMatchObject({ alignmentMargin: null });
    const neg = cli(['--target', 'three', '--alignment-margin=-1']);
    expect(neg.status).toBe(2);
    expect(neg.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/--alignment-margin must be at least 0/) } });
    const robust = spawnSync(process.execPath, [bin, 'audio', 'robust', '--model', modelDir, '--wav', wav, '--target', 'three', '--alignment-margin', '1', '--sessions', sessions, '--json'], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, ADVLAB_DATA: DATA } });
    expect(robust.status).toBe(2);
    expect(robust.stdout).toMatch(/alignmentMargin/);
    const untargeted = cli(['--untargeted', '--alignment-margin', '1']);
    expect(untargeted.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/alignment loss needs a target/) } });
  }, 300_000);
});
