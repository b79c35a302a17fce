import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { AdvlabError } from '../../../src-main/engine/errors';
import {
  batchTensors,
  classCounts,
  dataCacheStats,
  FASHION_MNIST_CLASSES,
  listDatasets,
  loadDataset,
  loadIdxImageSet,
  parseSplitSpec,
  resolveDataDirs,
  subset,
  subsetIndices,
} from '../../../src-main/engine/data';
import { tmpDir, writeIdxPair } from './fixtures';

// The shared data folder as it is: MNIST with its own train and test files. The split-spec tests use a
// generated test-only IDX set instead (see 'splits of a test-only IDX set').
const DATA: string = resolve(process.env.ADVLAB_DATA!);
const FASHION = '/usr/share/datasets/fashion-mnist';
const hasFashion = existsSync(join(FASHION, 'train-images-idx3-ubyte.gz'));
if (!hasFashion) {
  console.warn(`SKIPPING Fashion-MNIST tests: ${FASHION} is not installed (apt-get install -y dataset-fashion-mnist)`);
}

describe('resolveDataDirs', () => {
  const t = tmpDir();
  afterAll(t.cleanup);

  it('orders --data, ADVLAB_DATA, the app folder, then system folders; skips absent defaults', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => {
      mkdirSync(join(t.dir, n));
      return join(t.dir, n);
    });
    const dirs = resolveDataDirs({
      cliData: a,
      env: { ADVLAB_DATA: `${b}:${a}` },
      appDataDir: c,
      systemDirs: [join(t.dir, 'missing'), d],
    });
    expect(dirs).toEqual([a, b, c, d]);
    // The value of ADVLAB_DATA may be passed directly; undefined means unset.
    expect(resolveDataDirs({ env: b, systemDirs: [] })).toEqual([b]);
    expect(resolveDataDirs({ env: undefined, appDataDir: join(t.dir, 'nope'), systemDirs: [] })).toEqual([]);
  });

  it('an explicit folder that does not exist is an error naming it', () => {
    const missing = join(t.dir, 'no-such');
    expect(() => resolveDataDirs({ cliData: missing, systemDirs: [] })).toThrow(`--data ${missing}: no such folder`);
    expect(() => resolveDataDirs({ env: { ADVLAB_DATA: missing }, systemDirs: [] })).toThrow(`ADVLAB_DATA ${missing}: no such folder`);
  });
});

/**
 * The split-spec machinery on a set with only a test file: a generated IDX copy of 1,000 28x28
 * images (labels 7, 8, 9, 0, 1, ...), standing in for the 10,000-image MNIST test file alone (the
 * counts of the original tests scaled by 1/10).
 */
