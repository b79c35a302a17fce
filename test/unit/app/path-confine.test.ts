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

  /**
   * A link in the uploads folder to a file or folder in the data folder, swapped after jobs.start to its
   * twin outside. Not swapped, the job reads it and refuses it as what it is not (so the check is not what
   * stopped it); swapped, the job fails FORBIDDEN where it opens it. `says`: what the FORBIDDEN message names.
   */
  interface SwapCase {
    name: string;
    kind: 'attack' | 'train' | 'recipe' | 'import-model';
    /** The link's name in the uploads folder. */
    link: string;
    /** What it leads to: this name in the data folder, then in the outside folder. */
    target: string;
    params: (link: string) => Record<string, unknown>;
    says?: (link: string) => string;
  }
  const swaps: SwapCase[] = [
    {
      name: 'a model folder link swapped to lead outside after jobs.start: FORBIDDEN where the model is opened',
      kind: 'attack', link: 'linked-model', target: 'model',
      params: (link) => ({ model: link, dataset: 'mnist', attack: 'fgsm', n: 2, params: {} }),
    },
    {
      name: 'a dataset folder link swapped to lead outside after jobs.start: FORBIDDEN where the dataset is loaded',
      kind: 'train', link: 'linked-set', target: 'set',
      params: (link) => ({ dataset: link, arch: 'mlp', epochs: 1 }),
      says: (link) => link,
    },
    {
      name: 'a recipe file link swapped to lead outside after jobs.start: FORBIDDEN where the recipe is read',
      kind: 'recipe', link: 'linked-recipe.json', target: 'recipe.json',
      params: (link) => ({ recipe: link }),
    },
    {
      name: "a recipe's dataset override linked outside after jobs.start: FORBIDDEN before the study loads it",
      kind: 'recipe', link: 'linked-set', target: 'set',
      params: (link) => ({ recipe: 'thermometer', quick: true, overrides: { dataset: link } }),
      says: () => 'overrides.dataset',
    },
    {
      name: 'an imported model link swapped to lead outside after jobs.start: FORBIDDEN where the import opens it',
      kind: 'import-model', link: 'linked-import', target: 'model',
      params: (link) => ({ path: link }),
    },
  ];

  for (const { name, kind, link: linkName, target, params, says } of swaps) it(name, async () => {
    const link = join(uploads, linkName);
    const plain = await startAndSwap(kind, params(link), link, join(data, target));
    expect(plain.state).toBe('failed');
    expect(plain.error?.code).not.toBe('FORBIDDEN'); // read, and refused as what it is not
    const swapped = await startAndSwap(kind, params(link), link, join(data, target), join(outside, target));
    expect(swapped.state).toBe('failed');
    expect(swapped.error?.code).toBe('FORBIDDEN');
    if (says) expect(swapped.error?.message).toContain(says(link));
  }, 60_000);
});
