/** Writers for small dataset files in a temporary folder: IDX, CIFAR-10 batches, PNG/JPEG folders. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export function tmpDir(prefix = 'advlab-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function write(path: string, bytes: Uint8Array): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** IDX bytes: magic, sizes, data. `declared` overrides the sizes in the header (to make bad files). */
export function idxBytes(magic: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** A deterministic pixel value for image n at (y, x, channel c). */
export function pixel(n: number, y: number, x: number, c = 0): number {
  return (n * 37 + y * 11 + x * 5 + c * 71) % 256;
}

/** Writes an IDX images file and a labels file (gzipped when gz) of `n` images rows x cols. */
export function writeIdxPair(
  dir: string,
  prefix: string,
  labels: number[],
  opts: { rows?: number; cols?: number; gz?: boolean } = {},
): { images: string; labels: string } {
  const rows = opts.rows ?? 4;
  const cols = opts.cols ?? 3;
  const n = labels.length;
  const px = new Uint8Array(n * rows * cols);
  for (let i = 0; i < n; i++) for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) px[(i * rows + y) * cols + x] = pixel(i, y, x);
  const ext = opts.gz ? '.gz' : '';
  const z = (b: Buffer) => (opts.gz ? gzipSync(b) : b);
  return {
    images: write(join(dir, `${prefix}-images-idx3-ubyte${ext}`), z(idxBytes(0x803, [n, rows, cols], px))),
    labels: write(join(dir, `${prefix}-labels-idx1-ubyte${ext}`), z(idxBytes(0x801, [n], Uint8Array.from(labels)))),
  };
}

/** One CIFAR-10 batch: records of 1 label byte + R, G, B 32x32 planes, pixel(n, y, x, c) values. */
export function cifarBytes(labels: number[]): Buffer {
  const rec = 3073;
  const b = Buffer.alloc(labels.length * rec);
  labels.forEach((l, n) => {
    b[n * rec] = l;
    for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) b[n * rec + 1 + c * 1024 + y * 32 + x] = pixel(n, y, x, c);
  });
  return b;
}

export function writeFile(path: string, bytes: Uint8Array): string {
  return write(path, bytes);
}

/** Writes a PNG: gray (colour type 0) when channels is 1, RGB (colour type 2) when 3. */
export function writePng(path: string, w: number, h: number, channels: 1 | 3, value: (y: number, x: number, c: number) => number): string {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) png.data[o + c] = value(y, x, channels === 1 ? 0 : c);
      png.data[o + 3] = 255;
    }
  return write(path, PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true }));
}

/** Writes an RGB JPEG at high quality. */
export function writeJpeg(path: string, w: number, h: number, value: (y: number, x: number, c: number) => number): string {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) data[o + c] = value(y, x, c);
      data[o + 3] = 255;
    }
  return write(path, jpeg.encode({ width: w, height: h, data }, 95).data);
}
