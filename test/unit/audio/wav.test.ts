import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import {
  encodeWav, quantize16, readWav, readWavFile, write16,
  MAX_WAV_CHANNELS, MAX_WAV_FILE_BYTES, MAX_WAV_SAMPLE_RATE, MAX_WAV_SECONDS, MIN_WAV_SAMPLE_RATE,
} from '../../../src-main/engine/audio';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'advlab-wav-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sine(n: number, freq: number, rate: number, amp = 0.6, phase = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate + phase));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Catches the thrown error and checks it is a BAD_FILE error whose message matches. */
function badFileError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AdvlabError);
  expect((err as AdvlabError).code).toBe('BAD_FILE');
  expect((err as AdvlabError).message).toMatch(pattern);
}

describe('WAV round trips', () => {
  const x = sine(1001, 440, 11025);
  const cases = [
    { encoding: 'pcm', bits: 8, tol: 1 / 128 },
    { encoding: 'pcm', bits: 16, tol: 1 / 32768 },
    { encoding: 'pcm', bits: 24, tol: 1 / 8388608 },
    { encoding: 'pcm', bits: 32, tol: 1e-7 },
    { encoding: 'float', bits: 32, tol: 0 },
    { encoding: 'float', bits: 64, tol: 0 },
  ] as const;
  for (const c of cases) {
    for (const extensible of [false, true]) {
      it(`${c.encoding} ${c.bits}-bit${extensible ? ' (WAVE_FORMAT_EXTENSIBLE)' : ''} through a file`, async () => {
        const path = join(dir, `${c.encoding}${c.bits}${extensible ? 'x' : ''}.wav`);
        await writeFile(path, encodeWav(x, 11025, { encoding: c.encoding, bitsPerSample: c.bits, extensible }));
        const wav = await readWavFile(path);
        expect(wav.sampleRate).toBe(11025);
        expect(wav.channels).toBe(1);
        expect(wav.bitsPerSample).toBe(c.bits);
        expect(wav.encoding).toBe(c.encoding);
        expect(wav.extensible).toBe(extensible);
        expect(wav.samples.length).toBe(x.length);
        expect(wav.duration).toBeCloseTo(1001 / 11025, 9);
        // Rounding to the nearest step: error at most half a step (plus float32 storage).
        expect(maxDiff(wav.samples, x)).toBeLessThanOrEqual(c.tol / 2 + 1e-7);
      });
    }
  }

  it('decodes known 8-bit and 24-bit byte patterns exactly', () => {
    const w8 = encodeWav(new Float32Array([0, 0.5, -1, 1]), 8000, { bitsPerSample: 8 });
    expect([...w8.subarray(44, 48)]).toEqual([128, 192, 0, 255]);
    expect([...readWav(w8).samples]).toEqual([0, 0.5, -1, 127 / 128]);
    const w24 = encodeWav(new Float32Array([-1, 0.25]), 8000, { bitsPerSample: 24 });
    expect([...w24.subarray(44, 50)]).toEqual([0x00, 0x00, 0x80, 0x00, 0x00, 0x20]);
    expect([...readWav(w24).samples]).toEqual([-1, 0.25]);
  });

  it('mixes multi-channel audio down to mono by averaging', () => {
    const left = sine(500, 300, 16000, 0.8);
    const right = sine(500, 700, 16000, 0.4);
    const third = new Float32Array(500).fill(-0.3);
    for (const opts of [{ bitsPerSample: 16 }, { encoding: 'float' as const }, { bitsPerSample: 24, extensible: true }]) {
      const wav = readWav(encodeWav([left, right, third], 16000, opts));
      expect(wav.channels).toBe(3);
      const expected = left.map((v, i) => (v + right[i] + third[i]) / 3);
      expect(maxDiff(wav.samples, expected)).toBeLessThan(1e-4);
    }
  });

  it('write16 clips and matches quantize16 exactly', () => {
    const y = Float32Array.from([0.1234567, -0.5, 1.7, -3, 0.99999, 1e-6, NaN]);
    const back = readWav(write16(y, 8000));
    expect(back.bitsPerSample).toBe(16);
    expect(Array.from(back.samples)).toEqual(Array.from(quantize16(y)));
    expect(back.samples[2]).toBe(32767 / 32768);
    expect(back.samples[3]).toBe(-1);
    expect(back.samples[6]).toBe(0);
    // Quantisation error is at most half a step for in-range samples.
    expect(Math.abs(back.samples[0] - y[0])).toBeLessThanOrEqual(0.5 / 32768 + 1e-9);
    // Samples already on the grid survive unchanged.
    expect(Array.from(quantize16(back.samples))).toEqual(Array.from(back.samples));
  });

  it('skips unknown chunks before and after fmt, including odd-sized padded ones', () => {
    const plain = encodeWav(sine(100, 500, 8000), 8000);
    const junk = Buffer.from([...Buffer.from('JUNK'), 3, 0, 0, 0, 1, 2, 3, 0]); // 3 bytes + pad
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([4, 0, 0, 0]), Buffer.from('INFO')]);
    const fmt = plain.subarray(12, 36);
    const data = plain.subarray(36);
    const body = Buffer.concat([Buffer.from('WAVE'), junk, fmt, list, data]);
    const head = Buffer.alloc(8);
    head.write('RIFF', 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    const wav = readWav(Buffer.concat([head, body]));
    expect(maxDiff(wav.samples, readWav(plain).samples)).toBe(0);
  });
});

