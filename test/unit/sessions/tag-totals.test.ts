/**
 * Issue 14: a session's tags are bounded in all, not only per call. sessions.tag takes at most
 * MAX_TAGS at once, but many calls could grow one manifest without end (past the manifest schema's
 * own cap, which then failed as an INTERNAL "invalid manifest"). The whole list is now checked in
 * the store (create, tag, the writer's update): at most MAX_SESSION_TAGS tags and MAX_SESSION_TAG_BYTES
 * bytes, a BAD_INPUT naming the bound, nothing written.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import { MAX_SESSION_TAG_BYTES, MAX_SESSION_TAGS, MAX_TAGS, MAX_TAG_CHARS } from '../../../src-main/engine/limits';
import { SessionStore } from '../../../src-main/engine/sessions';
import { ENV } from './helpers';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const tmpStore = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'advlab-tagtotal-'));
  made.push(d);
  return new SessionStore(d);
};
const manifestText = (store: SessionStore, id: string) => readFileSync(path.join(store.dir(id), 'manifest.json'), 'utf8');

async function finished(store: SessionStore, tags: string[] = []) {
  const w = await store.create({ kind: 'train', params: {}, environment: ENV, tags });
  await w.finish({});
  return w.id;
}

describe('per-session tag totals', () => {
  it('the bounds hold together: MAX_SESSION_TAGS short tags fit in MAX_SESSION_TAG_BYTES', () => {
    expect(MAX_SESSION_TAGS).toBeGreaterThan(MAX_TAGS);
    expect(MAX_SESSION_TAGS * 8).toBeLessThanOrEqual(MAX_SESSION_TAG_BYTES);
  });

  it('sessions.tag in many calls stops at MAX_SESSION_TAGS with a BAD_INPUT naming it; nothing is written', async () => {
    const store = tmpStore();
    const id = await finished(store);
    let n = 0;
    while (n + MAX_TAGS <= MAX_SESSION_TAGS) {
      const add = Array.from({ length: MAX_TAGS }, (_, i) => `t${n + i}`);
      expect(await store.tag(id, add)).toHaveLength(n + MAX_TAGS);
      n += MAX_TAGS;
    }
    const before = manifestText(store, id);
    const err = await store.tag(id, Array.from({ length: MAX_TAGS }, (_, i) => `more${i}`)).catch((e) => e);
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(new RegExp(`would have ${n + MAX_TAGS} tags: at most ${MAX_SESSION_TAGS} per session \\(MAX_SESSION_TAGS\\)`));
    expect(manifestText(store, id)).toBe(before);
    // Removing and adding in one call is judged on the result: this stays at the bound.
    expect(await store.tag(id, ['x'], ['t0'])).toHaveLength(n);
  });

  it('the total bytes are bounded too (MAX_SESSION_TAG_BYTES), counting UTF-8 bytes', async () => {
    const store = tmpStore();
    const id = await finished(store);
    // 100-character tags of 3-byte characters: 300 bytes each.
    const big = (i: number) => `${String(i).padStart(3, '0')}${'\u20ac'.repeat(MAX_TAG_CHARS - 3)}`;
    const fit = Math.floor(MAX_SESSION_TAG_BYTES / Buffer.byteLength(big(0)));
    expect(fit).toBeLessThan(MAX_SESSION_TAGS);
    for (let i = 0; i < fit; i += MAX_TAGS) await store.tag(id, Array.from({ length: Math.min(MAX_TAGS, fit - i) }, (_, k) => big(i + k)));
    const err = await store.tag(id, [big(fit)]).catch((e) => e);
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(/tags would total \d+ bytes: at most \d+ per session \(MAX_SESSION_TAG_BYTES\)/);
  });

  it('a new session and a writer update are held to the same bounds', async () => {
    const store = tmpStore();
    const tooMany = Array.from({ length: MAX_SESSION_TAGS + 1 }, (_, i) => `c${i}`);
    await expect(store.create({ kind: 'train', params: {}, environment: ENV, tags: tooMany })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(await store.list()).toEqual([]);
    const w = await store.create({ kind: 'train', params: {}, environment: ENV });
    await expect(w.update({ tags: tooMany })).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringMatching(/MAX_SESSION_TAGS/) });
    await w.finish({});
  });

  it('through the API: a 400 naming the bound, not an INTERNAL invalid manifest', async () => {
    const store = tmpStore();
    const id = await finished(store);
    const jobs = Object.assign(new EventEmitter(), { start: () => { throw new Error('no jobs'); }, cancel: () => false, list: () => [], wait: () => undefined, backend: () => Promise.reject(new Error('none')) });
    const core = new ApiCore({ jobs, dataDirs: [], sessionsRoot: store.root, transport: 'http', version: 'test' }, () => apiHandlers({ store, dataDirs: [] }));
    let last: Awaited<ReturnType<typeof core.call<'sessions.tag'>>> | undefined;
    for (let i = 0; i <= MAX_SESSION_TAGS / MAX_TAGS; i++) {
      last = await core.call('sessions.tag', { id, add: Array.from({ length: MAX_TAGS }, (_, k) => `a${i}-${k}`) });
    }
    expect(last).toMatchObject({ ok: false, error: { code: 'BAD_INPUT', message: expect.stringMatching(/at most 200 per session \(MAX_SESSION_TAGS\)/) } });
  });
});
