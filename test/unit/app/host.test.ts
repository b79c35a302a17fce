/** The browser host over real HTTP and WebSocket: token, host header, validation, events, busy port. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { request } from 'node:http';
import { createApp } from '../../../src-main/host/app';
import { startHost, type Host } from '../../../src-main/host/server';
import { WORKER } from '../helpers';
import { MAX_ARTIFACT_BYTES } from '../../../src-main/api/handlers';
import { collectEnvironment } from '../../../src-main/engine/sessions';

let host: Host;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  app = createApp({ dataDirs: [process.env.ADVLAB_DATA!], sessionsRoot: mkdtempSync(join(tmpdir(), 'advlab-host-')), transport: 'http', workerPath: WORKER });
  host = await startHost({ core: app.core, rendererDir: resolve(import.meta.dirname, '../../../out/renderer'), artifactPath: (id, rel) => app.store.artifactFile(id, rel) });
});
afterAll(async () => {
  await host.close();
  await app.runner.shutdown();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
async function api(method: string, body: unknown, token = host.token): Promise<{ status: number; json(): Promise<Json> }> {
  const r = await fetch(`http://127.0.0.1:${host.port}/api/${method}`, { method: 'POST', headers: { 'x-advlab-token': token, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, json: () => r.json() as Promise<Json> };
}

describe('advlab serve host', () => {
  it('binds to 127.0.0.1 with a random port and a token in the URL', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/);
    expect(host.port).toBeGreaterThan(0);
  });

  it('refuses calls without the token, and pages from other Host names', async () => {
    const res = await api('app.info', {}, 'nope');
    expect(res.status).toBe(401);
    expect((await res.json()).error.message).toMatch(/token/);
    expect((await fetch(`http://127.0.0.1:${host.port}/`)).status).toBe(401);
    // A DNS-rebinding page would arrive with its own Host name (fetch cannot set Host: use http.request).
    const status = await new Promise<number>((ok, fail) => {
      const req = request({ host: '127.0.0.1', port: host.port, path: '/api/app.info', method: 'POST', headers: { host: 'evil.example', 'x-advlab-token': host.token } }, (res) => {
        res.resume();
        ok(res.statusCode ?? 0);
      });
      req.on('error', fail);
      req.end('{}');
    });
    expect(status).toBe(403);
  });

  it('serves the renderer with the token, and never files outside it', async () => {
    const page = await fetch(host.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
    const traversal = await fetch(`http://127.0.0.1:${host.port}/..%2f..%2fpackage.json`);
    expect(await traversal.text()).not.toContain('"devDependencies"');
  });

  it('answers API calls and validates payloads', async () => {
    const info = await (await api('app.info', {})).json();
    expect(info.ok).toBe(true);
    expect(info.result.backend.name).toBe('wasm');
    expect(info.result.transport).toBe('http');
    const malformed = await api('sessions.list', '{not json');
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error.message).toMatch(/Malformed JSON/);
    const unknown = await api('fs.read', {});
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.message).toMatch(/Unknown API method/);
    const invalid = await api('jobs.start', { kind: 'diagnostics', params: { batch: -3 } });
    expect((await invalid.json()).error).toMatchObject({ code: 'BAD_INPUT' });
  });

  it('pushes job events over the WebSocket, and refuses sockets without the token', async () => {
    await expect(new Promise((ok, fail) => {
      const bad = new WebSocket(`ws://127.0.0.1:${host.port}/events?token=wrong`);
      bad.on('open', () => fail(new Error('opened without token')));
      bad.on('error', ok);
    })).resolves.toBeTruthy();
    const ws = new WebSocket(`ws://127.0.0.1:${host.port}/events?token=${host.token}`);
    await new Promise((ok) => ws.on('open', ok));
    const types: string[] = [];
    const finished = new Promise<void>((ok) => ws.on('message', (m) => {
      const e = JSON.parse(String(m));
      types.push(e.type);
      if (e.type === 'job.finished') ok();
    }));
    const started = await (await api('jobs.start', { kind: 'diagnostics', params: { batch: 4, repeats: 1 } })).json();
    expect(started.result.jobId).toMatch(/^job-/);
    await finished;
    expect(types).toContain('job.progress');
    ws.close();
  });

  it('refuses a bad attack parameter with 400 before any worker or session exists', async () => {
    const before = app.runner.list().length;
    const sessions = (await app.store.list()).length;
    const unknownKey = await api('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'pgd', params: { epsilon: 0.3 } } });
    expect(unknownKey.status).toBe(400);
    const body = await unknownKey.json();
    expect(body.error.code).toBe('BAD_INPUT');
    expect(body.error.message).toMatch(/unknown parameter "epsilon" \(accepted: eps, steps, stepSize, randomStart, restarts/);
    const badEps = await api('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', params: { eps: 3 } } });
    expect(badEps.status).toBe(400);
    expect((await badEps.json()).error.message).toMatch(/FGSM \(fgsm\): "eps": .*\(got 3\)/);
    expect(app.runner.list()).toHaveLength(before);
    expect(await app.store.list()).toHaveLength(sessions);
  });

  it('answers an artifact too large to send whole with 413 TOO_LARGE (the file route still serves it)', async () => {
    const w = await app.store.create({ kind: 'attack', params: {}, environment: collectEnvironment({ backend: 'none', tfjsVersion: 'none', advlabVersion: 'test' }) });
    await w.writeArtifact('small.json', '{"a":1}', 'json');
    await w.writeArtifact('big.bin', 'x', 'other');
    await w.finish({});
    truncateSync(join(app.store.dir(w.id), 'artifacts', 'big.bin'), MAX_ARTIFACT_BYTES + 1); // sparse: nothing is written
    const big = await api('sessions.artifact', { id: w.id, path: 'big.bin' });
    expect(big.status).toBe(413);
    expect((await big.json()).error).toMatchObject({ code: 'TOO_LARGE', details: { bytes: MAX_ARTIFACT_BYTES + 1, limit: MAX_ARTIFACT_BYTES } });
    const small = await (await api('sessions.artifact', { id: w.id, path: 'small.json' })).json();
    expect(small.result).toEqual({ base64: Buffer.from('{"a":1}').toString('base64'), mime: 'application/json', bytes: 7 });
    const file = await fetch(`http://127.0.0.1:${host.port}/files/${w.id}/big.bin?token=${host.token}`, { method: 'HEAD' });
    expect(file.status).toBe(200);
  });

  it('reports a busy port clearly', async () => {
    await expect(startHost({ core: app.core, rendererDir: 'out/renderer', port: host.port })).rejects.toThrow(/already in use/);
  });
});
