/**
 * The cluster in Settings (settings.set / settings.get) with a real nats-server: a cluster is tried
 * before it is saved (wrong credentials are refused, nothing saved), anonymous access is refused by
 * the schema, the secret is kept in settings.json (owner-only) and never returned, the next app reads
 * it, a --queue flag wins, and null goes back to this machine.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, resolveAppOptions } from '../../../src-main/host/app';
import { DATA, WORKER } from '../helpers';
import { startNatsServer, type NatsTestServer } from './nats-server';

let home: string;
let server: NatsTestServer;
const apps: ReturnType<typeof createApp>[] = [];
const make = (extra: Parameters<typeof createApp>[0] extends infer O ? Partial<O> : never = {}) => {
  const app = createApp({ ...resolveAppOptions([], { ADVLAB_DATA: DATA, ADVLAB_HOME: home }), workerPath: WORKER, transport: 'http', ...extra });
  apps.push(app);
  return app;
};

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'advlab-cluster-settings-'));
  server = await startNatsServer();
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.runner.shutdown()));
  await server.dispose();
  await rm(home, { recursive: true, force: true });
});

describe('settings: the cluster', () => {
  it('refuses a cluster it cannot reach or without credentials; saves a good one without ever returning its secret', async () => {
    const app = make();
    const clusterNow = async () => { const r = await app.core.call('settings.get'); return r.ok ? r.result.cluster : 'error'; };
    expect(await clusterNow()).toBeUndefined();
    const anonymous = await app.core.call('settings.set', { cluster: { url: server.url } });
    expect(anonymous).toMatchObject({ ok: false, error: { code: 'BAD_INPUT', message: expect.stringMatching(/needs credentials/) } });
    const wrong = await app.core.call('settings.set', { cluster: { url: server.url, token: 'wrong' } });
    expect(wrong).toMatchObject({ ok: false, error: { code: 'BAD_INPUT', message: expect.stringMatching(/Authorization/) } });
    expect(await clusterNow()).toBeUndefined();

    const good = await app.core.call('settings.set', { cluster: { url: server.url, token: server.token } });
    expect(good).toMatchObject({ ok: true, result: { cluster: { url: server.url, credentials: 'token', from: 'settings' } } });
    expect(JSON.stringify(good)).not.toContain(server.token);
    const file = join(home, 'settings.json');
    expect(JSON.parse(readFileSync(file, 'utf8')).cluster).toEqual({ url: server.url, token: server.token });
    expect(statSync(file).mode & 0o077).toBe(0);

    // The next app reads it; a --queue flag wins for its run.
    expect(await make().core.call('settings.get')).toMatchObject({ result: { cluster: { url: server.url, from: 'settings' } } });
    const flagged = make({ cluster: { url: 'nats://other:4222', user: 'u', pass: 'p' } });
    expect(await flagged.core.call('settings.get')).toMatchObject({ result: { cluster: { url: 'nats://other:4222', credentials: 'user', user: 'u', from: 'flag' } } });

    // CLI job commands leave the saved cluster aside (a cluster only with --queue).
    const cli = make({ ignoreSavedCluster: true });
    const cliReport = await cli.core.call('settings.get');
    expect(cliReport.ok && cliReport.result.cluster).toBeUndefined();

    const cleared = await app.core.call('settings.set', { cluster: null });
    expect(cleared.ok && cleared.result.cluster).toBeUndefined();
    expect(JSON.parse(readFileSync(file, 'utf8')).cluster).toBeUndefined();
  });
});
