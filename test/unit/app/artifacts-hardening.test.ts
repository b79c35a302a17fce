/**
 * Artifacts served by the browser host (issue 14): an SVG or HTML artifact (e.g. from an imported
 * archive) never runs script with the page's token, and symlinks inside a session folder are never
 * followed, by /files/ or by sessions.artifact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createApp } from '../../../src-main/host/app';
import { startHost, type Host } from '../../../src-main/host/server';
import { WORKER } from '../helpers';
import { ENV } from '../sessions/helpers';

let host: Host;
let app: ReturnType<typeof createApp>;
let id: string;
let outside: string;
const SECRET = 'TOP-SECRET-OUTSIDE-THE-STORE';

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'advlab-art-'));
  app = createApp({ dataDirs: [process.env.ADVLAB_DATA!], sessionsRoot: root, transport: 'http', workerPath: WORKER });
  host = await startHost({ core: app.core, rendererDir: resolve(import.meta.dirname, '../../../out/renderer'), artifactPath: (sid, rel) => app.store.artifactFile(sid, rel) });
  const w = await app.store.create({ kind: 'attack', name: 'hostile artifacts', params: {}, environment: ENV });
  id = w.id;
  await w.writeArtifact('images/adv.png', Buffer.from('\x89PNG\r\n\x1a\nnot really'));
  await w.writeArtifact('clip.wav', Buffer.from('RIFF....WAVE'));
  await w.writeArtifact('evil.svg', '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api/sessions.list")</script></svg>');
  await w.writeArtifact('page.html', '<script>alert(localStorage.token)</script>');
  await w.writeArtifact('results.json', '{"ok":true}');
  await w.finish({ ok: true });
  outside = mkdtempSync(join(tmpdir(), 'advlab-outside-'));
  await fsp.writeFile(join(outside, 'secret.txt'), SECRET);
  const arts = join(root, id, 'artifacts');
  await fsp.symlink(join(outside, 'secret.txt'), join(arts, 'link.png'));
  await fsp.symlink(outside, join(arts, 'linkdir'));
  await fsp.symlink('images/adv.png', join(arts, 'inner.png')); // even a link that stays inside
});
afterAll(async () => {
  await host.close();
  await app.runner.shutdown();
});

const file = (rel: string) => fetch(`http://127.0.0.1:${host.port}/files/${id}/${rel}?token=${host.token}`);

describe('served artifacts cannot run script', () => {
  it('SVG, HTML and JSON are attachments with a sandboxing CSP and nosniff', async () => {
    for (const [rel, type] of [['evil.svg', 'image/svg+xml'], ['page.html', 'text/html; charset=utf-8'], ['results.json', 'application/json']]) {
      const r = await file(rel);
      expect(r.status, rel).toBe(200);
      expect(r.headers.get('content-type'), rel).toBe(type);
      expect(r.headers.get('content-disposition'), rel).toBe(`attachment; filename*=UTF-8''${rel}`);
      expect(r.headers.get('content-security-policy'), rel).toBe("default-src 'none'; sandbox");
      expect(r.headers.get('x-content-type-options'), rel).toBe('nosniff');
      await r.arrayBuffer();
    }
  });

  it('raster images and audio are inline, still sandboxed and not sniffed', async () => {
    for (const [rel, type] of [['images/adv.png', 'image/png'], ['clip.wav', 'audio/wav']]) {
      const r = await file(rel);
      expect(r.status, rel).toBe(200);
      expect(r.headers.get('content-type'), rel).toBe(type);
      expect(r.headers.get('content-disposition'), rel).toMatch(/^inline;/);
      expect(r.headers.get('content-security-policy'), rel).toBe("default-src 'none'; sandbox");
      expect(r.headers.get('x-content-type-options'), rel).toBe('nosniff');
      await r.arrayBuffer();
    }
  });
});

describe('symlinks inside a session folder are never followed', () => {
  it('/files/ answers 404 for a linked file, a file under a linked folder and an inside link', async () => {
    for (const rel of ['link.png', 'linkdir/secret.txt', 'inner.png']) {
      const r = await file(rel);
      const text = await r.text();
      expect(r.status, rel).toBe(404);
      expect(text, rel).not.toContain(SECRET);
      expect(text, rel).toMatch(/symbolic link/);
    }
  });

  it('sessions.artifact refuses them too (NOT_FOUND), and still reads real files', async () => {
    for (const rel of ['link.png', 'linkdir/secret.txt', 'inner.png']) {
      const env = await app.core.call('sessions.artifact', { id, path: rel });
      expect(env.ok, rel).toBe(false);
      expect(JSON.stringify(env), rel).not.toContain(SECRET);
      if (!env.ok) expect(env.error.code, rel).toBe('NOT_FOUND');
    }
    const ok = await app.core.call('sessions.artifact', { id, path: 'results.json' });
    expect(ok.ok).toBe(true);
  });
});
