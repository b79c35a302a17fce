/**
 * Fixture audio-attack sessions for the listening and Audio-view tests, made with the session store
 * from real FSDD recordings plus a synthetic quiet perturbation (seeded band-limited noise), in the
 * layout the audio-attack job writes: original.wav, adversarial.wav, perturbation.wav (16-bit,
 * perturbation scaled to a 0.9 peak), summary and metrics/attack.jsonl. They are fixtures, not
 * attack results: the transcripts are given, and the session is tagged "fixture".
 */
import * as os from 'node:os';
import { join } from 'node:path';
import { readWavFile, quantize16, write16 } from '../../../src-main/engine/audio/wav';
import { dbx as dbxOf } from '../../../src-main/engine/audio/dbx';
import { mulberry32 } from '../../../src-main/engine/audio/fsdd';
import type { SessionEnvironment, SessionStore } from '../../../src-main/engine/sessions';

export const DATA = process.env.ADVLAB_DATA ?? join(import.meta.dirname, '../../../../shared/data');
export const FSDD = join(DATA, 'fsdd', 'recordings');

export const FIXTURE_ENV: SessionEnvironment = {
  backend: 'none',
  tfjsVersion: 'none',
  advlabVersion: '0.1.0-test',
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  cpus: os.cpus().length,
  hostname: os.hostname(),
};

export interface FixtureOptions {
  /** FSDD file name, e.g. 7_jackson_0.wav. */
  clip?: string;
  /** Loudness of the perturbation relative to the clip, dB_x (before 16-bit quantisation). */
  dbx?: number;
  /** Extra gain of the adversarial clip, dB (to test loudness matching); 0 = none. */
  advGainDb?: number;
  seed?: number;
  target?: string | null;
  transcriptBefore?: string;
  transcriptAfter?: string;
  iterations?: number;
  name?: string;
}

export interface Fixture {
  id: string;
  original: Float32Array;
  adversarial: Float32Array;
  sampleRate: number;
  dbx: number;
}

/** Writes one finished audio-attack session; returns its id and the clips as stored. */
export async function makeAudioAttackSession(store: SessionStore, o: FixtureOptions = {}): Promise<Fixture> {
  const clip = o.clip ?? '7_jackson_0.wav';
  const wav = await readWavFile(join(FSDD, clip));
  const x = quantize16(wav.samples);
  const n = x.length;
  const rng = mulberry32(o.seed ?? 1);
  // Noise smoothed by a short moving average (a quiet hiss), scaled to the requested dB_x.
  const raw = new Float32Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc = 0.7 * acc + (rng() * 2 - 1);
    raw[i] = acc;
  }
  let peakX = 0, peakR = 0;
  for (let i = 0; i < n; i++) {
    peakX = Math.max(peakX, Math.abs(x[i]));
    peakR = Math.max(peakR, Math.abs(raw[i]));
  }
  const want = peakX * 10 ** ((o.dbx ?? -35) / 20);
  const g = 10 ** ((o.advGainDb ?? 0) / 20);
  const adv = quantize16(Float32Array.from(x, (v, i) => (v + (raw[i] * want) / peakR) * g));
  const delta = Float32Array.from(adv, (v, i) => v - x[i]);
  const measured = dbxOf(delta, x);
  let peakD = 0;
  for (const v of delta) peakD = Math.max(peakD, Math.abs(v));
  const perturbationGain = 0.9 / peakD;
  const target = o.target === undefined ? 'open the door' : o.target;
  const iterations = o.iterations ?? 40;
  const writer = await store.create({
    kind: 'audio-attack',
    name: o.name ?? `fixture: ${clip}${target ? ` -> "${target}"` : ' (untargeted)'}`,
    params: { model: 'fixture', wav: join(FSDD, clip), target, iterations },
    tags: ['fixture'],
    datasets: [{ name: 'fsdd', split: clip }],
    environment: FIXTURE_ENV,
  });
  await writer.writeArtifacts([
    { path: 'original.wav', data: write16(x, wav.sampleRate), kind: 'audio', description: 'the clip attacked' },
    { path: 'adversarial.wav', data: write16(adv, wav.sampleRate), kind: 'audio', description: 'original + perturbation, 16-bit' },
    { path: 'perturbation.wav', data: write16(Float32Array.from(delta, (v) => v * perturbationGain), wav.sampleRate), kind: 'audio', description: 'the perturbation, scaled to a 0.9 peak' },
  ]);
  for (let i = 1; i <= iterations; i++) {
    const tau = 0.05 * 0.8 ** Math.floor(i / 10);
    await writer.appendMetric('attack', { iteration: i, loss: 50 / i + 0.1, ctc: 40 / i, dbx: measured + 10 / i, tau });
  }
  await writer.finish({
    success: true,
    target,
    transcriptBefore: o.transcriptBefore ?? 'seven',
    transcriptAfter: o.transcriptAfter ?? (target ?? 'eight'),
    dbx: measured,
    iterations,
    seconds: 1.5,
    tau: 0.05 * 0.8 ** 3,
    sampleRate: wav.sampleRate,
    perturbationGain,
  });
  return { id: writer.id, original: x, adversarial: adv, sampleRate: wav.sampleRate, dbx: measured };
}
