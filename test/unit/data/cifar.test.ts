import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CIFAR10_CLASSES,
  listDatasets,
  loadCifarImageSet,
  loadDataset,
} from '../../../src-main/engine/data';
import { cifarBytes, pixel, tmpDir, writeFile } from './fixtures';

describe('CIFAR-10 binary batches', () => {
  const t = tmpDir();
  afterAll(t.cleanup);

  it('converts CHW records to HWC floats, standard names without batches.meta.txt', async () => {
    const f = writeFile(join(t.dir, 'plain', 'test_batch.bin'), cifarBytes([3, 9, 0]));
    const set = await loadCifarImageSet([f]);
    expect(set.shape).toEqual([32, 32, 3]);
    expect(Array.from(set.labels)).toEqual([3, 9, 0]);
    expect(set.classNames).toEqual(CIFAR10_CLASSES);
    // image n, row y, column x, channel c sits at ((n*32 + y)*32 + x)*3 + c
    for (const [n, y, x, c] of [
      [0, 0, 0, 0],
      [1, 5, 17, 1],
      [2, 31, 30, 2],
    ]) {
      expect(set.images[((n * 32 + y) * 32 + x) * 3 + c]).toBeCloseTo(pixel(n, y, x, c) / 255, 6);
    }
  });

  it('reads class names from batches.meta.txt', async () => {
    const dir = join(t.dir, 'meta');
    const f = writeFile(join(dir, 'test_batch.bin'), cifarBytes([1, 0]));
    writeFileSync(join(dir, 'batches.meta.txt'), 'cat\ndog\n\n');
    const set = await loadCifarImageSet([f]);
    expect(set.classNames).toEqual(['cat', 'dog']);
  });

  it('rejects a length that is not a multiple of 3073 and a label out of range, naming the file', async () => {
    const dir = join(t.dir, 'bad');
    const short = writeFile(join(dir, 'data_batch_1.bin'), cifarBytes([1, 2]).subarray(0, 3073 + 100));
    await expect(loadCifarImageSet([short])).rejects.toThrow(/data_batch_1\.bin: length 3173 bytes is not a multiple of 3073/);
    const bad = writeFile(join(dir, 'data_batch_2.bin'), cifarBytes([1, 12, 2]));
    await expect(loadCifarImageSet([bad])).rejects.toThrow(/data_batch_2\.bin: label 12 in record 1 is out of range for 10 classes/);
  });

  it('is found as cifar-10-batches-bin/ with its own train and test batches', async () => {
    const root = join(t.dir, 'root');
    const dir = join(root, 'cifar-10-batches-bin');
    writeFile(join(dir, 'data_batch_1.bin'), cifarBytes([0, 1, 2]));
    writeFile(join(dir, 'data_batch_2.bin'), cifarBytes([3, 4]));
    writeFile(join(dir, 'test_batch.bin'), cifarBytes([5, 6, 7, 8]));
    const train = await loadDataset('cifar10', { dataDirs: [root], split: 'train' });
    expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4]);
    // The second batch's first image is pixel(0, ...) again: parts are concatenated in order.
    expect(train.images[3 * 3072]).toBeCloseTo(pixel(0, 0, 0, 0) / 255, 6);
    expect(train.source.files.map((f) => f.split('/').pop())).toEqual(['data_batch_1.bin', 'data_batch_2.bin']);
    expect(train.source.split).toContain('its own train files');
    const test = await loadDataset('cifar10', { dataDirs: [root], split: 'test' });
    expect(Array.from(test.labels)).toEqual([5, 6, 7, 8]);
    const [listing] = await listDatasets([root]);
    expect(listing).toMatchObject({ name: 'cifar10', kind: 'cifar10', nativeSplit: true, shape: [32, 32, 3], used: true });
    expect(listing.splits).toEqual({ train: { count: 5, from: expect.any(String) }, test: { count: 4, from: expect.any(String) } });
    expect(listing.problems.join(' ')).toContain('only 2 of the 5 training batches');
  });

  it('splits a lone test_batch.bin by the declared split (in cifar10/)', async () => {
    const root = join(t.dir, 'lone');
    writeFile(join(root, 'cifar10', 'test_batch.bin'), cifarBytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const train = await loadDataset('cifar10', { dataDirs: [root], split: 'train' });
    const test = await loadDataset('cifar10', { dataDirs: [root], split: 'test' });
    expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(test.labels)).toEqual([8, 9]);
    expect(test.source.split).toBe('cifar10 test_batch images 8-9 as test (split first:80%, the default for a set with only test files)');
  });
});
