/**
 * A session's writer is judged by its pid and its start time: a pid that is alive but belongs to a
 * process that started at another time (a reused pid) does not keep a session 'running' or
 * undeletable (issue 14, Jobs).
 */
import { spawn } from 'node:child_process';
import { promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionStore, type SessionManifest } from '../../../src-main/engine/sessions';
import { isWriterAlive, listedStatus, processStartTime } from '../../../src-main/engine/sessions/manifest-io';
import { ENV, tempRoot } from './helpers';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function rewriteProcess(dir: string, proc: SessionManifest['process']): Promise<void> {
  const file = path.join(dir, 'manifest.json');
  const m = JSON.parse(await fsp.readFile(file, 'utf8')) as SessionManifest;
  m.process = proc;
  await fsp.writeFile(file, JSON.stringify(m, null, 2));
}

describe.runIf(process.platform === 'linux')('session liveness: pid plus process start time', () => {
  it('records the writer\'s start time, read from /proc/<pid>/stat field 22', async () => {
    const root = tempRoot();
    roots.push(root);
    const store = new SessionStore(root);
    const w = await store.create({ kind: 'attack', params: {}, environment: ENV });
    const m = JSON.parse(await fsp.readFile(path.join(w.dir, 'manifest.json'), 'utf8')) as SessionManifest;
    expect(m.process?.pid).toBe(process.pid);
    expect(m.process?.startTime).toBe(processStartTime(process.pid));
    expect(m.process?.startTime).toMatch(/:\d+$/);
    expect((await store.list())[0].status).toBe('running');
    await expect(store.delete(w.id)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('a live pid with another start time (a reused pid) is incomplete and deletable', async () => {
    const root = tempRoot();
    roots.push(root);
    const store = new SessionStore(root);
    const reused = await store.create({ kind: 'attack', params: {}, environment: ENV });
    const own = processStartTime(process.pid)!;
    const ticks = Number(own.split(':').pop());
    await rewriteProcess(reused.dir, { pid: process.pid, hostname: (await store.show(reused.id)).manifest.process!.hostname, startTime: own.replace(/\d+$/, String(ticks + 1)) });
    expect((await store.list()).find((s) => s.id === reused.id)?.status).toBe('incomplete');
    expect((await store.show(reused.id)).status).toBe('incomplete');
    await store.delete(reused.id); // no CONFLICT: the writer is gone
    expect(await store.list()).toEqual([]);
  });

  it('another live process: running while its start time matches, incomplete when it does not', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const pid = child.pid!;
      const startTime = processStartTime(pid)!;
      expect(startTime).toBeDefined();
      expect(isWriterAlive({ pid, startTime })).toBe(true);
      expect(isWriterAlive({ pid, startTime: `${startTime}0` })).toBe(false);
      const base = { status: 'running' as const, updated: new Date().toISOString() };
      const opts = { now: Date.now(), foreignStaleMs: 1000 };
      const hostname = (await import('node:os')).hostname();
      expect(listedStatus({ ...base, process: { pid, hostname, startTime } }, opts)).toBe('running');
      expect(listedStatus({ ...base, process: { pid, hostname, startTime: 'boot:1' } }, opts)).toBe('incomplete');
      child.kill();
      await new Promise((r) => child.once('exit', r));
      expect(listedStatus({ ...base, process: { pid, hostname, startTime } }, opts)).toBe('incomplete');
    } finally {
      child.kill();
    }
  });
});
