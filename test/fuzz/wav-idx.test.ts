/**
 * Fuzzing the WAV and IDX readers (issue 14): real FSDD clips and crafted headers (every encoding
 * the reader takes, WAVE_FORMAT_EXTENSIBLE, odd chunks), and MNIST's IDX headers (a real prefix of
 * the test set, raw and gzipped), mutated byte by byte, truncated and with hostile header fields.
 * Every input is either read (and then sane: finite samples, sizes as declared) or refused with an
 * AdvlabError (BAD_FILE) whose message names the file; nothing else is thrown, no input is slow.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav, readWav, readWavFile } from '../../src-main/engine/audio/wav';
import { parseIdxImages, parseIdxLabels, readIdxHeader } from '../../src-main/engine/data/idx';
import { count, fuzz, listing, mutateBytesN, type Rng } from './harness';

const DATA = process.env.ADVLAB_DATA!;
const parent = mkdtempSync(path.join(tmpdir(), 'advlab-fuzz-parsers-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

/** A message that names the file and says something beyond it. */
function namesFile(message: string, file: string): string | null {
  if (!message.includes(file)) return `message does not name ${file}: ${message.slice(0, 200)}`;
  if (message.replace(file, '').trim().length < 8) return `message says nothing about the problem: ${message}`;
  return null;
}

describe('fuzz: WAV', () => {
  it('mutated FSDD clips and crafted headers are read or refused by name, never thrown past', async () => {
    const dir = path.join(DATA, 'fsdd/recordings');
    const clips = readdirSync(dir).filter((f) => f.endsWith('.wav')).sort().filter((_, i) => i % 300 === 0).slice(0, 8).map((f) => readFileSync(path.join(dir, f)));
    expect(clips.length).toBeGreaterThan(2);
    const tone = Float32Array.from({ length: 400 }, (_, i) => Math.sin(i / 7) * 0.5);
    const crafted = [
      encodeWav(tone, 8000, { encoding: 'pcm', bitsPerSample: 8 }),
      encodeWav(tone, 16000, { encoding: 'pcm', bitsPerSample: 24 }),
      encodeWav(tone, 44100, { encoding: 'pcm', bitsPerSample: 32 }),
      encodeWav(tone, 16000, { encoding: 'float', bitsPerSample: 32 }),
      encodeWav(tone, 48000, { encoding: 'float', bitsPerSample: 64, extensible: true }),
      encodeWav([tone, tone.map((x) => -x)], 22050, { extensible: true }),
      // An odd LIST chunk before fmt: the reader must skip it with its pad byte.
      (() => {
        const w = encodeWav(tone, 16000);
        const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0')]);
        const out = Buffer.concat([w.subarray(0, 12), list, w.subarray(12)]);
        out.writeUInt32LE(out.length - 8, 4);
        return out;
      })(),
    ];
    for (const c of [...clips, ...crafted]) expect(readWav(c).samples.length).toBeGreaterThan(0); // the seeds are valid
    const seeds = [...clips, ...crafted];
    // Header fields: RIFF size, fmt size, format code, channels, rate, byte rate, block align, bits, data size.
    const fields = [4, 16, 20, 22, 24, 28, 32, 34, 36, 40];
    const file = path.join(parent, 'fuzzed.wav');
    const out = await fuzz('wav', count(20000), {
      maxMs: 1000,
      make: (rng: Rng, i) => ({ bytes: mutateBytesN(rng, rng.pick(seeds), fields), fromDisk: i % 25 === 0 }),
      run: async ({ bytes, fromDisk }) => {
        let a;
        if (fromDisk) {
          writeFileSync(file, bytes);
          a = await readWavFile(file);
        } else a = readWav(bytes, 'fuzzed.wav');
        if (!a.samples.every(Number.isFinite)) throw new Error('accepted non-finite samples');
        if (a.samples.length === 0 || a.samples.length * a.channels * (a.bitsPerSample / 8) > bytes.length) throw new Error(`accepted ${a.samples.length} frames from ${bytes.length} bytes`);
        if (Math.abs(a.duration - a.samples.length / a.sampleRate) > 1e-9) throw new Error('duration does not match the samples');
      },
      check: (e, { fromDisk }) => (e.code !== 'BAD_FILE' ? `code ${e.code}` : namesFile(e.message, fromDisk ? file : 'fuzzed.wav')),
      describe: ({ bytes }) => `${bytes.length} bytes`,
    });
    expect(out.failures).toEqual([]);
    expect(out.refused).toBeGreaterThan(0);
    expect(out.accepted).toBeGreaterThan(0);
  });
});

describe('fuzz: IDX', () => {
  it('mutated MNIST headers and truncated files, raw and gzipped, are parsed or refused by name', async () => {
    const imgs = gunzipSync(readFileSync(path.join(DATA, 'mnist/t10k-images-idx3-ubyte.gz')));
    const labs = gunzipSync(readFileSync(path.join(DATA, 'mnist/t10k-labels-idx1-ubyte.gz')));
    const n = 20;
    // A real prefix: MNIST's header with the count set to the n images kept.
    const imgSeed = Buffer.from(imgs.subarray(0, 16 + n * 28 * 28));
    imgSeed.writeUInt32BE(n, 4);
    const labSeed = Buffer.from(labs.subarray(0, 8 + n));
    labSeed.writeUInt32BE(n, 4);
    expect(parseIdxImages(imgSeed, 'seed').count).toBe(n);
    expect(parseIdxLabels(labSeed, 'seed').length).toBe(n);
    const fields = [0, 2, 3, 4, 8, 12];
    const file = path.join(parent, 'fuzzed-idx');
    const out = await fuzz('idx', count(15000), {
      maxMs: 1000,
      make: (rng: Rng, i) => {
        const images = rng.chance(0.5);
        let bytes = mutateBytesN(rng, images ? imgSeed : labSeed, fields);
        const mode = rng.int(4); // 0-1 raw, 2 gzip of the mutation, 3 mutated gzip
        if (mode === 2) bytes = gzipSync(bytes);
        if (mode === 3) bytes = mutateBytesN(rng, gzipSync(images ? imgSeed : labSeed));
        return { images, bytes, header: i % 20 === 0 };
      },
      run: async ({ images, bytes, header }) => {
        if (header) {
          writeFileSync(file, bytes);
          const h = await readIdxHeader(file);
          if (h.dims.length !== (h.magic & 0xff)) throw new Error('header dims do not match the magic');
          return;
        }
        if (images) {
          const r = parseIdxImages(bytes, 'fuzzed-idx');
          if (r.pixels.length !== r.count * r.rows * r.cols) throw new Error('pixel count does not match the header');
        } else parseIdxLabels(bytes, 'fuzzed-idx');
      },
      check: (e, { header }) => (e.code !== 'BAD_FILE' ? `code ${e.code}` : namesFile(e.message, header ? file : 'fuzzed-idx')),
      describe: ({ images, bytes }) => `${images ? 'images' : 'labels'} ${bytes.length} bytes`,
    });
    expect(out.failures).toEqual([]);
    expect(out.refused).toBeGreaterThan(0);
    expect(out.accepted).toBeGreaterThan(0);
    // The readers write nothing: the temp folder holds only the two inputs the fuzzer wrote.
    expect(listing(parent).map((l) => l.split(' ')[0])).toEqual(['fuzzed-idx', 'fuzzed.wav']);
  });
});
