import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addNoise, generateCorpus, isHeldOutVoice, normalizeTranscript, readCorpusManifest, reverberate } from '../../../src-main/engine/audio/corpus';
import { findSynthesizers, synthesize } from '../../../src-main/engine/audio/corpus-synth';
import { mulberry32 } from '../../../src-main/engine/core/random';
import { readWav } from '../../../src-main/engine/audio/wav';

const dirs: string[] = [];
async function tmp() {
  const d = await mkdtemp(join(tmpdir(), 'advlab-corpus-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const fsddDir = join(process.env.ADVLAB_DATA ?? '', 'fsdd', 'recordings');

describe('speech corpus', () => {
  it('finds the synthesizers installed here with their voices, holding some out', async () => {
    const s = await findSynthesizers();
    const names = s.map((x) => x.name).sort();
    expect(names).toEqual(['espeak-ng', 'festival', 'flite']);
    const voices = s.flatMap((x) => x.voices);
    expect(voices.some((v) => v.id === 'espeak-ng:en-us+m1')).toBe(true);
    expect(voices.some((v) => v.id === 'flite:slt')).toBe(true);
    expect(voices.some((v) => v.id === 'festival:kal_diphone')).toBe(true);
    expect(voices.some((v) => v.id.endsWith('_time'))).toBe(false);
    expect(voices.filter(isHeldOutVoice).length).toBeGreaterThan(0);
    expect(voices.filter((v) => !isHeldOutVoice(v)).length).toBeGreaterThan(voices.filter(isHeldOutVoice).length);
  });

  it('each synthesizer speaks, deterministically', async () => {
    const s = await findSynthesizers();
    for (const synth of s) {
      const v = synth.voices[0];
      const a = await synthesize(v, 'open the door', { wpm: 150, pitch: 40, stretch: 1.1 });
      const b = await synthesize(v, 'open the door', { wpm: 150, pitch: 40, stretch: 1.1 });
      expect(a.samples.length / a.sampleRate, v.id).toBeGreaterThan(0.3);
      expect(Buffer.from(a.samples.buffer).equals(Buffer.from(b.samples.buffer)), v.id).toBe(true);
    }
  });

  it('reverberation and noise do what they say', () => {
    const x = new Float32Array(8000);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.3) * (i < 4000 ? 1 : 0);
    const y = reverberate(x, 8000, 0.4, 0, mulberry32(1));
    // The tail rings on after the signal stops; nothing rings before it.
    let tail = 0;
    for (let i = 4100; i < 5000; i++) tail += y[i] * y[i];
    expect(tail).toBeGreaterThan(1);
    const n = addNoise(x, 10, 'white', mulberry32(2));
    let px = 0;
    let pn = 0;
    for (let i = 0; i < x.length; i++) {
      px += x[i] ** 2;
      pn += (n[i] - x[i]) ** 2;
    }
    expect(10 * Math.log10(px / pn)).toBeCloseTo(10, 5);
  });

  it('normalizes transcripts to the alphabet', () => {
    expect(normalizeTranscript("Open the Door, please! It's 5 o'clock.")).toBe("open the door please it's o'clock");
  });

  it('a tiny corpus: every clip transcribed with its settings, same seed -> same manifest and bytes', async () => {
    const a = await tmp();
    const b = await tmp();
    const c = await tmp();
    const hours = 40 / 3600;
    const ma = await generateCorpus({ out: a, hours, seed: 5, fsddDir });
    const mb = await generateCorpus({ out: b, hours, seed: 5, fsddDir, concurrency: 3 });
    const mc = await generateCorpus({ out: c, hours, seed: 6 });
    expect(ma.clips.length).toBeGreaterThan(5);
    const total = ma.seconds.train + ma.seconds.val + ma.seconds.test;
    expect(total).toBeGreaterThanOrEqual(40);
    expect(await readFile(join(a, 'corpus.json'), 'utf8')).toBe(await readFile(join(b, 'corpus.json'), 'utf8'));
    for (const clip of ma.clips) {
      expect((await readFile(join(a, clip.file))).equals(await readFile(join(b, clip.file)))).toBe(true);
      expect(clip.transcript).toMatch(/^[a-z' ]+$/);
      expect(clip.settings.peak).toBeGreaterThan(0);
      const wav = readWav(await readFile(join(a, clip.file)));
      expect(wav.sampleRate).toBe(8000);
      expect(wav.samples.length).toBe(clip.samples);
      const heldOut = ma.heldOutVoices.includes(clip.voice);
      expect(heldOut).toBe(clip.split === 'test');
    }
    expect(mc.clips.map((x) => x.transcript)).not.toEqual(ma.clips.map((x) => x.transcript));
    // FSDD's recordings, split by speaker and index.
    expect(ma.fsdd?.clips.length).toBe(3000);
    expect(new Set(ma.fsdd?.clips.filter((x) => x.split === 'test-unseen').map((x) => x.speaker))).toEqual(new Set([ma.fsdd?.heldOutSpeaker]));
    expect(mc.fsdd).toBeNull();
    const read = await readCorpusManifest(a);
    expect(read.manifest.clips.length).toBe(ma.clips.length);
  }, 240_000);
});
