/**
 * IDX files, the format of MNIST, Fashion-MNIST and their kin (http://yann.lecun.com/exdb/mnist/):
 * a big-endian magic number 0x0000TTDD (TT = element type, 0x08 = unsigned byte; DD = number of
 * dimensions), DD big-endian uint32 sizes, then the elements. Images are 0x00000803 (n, rows,
 * cols); labels are 0x00000801 (n). Files may be gzip-compressed: detected by content (1f 8b),
 * whatever the name says.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { constants as zc, gunzipSync } from 'node:zlib';
import { badFile } from '../errors';
import { allInOrder, combineHashes, type Parsed, readParsed } from './cache';
import { firstBadLabel, gatherFloat, type RawPart } from './raw';
import type { ImageSet } from './types';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

const hex = (m: number) => `0x${m.toString(16).padStart(8, '0')}`;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Returns the bytes, decompressed when they are gzip data. */
export function maybeGunzip(bytes: Buffer, file: string): { data: Buffer; gzipped: boolean } {
  if (!isGzip(bytes)) return { data: bytes, gzipped: false };
  try {
    return { data: gunzipSync(bytes), gzipped: true };
  } catch (e) {
    throw badFile(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
  }
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count * rows * cols bytes. */
  pixels: Uint8Array;
}

function describeMagic(m: number): string {
  if (m === IDX_IMAGES_MAGIC) return 'an IDX images file';
  if (m === IDX_LABELS_MAGIC) return 'an IDX labels file';
  return 'not an unsigned-byte IDX file';
}

/** Checks the magic number and that the file holds exactly the bytes its header declares. */
function checkIdx(data: Buffer, file: string, gzipped: boolean, want: number, what: string): number[] {
  const ndims = want & 0xff;
  const headerBytes = 4 + 4 * ndims;
  if (data.length < 4) throw badFile(file, `too short to be an IDX file (${data.length} bytes${gzipped ? ' after decompression' : ''})`);
  const magic = data.readUInt32BE(0);
  if (magic !== want) {
    throw badFile(file, `wrong magic number ${hex(magic)}: expected ${hex(want)} for ${what} (this looks like ${describeMagic(magic)})`, {
      magic,
      expected: want,
    });
  }
  if (data.length < headerBytes) throw badFile(file, `truncated: the IDX header needs ${headerBytes} bytes, the file has ${data.length}`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(data.readUInt32BE(4 + 4 * i));
  const expected = headerBytes + dims.reduce((a, b) => a * b, 1);
  const after = gzipped ? ' (after decompression)' : '';
  if (data.length < expected) {
    throw badFile(
      file,
      `truncated: the header declares ${dims.join(' x ')} ${what === 'labels' ? 'labels' : 'pixels'}, which needs ${expected} bytes, but the file has ${data.length}${after}`,
      { expectedBytes: expected, actualBytes: data.length },
    );
  }
  if (data.length > expected) {
    throw badFile(
      file,
      `has ${data.length - expected} bytes more than its header declares (${dims.join(' x ')}): expected ${expected} bytes, found ${data.length}${after}`,
      { expectedBytes: expected, actualBytes: data.length },
    );
  }
  return dims;
}

/** Parses an IDX images file (magic 0x00000803), raw or gzip. */
export function parseIdxImages(bytes: Buffer, file: string): IdxImages {
  const { data, gzipped } = maybeGunzip(bytes, file);
  const [count, rows, cols] = checkIdx(data, file, gzipped, IDX_IMAGES_MAGIC, 'images');
  if (count === 0 || rows === 0 || cols === 0) throw badFile(file, `declares an empty image set (${count} images of ${rows}x${cols})`);
  return { count, rows, cols, pixels: new Uint8Array(data.buffer, data.byteOffset + 16, count * rows * cols) };
}

/** Parses an IDX labels file (magic 0x00000801), raw or gzip. */
export function parseIdxLabels(bytes: Buffer, file: string): Uint8Array {
  const { data, gzipped } = maybeGunzip(bytes, file);
  const [count] = checkIdx(data, file, gzipped, IDX_LABELS_MAGIC, 'labels');
  return new Uint8Array(data.buffer, data.byteOffset + 8, count);
}

/**
 * Reads only the header of an IDX file (decompressing just its first block when gzipped): the
 * magic number and the sizes. For listings, where parsing 30 MB per dataset would be wasteful.
 */
export async function readIdxHeader(file: string): Promise<{ magic: number; dims: number[] }> {
  const fh = await open(file, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(65536);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  if (isGzip(head)) {
    try {
      head = gunzipSync(head, { finishFlush: zc.Z_SYNC_FLUSH });
    } catch (e) {
      throw badFile(file, `gzip data is corrupt (${(e as Error).message})`);
    }
  }
  if (head.length < 4) throw badFile(file, 'too short to be an IDX file');
  const magic = head.readUInt32BE(0);
  if (magic !== IDX_IMAGES_MAGIC && magic !== IDX_LABELS_MAGIC) throw badFile(file, `wrong magic number ${hex(magic)}: not an IDX images or labels file`);
  const ndims = magic & 0xff;
  if (head.length < 4 + 4 * ndims) throw badFile(file, 'truncated IDX header');
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(head.readUInt32BE(4 + 4 * i));
  return { magic, dims };
}

/** An images file and its labels file, parsed (cached per process) and checked against each other. */
export interface IdxPair {
  part: RawPart;
  shape: [number, number, number];
  files: string[];
  sha256: string;
}

/**
 * Loads and cross-checks an IDX images/labels pair: equal counts and every label < numClasses.
 * Both files go through the per-process cache.
 */
export async function loadIdxPair(imagesFile: string, labelsFile: string, numClasses: number): Promise<IdxPair> {
  const [img, lab] = await allInOrder<Parsed<unknown>>([
    readParsed(imagesFile, 'idx-images', parseIdxImages),
    readParsed(labelsFile, 'idx-labels', parseIdxLabels),
  ]);
  const images = img.value as IdxImages;
  const labels = lab.value as Uint8Array;
  if (labels.length !== images.count) {
    throw badFile(labelsFile, `has ${labels.length} labels but ${basename(imagesFile)} has ${images.count} images`, {
      labels: labels.length,
      images: images.count,
    });
  }
  const bad = firstBadLabel(labels, numClasses);
  if (bad >= 0) {
    throw badFile(labelsFile, `label ${labels[bad]} at index ${bad} is out of range for ${numClasses} classes (0-${numClasses - 1})`, {
      index: bad,
      label: labels[bad],
      numClasses,
    });
  }
  return {
    part: { count: images.count, pixels: images.pixels, labels },
    shape: [images.rows, images.cols, 1],
    files: [img.file, lab.file],
    sha256: combineHashes([
      { name: basename(img.file), sha256: img.sha256 },
      { name: basename(lab.file), sha256: lab.sha256 },
    ]),
  };
}

/**
 * Loads a whole IDX pair as an ImageSet (no split, no subset). `classNames` defaults to '0'..'9'.
 */
export async function loadIdxImageSet(
  imagesFile: string,
  labelsFile: string,
  opts: { name?: string; classNames?: string[] } = {},
): Promise<ImageSet> {
  const classNames = opts.classNames ?? Array.from({ length: 10 }, (_, i) => String(i));
  const pair = await loadIdxPair(imagesFile, labelsFile, classNames.length);
  const all = Array.from({ length: pair.part.count }, (_, i) => i);
  const { images, labels } = gatherFloat([pair.part], pair.shape, all);
  return {
    name: opts.name ?? basename(imagesFile),
    images,
    labels,
    shape: pair.shape,
    classNames,
    source: { files: pair.files, sha256: pair.sha256, split: `all ${pair.part.count} images of ${basename(imagesFile)}` },
  };
}