describe('splits of a test-only IDX set', () => {
  const t = tmpDir();
  const ONLY = join(t.dir, 'data');
  const TOTAL = 1000;
  const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => (i + 7) % 10);
  beforeAll(() => {
    writeIdxPair(join(ONLY, 'mnist'), 't10k', labelsOf(TOTAL), { rows: 28, cols: 28, gz: true });
  });
  afterAll(t.cleanup);

  it('defaults to the first 800 as train and the last 200 as test, and records it', async () => {
    const all = await loadIdxImageSet(join(ONLY, 'mnist', 't10k-images-idx3-ubyte.gz'), join(ONLY, 'mnist', 't10k-labels-idx1-ubyte.gz'));
    const train = await loadDataset('mnist', { dataDirs: [ONLY], split: 'train' });
    const test = await loadDataset('mnist', { dataDirs: [ONLY], split: 'test' });
    expect(train.labels.length).toBe(800);
    expect(test.labels.length).toBe(200);
    expect(train.source.split).toBe('mnist t10k images 0-799 as train (split first:80%, the default for a set with only test files)');
    expect(test.source.split).toMatch(/^mnist t10k images 800-999 as test/);
    expect(train.labels[0]).toBe(7);
    expect(Array.from(test.labels)).toEqual(Array.from(all.labels.subarray(800)));
    expect(Array.from(test.images.subarray(0, 784))).toEqual(Array.from(all.images.subarray(800 * 784, 801 * 784)));
    expect(train.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(train.source.sha256).toBe(all.source.sha256);
  });

  it('honours a declared split spec and rejects impossible ones', async () => {
    const test = await loadDataset('mnist', { dataDirs: [ONLY], split: 'test', splitSpec: 'first:900' });
    expect(test.labels.length).toBe(100);
    expect(test.source.split).toBe('mnist t10k images 900-999 as test (split first:900)');
    await expect(loadDataset('mnist', { dataDirs: [ONLY], split: 'train', splitSpec: 'first:1000' })).rejects.toThrow(/leaves an empty test side/);
    expect(() => parseSplitSpec('half')).toThrow(/not understood/);
    expect(parseSplitSpec('random:75%:3')).toMatchObject({ kind: 'random', fraction: 0.75, seed: 3 });
    // last:N holds out the first images (for MNIST's test file alone: its cleaner half, the ones C&W attacked)
    const lastTest = await loadDataset('mnist', { dataDirs: [ONLY], split: 'test', splitSpec: 'last:800' });
    const lastTrain = await loadDataset('mnist', { dataDirs: [ONLY], split: 'train', splitSpec: 'last:80%' });
    expect(lastTest.source.split).toBe('mnist t10k images 0-199 as test (split last:800)');
    expect(lastTrain.source.split).toBe('mnist t10k images 200-999 as train (split last:80%)');
    expect(lastTest.labels[0]).toBe(7);
    expect(() => parseSplitSpec('last:80%:3')).toThrow(/seed only applies to random/);
  });

  it('limit picks a reproducible subset and says so; a different seed picks differently', async () => {
    const a = await loadDataset('mnist', { dataDirs: [ONLY], split: 'train', limit: 300, seed: 1 });
    const b = await loadDataset('mnist', { dataDirs: [ONLY], split: 'train', limit: 300, seed: 1 });
    const c = await loadDataset('mnist', { dataDirs: [ONLY], split: 'train', limit: 300, seed: 2 });
    expect(a.labels.length).toBe(300);
    expect(Array.from(a.images)).toEqual(Array.from(b.images));
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Array.from(a.labels)).not.toEqual(Array.from(c.labels));
    expect(a.source.split).toMatch(/as train .*; subset of 300 of 800 \(seed 1\)$/);
    // A random subset of 300 should see every digit.
    expect(classCounts(a).every((n) => n > 5)).toBe(true);
  });

  it('repeated loads come from the per-process cache', async () => {
    const before = dataCacheStats();
    await loadDataset('mnist', { dataDirs: [ONLY], split: 'test', limit: 10 });
    const after = dataCacheStats();
    expect(after.hits - before.hits).toBe(2); // images + labels
    expect(after.misses).toBe(before.misses);
  });

  it('lists the set with its one file and the default split', async () => {
    const list = await listDatasets([ONLY]);
    const mnist = list.find((d) => d.name === 'mnist')!;
    expect(mnist).toMatchObject({ kind: 'idx', dir: join(ONLY, 'mnist'), used: true, nativeSplit: false, defaultSplitSpec: 'first:80%', shape: [28, 28, 1] });
    expect(mnist.files).toEqual([{ role: 'test', label: 't10k', count: 1000, files: [join(ONLY, 'mnist', 't10k-images-idx3-ubyte.gz'), join(ONLY, 'mnist', 't10k-labels-idx1-ubyte.gz')] }]);
    expect(mnist.splits.train?.count).toBe(800);
    expect(mnist.splits.test?.count).toBe(200);
    expect(mnist.problems).toEqual([]);
  });
});

