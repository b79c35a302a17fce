import { promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore, parseMetricLines, type SessionManifest, type SessionFilter } from '../../../src-main/engine/sessions';
import { mapLimit } from '../../../src-main/engine/core/fs-atomic';
import { fakeManifest, tempRoot, writeFakeSession } from './helpers';

const KINDS = ['train', 'attack', 'sweep', 'audio-attack', 'loss-surface'];
const DATASETS = ['mnist', 'fashion-mnist', 'cifar10', 'fsdd'];
const ARCHS = ['cw-mnist', 'cw-cifar', 'conv1d-speech'];
const STATUSES = ['finished', 'cancelled', 'failed', 'running'] as const;

/** 500 varied sessions written by hand, plus 5 damaged folders. */
function generate(n: number): SessionManifest[] {
  const out: SessionManifest[] = [];
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const created = new Date(t0 + i * 3 * 3600_000 + (i % 7) * 1000); // every 3 h
    const stamp = created.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const kind = KINDS[i % KINDS.length];
    const id = `${stamp}-${kind}-${i.toString(16).padStart(4, '0')}`;
    const status = STATUSES[i % 4];
    out.push(
      fakeManifest(id, {
        kind,
        name: i % 50 === 0 ? `Special run ${i}` : `run ${i}`,
        status,
        created: created.toISOString(),
        updated: created.toISOString(),
        finished: status === 'running' ? undefined : created.toISOString(),
        // 'running' sessions name a live pid on this host (ours), so they list as running.
        process: { pid: process.pid, hostname: os.hostname() },
        tags: [...(i % 3 === 0 ? ['baseline'] : []), ...(i % 10 === 0 ? ['Paper'] : [])],
        datasets: [{ name: DATASETS[i % DATASETS.length] }],
        models: i % 2 === 0 ? [{ id: `20251201-000000-train-${(i % 5).toString().padStart(4, '0')}`, arch: ARCHS[i % ARCHS.length] }] : [{ path: `/models/${ARCHS[i % ARCHS.length]}/model.json` }],
        summary: { index: i, acc: (i % 100) / 100 },
      }),
    );
  }
  return out;
}

function expected(all: SessionManifest[], f: SessionFilter): string[] {
  const since = f.since ? Date.parse(f.since) : -Infinity;
  const until = f.until ? Date.parse(f.until) : Infinity;
  return all
    .filter((m) => {
      const t = Date.parse(m.created);
      if (t < since || t > until) return false;
      if (f.kind && m.kind !== f.kind) return false;
      if (f.status && m.status !== f.status) return false;
      if (f.tag && !m.tags.some((x) => x.toLowerCase() === f.tag!.toLowerCase())) return false;
      if (f.dataset && !m.datasets.some((d) => d.name === f.dataset)) return false;
      if (f.model && !m.models.some((r) => [r.id, r.path, r.arch].some((v) => v?.includes(f.model!)))) return false;
      if (f.text && !m.name.toLowerCase().includes(f.text.toLowerCase())) return false;
      return true;
    })
    .sort((a, b) => Date.parse(b.created) - Date.parse(a.created))
    .map((m) => m.id);
}

describe('listing 500 sessions', () => {
  let root = '';
  let all: SessionManifest[] = [];
  let store: SessionStore;
  beforeAll(async () => {
    root = tempRoot('advlab-list-');
    all = generate(500);
    await mapLimit(all, 16, (m) => writeFakeSession(root, m, undefined, { bare: true }));
    for (let k = 0; k < 5; k++) await writeFakeSession(root, '{ broken', `20250101-00000${k}-train-dead`);
    store = new SessionStore(root);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lists every session newest first, damaged ones included', async () => {
    const list = await store.list();
    expect(list).toHaveLength(505);
    expect(list.slice(0, 500).map((s) => s.id)).toEqual(expected(all, {}));
    expect(list.slice(500).every((s) => s.status === 'damaged' && /not valid JSON/.test(s.damaged!))).toBe(true);
    const s7 = list.find((s) => s.id === all[7].id)!;
    expect(s7).toMatchObject({ kind: all[7].kind, name: 'run 7', status: 'running', summary: { index: 7, acc: 0.07 }, datasets: ['fsdd'], models: ['/models/cw-cifar/model.json'] });
  });

  it('filters by kind, status, tag, dataset, model, time and text', async () => {
    const filters: SessionFilter[] = [
      { kind: 'attack' },
      { status: 'failed' },
      { status: 'running', kind: 'train' },
      { tag: 'paper' },
      { tag: 'baseline', dataset: 'cifar10' },
      { model: 'cw-cifar' },
      { model: '20251201-000000-train-0003' },
      { since: '2026-02-01T00:00:00Z', until: '2026-02-10T00:00:00Z' },
      { since: '2026-03-01T00:00:00Z', kind: 'sweep', status: 'cancelled' },
      { text: 'special' },
      { kind: 'no-such-kind' },
    ];
    for (const f of filters) {
      const got = (await store.list(f)).map((s) => s.id);
      const want = expected(all, f);
      expect(got, JSON.stringify(f)).toEqual(want);
    }
    // Sanity: the filters above are not all trivially empty or full.
    expect(expected(all, { tag: 'paper' })).toHaveLength(50);
    expect(expected(all, { model: 'cw-cifar' }).length).toBeGreaterThan(100);
    // A bare date as `until` includes that whole day.
    const day = (await store.list({ since: '2026-01-02', until: '2026-01-02' })).map((s) => s.id);
    expect(day).toEqual(expected(all, { since: '2026-01-02T00:00:00Z', until: '2026-01-02T23:59:59.999Z' }));
    expect(day).toHaveLength(8);
    await expect(store.list({ since: 'last tuesday' })).rejects.toThrow(/not an ISO date/);
  });
});

