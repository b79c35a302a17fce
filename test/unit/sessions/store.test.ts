import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { SessionStore, isPidAlive, resolveSessionsRoot, type SessionManifest } from '../../../src-main/engine/sessions';
import { ENV, fakeManifest, tempRoot, writeFakeSession } from './helpers';

const roots: string[] = [];
function newRoot(): string {
  const r = tempRoot();
  roots.push(r);
  return r;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function readJson(file: string): Promise<SessionManifest> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as SessionManifest;
}

function code(e: unknown): string | undefined {
  return e instanceof AdvlabError ? e.code : undefined;
}

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  expect(r.status).toBe(0);
  expect(isPidAlive(r.pid!)).toBe(false);
  return r.pid!;
}

describe('SessionStore: create, write, finish, list, show', () => {
  it('writes a session folder that reads back exactly', async () => {
    const root = newRoot();
    const changes: string[] = [];
    const store = new SessionStore(root, { onChange: (id) => changes.push(id) });
    const w = await store.create({
      kind: 'train',
      name: 'CW net on MNIST',
      params: { epochs: 2, lr: 0.01, nested: { a: [1, 2] } },
      datasets: [{ name: 'mnist', split: 'first:8000', sha256: 'b'.repeat(64) }],
      models: [{ path: '/models/cw/model.json', arch: 'cw-mnist' }],
      tags: ['baseline', ' baseline ', 'mnist'],
      environment: ENV,
    });
    expect(w.id).toMatch(/^\d{8}-\d{6}-train-[0-9a-f]{4}$/);
    expect(w.dir).toBe(path.join(root, w.id));

    // Not awaited one by one: the writer's queue must keep call order.
    const appends = [0, 1, 2, 3, 4].map((step) => w.appendMetric('train', { step, epoch: 0, loss: 1 / (step + 1) }));
    await Promise.all(appends);
    await w.appendMetric('eval', { epoch: 0, accuracy: 0.5, diverged: NaN });

    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 255]);
    const entry = await w.writeArtifact('images/adv-0001.png', png, undefined, 'first adversarial example');
    expect(entry).toMatchObject({ path: 'images/adv-0001.png', kind: 'image', bytes: png.length, sha256: createHash('sha256').update(png).digest('hex') });
    await w.writeArtifact('table.csv', 'eps,acc\n0.1,0.5\n');
    // A library writing a file itself, then registering it.
    await fsp.writeFile(w.artifactPath('model/model.json'), '{"modelTopology":{}}');
    await w.registerArtifact('model/model.json');
    await expect(w.writeArtifact('../escape.txt', 'x')).rejects.toThrow(/"\.\."/);
    expect(() => w.artifactPath('/etc/passwd')).toThrow(/relative/);

    const before = await store.list();
    expect(before).toHaveLength(1);
    expect(before[0].status).toBe('running');

    const m = await w.finish({ testAccuracy: 0.991, loss: Infinity, note: 'ok' });
    expect(m.status).toBe('finished');
    expect(Date.parse(m.finished!)).toBeGreaterThanOrEqual(Date.parse(m.created));
    expect(Date.parse(m.finished!)).toBeLessThanOrEqual(Date.now());
    await expect(w.appendMetric('train', { step: 9 })).rejects.toSatisfy((e: unknown) => code(e) === 'CONFLICT');

    const list = await store.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: w.id,
      kind: 'train',
      name: 'CW net on MNIST',
      status: 'finished',
      tags: ['baseline', 'mnist'],
      summary: { testAccuracy: 0.991, loss: null, note: 'ok' },
      datasets: ['mnist'],
      models: ['/models/cw/model.json'],
    });
    expect(list[0].damaged).toBeUndefined();

    const shown = await store.show(w.id);
    expect(shown.status).toBe('finished');
    expect(shown.series).toEqual(['eval', 'train']);
    expect(shown.manifest.params).toEqual({ epochs: 2, lr: 0.01, nested: { a: [1, 2] } });
    expect(shown.manifest.environment).toEqual(ENV);
    expect(shown.manifest.process?.pid).toBe(process.pid);
    expect(shown.notes).toBeNull();
    expect(shown.artifacts.map((a) => [a.path, a.kind, a.bytes, a.listed])).toEqual([
      ['images/adv-0001.png', 'image', png.length, true],
      ['table.csv', 'table', 16, true],
      ['model/model.json', 'model', 20, true],
    ]);
    expect(new Uint8Array(await store.readArtifact(w.id, 'images/adv-0001.png'))).toEqual(png);
    await expect(store.artifactFile(w.id, '../manifest.json')).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_INPUT');

    const train = await store.readMetrics(w.id, 'train');
    expect(train.rows.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    expect(train.torn).toBe(false);
    expect(train.skipped).toEqual([]);
    expect((await store.readMetrics(w.id, 'eval')).rows).toEqual([{ epoch: 0, accuracy: 0.5, diverged: null }]);
    await expect(store.readMetrics(w.id, 'nope')).rejects.toSatisfy((e: unknown) => code(e) === 'NOT_FOUND');

    // The files on disk are plain JSON that other tools can read.
    const onDisk = await readJson(path.join(w.dir, 'manifest.json'));
    expect(onDisk.schemaVersion).toBe(1);
    expect(onDisk.status).toBe('finished');
    expect(await fsp.readFile(path.join(w.dir, 'metrics', 'train.jsonl'), 'utf8')).toBe(
      [0, 1, 2, 3, 4].map((s) => JSON.stringify({ step: s, epoch: 0, loss: 1 / (s + 1) })).join('\n') + '\n',
    );
    expect(changes.length).toBeGreaterThan(3);
    expect(new Set(changes)).toEqual(new Set([w.id]));
  });

  it('records cancel and fail, keeping what was written', async () => {
    const store = new SessionStore(newRoot());
    const a = await store.create({ kind: 'attack', params: {}, environment: ENV });
    await a.appendMetric('progress', { step: 1 });
    await a.writeArtifact('adv.png', new Uint8Array([1, 2, 3]));
    await a.cancel({ examplesDone: 1 });
    const b = await store.create({ kind: 'sweep', params: {}, environment: ENV });
    await b.fail(new AdvlabError('BAD_FILE', '/x/model.json: truncated'));
    const byId = new Map((await store.list()).map((s) => [s.id, s]));
    expect(byId.get(a.id)).toMatchObject({ status: 'cancelled', summary: { examplesDone: 1 } });
    expect(byId.get(b.id)?.status).toBe('failed');
    expect((await store.show(b.id)).manifest.error).toEqual({ code: 'BAD_FILE', message: '/x/model.json: truncated' });
    const shownA = await store.show(a.id);
    expect(shownA.artifacts.map((x) => x.path)).toEqual(['adv.png']);
    expect((await store.readMetrics(a.id, 'progress')).rows).toEqual([{ step: 1 }]);
  });

  it('lists a session whose writer died as incomplete, without rewriting it', async () => {
    const root = newRoot();
    const store = new SessionStore(root);
    const live = await store.create({ kind: 'train', params: {}, environment: ENV });
    const w = await store.create({ kind: 'attack', params: { eps: 0.3 }, environment: ENV });
    await w.appendMetric('progress', { step: 1, loss: 0.5 });
    await w.appendMetric('progress', { step: 2, loss: 0.4 });
    await w.writeArtifact('adv/0.png', new Uint8Array([9, 9]));

    // The crash: the writing process (now a dead pid) left the manifest 'running', a half-written
    // temp file from an interrupted atomic write, and a torn metrics line.
    const manifestFile = path.join(w.dir, 'manifest.json');
    const m = await readJson(manifestFile);
    m.process = { pid: deadPid(), hostname: m.process!.hostname };
    await fsp.writeFile(manifestFile, JSON.stringify(m, null, 2));
    const intact = await fsp.readFile(manifestFile, 'utf8');
    await fsp.writeFile(path.join(w.dir, '.manifest.json.1a2b3c4d5e6f.tmp'), intact.slice(0, 40));
    await fsp.writeFile(path.join(w.dir, 'artifacts', 'adv', '.1.png.0011aabbccdd.tmp'), new Uint8Array([1]));
    await fsp.appendFile(path.join(w.dir, 'metrics', 'progress.jsonl'), '{"step":3,"lo');

    const list = await store.list();
    const byId = new Map(list.map((s) => [s.id, s]));
    expect(byId.get(w.id)?.status).toBe('incomplete');
    expect(byId.get(live.id)?.status).toBe('running');
    expect(await fsp.readFile(manifestFile, 'utf8')).toBe(intact); // listing never rewrites
    expect((await store.list({ status: 'incomplete' })).map((s) => s.id)).toEqual([w.id]);

    const shown = await store.show(w.id);
    expect(shown.status).toBe('incomplete');
    expect(shown.manifest.params).toEqual({ eps: 0.3 });
    expect(shown.artifacts.map((a) => a.path)).toEqual(['adv/0.png']); // temp files are not artifacts

    const metrics = await store.readMetrics(w.id, 'progress');
    expect(metrics.rows).toEqual([
      { step: 1, loss: 0.5 },
      { step: 2, loss: 0.4 },
    ]);
    expect(metrics.torn).toBe(true);
    expect(metrics.skipped).toHaveLength(1);
    expect(metrics.skipped[0].line).toBe(3);
    expect(metrics.skipped[0].problem).toMatch(/torn/);

    // A live session cannot be deleted; the dead one can.
    await expect(store.delete(live.id)).rejects.toSatisfy((e: unknown) => code(e) === 'CONFLICT');
    await store.delete(w.id);
    await live.finish();
  });

  it('judges sessions from another host by their heartbeat', async () => {
    const root = newRoot();
    const now = Date.parse('2026-06-01T12:00:00Z');
    const store = new SessionStore(root, { now: () => new Date(now), foreignStaleMs: 3600_000 });
    const other = { pid: 1, hostname: 'some-other-host.invalid' };
    await writeFakeSession(root, fakeManifest('20260601-100000-train-aaaa', { status: 'running', finished: undefined, process: other, updated: '2026-06-01T11:30:00Z' }));
    await writeFakeSession(root, fakeManifest('20260601-090000-train-bbbb', { status: 'running', finished: undefined, process: other, updated: '2026-06-01T10:00:00Z' }));
    const byId = new Map((await store.list()).map((s) => [s.id, s.status]));
    expect(byId.get('20260601-100000-train-aaaa')).toBe('running');
    expect(byId.get('20260601-090000-train-bbbb')).toBe('incomplete');
  });

  it('lists damaged folders with the reason and still loads the others', async () => {
    const root = newRoot();
    const store = new SessionStore(root);
    const good: string[] = [];
    for (let i = 0; i < 3; i++) {
      const w = await store.create({ kind: 'train', name: `good ${i}`, params: { i }, environment: ENV });
      await w.finish({ i });
      good.push(w.id);
    }
    const truncated = '20260102-000000-train-0001';
    await writeFakeSession(root, JSON.stringify(fakeManifest(truncated)).slice(0, 50), truncated);
    const missing = '20260102-000000-train-0002';
    await fsp.mkdir(path.join(root, missing, 'metrics'), { recursive: true });
    const invalid = '20260102-000000-train-0003';
    await writeFakeSession(root, { ...fakeManifest(invalid), status: 'exploded' as never, created: 'yesterday' });
    const newer = '20260102-000000-train-0004';
    await writeFakeSession(root, { ...fakeManifest(newer), schemaVersion: 7, somethingNew: true } as never);
    const mismatch = '20260102-000000-train-0005';
    await writeFakeSession(root, fakeManifest('20260102-000000-train-9999'), mismatch);
    await writeFakeSession(root, fakeManifest('x'), 'not a valid id');
    await fsp.writeFile(path.join(root, 'stray-file.txt'), 'ignored: not a folder');
    const newerBytes = await fsp.readFile(path.join(root, newer, 'manifest.json'), 'utf8');

    const list = await store.list();
    expect(list).toHaveLength(9);
    const byId = new Map(list.map((s) => [s.id, s]));
    for (const id of good) expect(byId.get(id)?.status).toBe('finished');
    const reason = (id: string) => byId.get(id)?.damaged ?? '';
    for (const id of [truncated, missing, invalid, newer, mismatch, 'not a valid id']) expect(byId.get(id)?.status).toBe('damaged');
    expect(reason(truncated)).toMatch(new RegExp(`^${truncated}/manifest\\.json: not valid JSON`));
    expect(reason(missing)).toBe(`${missing}/manifest.json: missing (no manifest in this session folder)`);
    expect(reason(invalid)).toMatch(/manifest\.json: invalid manifest: .*status.*created|manifest\.json: invalid manifest: .*created.*status/s);
    expect(reason(newer)).toMatch(/schema version 7; this AdvLab reads up to version 1/);
    expect(byId.get(newer)?.unsupported).toBe(true);
    expect(byId.get(truncated)?.unsupported).toBeUndefined();
    expect(reason(mismatch)).toMatch(/does not match the folder name/);
    expect(reason('not a valid id')).toMatch(/not a valid session id/);
    expect(byId.get(truncated)?.created).toBe('2026-01-02T00:00:00.000Z'); // from the id

    expect((await store.list({ status: 'damaged' })).length).toBe(6);
    expect((await store.list({ kind: 'train' })).length).toBe(3); // damaged kinds are unknown

    await expect(store.show(truncated)).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_FILE');
    await expect(store.show(newer)).rejects.toSatisfy((e: unknown) => code(e) === 'UNSUPPORTED');
    await expect(store.rename(newer, 'mine now')).rejects.toSatisfy((e: unknown) => code(e) === 'UNSUPPORTED');
    await expect(store.tag(invalid, ['x'])).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_FILE');
    expect(await fsp.readFile(path.join(root, newer, 'manifest.json'), 'utf8')).toBe(newerBytes); // never rewritten
    // A damaged session can still be moved to the trash.
    await store.delete(truncated);
    expect((await store.list()).some((s) => s.id === truncated)).toBe(false);
  });

  it('renames, tags and keeps notes; a rename during a run survives the writer', async () => {
    const store = new SessionStore(newRoot());
    const w = await store.create({ kind: 'train', params: {}, environment: ENV, tags: ['a'] });
    await store.rename(w.id, '  My run  ');
    await w.update({ summary: { epoch: 1 }, params: { extra: true } });
    await w.appendMetric('train', { step: 1 });
    expect(await store.tag(w.id, ['b', 'c', 'b'], ['a'])).toEqual(['b', 'c']);
    await w.finish({ acc: 0.5 });
    const m = (await store.show(w.id)).manifest;
    expect(m.name).toBe('My run');
    expect(m.tags).toEqual(['b', 'c']);
    expect(m.summary).toEqual({ epoch: 1, acc: 0.5 });
    expect(m.params).toEqual({ extra: true });
    await expect(store.rename(w.id, '   ')).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_INPUT');

    await store.setNotes(w.id, '# Notes\nThe loss plateaued.\n');
    expect(await store.notes(w.id)).toBe('# Notes\nThe loss plateaued.\n');
    expect((await store.show(w.id)).notes).toMatch(/plateaued/);
    await store.setNotes(w.id, '');
    expect(await store.notes(w.id)).toBeNull();

    await expect(store.show('../etc')).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_INPUT');
    await expect(store.show('.trash')).rejects.toSatisfy((e: unknown) => code(e) === 'BAD_INPUT');
    await expect(store.show('20990101-000000-train-0000')).rejects.toSatisfy((e: unknown) => code(e) === 'NOT_FOUND');
  });

  it('deletes into the trash, restores, and purges by age', async () => {
    const root = newRoot();
    let clock = Date.parse('2026-03-01T00:00:00Z');
    const store = new SessionStore(root, { now: () => new Date(clock) });
    const a = await store.create({ kind: 'train', params: {}, environment: ENV });
    await a.writeArtifact('w.bin', new Uint8Array([1, 2, 3]));
    await a.finish();
    const b = await store.create({ kind: 'attack', params: {}, environment: ENV });
    await b.finish();

    await store.delete(a.id);
    expect((await store.list()).map((s) => s.id)).toEqual([b.id]);
    expect(await store.listTrash()).toEqual([{ id: a.id, deletedAt: new Date(clock).toISOString() }]);
    await expect(store.show(a.id)).rejects.toThrow(/in the trash/);

    await store.restore(a.id);
    expect((await store.list()).map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
    expect(new Uint8Array(await store.readArtifact(a.id, 'w.bin'))).toEqual(new Uint8Array([1, 2, 3]));
    await expect(store.restore(a.id)).rejects.toSatisfy((e: unknown) => code(e) === 'NOT_FOUND');

    await store.delete(a.id);
    clock += 1000;
    await store.delete(b.id);
    clock += 500;
    expect(await store.purgeTrash(1000)).toEqual([a.id]); // a: 1.5 s old, b: 0.5 s old
    expect((await store.listTrash()).map((t) => t.id)).toEqual([b.id]);
    await expect(store.restore(a.id)).rejects.toSatisfy((e: unknown) => code(e) === 'NOT_FOUND');
    expect(await store.purgeTrash(0)).toEqual([b.id]);
    expect(await store.list()).toEqual([]);
  });
});

