/**
 * Issue 14: paths given to the API resolve only inside the data folders, the session store, the
 * uploads folder beside it, or files the user chose through the app's dialog. Every path-valued
 * param of jobs.start (dataset, model, transferTo, surrogate, wav, recipe, import-model's path, and
 * those keys among a recipe's overrides) is checked at the door, through ApiCore.call as IPC makes it
 * and through the browser host's HTTP; symlinks leading out of a root count as outside; the
 * refusal (FORBIDDEN, 403) names the path and the allowed roots and nothing else. The CLI's core
 * (paths: 'any') takes any path its local user types.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCore } from '../../../src-main/api/core';
import type { JobStartInput } from '../../../src-main/api/jobs';
import { SessionStore } from '../../../src-main/engine/sessions';
import { uploadsDir } from '../../../src-main/listening/uploads';
import { startHost, type Host } from '../../../src-main/host/server';
import { FIXTURE_ENV } from '../../fixtures/session-store';
import { recordingCore, type RecordingJobs } from './api-fixture';

const SECRET = 'TOP-SECRET-CONTENT-4711';
let tmp: string;
let data: string;
let sessions: string;
let uploads: string;
let outside: string;
let store: SessionStore;
let sessionId: string;
let host: Host;
let jobs: RecordingJobs;
let core: ApiCore;

function makeCore(paths?: 'confined' | 'any') {
  const { jobs: j, core: c } = recordingCore({ dataDirs: [data], store, ...(paths ? { paths } : {}) });
  return { jobs: j, core: c };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(os.tmpdir(), 'advlab-paths-'));
  data = join(tmp, 'data');
  sessions = join(tmp, 'sessions');
  uploads = uploadsDir(sessions);
  outside = join(tmp, 'outside');
  for (const d of [data, join(data, 'my-set'), sessions, uploads, outside, join(outside, 'set'), join(outside, 'model')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(outside, 'model', 'model.json'), `{"secret":"${SECRET}"}`);
  writeFileSync(join(outside, 'clip.wav'), SECRET);
  writeFileSync(join(outside, 'recipe.json'), `{"id":"${SECRET}"}`);
  writeFileSync(join(outside, 'unrelated-file-name.txt'), SECRET);
  writeFileSync(join(uploads, 'clip.wav'), 'RIFF');
  // Links inside the roots that lead out of them.
  symlinkSync(join(outside, 'set'), join(data, 'linked-set'));
  symlinkSync(join(outside, 'model'), join(uploads, 'linked-model'));
  symlinkSync(join(outside, 'clip.wav'), join(uploads, 'linked.wav'));
  store = new SessionStore(sessions);
  const w = await store.create({ kind: 'train', params: {}, environment: FIXTURE_ENV });
  await w.finish({ model: 'model/model.json' });
  sessionId = w.id;
  ({ jobs, core } = makeCore());
  host = await startHost({ core, rendererDir: tmp });
});
afterAll(async () => {
  await host?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const mnistAttack = (over: Record<string, unknown>) => ({ kind: 'attack', params: { model: sessionId, dataset: 'mnist', attack: 'fgsm', ...over } }) as JobStartInput;

/** Requests that name a path outside every root: [label, request, the param named]. */
const refused = (): [string, () => JobStartInput, string][] => [
  ['import-model: a model folder outside', () => ({ kind: 'import-model', params: { path: join(outside, 'model') } }), 'path'],
  ['import-model: a model.json that does not exist, outside (no probing)', () => ({ kind: 'import-model', params: { path: '/no/such/model.json' } }), 'path'],
  ['import-model: a relative path climbing out', () => ({ kind: 'import-model', params: { path: '../../../../../../etc' } }), 'path'],
  ['import-model: a data-folder path climbing out', () => ({ kind: 'import-model', params: { path: `${data}/../outside/model` } }), 'path'],
  ['import-model: a dataset folder outside', () => ({ kind: 'import-model', params: { path: sessions, dataset: join(outside, 'set') } }), 'dataset'],
  ['attack: model outside', () => mnistAttack({ model: join(outside, 'model', 'model.json') }), 'model'],
  ['attack: transferTo outside', () => mnistAttack({ transferTo: join(outside, 'model') }), 'transferTo'],
  ['attack: dataset folder outside', () => mnistAttack({ dataset: join(outside, 'set') }), 'dataset'],
  ['attack: dataset through a symlink in the data folder', () => mnistAttack({ dataset: join(data, 'linked-set') }), 'dataset'],
  ['attack: dataset by the bare name of a symlink in the data folder', () => mnistAttack({ dataset: 'linked-set' }), 'dataset'],
  ['attack: model through a symlink in the uploads folder', () => mnistAttack({ model: join(uploads, 'linked-model') }), 'model'],
  ['sweep: model outside', () => ({ kind: 'sweep', params: { model: join(outside, 'model'), dataset: 'mnist', epsilons: [0.1] } }), 'model'],
  ['loss-surface: dataset outside', () => ({ kind: 'loss-surface', params: { model: sessionId, dataset: join(outside, 'set') } }), 'dataset'],
  ['gradient-check: surrogate outside', () => ({ kind: 'gradient-check', params: { model: sessionId, dataset: 'mnist', surrogate: join(outside, 'model') } }), 'surrogate'],
  ['train: dataset outside', () => ({ kind: 'train', params: { dataset: join(outside, 'set'), arch: 'mlp' } }), 'dataset'],
  ['audio-attack: wav outside', () => ({ kind: 'audio-attack', params: { model: sessionId, wav: join(outside, 'clip.wav') } }), 'wav'],
  ['audio-attack: wav through a symlink in uploads', () => ({ kind: 'audio-attack', params: { model: sessionId, wav: join(uploads, 'linked.wav') } }), 'wav'],
  ['audio-transcribe: a bare wav name (read from the host\'s working folder)', () => ({ kind: 'audio-transcribe', params: { model: sessionId, wav: 'clip.wav' } }), 'wav'],
  ['audio-transcribe: model outside', () => ({ kind: 'audio-transcribe', params: { model: join(outside, 'model'), wav: join(uploads, 'clip.wav') } }), 'model'],
  ['audio-corpus: an output folder outside', () => ({ kind: 'audio-corpus', params: { out: join(outside, 'corpus') } }), 'out'],
  ['audio-train: a corpus folder outside', () => ({ kind: 'audio-train', params: { corpus: join(outside, 'set') } }), 'corpus'],
  ['audio-train: a model to continue (--init) outside', () => ({ kind: 'audio-train', params: { init: join(outside, 'model') } }), 'init'],
  ['recipe: a recipe file outside', () => ({ kind: 'recipe', params: { recipe: join(outside, 'recipe.json') } }), 'recipe'],
  ['recipe: an id climbing out of the recipes folder', () => ({ kind: 'recipe', params: { recipe: '../../../../outside/recipe' } }), 'recipe'],
  ['recipe: a dataset override outside', () => ({ kind: 'recipe', params: { recipe: 'detector', overrides: { dataset: join(outside, 'set') } } }), 'overrides.dataset'],
];

