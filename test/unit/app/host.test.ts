/** The browser host over real HTTP and WebSocket: token, host header, validation, events, busy port. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { request } from 'node:http';
import { createApp } from '../../../src-main/host/app';
import { startHost, type Host } from '../../../src-main/host/server';
import { WORKER } from '../helpers';

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
    })).resolves.toMatchObject({ message: expect.stringMatching(/Unexpected server response: 401/) });
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

  it('reports a busy port clearly', async () => {
    await expect(startHost({ core: app.core, rendererDir: 'out/renderer', port: host.port })).rejects.toThrow(/already in use/);
  });
});