describe('MNIST in the shared data folder: its own train and test files', () => {
  it('is listed with its native split: 10,000 training images (the first of MNIST\'s 60,000), 10,000 test images', async () => {
    const list = await listDatasets([DATA]);
    const mnist = list.find((d) => d.name === 'mnist')!;
    expect(mnist).toMatchObject({ kind: 'idx', dir: join(DATA, 'mnist'), used: true, nativeSplit: true, shape: [28, 28, 1] });
    expect(mnist.defaultSplitSpec).toBeUndefined();
    expect(mnist.files).toEqual([
      { role: 'train', label: 'train', count: 10000, files: [join(DATA, 'mnist', 'train-images-idx3-ubyte.gz'), join(DATA, 'mnist', 'train-labels-idx1-ubyte.gz')] },
      { role: 'test', label: 't10k', count: 10000, files: [join(DATA, 'mnist', 't10k-images-idx3-ubyte.gz'), join(DATA, 'mnist', 't10k-labels-idx1-ubyte.gz')] },
    ]);
    expect(mnist.splits).toEqual({ train: { count: 10000, from: 'train (train files)' }, test: { count: 10000, from: 't10k (test files)' } });
    expect(mnist.problems).toEqual([]);
    // fsdd/ holds audio, not an image folder: not listed.
    expect(list.map((d) => d.name)).toEqual(['mnist']);
  });

  it('trains on the train file and tests on all 10,000 test images', async () => {
    const train = await loadDataset('mnist', { dataDirs: [DATA], split: 'train' });
    const test = await loadDataset('mnist', { dataDirs: [DATA], split: 'test' });
    expect(train.labels.length).toBe(10000);
    expect(Array.from(train.labels.subarray(0, 5))).toEqual([5, 0, 4, 1, 9]); // the canonical start of MNIST's training labels
    expect(train.source.files).toEqual([join(DATA, 'mnist', 'train-images-idx3-ubyte.gz'), join(DATA, 'mnist', 'train-labels-idx1-ubyte.gz')]);
    expect(train.source.split).toBe('mnist train images (10000, its own train files)');
    expect(test.labels.length).toBe(10000);
    expect(test.labels[0]).toBe(7); // the first MNIST test image is a 7
    expect(test.source.split).toBe('mnist t10k images (10000, its own test files)');
    expect(train.source.sha256).not.toBe(test.source.sha256);
    const sub = await loadDataset('mnist', { dataDirs: [DATA], split: 'train', limit: 300, seed: 1 });
    expect(sub.source.split).toBe('mnist train images (10000, its own train files); subset of 300 of 10000 (seed 1)');
  });

  it('refuses a split spec, naming the dataset, its own train and test files and the spec', async () => {
    for (const split of ['train', 'test'] as const) {
      const e = await loadDataset('mnist', { dataDirs: [DATA], split, splitSpec: 'first:8000' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(AdvlabError);
      expect((e as AdvlabError).code).toBe('BAD_INPUT');
      expect((e as AdvlabError).message).toBe(
        `mnist in ${join(DATA, 'mnist')} has its own train and test files; a split spec ("first:8000") applies only to a set with one file: leave it out`,
      );
    }
  });

  it('a split spec recorded with a model (trained when mnist had only its t10k file) still selects from the t10k file', async () => {
    const test = await loadDataset('mnist', { dataDirs: [DATA], split: 'test', modelSplitSpec: 'last:9000' });
    const all = await loadDataset('mnist', { dataDirs: [DATA], split: 'test' });
    expect(test.labels.length).toBe(1000);
    expect(Array.from(test.labels)).toEqual(Array.from(all.labels.subarray(0, 1000)));
    expect(test.source.split).toBe(
      'mnist t10k images 0-999 as test (split last:9000, recorded with the model: it was trained on a split of the t10k file before mnist had its own train files)',
    );
    const train = await loadDataset('mnist', { dataDirs: [DATA], split: 'train', modelSplitSpec: 'last:9000', limit: 10 });
    expect(train.source.split).toMatch(/^mnist t10k images 1000-9999 as train \(split last:9000, recorded with the model/);
    // A given spec wins over the model's, and is refused as ever.
    await expect(loadDataset('mnist', { dataDirs: [DATA], split: 'test', splitSpec: 'first:9000', modelSplitSpec: 'last:9000' })).rejects.toThrow(/own train and test files; a split spec \("first:9000"\)/);
  });

  it('an unknown name is NOT_FOUND naming the folders searched', async () => {
    const e = await loadDataset('nonesuch', { dataDirs: [DATA], split: 'train' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as AdvlabError).code).toBe('NOT_FOUND');
    expect((e as AdvlabError).message).toContain(DATA);
    await expect(loadDataset('cifar10', { dataDirs: [DATA], split: 'train' })).rejects.toThrow(/dataset "cifar10" not found .*cifar-10-batches-bin/);
  });
});

describe('registry with generated IDX folders', () => {
  const t = tmpDir();
  afterAll(t.cleanup);

  it('the first data folder wins; a data folder named like the dataset works; problems are listed', async () => {
    const first = join(t.dir, 'one');
    const second = join(t.dir, 'two');
    writeIdxPair(join(first, 'mnist'), 'train', [1, 2, 3], { gz: true });
    writeIdxPair(join(first, 'mnist'), 't10k', [4, 5]);
    writeIdxPair(join(second, 'mnist'), 't10k', [9, 9, 9, 9, 9]);
    const test = await loadDataset('mnist', { dataDirs: [first, second], split: 'test' });
    expect(Array.from(test.labels)).toEqual([4, 5]);
    expect(test.source.split).toBe('mnist t10k images (2, its own test files)');
    const direct = await loadDataset('mnist', { dataDirs: [join(second, 'mnist')], split: 'test', splitSpec: 'first:3' });
    expect(Array.from(direct.labels)).toEqual([9, 9]);
    await expect(loadDataset('mnist', { dataDirs: [first], split: 'test', splitSpec: 'first:1' })).rejects.toThrow(/own train and test files/);

    const list = await listDatasets([first, second]);
    expect(list.map((d) => [d.dataDir, d.used, d.nativeSplit])).toEqual([
      [first, true, true],
      [second, false, false],
    ]);
    expect(list[0].splits).toMatchObject({ train: { count: 3 }, test: { count: 2 } });

    const broken = join(t.dir, 'broken');
    writeIdxPair(join(broken, 'fashion-mnist'), 'train', [1]);
    rmSync(join(broken, 'fashion-mnist', 'train-labels-idx1-ubyte'));
    const [b] = await listDatasets([broken]);
    expect(b).toMatchObject({ name: 'fashion-mnist', used: false });
    expect(b.problems[0]).toContain('train-images-idx3-ubyte has no matching train-labels-idx1-ubyte');
    await expect(loadDataset('fashion-mnist', { dataDirs: [broken], split: 'train' })).rejects.toThrow(/not found.*has no matching/);
  });

  it('a mislabelled file fails the load with the file and the label named', async () => {
    const d = join(t.dir, 'bad');
    writeIdxPair(join(d, 'mnist'), 't10k', [0, 1, 2, 3, 4, 5, 6, 7, 8, 12]);
    await expect(loadDataset('mnist', { dataDirs: [d], split: 'train' })).rejects.toThrow(/t10k-labels-idx1-ubyte: label 12 at index 9 is out of range for 10 classes/);
  });
});

describe.skipIf(!hasFashion)('Fashion-MNIST from /usr/share/datasets', () => {
  it('is found with its own 60,000 / 10,000 split and named classes', async () => {
    const list = await listDatasets(['/usr/share/datasets']);
    const f = list.find((d) => d.name === 'fashion-mnist')!;
    expect(f).toMatchObject({ dir: FASHION, nativeSplit: true, used: true, shape: [28, 28, 1] });
    expect(f.splits).toMatchObject({ train: { count: 60000 }, test: { count: 10000 } });
    const train = await loadDataset('fashion-mnist', { dataDirs: ['/usr/share/datasets'], split: 'train', limit: 500, seed: 3 });
    const test = await loadDataset('fashion-mnist', { dataDirs: ['/usr/share/datasets'], split: 'test' });
    expect(train.labels.length).toBe(500);
    expect(train.classNames).toEqual(FASHION_MNIST_CLASSES);
    expect(train.source.split).toBe('fashion-mnist train images (60000, its own train files); subset of 500 of 60000 (seed 3)');
    expect(test.labels.length).toBe(10000);
    expect(test.labels[0]).toBe(9); // the first Fashion-MNIST test image is an ankle boot
    expect(classCounts(test)).toEqual(new Array(10).fill(1000));
  });
});

describe('subset and batchTensors', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('subsetIndices is deterministic, nested across sizes, distinct and sorted', () => {
    const a = subsetIndices(1000, 50, 7);
    expect(Array.from(a)).toEqual(Array.from(subsetIndices(1000, 50, 7)));
    expect(new Set(a).size).toBe(50);
    expect(Array.from(a)).toEqual(Array.from(a).sort((x, y) => x - y));
    const small = new Set(subsetIndices(1000, 20, 7));
    expect(Array.from(small).every((i) => a.includes(i))).toBe(true);
    expect(Array.from(subsetIndices(1000, 50, 8))).not.toEqual(Array.from(a));
    expect(subsetIndices(5, 10, 0).length).toBe(5);
  });

  it('subset copies the chosen examples and appends to the split record', async () => {
    const set = await loadDataset('mnist', { dataDirs: [DATA], split: 'test' });
    const s = subset(set, 40, 11);
    expect(set.labels.length).toBe(10000); // all of MNIST's test images
    const idx = subsetIndices(10000, 40, 11);
    expect(s.labels.length).toBe(40);
    expect(s.labels[5]).toBe(set.labels[idx[5]]);
    expect(Array.from(s.images.subarray(5 * 784, 6 * 784))).toEqual(Array.from(set.images.subarray(idx[5] * 784, (idx[5] + 1) * 784)));
    expect(s.source.split).toBe(`${set.source.split}; subset of 40 of 10000 (seed 11)`);
    expect(Array.from(subset(set, 40, 11).labels)).toEqual(Array.from(s.labels));
  });

  it('batchTensors gives x [b,h,w,c] float32 and y int32, without leaking tensors', async () => {
    const set = await loadDataset('mnist', { dataDirs: [DATA], split: 'test', limit: 64 });
    const before = tf.memory().numTensors;
    for (let step = 0; step < 4; step++) {
      const { x, y } = batchTensors(set, [step, 10 + step, 63]);
      expect(x.shape).toEqual([3, 28, 28, 1]);
      expect(x.dtype).toBe('float32');
      expect(y.dtype).toBe('int32');
      expect(Array.from(await y.data())).toEqual([set.labels[step], set.labels[10 + step], set.labels[63]]);
      const xs = await x.data();
      // The second example of the batch is image 10 + step, pixel for pixel.
      expect(Array.from(xs.subarray(784, 2 * 784))).toEqual(Array.from(set.images.subarray((10 + step) * 784, (11 + step) * 784)));
      tf.dispose([x, y]);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => batchTensors(set, [64])).toThrow(/example index 64 is outside 0..63/);
  });
});
