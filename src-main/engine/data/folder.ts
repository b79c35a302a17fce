/**
 * A folder of PNG/JPEG images, one sub-folder per class (the layout of torchvision's ImageFolder):
 *   root/<class>/<image>.png|.jpg|.jpeg
 * or, with its own split, root/train/<class>/... and root/test/<class>/...
 * Class names are the sorted sub-folder names. All images must share one size. The number of
 * channels comes from the first image (grayscale PNG or single-component JPEG -> 1, else 3);
 * colour images in a grayscale set become luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, as PIL's
 * convert('L')), grayscale images in a colour set are repeated over R, G, B; alpha is dropped.
 */
import { type Dirent, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { type JobContext, silentContext } from '../context';
import { AdvlabError, badFile } from '../errors';
import { combineHashes, readParsed } from './cache';
import type { ImageSet } from './types';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface DecodedImage {
  width: number;
  height: number;
  /** True for grayscale PNGs (colour types 0 and 4) and single-component JPEGs. */
  gray: boolean;
  /** width * height * 4 bytes, RGBA (gray replicated over R, G, B). */
  rgba: Uint8Array;
}

/** Number of colour components in a JPEG's frame header (SOFn), or 0 if none is found. */
export function jpegComponents(bytes: Uint8Array): number {
  let pos = 2;
  while (pos + 9 < bytes.length) {
    if (bytes[pos] !== 0xff) return 0;
    const marker = bytes[pos + 1];
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // markers without a length
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return bytes[pos + 9];
    if (marker === 0xda) return 0; // start of scan before any frame header
    pos += 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
  }
  return 0;
}

/** Decodes a PNG or JPEG (recognised by content, not name) to RGBA. */
export function decodeImage(bytes: Buffer, file: string): DecodedImage {
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8;
  if (isPng) {
    try {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, gray: png.colorType === 0 || png.colorType === 4, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    } catch (e) {
      throw badFile(file, `cannot be decoded as PNG (${(e as Error).message})`);
    }
  }
  if (isJpeg) {
    try {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
      return { width: img.width, height: img.height, gray: jpegComponents(bytes) === 1, rgba: img.data };
    } catch (e) {
      throw badFile(file, `cannot be decoded as JPEG (${(e as Error).message})`);
    }
  }
  throw badFile(file, 'is neither a PNG nor a JPEG image (checked by content)');
}

export interface FolderEntry {
  /** Absolute path. */
  path: string;
  /** Path relative to the dataset root, with '/' separators. */
  rel: string;
  label: number;
}

export interface FolderScan {
  root: string;
  classNames: string[];
  /** 'flat': root/<class>/...; 'train-test': root/train/<class>/... and root/test/<class>/... */
  layout: 'flat' | 'train-test';
  /** Files in class order, then name order. 'all' for a flat folder, 'train' and 'test' otherwise. */
  pools: { all?: FolderEntry[]; train?: FolderEntry[]; test?: FolderEntry[] };
}

function isDirEntry(dir: string, d: Dirent): boolean {
  if (d.isDirectory()) return true;
  if (!d.isSymbolicLink()) return false;
  try {
    return statSync(join(dir, d.name)).isDirectory();
  } catch {
    return false; // a dangling link
  }
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && isDirEntry(dir, d))
    .map((d) => d.name)
    .sort();
}

function imageFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => !n.startsWith('.') && IMAGE_EXT.test(n))
    .sort();
}

function listClasses(root: string, base: string, classNames: string[]): FolderEntry[] {
  const out: FolderEntry[] = [];
  classNames.forEach((cls, label) => {
    const dir = join(base, cls);
    let names: string[] = [];
    try {
      if (statSync(dir).isDirectory()) names = imageFiles(dir);
    } catch {
      names = []; // a class present in only one split
    }
    for (const n of names) {
      const path = join(dir, n);
      out.push({ path, rel: relative(root, path).split('\\').join('/'), label });
    }
  });
  return out;
}