describe('WAV errors name the file and the problem', () => {
  const good = encodeWav(sine(64, 500, 8000), 8000);

  it('not RIFF/WAVE', () => {
    badFileError(() => readWav(Buffer.from('hello world, not a wav file at all'), 'a.wav'), /^a\.wav: not a WAV file/);
    badFileError(() => readWav(Buffer.from('RIFF'), 'b.wav'), /b\.wav: not a WAV file/);
    const avi = Buffer.from(good);
    avi.write('AVI ', 8, 'latin1');
    badFileError(() => readWav(avi, 'c.wav'), /no RIFF\/WAVE header/);
  });

  it('truncated data chunk', () => {
    badFileError(() => readWav(good.subarray(0, good.length - 10), 't.wav'), /t\.wav: truncated data chunk \(declares 128 bytes, 118 present\)/);
  });

  it('truncated or missing fmt chunk', () => {
    badFileError(() => readWav(good.subarray(0, 30), 'f.wav'), /truncated fmt chunk/);
    const noFmt = Buffer.from(good);
    noFmt.write('xxxx', 12, 'latin1');
    badFileError(() => readWav(noFmt, 'g.wav'), /no fmt chunk/);
  });

  it('unsupported encodings name the format code', () => {
    const mulaw = Buffer.from(good);
    mulaw.writeUInt16LE(7, 20);
    badFileError(() => readWav(mulaw, 'm.wav'), /m\.wav: unsupported encoding mu-law \(format code 0x0007\)/);
    const adpcm = Buffer.from(good);
    adpcm.writeUInt16LE(0x11, 20);
    badFileError(() => readWav(adpcm, 'i.wav'), /IMA ADPCM \(format code 0x0011\)/);
    const ext = encodeWav(sine(64, 500, 8000), 8000, { extensible: true });
    ext.writeUInt16LE(2, 44); // sub-format MS ADPCM
    badFileError(() => readWav(ext, 'e.wav'), /Microsoft ADPCM \(format code 0x0002\) inside WAVE_FORMAT_EXTENSIBLE/);
    const odd = Buffer.from(good);
    odd.writeUInt16LE(12, 34); // 12-bit PCM
    badFileError(() => readWav(odd, 'o.wav'), /unsupported PCM sample size of 12 bits/);
  });

  it('empty clip', () => {
    badFileError(() => readWav(encodeWav(new Float32Array(0), 8000), 'empty.wav'), /empty\.wav: the clip is empty/);
  });

  it('missing file', async () => {
    await expect(readWavFile(join(dir, 'nope.wav'))).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(/nope\.wav: cannot be read \(ENOENT\)/) });
  });

  it('reads a real FSDD clip (PCM16 mono 8 kHz)', async () => {
    const path = join(process.env.ADVLAB_DATA!, 'fsdd', 'recordings', '7_jackson_32.wav');
    const wav = await readWavFile(path);
    expect(wav).toMatchObject({ sampleRate: 8000, channels: 1, bitsPerSample: 16, encoding: 'pcm' });
    expect(wav.samples.length).toBe(((await readFile(path)).length - 44) / 2);
    expect(Math.max(...wav.samples.map(Math.abs))).toBeGreaterThan(0.05);
  });
});