describe('SessionStore: manifest integrity', () => {
  it('refreshes the heartbeat from appendMetric at most every heartbeatMs', async () => {
    let clock = Date.parse('2026-05-01T00:00:00Z');
    const store = new SessionStore(newRoot(), { now: () => new Date(clock), heartbeatMs: 1000 });
    const w = await store.create({ kind: 'train', params: {}, environment: ENV });
    const updated = async () => (await readJson(path.join(w.dir, 'manifest.json'))).updated;
    clock += 500;
    await w.appendMetric('train', { step: 1 });
    expect(await updated()).toBe('2026-05-01T00:00:00.000Z');
    clock += 600;
    await w.appendMetric('train', { step: 2 });
    expect(await updated()).toBe('2026-05-01T00:00:01.100Z');
    await w.finish();
  });

  it('keeps fields it does not know when rewriting, and refuses an invalid new session', async () => {
    const root = newRoot();
    const store = new SessionStore(root);
    const id = '20260101-000000-train-c0de';
    await writeFakeSession(root, { ...fakeManifest(id), otherTool: { run: 42 }, environment: { ...ENV, gpu: 'none' } } as SessionManifest);
    await store.rename(id, 'renamed');
    const m = (await readJson(path.join(root, id, 'manifest.json'))) as SessionManifest & { otherTool?: unknown };
    expect(m.name).toBe('renamed');
    expect(m.otherTool).toEqual({ run: 42 });
    expect((m.environment as Record<string, unknown>).gpu).toBe('none');

    const bad = { ...ENV, cpus: -1 };
    const err = await store.create({ kind: 'train', params: {}, environment: bad }).catch((e: unknown) => e);
    expect(code(err)).toBe('BAD_INPUT');
    expect((err as Error).message).toMatch(/environment\.cpus/);
    await expect(store.create({ kind: 'train', params: { f: 1n } as never, environment: ENV })).rejects.toThrow(/not JSON-serialisable/);
    expect((await store.list()).map((s) => s.id)).toEqual([id]); // nothing half-created
  });
});

describe('resolveSessionsRoot', () => {
  it('prefers --sessions, then ADVLAB_SESSIONS, then <appData>/sessions', () => {
    const appDataDir = '/home/u/.advlab';
    expect(resolveSessionsRoot({ cliSessions: '/cli/s', env: { ADVLAB_SESSIONS: '/env/s' }, appDataDir })).toBe(path.resolve('/cli/s'));
    expect(resolveSessionsRoot({ cliSessions: '', env: { ADVLAB_SESSIONS: '/env/s' }, appDataDir })).toBe(path.resolve('/env/s'));
    expect(resolveSessionsRoot({ env: { ADVLAB_SESSIONS: '  ' }, appDataDir })).toBe(path.resolve(appDataDir, 'sessions'));
    expect(resolveSessionsRoot({ cliSessions: 'rel/dir', env: {}, appDataDir })).toBe(path.resolve('rel/dir'));
  });
});
