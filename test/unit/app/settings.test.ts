/**
 * Settings through the API (settings.get / settings.set): the pool size is saved in the app data
 * folder's settings.json, applied at once (pool and default jobs at once), read by the next app, and a
 * --workers flag or ADVLAB_WORKERS wins over it; out-of-range values are refused by the schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, resolveAppOptions } from '../../../src-main/host/app';
import { defaultPoolSize, MAX_POOL_WORKERS } from '../../../src-main/jobs/pool';
import { DATA, WORKER } from '../helpers';

let home: string;
const apps: ReturnType<typeof createApp>[] = [];
const make = (args: string[] = [], env: NodeJS.ProcessEnv = {}) => {
  const app = createApp({ ...resolveAppOptions(args, { ADVLAB_DATA: DATA, ADVLAB_HOME: home, ...env }), workerPath: WORKER, transport: 'http' });
  apps.push(app);
  return app;
};

beforeAll(async () => { home = await mkdtemp(join(tmpdir(), 'advlab-settings-')); });
afterAll(async () => {
  await Promise.all(apps.map((a) => a.runner.shutdown()));
  await rm(home, { recursive: true, force: true });
});

describe('settings: the shard pool size', () => {
  it('defaults to one worker per core; a saved value applies now, persists, and the next app reads it', async () => {
    const app = make();
    const first = await app.core.call('settings.get');
    expect(first).toEqual({ ok: true, result: { saved: { workers: null }, persistent: true, workers: { value: defaultPoolSize(), from: 'default', default: defaultPoolSize(), max: MAX_POOL_WORKERS } } });
    const set = await app.core.call('settings.set', { workers: 3 });
    expect(set.ok && set.result.workers).toEqual({ value: 3, from: 'settings', default: defaultPoolSize(), max: MAX_POOL_WORKERS });
    expect(app.runner.workers).toBe(3);
    expect(app.runner.pool?.size).toBe(3);
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8'))).toEqual({ workers: 3 });
    const next = make();
    expect(next.runner.workers).toBe(3);
    expect((await next.core.call('settings.get')).ok).toBe(true);
    const cleared = await next.core.call('settings.set', { workers: null });
    expect(cleared.ok && cleared.result.workers.from).toBe('default');
    expect(next.runner.workers).toBe(defaultPoolSize());
  });

  it('--workers and ADVLAB_WORKERS win over the saved value (saved, not applied)', async () => {
    await make().core.call('settings.set', { workers: 4 });
    const flagged = make(['--workers', '2']);
    expect(flagged.runner.workers).toBe(2);
    const r = await flagged.core.call('settings.set', { workers: 5 });
    expect(r.ok && r.result).toMatchObject({ saved: { workers: 5 }, workers: { value: 2, from: 'flag' } });
    expect(flagged.runner.workers).toBe(2);
    const byEnv = make([], { ADVLAB_WORKERS: '1' });
    expect(byEnv.runner.workers).toBe(1);
    expect((await byEnv.core.call('settings.get')).ok && (await byEnv.core.call('settings.get') as { result: { workers: { from: string } } }).result.workers.from).toBe('env');
  });

  it('refuses values outside 1..MAX_POOL_WORKERS and unknown fields', async () => {
    const app = make();
    for (const bad of [0, MAX_POOL_WORKERS + 1, 1.5]) {
      const r = await app.core.call('settings.set', { workers: bad });
      expect(r.ok ? null : r.error.code).toBe('BAD_INPUT');
    }
    const unknown = await app.core.call('settings.set', { workers: 1, cluster: 'x' } as never);
    expect(unknown.ok).toBe(false);
    expect(() => resolveAppOptions(['--workers', '0'], { ADVLAB_DATA: DATA })).toThrow(/--workers must be an integer from 1 to 64/);
    expect(() => resolveAppOptions([], { ADVLAB_DATA: DATA, ADVLAB_WORKERS: 'two' })).toThrow(/ADVLAB_WORKERS must be an integer from 1 to 64/);
  });

  it('a host without an app data folder keeps settings in memory', async () => {
    const app = createApp({ dataDirs: [DATA], sessionsRoot: join(home, 's'), transport: 'http', workerPath: WORKER });
    apps.push(app);
    const r = await app.core.call('settings.set', { workers: 1 });
    expect(r.ok && r.result.persistent).toBe(false);
    expect(app.runner.workers).toBe(1);
    expect(existsSync(join(home, 's', 'settings.json'))).toBe(false);
  });
});
