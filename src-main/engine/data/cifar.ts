/**
 * CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): data_batch_1..5.bin and
 * test_batch.bin, each a run of 3073-byte records: 1 label byte, then 3072 pixel bytes as three
 * 32x32 planes (R, G, B; rows in order). We convert each record to HWC. batches.meta.txt holds
 * the class names, one per line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { badFile } from '../errors';
import { allInOrder, combineHashes, readParsed } from './cache';
import { maybeGunzip } from './idx';
import { firstBadLabel, gatherFloat, type RawPart } from './raw';
import type { ImageSet } from './types';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR_SIDE = 32;
export const CIFAR_RECORD_BYTES = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;
export const CIFAR_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
export const CIFAR_TEST_FILE = 'test_batch.bin';
export const CIFAR_META_FILE = 'batches.meta.txt';

/** Parses one batch file into HWC pixels (labels are range-checked by the caller, who knows the class count). */
export function parseCifarBatch(bytes: Buffer, file: string): RawPart {
  const { data, gzipped } = maybeGunzip(bytes, file);
  const after = gzipped ? ' after decompression' : '';
  if (data.length === 0) throw badFile(file, 'is empty');
  if (data.length % CIFAR_RECORD_BYTES !== 0) {
    const whole = Math.floor(data.length / CIFAR_RECORD_BYTES);
    throw badFile(
      file,
      `length ${data.length} bytes${after} is not a multiple of ${CIFAR_RECORD_BYTES} (1 label byte + 3072 pixel bytes per CIFAR-10 record): ` +
        `${whole} whole records and ${data.length - whole * CIFAR_RECORD_BYTES} bytes left over; truncated or not a CIFAR-10 binary batch`,
      { expectedMultipleOf: CIFAR_RECORD_BYTES, actualBytes: data.length },
    );
  }
  const count = data.length / CIFAR_RECORD_BYTES;
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  const labels = new Uint8Array(count);
  const pixels = new Uint8Array(count * 3 * plane);
  for (let n = 0; n < count; n++) {
    const rec = n * CIFAR_RECORD_BYTES;
    labels[n] = data[rec];
    const out = n * 3 * plane;
    for (let p = 0; p < plane; p++) {
      pixels[out + 3 * p] = data[rec + 1 + p];
      pixels[out + 3 * p + 1] = data[rec + 1 + plane + p];
      pixels[out + 3 * p + 2] = data[rec + 1 + 2 * plane + p];
    }
  }
  return { count, pixels, labels };
}

/** Class names from batches.meta.txt in `dir` (non-empty lines), or the standard ten when it is absent. */
export function readCifarClassNames(dir: string): { classNames: string[]; metaFile?: string } {
  const meta = join(dir, CIFAR_META_FILE);
  if (!existsSync(meta)) return { classNames: [...CIFAR10_CLASSES] };
  const names = readFileSync(meta, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length < 2) throw badFile(meta, `lists ${names.length} class name(s); expected one class name per line (10 for CIFAR-10)`);
  return { classNames: names, metaFile: meta };
}

export interface CifarBatches {
  parts: RawPart[];
  shape: [number, number, number];
  files: string[];
  sha256: string;
}

/** Loads batch files (cached per process) and checks every label is below the number of classes. */
export async function loadCifarBatchFiles(files: string[], numClasses: number): Promise<CifarBatches> {
  const parsed = await allInOrder(files.map((f) => readParsed(f, 'cifar-batch', parseCifarBatch)));
  for (const p of parsed) {
    const bad = firstBadLabel(p.value.labels, numClasses);
    if (bad >= 0) {
      throw badFile(p.file, `label ${p.value.labels[bad]} in record ${bad} is out of range for ${numClasses} classes (0-${numClasses - 1})`, {
        index: bad,
        label: p.value.labels[bad],
        numClasses,
      });
    }
  }
  return {
    parts: parsed.map((p) => p.value),
    shape: [CIFAR_SIDE, CIFAR_SIDE, 3],
    files: parsed.map((p) => p.file),
    sha256: combineHashes(parsed.map((p) => ({ name: basename(p.file), sha256: p.sha256 }))),
  };
}

/** Loads whole batch files as one ImageSet (no split, no subset); class names from the folder of the first file. */
export async function loadCifarImageSet(files: string[], opts: { name?: string; classNames?: string[] } = {}): Promise<ImageSet> {
  if (files.length === 0) throw new Error('loadCifarImageSet: no files given');
  const classNames = opts.classNames ?? readCifarClassNames(join(files[0], '..')).classNames;
  const b = await loadCifarBatchFiles(files, classNames.length);
  const total = b.parts.reduce((a, p) => a + p.count, 0);
  const { images, labels } = gatherFloat(b.parts, b.shape, Array.from({ length: total }, (_, i) => i));
  return {
    name: opts.name ?? 'cifar10',
    images,
    labels,
    shape: b.shape,
    classNames,
    source: { files: b.files, sha256: b.sha256, split: `all ${total} images of ${files.map((f) => basename(f)).join(', ')}` },
  };
}