describe('listing after changes', () => {
  it('sees renames, in-place edits, new damage and removed folders on the next list', async () => {
    const root = tempRoot('advlab-list-cache-');
    try {
      const ms = generate(6);
      for (const m of ms) await writeFakeSession(root, m);
      const store = new SessionStore(root);
      expect((await store.list()).map((s) => s.name).sort()).toEqual(ms.map((m) => m.name).sort());
      await store.rename(ms[1].id, 'renamed through the store');
      // Another tool edits a manifest in place (same inode).
      await fsp.writeFile(path.join(root, ms[2].id, 'manifest.json'), JSON.stringify({ ...ms[2], name: 'edited in place', tags: ['x'] }));
      await fsp.writeFile(path.join(root, ms[3].id, 'manifest.json'), '{"oops"');
      await fsp.rm(path.join(root, ms[4].id), { recursive: true });
      const byId = new Map((await store.list()).map((s) => [s.id, s]));
      expect(byId.size).toBe(5);
      expect(byId.get(ms[1].id)?.name).toBe('renamed through the store');
      expect(byId.get(ms[2].id)).toMatchObject({ name: 'edited in place', tags: ['x'] });
      expect(byId.get(ms[3].id)?.status).toBe('damaged');
      expect(byId.has(ms[4].id)).toBe(false);
      expect(Object.isFrozen(byId.get(ms[0].id)?.tags)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('metric files', () => {
  it('keeps good rows, reports bad middle lines and a torn last line', () => {
    const text = '{"step":1,"loss":2}\nnot json\n[1,2]\n\n{"step":2,"loss":1}\n{"step":3,"lo';
    const r = parseMetricLines('train', text);
    expect(r.rows).toEqual([
      { step: 1, loss: 2 },
      { step: 2, loss: 1 },
    ]);
    expect(r.torn).toBe(true);
    expect(r.skipped.map((s) => s.line)).toEqual([2, 3, 6]);
    expect(r.skipped[0].problem).toMatch(/not JSON/);
    expect(r.skipped[1].problem).toMatch(/not a JSON object/);
    expect(r.skipped[2].problem).toMatch(/torn last line/);
    const clean = parseMetricLines('t', '{"a":1}\r\n{"a":2}\n');
    expect(clean).toEqual({ series: 't', rows: [{ a: 1 }, { a: 2 }], skipped: [], torn: false });
    expect(parseMetricLines('t', '').rows).toEqual([]);
  });
});

describe('the persisted list index (<root>/.index.json)', () => {
  it('a new store trusts an entry only while the manifest is unchanged; a damaged index is rebuilt', async () => {
    const root = tempRoot('advlab-index-');
    try {
      const ms = Array.from({ length: 3 }, (_, i) => fakeManifest(`20260101-00000${i}-train-000${i}`, { name: `run ${i}` }));
      for (const m of ms) await writeFakeSession(root, m);
      expect((await new SessionStore(root).list()).map((s) => s.name).sort()).toEqual(['run 0', 'run 1', 'run 2']);
      const file = path.join(root, '.index.json');
      const index = JSON.parse(await fsp.readFile(file, 'utf8'));
      expect(Object.keys(index.entries).sort()).toEqual(ms.map((m) => m.id).sort());

      // The index is what a new store reads for unchanged manifests (proved by planting a name only it has).
      index.entries[ms[0].id].parsed.base.name = 'from the index';
      await fsp.writeFile(file, JSON.stringify(index));
      expect((await new SessionStore(root).list()).find((s) => s.id === ms[0].id)!.name).toBe('from the index');

      // A changed manifest (a new file, as every atomic write makes) is read again.
      await writeFakeSession(root, { ...ms[0], name: 'renamed on disk' });
      expect((await new SessionStore(root).list()).find((s) => s.id === ms[0].id)!.name).toBe('renamed on disk');

      // A removed session leaves the index; a damaged index is ignored and rewritten.
      await fsp.rm(path.join(root, ms[2].id), { recursive: true });
      await new SessionStore(root).list();
      expect(Object.keys(JSON.parse(await fsp.readFile(file, 'utf8')).entries)).not.toContain(ms[2].id);
      await fsp.writeFile(file, '{"version": 1, "entries": {"x": ');
      expect(await new SessionStore(root).list()).toHaveLength(2);
      expect(Object.keys(JSON.parse(await fsp.readFile(file, 'utf8')).entries)).toHaveLength(2);
      // Entries that do not look like list entries are ignored, not trusted.
      await fsp.writeFile(file, JSON.stringify({ version: 1, entries: { [ms[1].id]: { key: 'k', parsed: { damaged: false, base: { id: 'other' } } } } }));
      expect((await new SessionStore(root).list()).map((s) => s.name).sort()).toEqual(['renamed on disk', 'run 1']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
