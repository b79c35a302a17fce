/**
 * KindSessions (src-renderer/lib/kind-sessions.svelte.ts), the audio result panels' session list: the
 * sessions of its kinds merged newest first, the newest finished one shown until another is picked,
 * and a reload whenever the session store changes (app.sessionsVersion). Runs on Svelte's client
 * runtime (the 'runes' project in vitest.config.ts); the transport is replaced by an in-memory store.
 */
import { flushSync } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SessionSummary } from '../../../src-main/engine/sessions';

const store: SessionSummary[] = [];
const calls: unknown[] = [];
let failWith: string | null = null;

vi.mock('../../../src-renderer/lib/transport', () => ({
  api: {
    // sessions.list as the host answers it: one kind, newest first.
    call: async (method: string, params: { filter: { kind: string } }) => {
      calls.push([method, params]);
      if (failWith) throw new Error(failWith);
      if (method !== 'sessions.list') throw new Error(`unexpected ${method}`);
      return store.filter((s) => s.kind === params.filter.kind).sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
    },
    onEvent: () => () => undefined,
  },
}));

const { app } = await import('../../../src-renderer/lib/state.svelte');
const { KindSessions } = await import('../../../src-renderer/lib/kind-sessions.svelte');

function session(id: string, kind: string, minute: number, status: SessionSummary['status']): SessionSummary {
  return { id, kind, status, name: id, created: `2026-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`, tags: [], summary: {} } as unknown as SessionSummary;
}

/** Lets the effects run and the list calls they start settle. */
async function settle(): Promise<void> {
  flushSync();
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
}

let stop: (() => void) | null = null;
function create(kinds: string[]): InstanceType<typeof KindSessions> {
  let k!: InstanceType<typeof KindSessions>;
  stop = $effect.root(() => {
    k = new KindSessions(kinds);
  });
  flushSync(); // runs the root, which creates the class (and its reload effect)
  return k;
}

afterEach(() => {
  stop?.();
  stop = null;
  store.length = 0;
  calls.length = 0;
  failWith = null;
});

describe('KindSessions', () => {
  it('merges its kinds newest first and selects the newest finished session', async () => {
    store.push(
      session('a-old', 'audio-attack', 1, 'finished'),
      session('r-mid', 'audio-robust', 3, 'finished'),
      session('a-new', 'audio-attack', 5, 'running'),
      session('a-failed', 'audio-attack', 4, 'failed'),
      session('u-newest', 'audio-universal', 9, 'finished'),
    );
    const k = create(['audio-attack', 'audio-robust']);
    await settle();
    expect(k.sessions.map((s) => s.id)).toEqual(['a-new', 'a-failed', 'r-mid', 'a-old']);
    expect(k.selected).toBe('r-mid');
    expect(k.error).toBeNull();
  });

  it('keeps the store order of a single kind', async () => {
    store.push(session('u1', 'audio-universal', 1, 'finished'), session('u2', 'audio-universal', 2, 'finished'));
    const k = create(['audio-universal']);
    await settle();
    expect(k.sessions.map((s) => s.id)).toEqual(['u2', 'u1']);
    expect(k.selected).toBe('u2');
  });

  it('reloads when the session store changes, and picks a finished session once there is one', async () => {
    const k = create(['audio-universal']);
    await settle();
    expect(k.sessions).toEqual([]);
    expect(k.selected).toBe('');
    const before = calls.length;

    store.push(session('u1', 'audio-universal', 1, 'running'));
    app.sessionsVersion++;
    await settle();
    expect(calls.length).toBeGreaterThan(before);
    expect(k.sessions.map((s) => s.id)).toEqual(['u1']);
    expect(k.selected).toBe('');

    store[0] = session('u1', 'audio-universal', 1, 'finished');
    app.sessionsVersion++;
    await settle();
    expect(k.selected).toBe('u1');

    // A choice stands: a newer finished session is listed, not selected.
    store.push(session('u2', 'audio-universal', 2, 'finished'));
    app.sessionsVersion++;
    await settle();
    expect(k.sessions.map((s) => s.id)).toEqual(['u2', 'u1']);
    expect(k.selected).toBe('u1');
  });

  it('show(id) reloads and selects that session', async () => {
    store.push(session('u1', 'audio-universal', 1, 'finished'));
    const k = create(['audio-universal']);
    await settle();
    store.push(session('u2', 'audio-universal', 2, 'running'));
    await k.show('u2');
    expect(k.sessions.map((s) => s.id)).toEqual(['u2', 'u1']);
    expect(k.selected).toBe('u2');
  });

  it('says why a reload failed', async () => {
    failWith = 'host gone';
    const k = create(['audio-attack']);
    await settle();
    expect(k.error).toBe('host gone');
  });
});
