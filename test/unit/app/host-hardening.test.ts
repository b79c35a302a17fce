/**
 * The browser host against hostile requests (issue 14): malformed %-escapes, oversized bodies and
 * deeply nested JSON are 4xx with the limit named; WebSocket upgrades from another origin are
 * refused; an INTERNAL error never sends its stack trace to the client.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { createApp } from '../../../src-main/host/app';
import { jsonDepth, MAX_BODY_BYTES, MAX_JSON_DEPTH, startHost, type Host } from '../../../src-main/host/server';
import { WORKER } from '../helpers';

let host: Host;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  app = createApp({ dataDirs: [process.env.ADVLAB_DATA!], sessionsRoot: mkdtempSync(join(tmpdir(), 'advlab-host-h-')), transport: 'http', workerPath: WORKER });
  host = await startHost({ core: app.core, rendererDir: resolve(import.meta.dirname, '../../../out/renderer'), artifactPath: (id, rel) => app.store.artifactFile(id, rel) });
});
afterAll(async () => {
  await host.close();
  await app.runner.shutdown();
});

/** A raw request (fetch normalises paths and cannot send a body without reading it first). */
function raw(path: string, opts: { method?: string; body?: string | Buffer; headers?: Record<string, string | number> } = {}): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: host.port, path, method: opts.method ?? 'GET', headers: { 'x-advlab-token': host.token, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(opts.body);
  });
}

describe('host hardening', () => {
  it('malformed %-escapes in any path are 400, not 500', async () => {
    for (const path of ['/%E0%A4%A', '/files/%zz/x.png', '/files/abc/%E0%A4%A', `/assets/%C0%AF`, '/%']) {
      const r = await raw(`${path}${path.includes('?') ? '&' : '?'}token=${host.token}`);
      expect(r.status, path).toBe(400);
      expect(r.text).toMatch(/Malformed %-escape/);
    }
  });

  it(`a body over MAX_BODY_BYTES is 413 naming the limit, declared or not`, async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 1024, 0x20);
    const declared = await raw('/api/sessions.list', { method: 'POST', body: big });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.text).error.message).toMatch(new RegExp(`over the ${MAX_BODY_BYTES}-byte limit \\(MAX_BODY_BYTES\\)`));
    const chunked = await raw('/api/sessions.list', { method: 'POST', body: big, headers: { 'transfer-encoding': 'chunked' } });
    expect(chunked.status).toBe(413);
    // At the limit is fine.
    const ok = await raw('/api/app.info', { method: 'POST', body: '{}' + ' '.repeat(MAX_BODY_BYTES - 2) });
    expect(ok.status).toBe(200);
  });

  it('JSON nested deeper than MAX_JSON_DEPTH is 400; at the limit it reaches the API', async () => {
    const nest = (d: number) => '{"x":'.repeat(d - 1) + '{}' + '}'.repeat(d - 1);
    expect(jsonDepth(nest(7))).toBe(7);
    expect(jsonDepth('{"a":"[[[[{{{\\"]]"}')).toBe(1); // brackets in strings do not count
    const deep = await raw('/api/sessions.list', { method: 'POST', body: '['.repeat(100_000) + ']'.repeat(100_000) });
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.text).error.message).toMatch(new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
    const deepObj = await raw('/api/sessions.list', { method: 'POST', body: nest(MAX_JSON_DEPTH + 1) });
    expect(deepObj.status).toBe(400);
    const atLimit = await raw('/api/sessions.list', { method: 'POST', body: nest(MAX_JSON_DEPTH) });
    expect(atLimit.status).toBe(400);
    expect(JSON.parse(atLimit.text).error.message).not.toMatch(/nested deeper/); // refused by the schema instead
  });

  it('WebSocket upgrades from another origin are refused; the own origin and non-browser clients connect', async () => {
    const open = (origin?: string) => new Promise<boolean>((ok) => {
      const ws = new WebSocket(`ws://127.0.0.1:${host.port}/events?token=${host.token}`, origin ? { origin } : {});
      ws.on('open', () => {
        ws.close();
        ok(true);
      });
      ws.on('error', () => ok(false));
    });
    expect(await open('http://evil.example')).toBe(false);
    expect(await open(`http://127.0.0.1:${host.port + 1}`)).toBe(false);
    expect(await open('null')).toBe(false);
    expect(await open(`http://127.0.0.1:${host.port}`)).toBe(true);
    expect(await open(`http://localhost:${host.port}`)).toBe(true);
    expect(await open()).toBe(true);
  });

  it('an INTERNAL error reaches the client without its stack trace (it is logged instead)', async () => {
    const spy = vi.spyOn(app.store, 'list').mockImplementation(() => {
      throw new TypeError('boom in the store');
    });
    const log = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const r = await raw('/api/sessions.list', { method: 'POST', body: '{}' });
      expect(r.status).toBe(500);
      const body = JSON.parse(r.text);
      expect(body.error).toMatchObject({ code: 'INTERNAL', message: 'boom in the store' });
      expect(body.error.details.stack).toBeUndefined();
      expect(r.text).not.toMatch(/\n\s+at |host-hardening|src-main/);
      expect(log.mock.calls.map((c) => String(c[0])).join('')).toMatch(/boom in the store[\s\S]*at /);
    } finally {
      spy.mockRestore();
      log.mockRestore();
    }
  });

  it("a failed job's event over the WebSocket carries no stack either", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${host.port}/events?token=${host.token}`);
    await new Promise((ok) => ws.on('open', ok));
    const got = new Promise<string>((ok) => ws.on('message', (m) => ok(String(m))));
    const log = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const stack = 'TypeError: job exploded\n    at step (/work/src-main/jobs/kinds/attack.ts:1:1)';
      app.core.emit('event', { type: 'job.failed', jobId: 'job-x', kind: 'attack', error: { code: 'INTERNAL', message: 'job exploded', details: { name: 'TypeError', stack } } });
      const msg = JSON.parse(await got);
      expect(msg).toMatchObject({ type: 'job.failed', error: { code: 'INTERNAL', message: 'job exploded', details: { name: 'TypeError' } } });
      expect(msg.error.details.stack).toBeUndefined();
      expect(log.mock.calls.map((c) => String(c[0])).join('')).toContain('attack.ts:1:1');
    } finally {
      log.mockRestore();
      ws.close();
    }
  });
});
