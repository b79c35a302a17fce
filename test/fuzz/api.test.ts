/**
 * Fuzzing the browser host and the API behind it (issue 14): the real `advlab serve` host over HTTP
 * with a temp store, and requests made from valid ones: every method's params mutated (values
 * replaced, keys added and dropped, numbers scaled, strings stretched), method names mutated and
 * made up, malformed JSON (truncated, bad escapes, lone surrogates, huge numbers, deep nesting),
 * other HTTP methods, hostile paths and escapes under /files/ and /api/, missing tokens.
 * For every request: an answer below 500 in bounded time, an /api/ refusal that says what is wrong;
 * afterwards the host still answers, nothing outside the store (nor in the data folder) changed,
 * and a session that was in the store before is byte-identical.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHODS, parseParams } from '../../src-main/api/contract';
import { createApp } from '../../src-main/host/app';
import { startHost, type Host } from '../../src-main/host/server';
import { WORKER } from '../unit/helpers';
import { count, fuzz, hashTree, listing, mutateBytesN, mutateJson, randomValue, type Rng } from './harness';

const DATA = process.env.ADVLAB_DATA!;
const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: '0.1.0-fuzz', node: process.version, platform: 'linux-x64', cpus: 2, hostname: 'fuzz' };
const parent = mkdtempSync(path.join(tmpdir(), 'advlab-fuzz-api-'));
const root = path.join(parent, 'store');
let host: Host;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  app = createApp({ dataDirs: [DATA], sessionsRoot: root, transport: 'http', workerPath: WORKER });
  host = await startHost({ core: app.core, rendererDir: path.resolve(import.meta.dirname, '../../out/renderer'), artifactPath: (id, rel) => app.store.artifactFile(id, rel) });
});
afterAll(async () => {
  await host?.close();
  await app?.runner.shutdown();
  rmSync(parent, { recursive: true, force: true });
});

interface Req {
  how: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** %-escapes every byte of the UTF-8 (lone surrogates included, as U+FFFD). */
const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

function send(r: Req, token: string): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: host.port, path: r.path, method: r.method, headers: { 'x-advlab-token': token, ...r.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(r.body);
  });
}

