import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioRobustParams, audioUniversalParams } from '../../../src-main/api/jobs';
import { initBackend, type BackendInfo } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { EOT_DEFAULTS, UNIVERSAL_DEFAULTS, readWav, write16, type SpeechModel } from '../../../src-main/engine/audio';
import { SessionStore } from '../../../src-main/engine/sessions';
import { audioAttackJob } from '../../../src-main/jobs/kinds/audio';
import { audioRobust, audioUniversal } from '../../../src-main/jobs/kinds/audio-robust';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { DATA } from '../helpers';
import { tinySpeechModel } from './tiny-speech';
import { writeFile } from 'node:fs/promises';

let root: string;
let env: JobEnv;
let model: SpeechModel;
let modelDir: string;
let wav: string;

beforeAll(async () => {
  const backend: BackendInfo = await initBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'advlab-robust-jobs-'));
  env = { backend, dataDirs: [DATA], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
  const tiny = await tinySpeechModel();
  model = tiny.model;
  modelDir = join(root, 'model');
  await model.save(modelDir);
  wav = join(root, 'one.wav');
  await writeFile(wav, write16(tiny.clips[0], 8000));
}, 120_000);

afterAll(async () => {
  model?.dispose();
  await rm(root, { recursive: true, force: true });
});

const artifacts = (store: SessionStore, id: string) => join(store.dir(id), 'artifacts');

/**
 * Runs a job with a context that cancels it at its first progress event for which `when` holds, and
 * the file's env with an onSession that records the session the job opens. Returns what the job threw
 * (null when it finished) and that session's id.
 */
async function cancelledRun(
  run: (ctx: LocalContext, env: JobEnv) => Promise<unknown>,
  when: (p: Parameters<LocalContext['progress']>[0]) => boolean = () => true,
): Promise<{ error: unknown; id: string }> {
  const ctx = new LocalContext();
  const progress = ctx.progress.bind(ctx);
  ctx.progress = (p) => {
    progress(p);
    if (when(p)) ctx.cancel();
  };
  const ids: string[] = [];
  const error = await run(ctx, { ...env, onSession: (id) => void ids.push(id) }).then(() => null, (err: unknown) => err);
  return { error, id: ids[0] };
}

