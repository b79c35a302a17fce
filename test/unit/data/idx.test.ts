import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { classCounts, clearDataCache, loadIdxImageSet, loadIdxPair, parseIdxImages, readIdxHeader } from '../../../src-main/engine/data';
import { idxBytes, pixel, tmpDir, writeFile, writeIdxPair } from './fixtures';

const DATA = process.env.ADVLAB_DATA!;
const MNIST = join(DATA, 'mnist');

/** Runs fn and returns the AdvlabError it throws (fails the test if it does not throw one). */
async function errorOf(fn: () => Promise<unknown>): Promise<AdvlabError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AdvlabError);
    return e as AdvlabError;
  }
  throw new Error('expected an error');
}

describe('IDX: the real MNIST test set', () => {
  it('loads 10,000 28x28 images with labels 0-9, first label 7, pixels in [0, 1]', async () => {
    const set = await loadIdxImageSet(join(MNIST, 't10k-images-idx3-ubyte.gz'), join(MNIST, 't10k-labels-idx1-ubyte.gz'), { name: 'mnist' });
    expect(set.labels.length).toBe(10000);
    expect(set.shape).toEqual([28, 28, 1]);
    expect(set.images.length).toBe(10000 * 784);
    expect(set.labels[0]).toBe(7);
    expect(Array.from(set.labels.slice(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    // The per-class counts published for the MNIST test set (and in shared/data/mnist/SOURCE.md).
    expect(classCounts(set)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of set.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // Exactly k/255 values: the first image's pixel (row 7, col 6) is a stroke of the "7".
    const v = set.images[7 * 28 + 6] * 255;
    expect(Math.abs(v - Math.round(v))).toBeLessThan(1e-4);
    // The content hash is `sha256sum images labels | sha256sum` over the checksums in SOURCE.md.
    const lines =
      '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6  t10k-images-idx3-ubyte.gz\n' +
      'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6  t10k-labels-idx1-ubyte.gz\n';
    expect(set.source.sha256).toBe(createHash('sha256').update(lines).digest('hex'));
    expect(set.source.files.map((f) => f.split('/').pop())).toEqual(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']);
  });

  it('reads only the header of a gzipped file for counts', async () => {
    expect(await readIdxHeader(join(MNIST, 't10k-images-idx3-ubyte.gz'))).toEqual({ magic: 0x803, dims: [10000, 28, 28] });
    expect(await readIdxHeader(join(MNIST, 't10k-labels-idx1-ubyte.gz'))).toEqual({ magic: 0x801, dims: [10000] });
  });
});

describe('IDX: generated files', () => {
  const t = tmpDir();
  afterAll(t.cleanup);

  it('reads raw and gzipped files alike, detected by content not name', async () => {
    const raw = writeIdxPair(join(t.dir, 'raw'), 'x', [3, 1, 4, 1, 5]);
    const gz = writeIdxPair(join(t.dir, 'gz'), 'x', [3, 1, 4, 1, 5], { gz: true });
    // A gzipped file without the .gz suffix is still recognised.
    const hidden = writeFile(join(t.dir, 'hidden', 'images-no-suffix'), readFileSync(gz.images));
    const a = await loadIdxImageSet(raw.images, raw.labels);
    const b = await loadIdxImageSet(gz.images, gz.labels);
    const c = await loadIdxImageSet(hidden, gz.labels);
    expect(Array.from(a.labels)).toEqual([3, 1, 4, 1, 5]);
    expect(a.shape).toEqual([4, 3, 1]);
    expect(Array.from(b.images)).toEqual(Array.from(a.images));
    expect(Array.from(c.images)).toEqual(Array.from(a.images));
    // Row-major pixels, value / 255.
    expect(a.images[(2 * 4 + 1) * 3 + 2]).toBeCloseTo(pixel(2, 1, 2) / 255, 6);
  });

  it('rejects a wrong magic number, naming the file and both numbers', async () => {
    const p = writeIdxPair(join(t.dir, 'magic'), 'x', [1, 2]);
    const e = await errorOf(() => loadIdxPair(p.labels, p.images, 10)); // swapped
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain('x-labels-idx1-ubyte');
    expect(e.message).toContain('wrong magic number 0x00000801');
    expect(e.message).toContain('expected 0x00000803');
    const junk = writeFile(join(t.dir, 'magic', 'junk.idx'), Buffer.from('hello world, not idx'));
    expect(() => parseIdxImages(readFileSync(junk), junk)).toThrow(/junk\.idx: wrong magic number 0x68656c6c/);
  });

  it('rejects a truncated file with expected and actual byte counts', async () => {
    const dir = join(t.dir, 'trunc');
    const full = idxBytes(0x803, [10, 4, 3], new Uint8Array(10 * 12));
    const cut = writeFile(join(dir, 'train-images-idx3-ubyte'), full.subarray(0, full.length - 12));
    const e1 = await errorOf(async () => parseIdxImages(readFileSync(cut), cut));
    expect(e1.message).toContain('train-images-idx3-ubyte');
    expect(e1.message).toContain('truncated');
    expect(e1.message).toContain(`needs ${16 + 120} bytes`);
    expect(e1.message).toContain(`has ${16 + 108}`);
    expect(e1.details).toMatchObject({ expectedBytes: 136, actualBytes: 124 });
    // Truncated after decompression: the message says so.
    const gz = writeFile(join(dir, 'b.gz'), gzipSync(full.subarray(0, 100)));
    expect(() => parseIdxImages(readFileSync(gz), gz)).toThrow(/b\.gz: truncated.*needs 136 bytes, but the file has 100 \(after decompression\)/);
    // A gzip stream itself cut short.
    const gzCut = writeFile(join(dir, 'c.gz'), gzipSync(full).subarray(0, 30));
    expect(() => parseIdxImages(readFileSync(gzCut), gzCut)).toThrow(/c\.gz: gzip data is corrupt or truncated/);
    // Extra bytes after the declared data are as wrong as missing ones.
    const long = writeFile(join(dir, 'd'), Buffer.concat([full, Buffer.alloc(5)]));
    expect(() => parseIdxImages(readFileSync(long), long)).toThrow(/d: has 5 bytes more than its header declares/);
  });

  it('rejects a label out of range and an image/label count mismatch', async () => {
    const bad = writeIdxPair(join(t.dir, 'range'), 'x', [0, 1, 12, 3]);
    const e = await errorOf(() => loadIdxPair(bad.images, bad.labels, 10));
    expect(e.message).toContain('x-labels-idx1-ubyte');
    expect(e.message).toContain('label 12 at index 2 is out of range for 10 classes');

    const dir = join(t.dir, 'count');
    const p = writeIdxPair(dir, 'x', [1, 2, 3]);
    writeFileSync(p.labels, idxBytes(0x801, [2], Uint8Array.from([1, 2])));
    clearDataCache();
    const e2 = await errorOf(() => loadIdxPair(p.images, p.labels, 10));
    expect(e2.message).toContain('x-labels-idx1-ubyte');
    expect(e2.message).toContain('has 2 labels but x-images-idx3-ubyte has 3 images');
  });
});
