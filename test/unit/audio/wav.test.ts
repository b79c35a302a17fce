import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { encodeWav, quantize16, readWav, readWavFile, write16 } from '../../../src-main/engine/audio';

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
