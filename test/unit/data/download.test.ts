/**
 * `advlab data get`'s download code against a loopback server (test/unit/data/loopback.ts): a good
 * server, one ignoring Range, truncated and corrupted files, connections dropped midway, 404,
 * offline, disk full (a writer failing with ENOSPC), and what is listed afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalContext } from '../../../src-main/engine/context';
import { extractTarGz, fetchVerified, installDataset, listDatasets, loadDataset, type DatasetSource } from '../../../src-main/engine/data';
import { rejection } from '../helpers';
import { idxBytes, tmpDir } from './fixtures';
import { closedPort, startLoopback, tarGz, type Loopback } from './loopback';
import { gunzipSync, gzipSync } from 'node:zlib';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Seeded bytes that do not compress (so the files span many chunks). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

const N = 400;
const files: Record<string, Buffer> = {
  'train-images-idx3-ubyte.gz': gzipSync(idxBytes(0x803, [N, 28, 28], noise(N * 784, 1))),
  'train-labels-idx1-ubyte.gz': gzipSync(idxBytes(0x801, [N], Uint8Array.from({ length: N }, (_, i) => i % 10))),
  't10k-images-idx3-ubyte.gz': gzipSync(idxBytes(0x803, [100, 28, 28], noise(100 * 784, 2))),
  't10k-labels-idx1-ubyte.gz': gzipSync(idxBytes(0x801, [100], Uint8Array.from({ length: 100 }, (_, i) => (i * 3) % 10))),
};

/** A fixture source shaped like MNIST's: two files pinned by sha256, two by md5 (as the real one). */
function fixtureSource(urls: string[] = ['http://127.0.0.1:9/unused/']): DatasetSource {
  const names = Object.keys(files);
  return {
    name: 'mnist', title: 'fixture MNIST', license: 'test', homepage: 'http://127.0.0.1/', folder: 'mnist', assemble: 'copy', approxMB: 0.3,
    files: names.map((name, i) => ({ name, urls: urls.map((u) => u + name), ...(i < 2 ? { md5: md5(files[name]) } : { sha256: sha256(files[name]) }), digestSource: 'fixture' })),
  };
}

let server: Loopback;
beforeAll(async () => {
  server = await startLoopback(files);
});
afterAll(async () => {
  await server.close();
});

function hidden(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.advlab-install')) : [];
}

