/**
 * Hostile session archives (issue 14): every entry's CRC-32 and declared size are verified, and
 * each artifact's sha256 from the manifest; inflation is capped at the declared size, so a small
 * zip bomb is refused before it inflates fully; a file/folder clash or a deeply nested manifest is
 * a clear 4xx error (BAD_FILE), not INTERNAL; an import killed midway leaves nothing behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { unzipSync, zipSync } from 'fflate';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { SessionStore } from '../../../src-main/engine/sessions';
import { cleanStaleImports, importSessionArchive } from '../../../src-main/engine/sessions/archive';
import { statusOf } from '../../../src-main/host/server';
import { DATA } from '../helpers';
import { ENV, fakeManifest, tempRoot } from './helpers';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'bin/advlab.mjs');
const ID = '20260101-000000-train-0001';
const MANIFEST = JSON.stringify(fakeManifest(ID));

const roots: string[] = [];
function newRoot(): string {
  const r = tempRoot('advlab-archive-h-');
  roots.push(r);
  return r;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

interface RawEntry {
  name: string;
  /** Bytes as stored in the zip (already deflated when method is 8). */
  stored: Buffer;
  method: 0 | 8;
  crc: number;
  size: number;
}

/** A zip written by hand, so that CRCs and sizes can lie. */
function buildZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(e.crc >>> 0, 14);
    local.writeUInt32LE(e.stored.length, 18);
    local.writeUInt32LE(e.size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(e.method, 10);
    central.writeUInt32LE(e.crc >>> 0, 16);
    central.writeUInt32LE(e.stored.length, 20);
    central.writeUInt32LE(e.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, e.stored);
    centrals.push(central, name);
    offset += 30 + name.length + e.stored.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

function entry(name: string, content: Buffer | string, over: Partial<RawEntry> = {}): RawEntry {
  const data = Buffer.from(content);
  return { name, stored: deflateRawSync(data), method: 8, crc: crc32(data), size: data.length, ...over };
}

async function importErr(root: string, zip: Buffer, name: string, opts = {}): Promise<AdvlabError> {
  const file = path.join(root, '..', `${path.basename(root)}-${name}`);
  await fsp.writeFile(file, zip);
  try {
    await importSessionArchive(root, file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as AdvlabError).message).toContain(file);
    return e as AdvlabError;
  } finally {
    await fsp.rm(file, { force: true });
  }
  throw new Error(`${name}: expected the import to be refused`);
}

/** Nothing but what was there before: no session, no staging folder. */
function expectUntouched(root: string): void {
  expect(readdirSync(root)).toEqual([]);
}