const MADE_UP = ['', '.', '..', '../app.info', 'app.info/', 'app.info/../sessions.list', 'APP.INFO', 'app..info', 'app', 'sessions', 'sessions.', '.list', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'sessions.__proto__', 'jobs.start%00', '%2e%2e%2fapp.info', '%E0%A4%A', '%', 'x'.repeat(5000), 'sessions.list?x=1', 'sessions.list#x'];
const BAD_BODIES = ['{', '{"id":', '{"id":"\\x"}', '{"id":"\\u12"}', '{"id":"\\ud800"}', '{"id":"\ud800"}', '1e999999', '{"n":1e999999}', 'null', '[]', '"str"', 'true', '{"a":1,"a":2}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '\u0000', '\ufeff{}', '{}garbage', '{"filter":{"text":"' + 'a'.repeat(300) + '"}}', '['.repeat(70) + ']'.repeat(70), '{"x":'.repeat(70) + '1' + '}'.repeat(70)];

describe('fuzz: API requests against the real host', () => {
  it('every request is answered below 500, in time, with a clear refusal; nothing outside the store changes', async () => {
    // A session to keep untouched (never named by a request) and a scratch one the requests work on.
    const make = async (name: string) => {
      const w = await app.store.create({ kind: 'attack', name, params: { eps: 0.1 }, environment: ENV, tags: ['fuzz'] });
      await w.appendMetric('loss', { step: 0, loss: 1 });
      await w.writeArtifact('images/x.png', Buffer.from('\x89PNG fake'));
      await w.writeArtifact('page.svg', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
      await w.finish({ success: true });
      return w.id;
    };
    const kept = await make('kept');
    const scratch = await make('scratch');
    const archive = path.join(parent, 'scratch.zip');
    await app.store.exportArchive(scratch, archive);
    const archiveB64 = (await import('node:fs')).readFileSync(archive).toString('base64');
    const keptHash = hashTree(app.store.dir(kept));
    const beforeParent = listing(parent, ['store', 'uploads']);
    const beforeData = listing(DATA);

    const wav = Buffer.alloc(44 + 1600);
    wav.write('RIFF', 0); wav.writeUInt32LE(wav.length - 8, 4); wav.write('WAVEfmt ', 8); wav.writeUInt32LE(16, 16);
    wav.writeUInt16LE(1, 20); wav.writeUInt16LE(1, 22); wav.writeUInt32LE(8000, 24); wav.writeUInt32LE(16000, 28); wav.writeUInt16LE(2, 32); wav.writeUInt16LE(16, 34);
    wav.write('data', 36); wav.writeUInt32LE(1600, 40);
    const seeds: Record<string, unknown> = {
      'sessions.list': { filter: { kind: 'attack', tag: 'fuzz', text: 'scratch', since: '2026-01-01' } },
      'sessions.show': { id: scratch },
      'sessions.metrics': { id: scratch, series: 'loss' },
      'sessions.artifact': { id: scratch, path: 'images/x.png' },
      'sessions.rename': { id: scratch, name: 'renamed' },
      'sessions.tag': { id: scratch, add: ['a', 'b'], remove: ['fuzz'] },
      'sessions.notes': { id: scratch, text: '# notes\n<b>x</b>' },
      'sessions.delete': { id: scratch },
      'sessions.restore': { id: scratch },
      'sessions.view': { id: scratch },
      'sessions.report': { ids: [scratch] },
      'sessions.csv': { id: scratch },
      'sessions.export': { id: scratch },
      'sessions.import': { data: archiveB64, filename: 'scratch.zip' },
      'sessions.emptyTrash': { olderThanDays: 30 },
      'jobs.start': { kind: 'diagnostics', params: { batch: 16, repeats: 3 } },
      'jobs.cancel': { jobId: 'job-1' },
      'audio.upload': { name: 'clip.wav', base64: wav.toString('base64') },
      'audio.clips': { model: scratch },
      'listening.create': { sessions: [scratch], mode: 'ab', repeats: 2, seed: 1 },
      'listening.answer': { session: scratch, trial: 0, answer: 'original', ms: 100, plays: { A: 1 } },
      'listening.finish': { session: scratch },
    };
    for (const m of METHODS) seeds[m] ??= {};
    let jobsDefused = 0;

    const make1 = (rng: Rng): Req => {
      const mode = rng.int(20);
      if (mode < 11) {
        const method = rng.pick(METHODS);
        let params = seeds[method];
        for (let k = rng.int(3); k > 0; k--) params = mutateJson(rng, params);
        if (method === 'jobs.start') {
          // The fuzzer must not start training runs: params that would pass get an unknown key (refused by the strict schema).
          try {
            parseParams('jobs.start', params);
            params = { ...(params as object), fuzz: 1 };
            jobsDefused++;
          } catch { /* refused as it is */ }
        }
        return { how: `${method} ${JSON.stringify(params)?.slice(0, 120)}`, method: 'POST', path: `/api/${method}`, body: JSON.stringify(params) ?? '' };
      }
      if (mode < 13) {
        const name = rng.chance(0.5) ? rng.pick(MADE_UP) : mutateBytesN(rng, Buffer.from(rng.pick(METHODS))).toString('latin1').replace(/[\s#?]/g, '');
        const encoded = rng.chance(0.5) ? name : pct(name);
        return { how: `name ${JSON.stringify(name.slice(0, 80))}`, method: 'POST', path: `/api/${encoded.replace(/[^\x21-\x7e]/g, (c) => pct(c))}`, body: '{}' };
      }
      if (mode < 16) {
        const method = rng.pick(METHODS);
        const body = rng.chance(0.6) ? rng.pick(BAD_BODIES) : rng.chance(0.5) ? mutateBytesN(rng, Buffer.from(JSON.stringify(seeds[method]))) : rng.bytes(rng.int(200));
        return { how: `${method} body ${JSON.stringify(body.toString().slice(0, 80))}`, method: 'POST', path: `/api/${method}`, body, headers: rng.chance(0.2) ? { 'content-type': rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']) } : undefined };
      }
      if (mode < 19) {
        const rel = rng.pick(['images/x.png', 'page.svg', '../manifest.json', '..%2fmanifest.json', '%2e%2e/%2e%2e/etc/passwd', 'images/%00.png', '%E0%A4%A', 'images//x.png', '/etc/passwd', 'images/x.png%2f..%2f..%2f..', 'manifest.json', '.index.json']);
        const id = rng.pick([scratch, '..', '%2e%2e', 'nope', '', scratch + '%00', pct(String(randomValue(rng))) || 'x']);
        const p = rng.pick([`/files/${id}/${rel}`, `/${rel}`, `/assets/${rel}`, `/api/${rel}`, `/files/${id}`]);
        return { how: `${'GET'} ${p}`, method: rng.pick(['GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']), path: p };
      }
      return { how: 'no token', method: 'POST', path: `/api/${rng.pick(METHODS)}`, body: '{}', headers: { 'x-advlab-token': rng.pick(['', 'x', host.token.slice(1), host.token + 'x']) } };
    };

    const out = await fuzz('api', count(6000), {
      maxMs: 5000,
      make: make1,
      run: async (r) => {
        const res = await send(r, host.token);
        if (res.status >= 500 || res.status < 200) throw new Error(`answered ${res.status}: ${res.text.slice(0, 300)}`);
        const apiCall = new URL(r.path, 'http://127.0.0.1').pathname.startsWith('/api/') && r.method !== 'HEAD';
        if (res.status >= 400 && !apiCall && r.method !== 'HEAD' && res.text.trim().length < 10) throw new Error(`a ${res.status} with no explanation: ${JSON.stringify(res.text)}`);
        if (res.status >= 400 && apiCall) {
          let body: { error?: { code?: string; message?: string } };
          try {
            body = JSON.parse(res.text);
          } catch {
            throw new Error(`a ${res.status} refusal that is not JSON: ${res.text.slice(0, 200)}`);
          }
          if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string' || body.error.message.length < 10) throw new Error(`a ${res.status} refusal that says nothing: ${res.text.slice(0, 200)}`);
          if (/\n\s+at /.test(res.text)) throw new Error('a refusal with a stack trace');
          throw Object.assign(new (await import('../../src-main/engine/errors')).AdvlabError('BAD_INPUT', body.error.message), { status: res.status });
        }
      },
      describe: (r) => `${r.method} ${r.path.slice(0, 100)} (${r.how.slice(0, 160)})`,
    });
    console.log(`[fuzz api] jobs.start inputs defused (would have started a job): ${jobsDefused}`);
    expect(out.failures).toEqual([]);
    expect(out.refused).toBeGreaterThan(out.tried / 3);
    expect(out.accepted).toBeGreaterThan(out.tried / 20);
    // The host still answers; nothing changed outside the store or in the data folder; the kept session is as it was.
    expect((await send({ how: '', method: 'POST', path: '/api/app.info', body: '{}' }, host.token)).status).toBe(200);
    // audio.upload keeps WAVs in uploads/ next to the sessions root (src-main/listening/uploads.ts):
    // there, only flat .wav files; anywhere else outside the store, nothing.
    expect(listing(parent, ['store', 'uploads'])).toEqual(beforeParent);
    const uploads = listing(parent).filter((l) => l.startsWith('uploads'));
    for (const l of uploads) expect(l).toMatch(/^uploads\/([^/]+\.wav file \d+)?$/);
    expect(listing(DATA)).toEqual(beforeData);
    expect(hashTree(app.store.dir(kept))).toBe(keptHash);
    expect(app.runner.list?.().length ?? 0).toBe(0);
  });
});
