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
import type { SessionEnvironment, SessionStore, SessionWriter } from '../../../src-main/engine/sessions';
import { maskingFrames, maskingThreshold, maskingViolation, psychoConfig } from '../../../src-main/engine/audio/psycho';

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
  /**
   * Also write what the imperceptible second stage writes (adversarial-stage2.wav, perturbation-stage2.wav,
   * masking.json from the real masking threshold, the stage-2 summary keys): a second perturbation this
   * many dB below the first (default off).
   */
  stage2DbBelow?: number;
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
  const stage2 = o.stage2DbBelow === undefined ? {} : await writeStage2Fixture(writer, x, delta, raw, peakR, want * 10 ** (-o.stage2DbBelow / 20), wav.sampleRate, target ?? 'eight');
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
    ...stage2,
  });
  return { id: writer.id, original: x, adversarial: adv, sampleRate: wav.sampleRate, dbx: measured };
}

/** The stage-2 artifacts and summary keys for a fixture: a time-reversed copy of its noise, quieter. */
async function writeStage2Fixture(writer: SessionWriter, x: Float32Array, delta1: Float32Array, raw: Float32Array, peakR: number, peak: number, rate: number, transcript: string) {
  const n = x.length;
  const adv2 = quantize16(Float32Array.from(x, (v, i) => v + (raw[n - 1 - i] * peak) / peakR));
  const delta2 = Float32Array.from(adv2, (v, i) => v - x[i]);
  let peakD = 0;
  for (const v of delta2) peakD = Math.max(peakD, Math.abs(v));
  const mt = maskingThreshold(x, psychoConfig(rate));
  const v1 = maskingViolation(delta1, mt);
  const v2 = maskingViolation(delta2, mt);
  const one = maskingFrames(delta1, mt);
  const two = maskingFrames(delta2, mt);
  await writer.writeArtifacts([
    { path: 'adversarial-stage2.wav', data: write16(adv2, rate), kind: 'audio', description: 'original + a quieter perturbation, 16-bit' },
    { path: 'perturbation-stage2.wav', data: write16(Float32Array.from(delta2, (v) => (v * 0.9) / peakD), rate), kind: 'audio', description: 'the stage-2 perturbation, scaled to a 0.9 peak' },
  ]);
  await writer.writeArtifact('masking.json', JSON.stringify({
    sampleRate: rate, windowSize: mt.config.windowSize, hop: mt.config.hop, freqs: one[0].freqs,
    frames: one.map((f, i) => ({ frame: f.frame, start: f.start, threshold: f.threshold, clip: f.clip, stage1: f.perturbation, stage2: two[i].perturbation })),
  }), 'json', 'masking analysis (fixture)');
  for (let i = 20; i <= 40; i += 20) await writer.appendMetric('stage2', { iteration: i, loss: 1, ctc: 1, violation: v2.loss, violationDb: v2.meanExcessDb, alpha: 0.05 * 1.2 ** (i / 20), dbx: dbxOf(delta2, x), success: 1 });
  return {
    stage2: true, dbxStage2: dbxOf(delta2, x), transcriptStage2: transcript, violationStage1: v1.loss, violationStage2: v2.loss,
    violationDbStage1: v1.meanExcessDb, violationDbStage2: v2.meanExcessDb, aboveFractionStage1: v1.aboveFraction, aboveFractionStage2: v2.aboveFraction,
    stage2Improved: true, stage2Iterations: 40, stage2Alpha: 0.072, stage2Seconds: 1, perturbationGainStage2: 0.9 / peakD,
  };
}
