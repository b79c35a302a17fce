import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalContext } from '../../../src-main/engine/context';
import {
  buildUtterances, digitsToTranscript, fsddDir, fsddSpeakers, listFsdd, readWavFile, splitFsdd, textToLabels, trimSilence, write16,
  type ClipCache, type FsddClip,
} from '../../../src-main/engine/audio';

let clips: FsddClip[];
let tmp: string;
beforeAll(async () => {
  clips = await listFsdd();
  tmp = await mkdtemp(join(tmpdir(), 'advlab-fsdd-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('FSDD listing and splits', () => {
  it('lists 3,000 clips of 6 speakers from $ADVLAB_DATA/fsdd/recordings', () => {
    expect(fsddDir()).toBe(join(process.env.ADVLAB_DATA!, 'fsdd', 'recordings'));
    expect(clips).toHaveLength(3000);
    expect(fsddSpeakers(clips)).toEqual(['george', 'jackson', 'lucas', 'nicolas', 'theo', 'yweweler']);
    const c = clips.find((k) => k.file === '7_jackson_32.wav')!;
    expect(c).toMatchObject({ digit: 7, speaker: 'jackson', index: 32 });
    expect(clips[0].file).toBe('0_george_0.wav');
  });

  it('holds out one speaker entirely and recordings 0-4 of the others; splits are disjoint', () => {
    const s = splitFsdd(clips, { heldOutSpeaker: 'theo' });
    expect(s.train).toHaveLength(5 * 10 * 45);
    expect(s.testSeen).toHaveLength(5 * 10 * 5);
    expect(s.testUnseen).toHaveLength(500);
    expect(new Set(s.testUnseen.map((c) => c.speaker))).toEqual(new Set(['theo']));
    expect(s.train.some((c) => c.speaker === 'theo' || c.index < 5)).toBe(false);
    expect(s.testSeen.every((c) => c.index < 5 && c.speaker !== 'theo')).toBe(true);
    const files = [...s.train, ...s.testSeen, ...s.testUnseen].map((c) => c.file);
    expect(new Set(files).size).toBe(3000);
    expect(splitFsdd(clips).heldOutSpeaker).toBe('yweweler');
    expect(() => splitFsdd(clips, { heldOutSpeaker: 'bob' })).toThrow(/unknown speaker "bob"/);
  });

  it('ignores other files and reports a folder without clips', async () => {
    await writeFile(join(tmp, '3_amy_7.wav'), write16(new Float32Array(80).fill(0.1), 8000));
    await writeFile(join(tmp, 'README.md'), 'not audio');
    const listed = await listFsdd(tmp);
    expect(listed.map((c) => c.file)).toEqual(['3_amy_7.wav']);
    const empty = await mkdtemp(join(tmp, 'empty-'));
    await expect(listFsdd(empty)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(listFsdd(join(tmp, 'missing'))).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/ENOENT/) });
  });
});

describe('connected-digit utterances', () => {
  it('trims leading and trailing silence', () => {
    const x = new Float32Array(8000);
    for (let i = 3040; i < 4960; i++) x[i] = 0.5 * Math.sin(i / 3); // frames 38-61 of 10 ms
    for (let i = 0; i < 8000; i++) x[i] += 1e-4 * Math.sin(i * 1.7); // -74 dB hum
    const y = trimSilence(x, 8000, { padSeconds: 0.01 });
    expect(y.length).toBe(1920 + 2 * 80);
    expect(y[80]).toBe(x[3040]);
    expect(trimSilence(new Float32Array(100), 8000).length).toBe(100);
  });

  it('are deterministic per seed, transcribed in words, and built only from the given clips', async () => {
    const pool = splitFsdd(clips, { heldOutSpeaker: 'theo' }).testSeen.filter((c) => c.speaker === 'jackson' && c.index < 2 && c.digit < 4); // 8 clips
    expect(pool).toHaveLength(8);
    const cache: ClipCache = new Map();
    const ctx = new LocalContext();
    const a = await buildUtterances(pool, { count: 6, seed: 3, split: 'test-seen' }, ctx, cache);
    const b = await buildUtterances(pool, { count: 6, seed: 3 }, undefined, cache);
    const c = await buildUtterances(pool, { count: 6, seed: 4 }, undefined, cache);
    expect(a.utterances.map((u) => u.transcript)).toEqual(b.utterances.map((u) => u.transcript));
    expect(Array.from(a.utterances[5].samples)).toEqual(Array.from(b.utterances[5].samples));
    expect(a.utterances.map((u) => u.clips.join())).not.toEqual(c.utterances.map((u) => u.clips.join()));
    expect(ctx.events.at(-1)).toMatchObject({ step: 6, total: 6 });
    expect(a.sampleRate).toBe(8000);
    expect(a.source.split).toBe('test-seen');
    expect(a.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.source.sha256).toBe(b.source.sha256);
    const poolFiles = new Set(pool.map((p) => p.file));
    for (const u of a.utterances) {
      expect(u.digits.length).toBeGreaterThanOrEqual(1);
      expect(u.digits.length).toBeLessThanOrEqual(4);
      expect(u.transcript).toBe(digitsToTranscript(u.digits));
      expect(textToLabels(u.transcript).length).toBe(u.transcript.length);
      u.clips.forEach((f, i) => {
        expect(poolFiles.has(f)).toBe(true);
        expect(Number(f[0])).toBe(u.digits[i]);
      });
      // Speech plus 0.05-0.25 s gaps and 0.02-0.1 s edges.
      const speech = u.clips.reduce((s, f) => s + cache.get(pool.find((p) => p.file === f)!.path)!.samples.length, 0);
      const silence = u.samples.length - speech;
      expect(silence).toBeGreaterThanOrEqual(Math.floor(8000 * (0.04 + 0.05 * (u.digits.length - 1))));
      expect(silence).toBeLessThanOrEqual(Math.ceil(8000 * (0.2 + 0.25 * (u.digits.length - 1))) + 2);
    }
    expect(digitsToTranscript([7, 2, 9])).toBe('seven two nine');
  });

  it('places each (trimmed) clip verbatim and resamples when asked', async () => {
    const clip = clips.find((k) => k.file === '7_jackson_32.wav')!;
    const raw = (await readWavFile(clip.path)).samples;
    const whole = await buildUtterances([clip], { count: 1, minDigits: 1, maxDigits: 1, trim: false, edgeSeconds: [0.05, 0.05] });
    const u = whole.utterances[0];
    expect(u.transcript).toBe('seven');
    expect(u.samples.length).toBe(raw.length + 800);
    expect(Array.from(u.samples.subarray(400, 400 + raw.length))).toEqual(Array.from(raw));
    const trimmed = await buildUtterances([clip], { count: 1, maxDigits: 1, edgeSeconds: [0, 0] });
    expect(trimmed.utterances[0].samples.length).toBeLessThanOrEqual(raw.length);
    const wide = await buildUtterances([clip], { count: 1, maxDigits: 1, trim: false, edgeSeconds: [0, 0], sampleRate: 16000 });
    expect(wide.sampleRate).toBe(16000);
    expect(wide.utterances[0].samples.length).toBe(2 * raw.length);
    await expect(buildUtterances([], { count: 1 })).rejects.toThrow(/no clips/);
    await expect(buildUtterances([clip], { count: 1, minDigits: 3, maxDigits: 2 })).rejects.toThrow(/minDigits/);
  });
});