describe('attacks that survive: jobs', () => {
  it('params: defaults from the engine, strict, registered', () => {
    const r = audioRobustParams.parse({ model: 'm', wav: 'x.wav', target: 'a' });
    expect(r).toMatchObject({ samples: EOT_DEFAULTS.samples, rooms: EOT_DEFAULTS.rooms, snrDb: EOT_DEFAULTS.snrDb, heldOut: EOT_DEFAULTS.heldOut, compare: true, iterations: 1000 });
    expect(() => audioRobustParams.parse({ model: 'm', wav: 'x.wav', rooms: 3, roomz: 1 })).toThrow(/Unrecognized key.*roomz/);
    const u = audioUniversalParams.parse({ model: 'm', target: 'nine' });
    expect(u).toMatchObject({ trainClips: UNIVERSAL_DEFAULTS.trainClips, eps: [...UNIVERSAL_DEFAULTS.eps], iterations: UNIVERSAL_DEFAULTS.iterations });
    expect(() => audioUniversalParams.parse({ model: 'm', target: 'nine', epsilon: [1] })).toThrow(/Unrecognized key.*epsilon/);
    expect(() => audioUniversalParams.parse({ model: 'm' })).toThrow();
    expect(jobHandlers['audio-robust']).toBe(audioRobust);
    expect(jobHandlers['audio-universal']).toBe(audioUniversal);
  });

  it('audio-attack re-checks its saved adversarial.wav from disk with a fresh model', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const r = (await audioAttackJob({ model: modelDir, wav, target: 'three', iterations: 60, seed: 1 }, new LocalContext(), env)) as Record<string, unknown>;
    const m = await store.manifest(r.session as string);
    expect(m.summary).toMatchObject({ success: true, transcriptAfter: 'three', survived: true, secondCopyTranscript: 'three', survivalChecked: 1, survivalPassed: 1 });
    const rows = JSON.parse(await readFile(join(artifacts(store, r.session as string), 'survival.json'), 'utf8'));
    expect(rows).toEqual([expect.objectContaining({ artifact: 'adversarial.wav', survived: true, inMemory: 'three', secondCopy: 'three' })]);
    expect(rows[0]).not.toHaveProperty('file'); // no absolute paths in the session
  });

  it('a cancelled audio-attack keeps its clip and re-checks it too', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const { error, id } = await cancelledRun((ctx, env) => audioAttackJob({ model: modelDir, wav, target: 'three', iterations: 500, seed: 1 }, ctx, env));
    expect(error).toBeInstanceOf(CancelledError);
    const m = await store.manifest(id);
    expect(m.status).toBe('cancelled');
    expect(m.summary).toMatchObject({ survivalChecked: 1 });
    expect(m.summary.secondCopyTranscript).toBe(m.summary.transcriptAfter);
  }, 120_000);

  it('audio-robust writes both clips, held-out rows, the survival check and the comparison', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const r = (await audioRobust({ model: modelDir, wav, target: 'three', iterations: 30, seed: 2, samples: 2, rooms: 4, heldOut: 6, checkTransforms: 3, rirMaxSeconds: 0.05 }, new LocalContext(), env)) as Record<string, unknown>;
    const m = await store.manifest(r.session as string);
    expect(m.kind).toBe('audio-robust');
    expect(m.status).toBe('finished');
    for (const k of ['heldOutSuccess', 'plainHeldOutSuccess', 'plainDbx', 'dbxCost', 'survived', 'secondCopyTranscript', 'transcriptAfter', 'dbx']) expect(m.summary).toHaveProperty(k);
    expect(m.summary).toMatchObject({ heldOutTrials: 6, survivalChecked: 2, target: 'three', eotSamples: 2 });
    const art = artifacts(store, r.session as string);
    for (const f of ['original.wav', 'adversarial.wav', 'perturbation.wav', 'plain-adversarial.wav', 'heldout/0.wav', 'heldout.json', 'survival.json']) expect(existsSync(join(art, f))).toBe(true);
    const held = JSON.parse(await readFile(join(art, 'heldout.json'), 'utf8')) as Record<string, unknown>[];
    expect(held).toHaveLength(6);
    expect(held.filter((h) => h.robust === 'three').length / 6).toBeCloseTo(m.summary.heldOutSuccess as number, 9);
    expect(held.filter((h) => h.plain === 'three').length / 6).toBeCloseTo(m.summary.plainHeldOutSuccess as number, 9);
    const metrics = await readdir(join(store.dir(r.session as string), 'metrics'));
    expect(metrics.sort()).toEqual(['attack.jsonl', 'plain.jsonl']);
  }, 300_000);

  it('a cancelled audio-robust keeps the EOT clip so far in a session marked cancelled', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const { error, id } = await cancelledRun((ctx, env) => audioRobust({ model: modelDir, wav, target: 'three', iterations: 500, samples: 2, rooms: 2, heldOut: 2, checkTransforms: 2 }, ctx, env));
    expect(error).toBeInstanceOf(CancelledError);
    const m = await store.manifest(id);
    expect(m.status).toBe('cancelled');
    expect(m.summary).toMatchObject({ heldOutSuccess: null, target: 'three' });
    expect(m.summary.iterations as number).toBeLessThanOrEqual(20);
    expect(existsSync(join(artifacts(store, id), 'adversarial.wav'))).toBe(true);
  }, 120_000);

  it('audio-universal trains one delta per bound and reports held-out success against the norm', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const r = (await audioUniversal({ model: modelDir, target: 'three', trainClips: 6, testClips: 4, eps: [0.02, 0.3], iterations: 10, batchSize: 3, seconds: 0.6, seed: 1 }, new LocalContext(), env)) as Record<string, unknown>;
    const m = await store.manifest(r.session as string);
    expect(m.kind).toBe('audio-universal');
    expect(m.summary).toMatchObject({ target: 'three', trainClips: 6, testClips: 4, bounds: 2, survivalChecked: 3 });
    const art = artifacts(store, r.session as string);
    const curve = JSON.parse(await readFile(join(art, 'curve.json'), 'utf8'));
    expect(curve.points.map((p: { eps: number }) => p.eps)).toEqual([0.02, 0.3]);
    expect(new Set([...curve.train, ...curve.heldOut]).size).toBe(10); // disjoint
    for (const [k, eps] of [[0, 0.02], [1, 0.3]] as const) {
      const d = readWav(await readFile(join(art, `universal-${k}.wav`))).samples;
      expect(d.length).toBe(Math.round(0.6 * 8000));
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(eps + 1 / 32768);
      expect(m.summary[`heldOutSuccess@${eps}`]).toBe(curve.points[k].heldOutSuccess);
    }
    expect(curve.points[0].heldOutTranscripts).toHaveLength(4);
  }, 300_000);

  it('a cancelled audio-universal keeps the bounds it finished', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const { error, id } = await cancelledRun(
      (ctx, env) => audioUniversal({ model: modelDir, target: 'three', trainClips: 3, testClips: 2, eps: [0.02, 0.3], iterations: 4, batchSize: 3, seconds: 0.6, seed: 1 }, ctx, env),
      (p) => p.step / p.total >= 0.5, // the second bound's first check
    );
    expect(error).toBeInstanceOf(CancelledError);
    const m = await store.manifest(id);
    expect(m.status).toBe('cancelled');
    expect(m.summary).toMatchObject({ bounds: 1, target: 'three', survivalChecked: 2 });
    const curve = JSON.parse(await readFile(join(artifacts(store, id), 'curve.json'), 'utf8'));
    expect(curve.points.map((p: { eps: number }) => p.eps)).toEqual([0.02]);
  }, 120_000);
});