/** Lists the classes and image files of a folder dataset without decoding anything. */
export function scanImageFolder(dir: string): FolderScan {
  const root = resolve(dir);
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new AdvlabError('NOT_FOUND', `${root}: no such folder`, { file: root });
  }
  if (!st.isDirectory()) throw badFile(root, 'is not a folder (an image dataset is a folder with one sub-folder per class)');
  const top = subdirs(root);
  if (top.includes('train') && top.includes('test') && subdirs(join(root, 'train')).length > 0 && subdirs(join(root, 'test')).length > 0) {
    const classNames = [...new Set([...subdirs(join(root, 'train')), ...subdirs(join(root, 'test'))])].sort();
    const train = listClasses(root, join(root, 'train'), classNames);
    const test = listClasses(root, join(root, 'test'), classNames);
    if (train.length === 0) throw badFile(join(root, 'train'), 'has class folders but no .png/.jpg/.jpeg images in them');
    if (test.length === 0) throw badFile(join(root, 'test'), 'has class folders but no .png/.jpg/.jpeg images in them');
    return { root, classNames, layout: 'train-test', pools: { train, test } };
  }
  if (top.length === 0) throw badFile(root, 'has no class sub-folders (expected one sub-folder of PNG/JPEG images per class)');
  const all = listClasses(root, root, top);
  if (all.length === 0) throw badFile(root, `has class sub-folders (${top.join(', ')}) but no .png/.jpg/.jpeg images in them`);
  return { root, classNames: top, layout: 'flat', pools: { all } };
}

/** Decodes one image through the per-process cache. */
async function readImage(path: string) {
  return readParsed(path, 'image', decodeImage);
}

/** The reference image fixes size and channels for the whole dataset: the first image of its first pool. */
export async function folderReference(scan: FolderScan): Promise<{ entry: FolderEntry; shape: [number, number, number]; sha256: string }> {
  const entry = (scan.pools.train ?? scan.pools.all)![0];
  const r = await readImage(entry.path);
  return { entry, shape: [r.value.height, r.value.width, r.value.gray ? 1 : 3], sha256: r.sha256 };
}

/**
 * Decodes the entries at `indices` into float pixels [0, 1], checking each against the reference
 * size and converting to the reference's channels. Reports progress and honours cancellation.
 */
export async function readFolderImages(
  entries: FolderEntry[],
  indices: ArrayLike<number>,
  ref: { entry: FolderEntry; shape: [number, number, number]; sha256: string },
  ctx: JobContext = silentContext,
): Promise<{ images: Float32Array; labels: Uint8Array; sha256: string }> {
  const [h, w, c] = ref.shape;
  const size = h * w * c;
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  const hashes = new Map<string, string>([[ref.entry.rel, ref.sha256]]);
  for (let k = 0; k < indices.length; k++) {
    if (k % 32 === 0) {
      ctx.checkpoint();
      ctx.progress({ step: k, total: indices.length, phase: 'decoding images' });
    }
    const e = entries[indices[k]];
    const { value: d, sha256 } = await readImage(e.path);
    hashes.set(e.rel, sha256);
    if (d.width !== w || d.height !== h) {
      throw badFile(e.path, `is ${d.width}x${d.height} pixels but the first image (${ref.entry.rel}) is ${w}x${h}; all images of a folder dataset must share one size`, {
        width: d.width,
        height: d.height,
        expectedWidth: w,
        expectedHeight: h,
      });
    }
    const off = k * size;
    const px = d.rgba;
    if (c === 3) {
      for (let p = 0; p < h * w; p++) {
        images[off + 3 * p] = px[4 * p] / 255;
        images[off + 3 * p + 1] = px[4 * p + 1] / 255;
        images[off + 3 * p + 2] = px[4 * p + 2] / 255;
      }
    } else if (d.gray) {
      for (let p = 0; p < h * w; p++) images[off + p] = px[4 * p] / 255;
    } else {
      for (let p = 0; p < h * w; p++) images[off + p] = Math.round(0.299 * px[4 * p] + 0.587 * px[4 * p + 1] + 0.114 * px[4 * p + 2]) / 255;
    }
    labels[k] = e.label;
  }
  ctx.progress({ step: indices.length, total: indices.length, phase: 'decoding images' });
  const items = [...hashes].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([name, sha256]) => ({ name, sha256 }));
  return { images, labels, sha256: combineHashes(items) };
}

/**
 * Loads every image of a folder dataset (both pools of a train/test layout, train first) as one
 * ImageSet. source.files is the folder; source.sha256 covers every image read (path + content).
 */
export async function loadImageFolder(dir: string, opts: { name?: string; ctx?: JobContext } = {}): Promise<ImageSet> {
  const scan = scanImageFolder(dir);
  const entries = scan.layout === 'flat' ? scan.pools.all! : [...scan.pools.train!, ...scan.pools.test!];
  const ref = await folderReference(scan);
  const r = await readFolderImages(entries, Array.from({ length: entries.length }, (_, i) => i), ref, opts.ctx);
  return {
    name: opts.name ?? basename(scan.root),
    images: r.images,
    labels: r.labels,
    shape: ref.shape,
    classNames: scan.classNames,
    source: { files: [scan.root], sha256: r.sha256, split: `all ${entries.length} images of ${basename(scan.root)}/` },
  };
}