describe('WAV limits: rate, channels, duration, size and non-finite samples are refused with the bound named', () => {
  it('sample rates outside MIN_WAV_SAMPLE_RATE..MAX_WAV_SAMPLE_RATE are refused; the bounds themselves are read', () => {
    expect([MIN_WAV_SAMPLE_RATE, MAX_WAV_SAMPLE_RATE]).toEqual([8000, 192000]);
    expect(readWav(encodeWav(sine(64, 500, 8000), MIN_WAV_SAMPLE_RATE)).sampleRate).toBe(MIN_WAV_SAMPLE_RATE);
    expect(readWav(encodeWav(sine(64, 500, 8000), MAX_WAV_SAMPLE_RATE)).sampleRate).toBe(MAX_WAV_SAMPLE_RATE);
    badFileError(() => readWav(encodeWav(sine(64, 500, 8000), MIN_WAV_SAMPLE_RATE - 1), 'low.wav'), /low\.wav: sample rate 7999 Hz is outside 8000\.\.192000 Hz/);
    badFileError(() => readWav(encodeWav(sine(64, 500, 8000), MAX_WAV_SAMPLE_RATE + 1), 'high.wav'), /high\.wav: sample rate 192001 Hz is outside/);
    // A header claiming 4 GHz (the fuzzed case) is refused, not divided into a duration.
    const huge = encodeWav(sine(64, 500, 8000), 8000);
    huge.writeUInt32LE(0xffffffff, 24);
    badFileError(() => readWav(huge, 'ghz.wav'), /sample rate 4294967295 Hz is outside/);
  });

  it('more than MAX_WAV_CHANNELS channels are refused; exactly that many are read', () => {
    const ch = (n: number) => Array.from({ length: n }, () => sine(16, 500, 8000));
    expect(readWav(encodeWav(ch(MAX_WAV_CHANNELS), 8000)).channels).toBe(MAX_WAV_CHANNELS);
    badFileError(() => readWav(encodeWav(ch(MAX_WAV_CHANNELS + 1), 8000), 'many.wav'), new RegExp(`many\\.wav: ${MAX_WAV_CHANNELS + 1} channels: at most ${MAX_WAV_CHANNELS}`));
  });

  it('clips longer than MAX_WAV_SECONDS are refused before decoding', () => {
    const frames = (MAX_WAV_SECONDS + 1) * 8000;
    const long = encodeWav(new Float32Array(frames), 8000, { bitsPerSample: 8 });
    badFileError(() => readWav(long, 'long.wav'), new RegExp(`long\\.wav: the clip is 601\\.0 s long: at most ${MAX_WAV_SECONDS} s`));
    expect(readWav(fixSize(long, MAX_WAV_SECONDS * 8000)).duration).toBe(MAX_WAV_SECONDS);
  });

  it('NaN and Infinity float samples are refused, naming the file and the sample', () => {
    for (const [bad, bits] of [[NaN, 32], [Infinity, 32], [-Infinity, 64]] as const) {
      const x = sine(100, 500, 8000);
      x[37] = bad;
      const wav = encodeWav([sine(100, 500, 8000), x], 8000, { encoding: 'float', bitsPerSample: bits });
      badFileError(() => readWav(wav, 'nan.wav'), new RegExp(`nan\\.wav: sample 37 \\(channel 2, at 0\\.005 s\\) is ${String(bad).replace('-', '\\-')} \\(not a finite number\\)`));
    }
  });

  it('64-bit float samples beyond the 32-bit range (found by test/fuzz) are refused, not turned into Infinity', () => {
    for (const big of [1e300, -3.5e38]) {
      const x = new Float64Array(sine(100, 500, 8000));
      x[12] = big;
      const wav = encodeWav(Float32Array.from(x), 8000, { encoding: 'float', bitsPerSample: 64 });
      new DataView(wav.buffer, wav.byteOffset).setFloat64(44 + 12 * 8, big, true); // Float32Array cannot hold it
      badFileError(() => readWav(wav, 'huge.wav'), new RegExp(`huge\\.wav: sample 12 \\(channel 1, at 0\\.002 s\\) is ${String(big).replace('-', '\\-').replace('+', '\\+')}, beyond the 32-bit float range`));
    }
    // The largest float32 value itself is fine.
    const edge = encodeWav(Float32Array.from([3.4028234663852886e38, 0.5]), 8000, { encoding: 'float', bitsPerSample: 64 });
    expect(readWav(edge).samples[0]).toBe(3.4028234663852886e38);
  });

  it('a device (/dev/zero, which never ends) or a FIFO is refused, not read', async () => {
    await expect(readWavFile('/dev/zero')).rejects.toMatchObject({ code: 'BAD_FILE', message: '/dev/zero: is not a regular file (a device, FIFO or socket is never read)' });
    const fifo = join(dir, 'fifo.wav');
    execFileSync('mkfifo', [fifo]);
    await expect(readWavFile(fifo)).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(/fifo\.wav: is not a regular file/) });
  });

  it('files over MAX_WAV_FILE_BYTES are refused without being read', async () => {
    const path = join(dir, 'sparse.wav');
    await writeFile(path, encodeWav(sine(64, 500, 8000), 8000));
    await truncate(path, MAX_WAV_FILE_BYTES + 1); // sparse: no disk used, and reading it would take 256 MiB
    const before = process.memoryUsage().rss;
    await expect(readWavFile(path)).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(new RegExp(`sparse\\.wav: ${MAX_WAV_FILE_BYTES + 1} bytes: WAV files over ${MAX_WAV_FILE_BYTES} bytes`)) });
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });
});

/** The same 8-bit mono WAV cut to `frames` frames (header sizes rewritten). */
function fixSize(wav: Buffer, frames: number): Buffer {
  const out = Buffer.from(wav.subarray(0, 44 + frames));
  out.writeUInt32LE(out.length - 8, 4);
  out.writeUInt32LE(frames, 40);
  return out;
}
