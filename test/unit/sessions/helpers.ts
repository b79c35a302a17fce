/** Shared fixtures for the session store tests. */
import { mkdtempSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SESSION_SCHEMA_VERSION, type SessionEnvironment, type SessionManifest } from '../../../src-main/engine/sessions';

export const ENV: SessionEnvironment = {
  backend: 'wasm',
  tfjsVersion: '4.22.0',
  advlabVersion: '0.1.0-test',
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  cpus: 2,
  hostname: os.hostname(),
};

export function tempRoot(prefix = 'advlab-sessions-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A finished manifest as another tool (or an older run) would leave it. */
export function fakeManifest(id: string, over: Partial<SessionManifest> = {}): SessionManifest {
  return {
    schemaVersion: SESSION_SCHEMA_VERSION,
    id,
    kind: 'train',
    name: `session ${id}`,
    tags: [],
    status: 'finished',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-01T00:10:00.000Z',
    finished: '2026-01-01T00:10:00.000Z',
    params: { epochs: 1, batchSize: 64, learningRate: 0.001 },
    datasets: [{ name: 'mnist', split: 'test', sha256: 'a'.repeat(64) }],
    models: [{ id: 'm1', arch: 'cw-mnist' }],
    summary: { testAccuracy: 0.98 },
    environment: ENV,
    artifacts: [],
    ...over,
  };
}

/** Writes a session folder by hand (no store involved). */
export async function writeFakeSession(root: string, m: SessionManifest | string, folder?: string, opts: { bare?: boolean } = {}): Promise<string> {
  const id = folder ?? (typeof m === 'string' ? 'x' : m.id);
  const dir = path.join(root, id);
  if (opts.bare) {
    await fsp.mkdir(dir, { recursive: true });
  } else {
    await fsp.mkdir(path.join(dir, 'metrics'), { recursive: true });
    await fsp.mkdir(path.join(dir, 'artifacts'), { recursive: true });
  }
  await fsp.writeFile(path.join(dir, 'manifest.json'), typeof m === 'string' ? m : JSON.stringify(m, null, 2));
  return dir;
}

/** Every file under dir as rel path -> bytes. */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const visit = async (abs: string, rel: string): Promise<void> => {
    for (const e of await fsp.readdir(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await visit(path.join(abs, e.name), r);
      else out.set(r, await fsp.readFile(path.join(abs, e.name)));
    }
  };
  await visit(dir, '');
  return out;
}