/** Requests whose paths are all inside the roots (or name no file: a session id, a known dataset, a recipe id). */
const allowed = (): [string, () => JobStartInput][] => [
  ['a session id and a known dataset', () => mnistAttack({})],
  ['a dataset folder in the data folder, by path and by name', () => mnistAttack({ dataset: join(data, 'my-set'), transferTo: sessionId })],
  ['a bare dataset name (looked up in the data folders)', () => mnistAttack({ dataset: 'my-set' })],
  ['a model path inside the store', () => mnistAttack({ model: join(sessions, sessionId, 'artifacts', 'model') })],
  ['a model name that is neither a session nor a file (the job says NOT_FOUND)', () => mnistAttack({ model: 'no-such-model' })],
  ['an upload as the wav', () => ({ kind: 'audio-attack', params: { model: sessionId, wav: join(uploads, 'clip.wav') } })],
  ['a wav in the data folder', () => ({ kind: 'audio-transcribe', params: { model: sessionId, wav: join(data, 'fsdd', 'recordings', 'x.wav') } })],
  ['a recipe id', () => ({ kind: 'recipe', params: { recipe: 'detector', overrides: { dataset: 'mnist' } } })],
  ['import-model from the store', () => ({ kind: 'import-model', params: { path: join(sessions, sessionId, 'artifacts', 'model'), dataset: 'mnist' } })],
];

function checkRefusal(error: { code: string; message: string; details: Record<string, unknown> }, param: string) {
  expect(error.code).toBe('FORBIDDEN');
  expect(error.message).toMatch(new RegExp(`^${param.replace('.', '\\.')} ".+" is outside the folders the API may read`));
  // It names the allowed roots...
  expect(error.message).toContain(data);
  expect(error.message).toContain(sessions);
  expect(error.message).toContain(uploads);
  // ...and never a file's contents or what else a folder holds.
  expect(error.message).not.toContain(SECRET);
  expect(error.message).not.toContain('unrelated-file-name');
  expect(error.details.param).toBe(param);
}