describe('archive entries are verified', () => {
  it('a hand-built zip with honest CRCs and sizes imports (the builder is right)', async () => {
    const root = newRoot();
    const file = path.join(root, '..', `${path.basename(root)}-ok.zip`);
    const plain = randomBytes(999);
    await fsp.writeFile(file, buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/metrics/loss.jsonl`, '{"step":0}\n'), { ...entry(`${ID}/artifacts/a.bin`, plain), method: 0, stored: plain }]));
    const r = await importSessionArchive(root, file);
    expect(r).toMatchObject({ id: ID, files: 3 });
    await fsp.rm(file);
  });

  it('a wrong CRC-32, stored or deflated, is refused', async () => {
    const root = newRoot();
    const data = randomBytes(2000);
    for (const method of [0, 8] as const) {
      const bad = entry(`${ID}/artifacts/x.bin`, data, { method, crc: crc32(data) ^ 1, ...(method === 0 ? { stored: data } : {}) });
      const e = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), bad]), `crc${method}.zip`);
      expect(e.code).toBe('BAD_FILE');
      expect(e.message).toMatch(/entry ".*x\.bin" fails its CRC-32 check/);
    }
    // A flipped byte in the data of a real export is caught the same way.
    const flipped = buildZip([entry(`${ID}/manifest.json`, MANIFEST), { ...entry(`${ID}/artifacts/y.bin`, data), method: 0, stored: Buffer.from(data).fill(7, 100, 101) }]);
    expect((await importErr(root, flipped, 'flip.zip')).message).toMatch(/y\.bin" fails its CRC-32 check/);
    expectUntouched(root);
  });

  it('declared sizes must match: smaller is a capped inflate, larger a short entry', async () => {
    const root = newRoot();
    const data = randomBytes(5000);
    const small = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/artifacts/s.bin`, data, { size: 100 })]), 'small.zip');
    expect(small.message).toMatch(/entry ".*s\.bin" inflates to more than the 100 bytes it declares/);
    const big = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/artifacts/b.bin`, data, { size: 6000 })]), 'big.zip');
    expect(big.message).toMatch(/entry ".*b\.bin" holds 5000 bytes but declares 6000/);
    const stored = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), { ...entry(`${ID}/artifacts/t.bin`, data), method: 0, stored: data, size: 4000 }]), 'stored.zip');
    expect(stored.message).toMatch(/is stored but declares 5000 bytes stored and 4000 unpacked/);
    const truncated = buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/artifacts/t.bin`, data)]);
    const cut = Buffer.concat([truncated.subarray(0, 200), truncated.subarray(truncated.length - 200)]);
    expect((await importErr(root, cut, 'cut.zip')).code).toBe('BAD_FILE');
    expectUntouched(root);
  });

  it("artifacts must match the sha256 their manifest records (an export altered afterwards)", async () => {
    const root = newRoot();
    const store = new SessionStore(root);
    const w = await store.create({ kind: 'attack', name: 'signed', params: {}, environment: ENV });
    await w.writeArtifact('images/adv.png', randomBytes(3000));
    await w.finish({ ok: true });
    const zipFile = path.join(root, '..', `${path.basename(root)}-signed.zip`);
    await store.exportArchive(w.id, zipFile);
    const files = unzipSync(new Uint8Array(await fsp.readFile(zipFile)));
    const key = `${w.id}/artifacts/images/adv.png`;
    files[key] = new Uint8Array(randomBytes(3000)); // same size, new CRC: only the sha256 can tell
    await fsp.writeFile(zipFile, zipSync(files));
    const other = newRoot();
    const e = (await importSessionArchive(other, zipFile).catch((x: unknown) => x)) as AdvlabError;
    expect(e).toBeInstanceOf(AdvlabError);
    expect(e.message).toMatch(/entry ".*images\/adv\.png" does not match the sha256 its manifest records/);
    expectUntouched(other);
    await fsp.rm(zipFile);
  });
});

describe('zip bombs are refused before they inflate fully', () => {
  it('a 256 MiB entry declaring 1,000 bytes stops at 1,000 (time and memory stay small)', async () => {
    const root = newRoot();
    const deflater = createDeflateRaw({ level: 9 });
    const parts: Buffer[] = [];
    deflater.on('data', (c: Buffer) => parts.push(c));
    const done = new Promise((ok) => deflater.on('end', ok));
    const zeros = Buffer.alloc(1 << 20);
    for (let i = 0; i < 256; i++) deflater.write(zeros);
    deflater.end();
    await done;
    const stored = Buffer.concat(parts);
    expect(stored.length).toBeLessThan(1 << 20); // a small bomb: < 1 MiB for 256 MiB
    const bomb = buildZip([entry(`${ID}/manifest.json`, MANIFEST), { name: `${ID}/artifacts/bomb.bin`, stored, method: 8, crc: 0, size: 1000 }]);
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const e = await importErr(root, bomb, 'bomb.zip');
    expect(e.message).toMatch(/bomb\.bin" inflates to more than the 1000 bytes it declares \(a zip bomb\?\)/);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
    // Declaring its true size, it is refused by the total cap before anything is inflated.
    const honest = buildZip([entry(`${ID}/manifest.json`, MANIFEST), { name: `${ID}/artifacts/bomb.bin`, stored, method: 8, crc: 0, size: 256 << 20 }]);
    expect((await importErr(root, honest, 'honest.zip', { maxBytes: 64 << 20 })).message).toMatch(/refused: unpacks to more than 67108864 bytes/);
    expectUntouched(root);
  });

  it('inflation runs off the event loop: timers keep firing during a large import', async () => {
    const root = newRoot();
    const big = Buffer.alloc(48 << 20, 1);
    const zip = buildZip([entry(`${ID}/manifest.json`, MANIFEST), ...Array.from({ length: 4 }, (_, i) => entry(`${ID}/artifacts/p${i}.bin`, big))]);
    const file = path.join(root, '..', `${path.basename(root)}-large.zip`);
    await fsp.writeFile(file, zip);
    let ticks = 0;
    let worstGap = 0;
    let last = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 5);
    await importSessionArchive(root, file);
    clearInterval(timer);
    await fsp.rm(file);
    expect(ticks).toBeGreaterThan(3);
    expect(worstGap).toBeLessThan(250); // one 48 MiB inflate on the main thread takes longer than this here
  });
});

