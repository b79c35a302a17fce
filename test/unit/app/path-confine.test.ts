/**
 * Issue 14's gap, closed: the API checks a job's paths at jobs.start, but the job opens its files
 * later, in its worker. A symlink inside an allowed folder swapped to lead outside between the two
 * must not be followed: the worker resolves the file again where it opens it (jobs/confine.ts) and
 * the job fails FORBIDDEN. Through ApiCore (as IPC and HTTP call it) and the real runner and worker.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import type { JobInfo } from '../../../src-main/api/contract';
import { write16 } from '../../../src-main/engine/audio/wav';
import { SessionStore } from '../../../src-main/engine/sessions';
import { JobRunner } from '../../../src-main/jobs/runner';
import { uploadsDir } from '../../../src-main/listening/uploads';
import { WORKER } from '../helpers';

let tmp: string, data: string, uploads: string, outside: string;
let runner: JobRunner;
let core: ApiCore;

beforeAll(() => {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run "npx electron-vite build" first`);
  tmp = mkdtempSync(join(os.tmpdir(), 'advlab-confine-'));
  data = join(tmp, 'data');
  const sessions = join(tmp, 'sessions');
  uploads = uploadsDir(sessions);
  outside = join(tmp, 'outside');
  for (const d of [data, sessions, uploads, outside, join(data, 'model'), join(outside, 'model'), join(data, 'set'), join(outside, 'set')]) mkdirSync(d, { recursive: true });
  // Recipe files on both sides (the same bytes: only the check can tell them apart).
  for (const d of [data, outside]) writeFileSync(join(d, 'recipe.json'), '{"not":"a recipe"}');
  // Valid WAVs on both sides, so only the check can tell them apart.
  const wav = write16(new Float32Array(800), 8000);
  writeFileSync(join(data, 'clip.wav'), wav);
  writeFileSync(join(outside, 'secret.wav'), wav);
  for (const d of [join(data, 'model'), join(outside, 'model')]) writeFileSync(join(d, 'model.json'), '{"not":"a model"}');
  runner = new JobRunner({ workerPath: WORKER, env: { backend: 'cpu', dataDirs: [data], sessionsRoot: sessions }, workers: 1 });
  const store = new SessionStore(sessions);
  core = new ApiCore({ jobs: runner, dataDirs: [data], sessionsRoot: sessions, transport: 'http', version: 'test' }, () => apiHandlers({ store, dataDirs: [data] }));
});

afterAll(async () => {
  await runner?.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts a job through the door with `link` pointing at `before`; when `after` is given, the link is swapped to it as soon as jobs.start answers (the worker has not started yet). */
async function startAndSwap(kind: 'audio-transcribe' | 'attack' | 'train' | 'recipe' | 'import-model', params: Record<string, unknown>, link: string, before: string, after?: string): Promise<JobInfo> {
  if (existsSync(link)) unlinkSync(link);
  symlinkSync(before, link);
  const r = await core.call('jobs.start', { kind, params } as never);
  expect(r.ok, JSON.stringify(r)).toBe(true);
  if (after) {
    unlinkSync(link);
    symlinkSync(after, link);
  }
  const info = await runner.wait((r as { ok: true; result: { jobId: string } }).result.jobId);
  return info!;
}

describe('a job re-checks its paths where it opens them', () => {
  it('a WAV link swapped to lead outside after jobs.start: the job fails FORBIDDEN instead of reading it', async () => {
    const link = join(uploads, 'link.wav');
    // Not swapped: the clip is read, and the job goes on to fail on the model (no such model).
    const plain = await startAndSwap('audio-transcribe', { model: 'no-such-model', wav: link }, link, join(data, 'clip.wav'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).toBe('NOT_FOUND');
    // Swapped after the door's check: refused where the worker opens it.
    const swapped = await startAndSwap('audio-transcribe', { model: 'no-such-model', wav: link }, link, join(data, 'clip.wav'), join(outside, 'secret.wav'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
    expect(swapped.error?.message).toContain(link);
    expect(swapped.error?.message).not.toContain('secret');
  }, 60_000);

  it('a model folder link swapped to lead outside after jobs.start: FORBIDDEN where the model is opened', async () => {
    const link = join(uploads, 'linked-model');
    const params = { model: link, dataset: 'mnist', attack: 'fgsm', n: 2, params: {} };
    const plain = await startAndSwap('attack', params, link, join(data, 'model'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN'); // read, and refused as a model
    const swapped = await startAndSwap('attack', params, link, join(data, 'model'), join(outside, 'model'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
  }, 60_000);

  it('a dataset folder link swapped to lead outside after jobs.start: FORBIDDEN where the dataset is loaded', async () => {
    const link = join(uploads, 'linked-set');
    const params = { dataset: link, arch: 'mlp', epochs: 1 };
    const plain = await startAndSwap('train', params, link, join(data, 'set'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN'); // read, and refused as a dataset (an empty folder)
    const swapped = await startAndSwap('train', params, link, join(data, 'set'), join(outside, 'set'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
    expect(swapped.error?.message).toContain(link);
  }, 60_000);

  it('a recipe file link swapped to lead outside after jobs.start: FORBIDDEN where the recipe is read', async () => {
    const link = join(uploads, 'linked-recipe.json');
    const plain = await startAndSwap('recipe', { recipe: link }, link, join(data, 'recipe.json'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN'); // read, and refused as a recipe
    const swapped = await startAndSwap('recipe', { recipe: link }, link, join(data, 'recipe.json'), join(outside, 'recipe.json'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
  }, 60_000);

  it("a recipe's dataset override linked outside after jobs.start: FORBIDDEN before the study loads it", async () => {
    const link = join(uploads, 'linked-set');
    const params = { recipe: 'thermometer', quick: true, overrides: { dataset: link } };
    const plain = await startAndSwap('recipe', params, link, join(data, 'set'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN');
    const swapped = await startAndSwap('recipe', params, link, join(data, 'set'), join(outside, 'set'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
    expect(swapped.error?.message).toContain('overrides.dataset');
  }, 60_000);

  it('an imported model link swapped to lead outside after jobs.start: FORBIDDEN where the import opens it', async () => {
    const link = join(uploads, 'linked-import');
    const plain = await startAndSwap('import-model', { path: link }, link, join(data, 'model'));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN'); // read, and refused as a model
    const swapped = await startAndSwap('import-model', { path: link }, link, join(data, 'model'), join(outside, 'model'));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
  }, 60_000);
});