describe('jobs.start confines paths (ApiCore, as IPC calls it)', () => {
  for (const [label, req, param] of refused()) {
    it(`refuses ${label}`, async () => {
      const before = jobs.started.length;
      const r = await core.call('jobs.start', req());
      expect(r.ok, JSON.stringify(r)).toBe(false);
      if (r.ok) return;
      checkRefusal(r.error, param);
      expect(jobs.started.length).toBe(before); // no job, no session
    });
  }
  for (const [label, req] of allowed()) {
    it(`accepts ${label}`, async () => {
      const r = await core.call('jobs.start', req());
      expect(r.ok, JSON.stringify(r)).toBe(true);
    });
  }

  it('a file the user chose through the dialog is allowed, for that core only', async () => {
    const { core: c } = makeCore();
    const req = { kind: 'import-model', params: { path: join(outside, 'model', 'model.json') } } as JobStartInput;
    expect((await c.call('jobs.start', req)).ok).toBe(false);
    await c.paths!.choose(join(outside, 'model', 'model.json'));
    expect((await c.call('jobs.start', req)).ok).toBe(true);
    // Another file beside it is not chosen.
    expect((await c.call('jobs.start', { kind: 'audio-attack', params: { model: sessionId, wav: join(outside, 'clip.wav') } })).ok).toBe(false);
    expect((await core.call('jobs.start', req)).ok).toBe(false);
  });

  it("the CLI's core (paths: 'any') takes any path", async () => {
    const { core: c, jobs: j } = makeCore('any');
    expect(c.paths).toBeNull();
    for (const [, req] of refused()) expect((await c.call('jobs.start', req())).ok).toBe(true);
    expect(j.started.length).toBe(refused().length);
  });
});

describe('jobs.start confines paths: seeded random paths against a second judge', () => {
  it('2,000 paths built of roots, "..", ".", links and odd separators: accepted only when they really lie inside a root', async () => {
    const { realpathSync } = await import('node:fs');
    const { dirname, basename, resolve, relative, isAbsolute } = await import('node:path');
    let state = 20261204;
    const rnd = (n: number) => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state % n;
    };
    const SEGMENTS = ['..', '.', '', 'data', 'sessions', 'uploads', 'outside', 'model', 'set', 'my-set', 'linked-set', 'linked-model', 'linked.wav', 'clip.wav', 'model.json', 'nope', '...', '.hidden', sessionId];
    const bases = [tmp, data, sessions, uploads, outside, '/', '', '.', '..'];
    // An independent judge: resolve, then realpath the deepest existing folder, and compare with the real roots.
    const real = (p: string): string => {
      const rest: string[] = [];
      let head = p;
      for (;;) {
        try {
          return resolve(realpathSync(head), ...rest.reverse());
        } catch {
          if (dirname(head) === head) return p;
          rest.push(basename(head));
          head = dirname(head);
        }
      }
    };
    const roots = [data, sessions, uploads].map((r) => realpathSync(r));
    const within = (p: string) => roots.some((r) => { const rel = relative(r, p); return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel)); });
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const parts = Array.from({ length: 1 + rnd(6) }, () => SEGMENTS[rnd(SEGMENTS.length)]);
      const base = bases[rnd(bases.length)];
      const sep = ['/', '//', '/./'][rnd(3)];
      const p = [base, ...parts].join(sep) || '.';
      const r = await core.call('jobs.start', { kind: 'import-model', params: { path: p } });
      const lexical = resolve(p);
      const inside = within(lexical) && within(real(lexical));
      if (r.ok) accepted++;
      expect(r.ok, `${p}: ${JSON.stringify(r)}`).toBe(inside);
      if (!r.ok) expect(r.error.code, p).toBe('FORBIDDEN');
    }
    // Both kinds of answer were exercised.
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(1950);
  });
});

describe('jobs.start confines paths over HTTP (the browser host)', () => {
  const post = async (body: unknown) => {
    const res = await fetch(`${host.url.replace(/\/?(\?.*)?$/, '')}/api/jobs.start`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-advlab-token': host.token }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { ok: boolean; error: { code: string; message: string; details: Record<string, unknown> } } };
  };
  it('an outside path is 403 FORBIDDEN naming it and the roots', async () => {
    for (const [, req, param] of refused()) {
      const r = await post(req());
      expect(r.status).toBe(403);
      checkRefusal(r.body.error, param);
    }
  });
  it('an inside path starts the job', async () => {
    const r = await post({ kind: 'import-model', params: { path: join(sessions, sessionId, 'artifacts', 'model') } });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(true);
  });
});