describe('clear 4xx errors, not INTERNAL', () => {
  it('a file/folder clash and a duplicate entry are BAD_FILE (HTTP 400)', async () => {
    const root = newRoot();
    const clash = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/artifacts/a`, 'file'), entry(`${ID}/artifacts/a/b.png`, 'nested')]), 'clash.zip');
    expect(clash.code).toBe('BAD_FILE');
    expect(statusOf(clash.code)).toBe(400);
    expect(clash.message).toMatch(/"[^"]*artifacts\/a" is both a file and a folder/);
    const clashDir = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), { ...entry(`${ID}/notes.md/`, ''), method: 0 }, entry(`${ID}/notes.md`, 'x')]), 'clash2.zip');
    expect(clashDir.message).toMatch(/is both a file and a folder/);
    const twice = await importErr(root, buildZip([entry(`${ID}/manifest.json`, MANIFEST), entry(`${ID}/x.txt`, '1'), entry(`${ID}/x.txt`, '2')]), 'twice.zip');
    expect(twice.message).toMatch(/x\.txt" appears twice/);
    expectUntouched(root);
  });

  it('a deeply nested manifest is BAD_FILE naming the limit', async () => {
    const root = newRoot();
    const m = fakeManifest(ID) as unknown as Record<string, unknown>;
    const deep = JSON.stringify(m).replace('"params":{', `"params":{"deep":${'['.repeat(20000)}${']'.repeat(20000)},`);
    const e = await importErr(root, buildZip([entry(`${ID}/manifest.json`, deep)]), 'deep.zip');
    expect(e.code).toBe('BAD_FILE');
    expect(statusOf(e.code)).toBe(400);
    expect(e.message).toMatch(/nested deeper than 64 levels \(MAX_JSON_DEPTH\)/);
    expectUntouched(root);
  });
});

describe('an import killed midway leaves nothing behind', () => {
  it('stale .import-* folders (dead pid, no pid, older than a day) are removed when the store first lists; live ones stay', async () => {
    const root = newRoot();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const name of [`.import-${dead}-aaaa`, '.import-legacy01', `.import-${process.pid}-live`, `.import-${process.pid}-old`]) {
      await fsp.mkdir(path.join(root, name, 'artifacts'), { recursive: true });
      await fsp.writeFile(path.join(root, name, 'artifacts', 'half.bin'), 'x');
    }
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    await fsp.utimes(path.join(root, `.import-${process.pid}-old`), dayAgo, dayAgo);
    await new SessionStore(root).list();
    expect(readdirSync(root).filter((n) => n.startsWith('.import-'))).toEqual([`.import-${process.pid}-live`]);
    expect(await cleanStaleImports(root)).toEqual([]);
  });

  it('kill -9 during `advlab sessions import`, then any listing: no session, no staging folder', async () => {
    const root = newRoot();
    const src = newRoot();
    const zip = buildZip([entry(`${ID}/manifest.json`, MANIFEST), ...Array.from({ length: 3000 }, (_, i) => entry(`${ID}/artifacts/f${i}.bin`, Buffer.alloc(64 << 10, i & 0xff)))]);
    const file = path.join(src, 'big.zip');
    await fsp.writeFile(file, zip);
    const child = spawn(process.execPath, [BIN, 'sessions', 'import', file, '--sessions', root], { cwd: ROOT, env: { ...process.env, ADVLAB_DATA: DATA }, stdio: 'ignore' });
    const exited = new Promise((ok) => child.on('exit', ok));
    let caught = false;
    for (let i = 0; i < 20_000 && child.exitCode === null; i++) {
      const staging = readdirSync(root).find((n) => n.startsWith('.import-'));
      if (staging && existsSync(path.join(root, staging, 'artifacts', 'f10.bin'))) {
        child.kill('SIGKILL');
        caught = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    expect(caught, 'the import finished before it could be killed').toBe(true);
    expect(readdirSync(root).some((n) => n.startsWith('.import-'))).toBe(true); // what kill -9 leaves
    const r = spawnSync(process.execPath, [BIN, 'sessions', 'list', '--json', '--sessions', root], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ADVLAB_DATA: DATA } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!).count).toBe(0);
    expect(readdirSync(root).filter((n) => n !== '.index.json')).toEqual([]);
  }, 60_000);
});
