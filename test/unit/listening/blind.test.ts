/**
 * A blind listening test stays blind: while it is open, no API method that takes a session (every
 * sessions.*, listening.* and audio.* method, called through ApiCore.call as IPC and HTTP do) and no
 * /files/ URL of the browser host gives out the answer key, the seed, or the truth or clip identity of
 * an answered trial. Once listening.finish has run, all of it is there.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import { METHODS, type JobInfo, type Method, type ResultOf } from '../../../src-main/api/contract';
import type { JobService } from '../../../src-main/api/job-service';
import { SessionStore } from '../../../src-main/engine/sessions';
import { startHost, type Host } from '../../../src-main/host/server';
import { DATA, FSDD, makeAudioAttackSession } from './fixtures';

class NoJobs extends EventEmitter implements JobService {
  start(): never { throw new Error('no jobs in this test'); }
  cancel() { return false; }
  list(): JobInfo[] { return []; }
  wait() { return undefined; }
  backend() { return Promise.reject(new Error('no backend in this test')); }
}

const SEED = 1_234_567_891; // distinctive: it must not show up anywhere while the test is open

let root: string;
let store: SessionStore;
let core: ApiCore;
let host: Host;
let session: string;
let key: { seed: number; clips: { path: string; identity: string }[]; trials: { correct: string }[] };
const sources: string[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(os.tmpdir(), 'advlab-blind-'));
  store = new SessionStore(join(root, 'sessions'));
  core = new ApiCore({ jobs: new NoJobs(), dataDirs: [DATA], sessionsRoot: store.root, transport: 'http', version: 'test' }, (c) => apiHandlers({ store, dataDirs: [DATA], emit: (e) => c.emit('event', e) }));
  host = await startHost({ core, rendererDir: root, artifactPath: (id, rel) => store.artifactFile(id, rel) });
  sources.push((await makeAudioAttackSession(store, { clip: '7_jackson_0.wav', seed: 1 })).id);
  sources.push((await makeAudioAttackSession(store, { clip: '3_theo_1.wav', seed: 2 })).id);
  // ABX: the listener's answers are "A"/"B", so the words "original" and "adversarial" can only come from the key.
  const created = await core.call('listening.create', { sessions: sources, mode: 'abx', repeats: 3, seed: SEED });
  if (!created.ok) throw new Error(created.error.message);
  session = created.result.session;
  key = JSON.parse(readFileSync(join(store.dir(session), 'artifacts', 'key.json'), 'utf8'));
  for (let trial = 0; trial < 4; trial++) {
    const r = await core.call('listening.answer', { session, trial, answer: trial % 2 ? 'A' : 'B', ms: 900, plays: { a: 1, b: 1, x: 2 } });
    if (!r.ok) throw new Error(r.error.message);
  }
}, 60_000);
afterAll(async () => {
  await host?.close();
  rmSync(root, { recursive: true, force: true });
});

/** One call per method that takes a session: what it is called with while the test is open. */
/** `echo`: the caller's own input, quoted back in an error message (not a leak). */
type Call = { method: Method; params: () => Record<string, unknown>; echo?: string };
const openCalls: Call[] = [
  { method: 'sessions.list', params: () => ({}) },
  { method: 'sessions.list', params: () => ({ filter: { kind: 'listening' } }) },
  { method: 'sessions.show', params: () => ({ id: session }) },
  { method: 'sessions.metrics', params: () => ({ id: session, series: 'answers' }) },
  { method: 'sessions.artifact', params: () => ({ id: session, path: 'key.json' }) },
  { method: 'sessions.artifact', params: () => ({ id: session, path: 'clips/../key.json' }) },
  { method: 'sessions.artifact', params: () => ({ id: session, path: 'results.json' }) },
  { method: 'sessions.rename', params: () => ({ id: session, name: 'renamed while open' }) },
  { method: 'sessions.tag', params: () => ({ id: session, add: ['blind'] }) },
  { method: 'sessions.notes', params: () => ({ id: session, text: 'a note' }) },
  { method: 'sessions.delete', params: () => ({ id: session }) },
  { method: 'sessions.restore', params: () => ({ id: session }) },
  { method: 'sessions.view', params: () => ({ id: session }) },
  { method: 'sessions.report', params: () => ({ ids: [session] }) },
  { method: 'sessions.report', params: () => ({ ids: [session, ...sources] }) },
  { method: 'sessions.csv', params: () => ({ id: session }) },
  { method: 'sessions.export', params: () => ({ id: session }) },
  { method: 'sessions.import', params: () => ({ data: '' }) },
  { method: 'sessions.trash', params: () => ({}) },
  { method: 'sessions.emptyTrash', params: () => ({ olderThanDays: 36500 }) },
  { method: 'audio.upload', params: () => ({ name: 'seven.wav', base64: readFileSync(join(FSDD, '7_jackson_0.wav')).toString('base64') }) },
  { method: 'audio.clips', params: () => ({ model: session }) },
  { method: 'listening.create', params: () => ({ sessions: sources, mode: 'abx', repeats: 1 }) },
  { method: 'listening.answer', params: () => ({ session, trial: 2, answer: 'A' }) }, // already answered: refused
  { method: 'listening.answer', params: () => ({ session, trial: 4, answer: 'original' }), echo: 'got \\"original\\"' }, // wrong mode: refused
  { method: 'listening.answer', params: () => ({ session, trial: 99, answer: 'A' }) },
];

