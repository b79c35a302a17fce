import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError } from '../../../src-main/engine/errors';
import { jpegComponents, listDatasets, loadDataset, loadImageFolder } from '../../../src-main/engine/data';
import { tmpDir, writeFile, writeJpeg, writePng } from './fixtures';

const grad = (k: number) => (y: number, x: number, c: number) => (k * 40 + y * 20 + x * 10 + c * 60) % 256;

describe('image folders', () => {
  const t = tmpDir();
  afterAll(t.cleanup);

  it('sorts class folders, keeps RGB and converts gray PNGs to RGB when the first image is RGB', async () => {
    const root = join(t.dir, 'colors');
    // Class order must come from sorting, not creation order.
    writePng(join(root, 'zebra', 'a.png'), 4, 3, 1, () => 77);
    writePng(join(root, 'apple', 'b.png'), 4, 3, 3, grad(2));
    writePng(join(root, 'apple', 'a.png'), 4, 3, 3, grad(1));
    writeFile(join(root, 'apple', 'notes.txt'), Buffer.from('ignored'));
    const set = await loadImageFolder(root);
    expect(set.name).toBe('colors');
    expect(set.classNames).toEqual(['apple', 'zebra']);
    expect(set.shape).toEqual([3, 4, 3]);
    expect(Array.from(set.labels)).toEqual([0, 0, 1]);
    // apple/a.png first (files sorted), pixel (y=2, x=1, c=2)
    expect(set.images[(2 * 4 + 1) * 3 + 2]).toBeCloseTo(grad(1)(2, 1, 2) / 255, 6);
    // zebra/a.png is gray 77, repeated over R, G, B
    const off = 2 * 3 * 4 * 3;
    expect(Array.from(set.images.subarray(off, off + 3)).map((v) => Math.round(v * 255))).toEqual([77, 77, 77]);
    expect(set.source.files).toEqual([root]);
    expect(set.source.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('uses one channel when the first image is grayscale, converting colour images to luma', async () => {
    const root = join(t.dir, 'gray');
    writePng(join(root, 'a', '1.png'), 2, 2, 1, (y, x) => 10 * (y * 2 + x));
    writePng(join(root, 'b', '1.png'), 2, 2, 3, (_y, _x, c) => [200, 100, 50][c]);
    const set = await loadImageFolder(root);
    expect(set.shape).toEqual([2, 2, 1]);
    expect(Array.from(set.images.subarray(0, 4)).map((v) => Math.round(v * 255))).toEqual([0, 10, 20, 30]);
    const luma = Math.round(0.299 * 200 + 0.587 * 100 + 0.114 * 50);
    expect(Math.round(set.images[4] * 255)).toBe(luma);
  });

  it('decodes three-component JPEGs (lossy, close to the source) as RGB, whatever their colours', async () => {
    const root = join(t.dir, 'jpeg');
    writeJpeg(join(root, 'cat', 'x.jpg'), 8, 8, () => 128);
    writeJpeg(join(root, 'dog', 'y.JPEG'), 8, 8, (_y, _x, c) => [250, 10, 10][c]);
    const set = await loadImageFolder(root);
    expect(set.shape).toEqual([8, 8, 3]);
    expect(Math.abs(set.images[0] * 255 - 128)).toBeLessThan(4);
    const off = 8 * 8 * 3;
    expect(set.images[off] * 255).toBeGreaterThan(230); // red
    expect(set.images[off + 1] * 255).toBeLessThan(40);
  });

  it('a single-component (grayscale) JPEG makes a one-channel set', async () => {
    // 8x8 gray ramp (value 4 * (8y + x)), made with: cjpeg -grayscale -quality 100 ramp.pgm
    const GRAY_JPEG =
      '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAALCAAIAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/AM/4bf8ABtx/x7/8UF/d/wCYb9P+mVf/2Q==';
    const bytes = Buffer.from(GRAY_JPEG, 'base64');
    expect(jpegComponents(bytes)).toBe(1);
    const root = join(t.dir, 'grayjpeg');
    writeFile(join(root, 'a', 'ramp.jpg'), bytes);
    writePng(join(root, 'b', 'red.png'), 8, 8, 3, (_y, _x, c) => [255, 0, 0][c]);
    const set = await loadImageFolder(root);
    expect(set.shape).toEqual([8, 8, 1]);
    const ramp = Array.from(set.images.subarray(0, 64)).map((v) => Math.round(v * 255));
    ramp.forEach((v, i) => expect(Math.abs(v - 4 * i)).toBeLessThanOrEqual(2));
    expect(Math.round(set.images[64] * 255)).toBe(Math.round(0.299 * 255));
  });

  it('rejects an image of a different size, naming it and the first image', async () => {
    const root = join(t.dir, 'sizes');
    writePng(join(root, 'a', '1.png'), 4, 4, 3, grad(0));
    writePng(join(root, 'b', 'odd.png'), 5, 4, 3, grad(0));
    const e = await loadImageFolder(root).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as AdvlabError).message).toContain(join(root, 'b', 'odd.png'));
    expect((e as AdvlabError).message).toContain('is 5x4 pixels but the first image (a/1.png) is 4x4');
  });

  it('rejects a file that is not an image and a folder without classes', async () => {
    const root = join(t.dir, 'notimg');
    writePng(join(root, 'a', '1.png'), 2, 2, 3, grad(0));
    writeFile(join(root, 'a', '2.png'), Buffer.from('this is text'));
    await expect(loadImageFolder(root)).rejects.toThrow(/2\.png: is neither a PNG nor a JPEG image/);
    const empty = join(t.dir, 'empty');
    writeFile(join(empty, 'readme.txt'), Buffer.from('x'));
    await expect(loadImageFolder(empty)).rejects.toThrow(/empty: has no class sub-folders/);
  });

  it('a flat folder found in a data dir splits by a seeded permutation: disjoint, complete, reproducible', async () => {
    const data = join(t.dir, 'data');
    const root = join(data, 'shapes');
    for (let k = 0; k < 3; k++) for (let i = 0; i < 5; i++) writePng(join(root, `class${k}`, `${i}.png`), 3, 3, 3, grad(k * 5 + i));
    const ctx = new LocalContext();
    const train = await loadDataset('shapes', { dataDirs: [data], split: 'train', ctx });
    const test = await loadDataset('shapes', { dataDirs: [data], split: 'test' });
    expect(train.labels.length).toBe(12);
    expect(test.labels.length).toBe(3);
    expect(train.source.split).toContain('12 of 15 images as train (split random:80%, seeded permutation, seed 0');
    expect(ctx.events.at(-1)).toMatchObject({ step: 12, total: 12 });
    // Every image once: compare the first pixel values (all distinct by construction).
    const first = (s: typeof train) => Array.from({ length: s.labels.length }, (_, i) => Math.round(s.images[i * 27] * 255));
    const all = [...first(train), ...first(test)].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 15 }, (_, i) => grad(i)(0, 0, 0)).sort((a, b) => a - b));
    const again = await loadDataset('shapes', { dataDirs: [data], split: 'test' });
    expect(Array.from(again.images)).toEqual(Array.from(test.images));
    const other = await loadDataset('shapes', { dataDirs: [data], split: 'test', splitSpec: 'random:80%:5' });
    expect(first(other)).not.toEqual(first(test));

    const listing = (await listDatasets([data])).find((d) => d.name === 'shapes')!;
    expect(listing).toMatchObject({ kind: 'image-folder', nativeSplit: false, defaultSplitSpec: 'random:80%', shape: [3, 3, 3], used: true });
    expect(listing.classNames).toEqual(['class0', 'class1', 'class2']);
    expect(listing.splits.train?.count).toBe(12);
    expect(listing.splits.test?.count).toBe(3);
  });

  it('a train/ + test/ layout gives its own splits; a path works as the name', async () => {
    const root = join(t.dir, 'tt');
    writePng(join(root, 'train', 'b', '1.png'), 2, 2, 3, grad(1));
    writePng(join(root, 'train', 'a', '1.png'), 2, 2, 3, grad(2));
    writePng(join(root, 'test', 'b', '1.png'), 2, 2, 3, grad(3));
    const train = await loadDataset(root, { dataDirs: [], split: 'train' });
    const test = await loadDataset(root, { dataDirs: [], split: 'test' });
    expect(train.classNames).toEqual(['a', 'b']);
    expect(Array.from(train.labels)).toEqual([0, 1]);
    expect(Array.from(test.labels)).toEqual([1]);
    expect(test.source.split).toContain('its own test folder');
    await expect(loadDataset(root, { dataDirs: [], split: 'test', splitSpec: 'first:1' })).rejects.toThrow(/has its own train and test files/);
  });
});