describe('installDataset over loopback', () => {
  it('downloads, verifies and installs atomically; progress counts bytes up to the total with an ETA; the set loads', async () => {
    const t = tmpDir();
    try {
      const ctx = new LocalContext();
      const r = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good`, ctx });
      expect(r.alreadyInstalled).toBe(false);
      const total = Object.values(files).reduce((a, b) => a + b.length, 0);
      expect(r.bytes).toBe(total);
      expect(r.files.map((f) => f.verified)).toEqual(['md5', 'md5', 'sha256', 'sha256']);
      for (const name of Object.keys(files)) expect(readFileSync(join(t.dir, 'mnist', name)).equals(files[name])).toBe(true);
      expect(readdirSync(t.dir).sort()).toEqual(['mnist']); // no download or install folders left
      const steps = ctx.events.map((e) => e.step);
      for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]);
      const last = ctx.events[ctx.events.length - 1];
      expect(last.step).toBe(total);
      expect(last.total).toBe(total);
      expect(last.message).toMatch(/ of .*\/s, ETA \d+ s/);
      const listed = await listDatasets([t.dir]);
      expect(listed.map((d) => [d.name, d.splits.train?.count, d.splits.test?.count])).toEqual([['mnist', N, 100]]);
      const test = await loadDataset('mnist', { dataDirs: [t.dir], split: 'test' });
      expect(test.labels.length).toBe(100);
      // a second get leaves the installed copy alone
      const again = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/missing` });
      expect(again.alreadyInstalled).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('tries the next canonical URL when the first one 404s', async () => {
    const t = tmpDir();
    try {
      const r = await installDataset(fixtureSource([`${server.base}/nothing-here/`, `${server.base}/good/`]), { dataDir: t.dir });
      expect(r.files.every((f) => f.url.includes('/good/'))).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('resumes a partial file with a Range request and fetches only the rest', async () => {
    const t = tmpDir();
    try {
      const name = 'train-images-idx3-ubyte.gz';
      const half = Math.floor(files[name].length / 2);
      const work = join(t.dir, '.advlab-download-mnist');
      mkdirSync(work, { recursive: true });
      writeFileSync(join(work, `${name}.part`), files[name].subarray(0, half));
      const before = server.requests.length;
      const r = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good` });
      expect(r.files[0].resumedFrom).toBe(half);
      const req = server.requests.slice(before).find((q) => q.path.endsWith(name))!;
      expect(req.range).toBe(`bytes=${half}-`);
      expect(req.served).toBe(files[name].length - half);
      expect(readFileSync(join(t.dir, 'mnist', name)).equals(files[name])).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('restarts cleanly from byte 0 when the server ignores Range (even over wrong partial bytes)', async () => {
    const t = tmpDir();
    try {
      const name = 'train-images-idx3-ubyte.gz';
      const work = join(t.dir, '.advlab-download-mnist');
      mkdirSync(work, { recursive: true });
      writeFileSync(join(work, `${name}.part`), Buffer.alloc(5000, 7)); // not even a prefix of the file
      const ctx = new LocalContext();
      const before = server.requests.length;
      const r = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/norange`, ctx });
      expect(server.requests.slice(before).find((q) => q.path.endsWith(name))!.range).toBe('bytes=5000-');
      expect(ctx.logs.join('\n')).toContain('ignored the Range request');
      expect(r.files[0].bytes).toBe(files[name].length);
      expect(readFileSync(join(t.dir, 'mnist', name)).equals(files[name])).toBe(true);
      const steps = ctx.events.map((e) => e.step);
      for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]); // never back, even on a restart
    } finally {
      t.cleanup();
    }
  });

  it('resumes by itself after a connection dropped midway', async () => {
    const t = tmpDir();
    try {
      const ctx = new LocalContext();
      const before = server.requests.length;
      await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/drop-once`, ctx });
      const reqs = server.requests.slice(before).filter((q) => q.path.endsWith('train-images-idx3-ubyte.gz'));
      expect(reqs.length).toBe(2);
      expect(reqs[1].range).toBe(`bytes=${reqs[0].served}-`);
      expect(ctx.logs.join('\n')).toMatch(/dropped after \d+ of \d+ bytes; resuming/);
      expect(readFileSync(join(t.dir, 'mnist', 'train-images-idx3-ubyte.gz')).equals(files['train-images-idx3-ubyte.gz'])).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  it('a connection that keeps dropping: a NETWORK error, the part kept, nothing listed; the next run resumes from it', async () => {
    const t = tmpDir();
    try {
      const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/drop`, retries: 1 }));
      expect(e.code).toBe('NETWORK');
      expect(e.message).toMatch(/train-images-idx3-ubyte\.gz: the connection to 127\.0\.0\.1:\d+ dropped after \d+ of \d+ bytes; \d+ bytes are kept .* run again to resume/);
      expect(await listDatasets([t.dir])).toEqual([]);
      expect(existsSync(join(t.dir, 'mnist'))).toBe(false);
      const kept = statSync(join(t.dir, '.advlab-download-mnist', 'train-images-idx3-ubyte.gz.part')).size;
      expect(kept).toBeGreaterThan(0);
      const r = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good` });
      expect(r.files[0].resumedFrom).toBe(kept);
      expect((await listDatasets([t.dir])).map((d) => d.name)).toEqual(['mnist']);
    } finally {
      t.cleanup();
    }
  });

  it('files verified before a later file failed are not fetched again on the next run', async () => {
    const t = tmpDir();
    try {
      const broken = fixtureSource();
      broken.files[3] = { ...broken.files[3], name: 'not-on-the-server.gz' };
      const e = await rejection(installDataset(broken, { dataDir: t.dir, mirror: `${server.base}/good` }));
      expect(e.code).toBe('NOT_FOUND');
      expect(await listDatasets([t.dir])).toEqual([]);
      const before = server.requests.length;
      const ctx = new LocalContext();
      const r = await installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good`, ctx });
      expect(server.requests.slice(before).map((q) => q.path.split('/').at(-1))).toEqual(['t10k-labels-idx1-ubyte.gz']);
      expect(ctx.logs.filter((l) => l.includes('verified in an earlier run'))).toHaveLength(3);
      expect(r.files.map((f) => f.verified)).toEqual(['md5', 'md5', 'sha256', 'sha256']);
      for (const name of Object.keys(files)) expect(readFileSync(join(t.dir, 'mnist', name)).equals(files[name])).toBe(true);
    } finally {
      t.cleanup();
    }
  });

  for (const mode of ['truncated', 'corrupt'] as const) {
    it(`a ${mode} file fails its checksum: BAD_FILE naming both digests, the part discarded, nothing listed`, async () => {
      const t = tmpDir();
      try {
        const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/${mode}` }));
        expect(e.code).toBe('BAD_FILE');
        const name = 'train-images-idx3-ubyte.gz';
        expect(e.message).toContain(`${name}: checksum mismatch: expected md5 ${md5(files[name])} (fixture), got `);
        expect(e.message).toContain('the download was discarded');
        expect(existsSync(join(t.dir, '.advlab-download-mnist', `${name}.part`))).toBe(false);
        expect(await listDatasets([t.dir])).toEqual([]);
        expect(hidden(t.dir)).toEqual([]);
      } finally {
        t.cleanup();
      }
    });
  }

  it('404 everywhere is NOT_FOUND naming the URL', async () => {
    const t = tmpDir();
    try {
      const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/gone` }));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toMatch(/train-images-idx3-ubyte\.gz: not found \(http:\/\/127\.0\.0\.1:\d+\/gone\/train-images-idx3-ubyte\.gz: HTTP 404/);
      expect(await listDatasets([t.dir])).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('offline (connection refused) is a NETWORK error that says so', async () => {
    const t = tmpDir();
    try {
      const port = await closedPort();
      const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `http://127.0.0.1:${port}` }));
      expect(e.code).toBe('NETWORK');
      expect(e.message).toContain(`cannot reach 127.0.0.1:${port} (ECONNREFUSED): offline, or the host is down`);
      expect(await listDatasets([t.dir])).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('disk full (the writer fails with ENOSPC) is DISK_FULL; nothing half-installed is listed', async () => {
    const t = tmpDir();
    try {
      let written = 0;
      const openWriter = () =>
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            written += chunk.length;
            if (written > 50_000) cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
            else cb();
          },
        });
      const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good`, openWriter }));
      expect(e.code).toBe('DISK_FULL');
      expect(e.message).toMatch(/^disk full while writing .*train-images-idx3-ubyte\.gz\.part \(ENOSPC\): free some space and run again/);
      expect(await listDatasets([t.dir])).toEqual([]);
      expect(existsSync(join(t.dir, 'mnist'))).toBe(false);
      expect(hidden(t.dir)).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('cancelling stops the download within a chunk and keeps the part', async () => {
    const t = tmpDir();
    try {
      const ctx = new LocalContext(() => ctx.cancel());
      const e = await rejection(installDataset(fixtureSource(), { dataDir: t.dir, mirror: `${server.base}/good`, ctx }));
      expect(e.code).toBe('CANCELLED');
      expect(await listDatasets([t.dir])).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('refuses a file with no pinned digest unless its content is checked after extraction', async () => {
    const t = tmpDir();
    try {
      const e = await rejection(fetchVerified({ name: 'x.bin', urls: [`${server.base}/good/x.bin`], digestSource: 'none' }, join(t.dir, 'x.part')));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toContain('no digest is pinned');
    } finally {
      t.cleanup();
    }
  });
});

describe('tar extraction', () => {
  it('extracts only the selected members (pax global header skipped) and refuses paths leaving the folder', async () => {
    const t = tmpDir();
    try {
      const archive = join(t.dir, 'a.tar.gz');
      const long = `repo-${'x'.repeat(90)}/recordings/0_a_0.wav`;
      writeFileSync(archive, tarGz([{ path: long, data: Buffer.from('one') }, { path: 'repo/README.md', data: Buffer.from('skip') }, { path: 'repo/recordings/1_b_2.wav', data: Buffer.alloc(1500, 3) }], { paxGlobal: true }));
      const out = join(t.dir, 'out');
      const got = await extractTarGz(archive, out, { select: (p) => (/\/recordings\/([^/]+)$/.exec(p) ? `rec/${/\/recordings\/([^/]+)$/.exec(p)![1]}` : undefined) });
      expect(got.map((p) => p.slice(out.length + 1)).sort()).toEqual(['rec/0_a_0.wav', 'rec/1_b_2.wav']);
      expect(readFileSync(join(out, 'rec/1_b_2.wav')).equals(Buffer.alloc(1500, 3))).toBe(true);
      const e = await rejection(extractTarGz(archive, out, { select: () => '../escape.txt' }));
      expect(e.code).toBe('BAD_FILE');
      expect(e.message).toContain('would be written outside');
      const cut = join(t.dir, 'cut.tar.gz');
      const whole = tarGz([{ path: 'a/b.bin', data: Buffer.alloc(4000, 1) }], { level: 0 });
      writeFileSync(cut, gzipSync(gunzipSync(whole).subarray(0, 2048)));
      const e2 = await rejection(extractTarGz(cut, out, { select: (p) => p }));
      expect(e2.message).toContain('truncated');
    } finally {
      t.cleanup();
    }
  });

  it('a CIFAR-10 tarball whose batches have the wrong size is refused after extraction, nothing installed', async () => {
    const t = tmpDir();
    try {
      const tarball = tarGz(['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch'].map((b) => ({ path: `cifar-10-batches-bin/${b}.bin`, data: Buffer.alloc(3073 * 2) })));
      const s = await startLoopback({ 'cifar-10-binary.tar.gz': tarball });
      try {
        const src: DatasetSource = {
          name: 'cifar10', title: 'fixture', license: 'test', homepage: '', folder: 'cifar-10-batches-bin', assemble: 'cifar-tar', approxMB: 0,
          files: [{ name: 'cifar-10-binary.tar.gz', urls: [], md5: md5(tarball), digestSource: 'fixture' }],
        };
        const e = await rejection(installDataset(src, { dataDir: t.dir, mirror: `${s.base}/good` }));
        expect(e.code).toBe('BAD_FILE');
        expect(e.message).toContain('cifar-10-batches-bin/data_batch_1.bin is 6146 bytes, expected 30730000');
        expect(await listDatasets([t.dir])).toEqual([]);
        expect(hidden(t.dir)).toEqual([]);
      } finally {
        await s.close();
      }
    } finally {
      t.cleanup();
    }
  });
});