/** Fields of an answer row (or of the key) that tell the truth of a trial. */
const TRUTH_FIELDS = ['truth', 'correct', 'identity', 'x', 'a', 'b', 'clipX', 'clipA', 'clipB', 'source', 'pair', 'gainDb', 'requestedDbfs'];
/** Those of them no other response uses as a key ("correct" is also the summary's count, x/a/b the trial view's clips: their values are checked instead). */
const TRUTH_KEYS = TRUTH_FIELDS.filter((f) => !['correct', 'x', 'a', 'b'].includes(f));

/** Everything a response must not hold while the test is open. */
function leaks(text: string): string[] {
  const found: string[] = [];
  if (/original|adversarial/i.test(text)) found.push('a clip identity ("original"/"adversarial")');
  if (text.includes(String(SEED))) found.push('the seed');
  for (const field of TRUTH_KEYS) {
    // ("source" of a CSV result is the file its rows came from, not the source of a trial)
    if (new RegExp(`"${field}"\\s*:(?!\\s*"(metrics|artifacts)/)`).test(text)) found.push(`the field "${field}"`);
  }
  if (/"correct"\s*:\s*(true|false)/.test(text)) found.push('a per-trial "correct"');
  if (/key\.json/.test(text) && /"clips"\s*:\s*\[/.test(text)) found.push('key.json content');
  return found;
}

/** Only the listening session's own entry of a listing (the audio-attack sources name their original.wav). */
function scoped(method: Method, result: unknown): unknown {
  if (method === 'sessions.list' && Array.isArray(result)) return result.filter((s: { id: string }) => s.id === session);
  if (method === 'sessions.report' && result && typeof result === 'object') {
    // A comparison report also shows the source sessions: keep only the listening session's section.
    const html = String((result as { html: string }).html);
    const at = html.indexOf(`data-session="${session}"`);
    return at < 0 ? result : { ...result, html: html.slice(at, html.indexOf('</section>', at)) };
  }
  if (method === 'audio.upload' || method === 'audio.clips') return result; // no listening content at all
  return result;
}

describe('a listening test stays blind while it is open', () => {
  it('the table calls every sessions.*, listening.* and audio.* method (but listening.finish, below)', () => {
    const needed = METHODS.filter((m) => /^(sessions|listening|audio)\./.test(m) && m !== 'listening.finish');
    expect([...new Set(openCalls.map((c) => c.method))].sort()).toEqual(needed.sort());
  });

  it.each(openCalls.map((c, i) => [`${c.method} #${i}`, c] as const))('%s reveals nothing', async (_label, c) => {
    const r = await core.call(c.method, c.params() as never);
    const text = JSON.stringify(r.ok ? scoped(c.method, r.result) : r.error);
    expect(leaks(c.echo ? text.replace(c.echo, '') : text)).toEqual([]);
    if (c.method === 'sessions.export') {
      expect(r).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
      expect(!r.ok && r.error.message).toMatch(/sealed until its test ends/);
    }
    if (c.method === 'sessions.artifact' && (c.params().path as string).endsWith('key.json')) expect(r.ok).toBe(false);
    if (c.method === 'sessions.csv' && r.ok) {
      const csv = r.result as ResultOf<'sessions.csv'>;
      expect(csv.columns.filter((col) => TRUTH_FIELDS.includes(col))).toEqual([]);
      expect(csv.csv.split('\r\n')[0].split(',')).toEqual(csv.columns);
    }
    if (c.method === 'sessions.metrics') expect(r.ok && (r.result as ResultOf<'sessions.metrics'>).rows.map((x) => x.answer)).toEqual(['B', 'A', 'B', 'A']);
  });

  it('the HTML report embeds no key, and the clips are listed in the order of their neutral names', async () => {
    const shown = await core.call('sessions.show', { id: session });
    if (!shown.ok) throw new Error(shown.error.message);
    const clips = shown.result.manifest.artifacts.map((a) => a.path).filter((p) => p.startsWith('clips/'));
    expect(clips).toHaveLength(4);
    expect(clips).toEqual([...clips].sort());
    // ...which is not the (pair, identity) order of the key.
    expect(shown.result.manifest.params).not.toHaveProperty('seed');
  });

  it('/files/ on the browser host refuses the key and serves the clips', async () => {
    const get = (rel: string) => fetch(`${host.url.replace(/\/?(\?.*)?$/, '')}/files/${session}/${rel}?token=${host.token}`, { headers: { 'x-advlab-token': host.token } });
    const k = await get('key.json');
    expect(k.status).toBe(409); // CONFLICT: sealed until the test ends
    expect(leaks(await k.text())).toEqual([]);
    const clip = await get(key.clips[0].path);
    expect(clip.status).toBe(200);
    await clip.arrayBuffer();
  });
});

describe('after listening.finish the truth is visible', () => {
  beforeAll(async () => {
    const r = await core.call('listening.finish', { session });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.result).toMatchObject({ status: 'cancelled', trials: 4, plannedTrials: 6, seed: SEED });
  });

  it('answers carry their truth in sessions.metrics, sessions.view and sessions.csv', async () => {
    const m = await core.call('sessions.metrics', { id: session, series: 'answers' });
    if (!m.ok) throw new Error(m.error.message);
    expect(m.result.rows.map((r) => r.truth)).toEqual(key.trials.slice(0, 4).map((t) => t.correct));
    for (const r of m.result.rows) expect(r).toMatchObject({ correct: r.answer === r.truth, source: expect.any(String), x: expect.stringMatching(/^(original|adversarial)$/), clipX: expect.stringMatching(/^clips\//) });
    const v = await core.call('sessions.view', { id: session });
    expect(v.ok && v.result.tables.find((t) => t.path === 'metrics/answers.jsonl')?.columns).toEqual(expect.arrayContaining(['truth', 'correct', 'source', 'x', 'a', 'b']));
    const csv = await core.call('sessions.csv', { id: session });
    expect(csv.ok && csv.result.columns).toEqual(expect.arrayContaining(['truth', 'correct']));
  });

  it('the key, the seed and the export are there', async () => {
    const k = await core.call('sessions.artifact', { id: session, path: 'key.json' });
    expect(k.ok).toBe(true);
    const shown = await core.call('sessions.show', { id: session });
    expect(shown.ok && shown.result.manifest.params.seed).toBe(SEED);
    const ex = await core.call('sessions.export', { id: session });
    if (!ex.ok) throw new Error(ex.error.message);
    expect(Buffer.from(ex.result.base64, 'base64').includes(`${session}/artifacts/key.json`)).toBe(true);
    const report = await core.call('sessions.report', { ids: [session] });
    expect(report.ok && report.result.html).toMatch(/original|adversarial/);
    const f = await fetch(`${host.url.replace(/\/?(\?.*)?$/, '')}/files/${session}/key.json?token=${host.token}`, { headers: { 'x-advlab-token': host.token } });
    expect(f.status).toBe(200);
    expect(JSON.parse(await f.text()).seed).toBe(SEED);
  });
});
