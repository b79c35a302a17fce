/**
 * A speech corpus with every letter: English sentences (resources/corpus/sentences.txt, CC0)
 * spoken by the synthesizers installed here (corpus-synth.ts), varied and degraded, plus FSDD's real
 * recordings, all listed with transcripts and generator settings in DIR/corpus.json.
 *
 * Each synthesized clip i is made from a generator seeded with deriveSeed(seed, i) alone:
 *  1. text: one sentence, or (25%) the first words of one sentence and the last words of another,
 *     so the model hears words in new company;
 *  2. voice: a synthesizer first (espeak-ng 50%, flite 25%, festival 25%, renormalised over those
 *     with voices in the split), then one of its voices; 10% of clips go to the held-out voices
 *     (split "test"), the others to the training voices (5% of them "val", the rest "train");
 *  3. speaking rate and pitch: espeak-ng 130-200 words/min and pitch 25-75; flite and festival a
 *     duration stretch of 0.85-1.2;
 *  4. speed perturbation for every voice (Ko et al. 2015): the output is played 0.9-1.1x faster
 *     (speed and pitch together) while it is resampled to the corpus rate;
 *  5. leading and trailing silence trimmed (-40 dB), then 20-150 ms of silence on each side;
 *  6. room reverberation with probability 0.4 (`reverberate`, RT60 0.15-0.6 s);
 *  7. noise with probability 0.6 at an SNR of 5-30 dB, white or brown (`addNoise`);
 *  8. peak normalised to 0.3-0.9 and written as a 16-bit mono WAV.
 * Clips are made in order until the synthesized audio reaches the requested hours. Synthesizer
 * processes run concurrently, but every clip depends only on (seed, i), so the manifest and every
 * byte are the same for the same seed, synthesizers and sentence file.
 *
 * Held-out voices (never in "train" or "val"): espeak-ng's Caribbean accent (en-029, every variant),
 * its f3 and m3 variants (every accent), flite's rms and festival's ked_diphone. FSDD: one speaker is
 * held out entirely (default the last alphabetically, as in the FSDD-only model); the others'
 * recordings 0-4 are "test-seen", 5-9 "val", 10-49 "train" (the FSDD-only trainer's split).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobContext } from '../context';
import { silentContext } from '../context';
import { AdvlabError, badInput } from '../errors';
import { deriveSeed } from '../models/architectures';
import { mulberry32 } from '../core/random';
import { requireSynthesizers, synthesize, type SynthSettings, type SynthVoice, type Synthesizer } from './corpus-synth';
import { listFsdd, splitFsdd, trimSilence, DIGIT_WORDS } from './fsdd';
import { resample } from './resample';
import { readWav, write16 } from './wav';

export const CORPUS_MANIFEST = 'corpus.json';
export const CORPUS_VERSION = 1;

/** Default hours of synthesized speech. */
export const CORPUS_DEFAULT_HOURS = 0.5;
export const CORPUS_MAX_HOURS = 100;

export type CorpusSplit = 'train' | 'val' | 'test';

export interface CorpusClip {
  id: string;
  /** WAV file relative to the corpus folder. */
  file: string;
  split: CorpusSplit;
  source: 'espeak-ng' | 'flite' | 'festival';
  voice: string;
  transcript: string;
  settings: SynthSettings & { speed: number; trimmedPad: [number, number]; rt60?: number; drr?: number; snrDb?: number; noise?: 'white' | 'brown'; peak: number };
  samples: number;
  sha256: string;
}

export interface CorpusFsddClip {
  file: string;
  speaker: string;
  digit: number;
  index: number;
  transcript: string;
  split: 'train' | 'val' | 'test-seen' | 'test-unseen';
  sha256: string;
}

export interface CorpusManifest {
  version: number;
  seed: number;
  hours: number;
  sampleRate: number;
  text: { file: string; sentences: number; sha256: string; license: string };
  synthesizers: { name: string; version: string; voices: number }[];
  heldOutVoices: string[];
  trainVoices: string[];
  clips: CorpusClip[];
  fsdd: { heldOutSpeaker: string; clips: CorpusFsddClip[] } | null;
  /** Seconds of synthesized audio per split. */
  seconds: Record<CorpusSplit, number>;
}

export interface CorpusOptions {
  out: string;
  hours?: number;
  seed?: number;
  /** Corpus sample rate. Default 8000 (the speech models' rate). */
  sampleRate?: number;
  /** Synthesizer processes at once. Default 2. */
  concurrency?: number;
  /** FSDD recordings folder; none: no FSDD part. */
  fsddDir?: string;
  heldOutSpeaker?: string;
  /** Sentence file. Default resources/corpus/sentences.txt. */
  sentences?: string;
  /** Only these synthesizers (default: every one found). */
  synthesizers?: string[];
}

/** resources/corpus next to the source tree or the built bundle. */
export function corpusResourcesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'resources', 'corpus');
    if (existsSync(join(candidate, 'sentences.txt'))) return candidate;
    dir = dirname(dir);
  }
  throw new AdvlabError('NOT_FOUND', 'resources/corpus/sentences.txt not found next to the program');
}

/** Lowercase letters, apostrophes and single spaces: the speech alphabet's symbols. */
export function normalizeTranscript(s: string): string {
  return s.toLowerCase().replace(/[^a-z' ]+/g, ' ').replace(/\s+/g, ' ').trim();
}

export function readSentences(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const out = [...new Set(lines.map(normalizeTranscript).filter(Boolean))];
  if (out.length === 0) throw badInput(`${file}: no sentences`);
  return out;
}

/** Whether a voice is held out of training (see the module docstring). */
export function isHeldOutVoice(v: SynthVoice): boolean {
  if (v.synth === 'espeak-ng') return v.accent === 'en-029' || v.variant === 'f3' || v.variant === 'm3';
  if (v.synth === 'flite') return v.voice === 'rms';
  return v.voice === 'ked_diphone';
}

/**
 * Reverberation: x convolved with a synthetic room response, a direct path then exponentially
 * decaying Gaussian noise (60 dB down after rt60 seconds, starting 3-10 ms after the direct path,
 * cut at 0.25 s: past it the tail is 30 dB down at rt60 0.5 s and the convolution's cost is spent on little),
 * the tail scaled so its energy is drr dB below the direct path's. Output normalised to the input's peak.
 */
export function reverberate(x: Float32Array, rate: number, rt60: number, drrDb: number, rng: () => number): Float32Array {
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const len = Math.max(2, Math.round(Math.min(rt60, 0.25) * rate));
  const h = new Float32Array(len);
  const delay = Math.round((0.003 + 0.007 * rng()) * rate);
  const decay = Math.log(1000) / (rt60 * rate); // amplitude e^{-decay t}: -60 dB at rt60
  let tailEnergy = 0;
  for (let t = delay; t < len; t++) {
    h[t] = normal() * Math.exp(-decay * (t - delay));
    tailEnergy += h[t] * h[t];
  }
  const g = tailEnergy > 0 ? Math.sqrt(10 ** (-drrDb / 10) / tailEnergy) : 0;
  for (let t = 0; t < len; t++) h[t] *= g;
  h[0] = 1;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const end = Math.min(len, x.length - i);
    for (let t = 0; t < end; t++) y[i + t] += xi * h[t];
  }
  return y;
}

/** x plus white or brown (integrated, high-passed) noise at an SNR (dB) relative to x's mean power. */
export function addNoise(x: Float32Array, snrDb: number, kind: 'white' | 'brown', rng: () => number): Float32Array {
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const n = new Float32Array(x.length);
  let acc = 0;
  for (let i = 0; i < n.length; i++) {
    const w = normal();
    acc = kind === 'brown' ? 0.98 * acc + w : w;
    n[i] = acc;
  }
  let px = 0;
  let pn = 0;
  for (let i = 0; i < x.length; i++) {
    px += x[i] * x[i];
    pn += n[i] * n[i];
  }
  if (px === 0 || pn === 0) return x.slice();
  const g = Math.sqrt(px / pn / 10 ** (snrDb / 10));
  return Float32Array.from(x, (v, i) => v + g * n[i]);
}

interface ClipPlan {
  index: number;
  split: CorpusSplit;
  voice: SynthVoice;
  transcript: string;
  settings: SynthSettings;
  speed: number;
  rng: () => number;
}

function pick<T>(a: readonly T[], rng: () => number): T {
  return a[Math.floor(rng() * a.length)];
}

const SYNTH_WEIGHTS: Record<string, number> = { 'espeak-ng': 0.5, flite: 0.25, festival: 0.25 };

function planClip(index: number, seed: number, sentences: readonly string[], pools: { train: SynthVoice[]; test: SynthVoice[] }): ClipPlan {
  const rng = mulberry32(deriveSeed(seed, index));
  let transcript = pick(sentences, rng);
  if (rng() < 0.25) {
    const a = transcript.split(' ');
    const b = pick(sentences, rng).split(' ');
    const head = a.slice(0, 1 + Math.floor(rng() * Math.max(1, a.length - 1)));
    const tail = b.slice(Math.floor(rng() * Math.max(1, b.length - 1)));
    transcript = [...head, ...tail].join(' ');
  }
  const heldOut = pools.test.length > 0 && (pools.train.length === 0 || rng() < 0.1);
  const pool = heldOut ? pools.test : pools.train;
  const synths = [...new Set(pool.map((v) => v.synth))];
  const weights = synths.map((s) => SYNTH_WEIGHTS[s]);
  let u = rng() * weights.reduce((s, w) => s + w, 0);
  let synth = synths[synths.length - 1];
  for (let i = 0; i < synths.length; i++) {
    if ((u -= weights[i]) < 0) {
      synth = synths[i];
      break;
    }
  }
  const voice = pick(pool.filter((v) => v.synth === synth), rng);
  const split: CorpusSplit = heldOut ? 'test' : rng() < 0.05 ? 'val' : 'train';
  const settings: SynthSettings = voice.synth === 'espeak-ng'
    ? { wpm: 130 + Math.floor(rng() * 71), pitch: 25 + Math.floor(rng() * 51) }
    : { stretch: Number((0.85 + 0.35 * rng()).toFixed(3)) };
  const speed = Number((0.9 + 0.2 * rng()).toFixed(3));
  return { index, split, voice, transcript, settings, speed, rng };
}

async function makeClip(plan: ClipPlan, rate: number): Promise<{ samples: Float32Array; settings: CorpusClip['settings'] }> {
  const { rng } = plan;
  const spoken = await synthesize(plan.voice, plan.transcript, plan.settings);
  // Played `speed` times faster: the samples are taken to be at rate*speed, then resampled.
  let x = resample(spoken.samples, Math.round(spoken.sampleRate * plan.speed), rate);
  x = trimSilence(x, rate, { thresholdDb: -40, padSeconds: 0 });
  const pad: [number, number] = [Math.round((0.02 + 0.13 * rng()) * rate), Math.round((0.02 + 0.13 * rng()) * rate)];
  const padded = new Float32Array(x.length + pad[0] + pad[1]);
  padded.set(x, pad[0]);
  x = padded;
  const settings: CorpusClip['settings'] = { ...plan.settings, speed: plan.speed, trimmedPad: [pad[0] / rate, pad[1] / rate], peak: 0 };
  if (rng() < 0.4) {
    settings.rt60 = Number((0.15 + 0.45 * rng()).toFixed(3));
    settings.drr = Number((-3 + 15 * rng()).toFixed(2));
    x = reverberate(x, rate, settings.rt60, settings.drr, rng);
  }
  if (rng() < 0.6) {
    settings.snrDb = Number((5 + 25 * rng()).toFixed(2));
    settings.noise = rng() < 0.5 ? 'white' : 'brown';
    x = addNoise(x, settings.snrDb, settings.noise, rng);
  }
  settings.peak = Number((0.3 + 0.6 * rng()).toFixed(3));
  let peak = 0;
  for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]));
  if (peak > 0) {
    const g = settings.peak / peak;
    for (let i = 0; i < x.length; i++) x[i] *= g;
  }
  return { samples: x, settings };
}

function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Generates a corpus into `out` (created; an existing corpus.json there is replaced). Returns the
 * manifest, also written to out/corpus.json (last, atomically: a cancelled run leaves no manifest).
 */
export async function generateCorpus(o: CorpusOptions, ctx: JobContext = silentContext): Promise<CorpusManifest> {
  const hours = o.hours ?? CORPUS_DEFAULT_HOURS;
  const seed = o.seed ?? 1;
  const rate = o.sampleRate ?? 8000;
  const concurrency = o.concurrency ?? 2;
  if (!(hours > 0 && hours <= CORPUS_MAX_HOURS)) throw badInput(`audio corpus: hours must be in (0, ${CORPUS_MAX_HOURS}], got ${hours}`);
  if (!Number.isInteger(seed) || seed < 0) throw badInput(`audio corpus: seed must be a non-negative integer, got ${seed}`);
  if (rate !== 8000 && rate !== 16000) throw badInput(`audio corpus: sampleRate must be 8000 or 16000, got ${rate}`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw badInput(`audio corpus: concurrency must be an integer in [1, 16], got ${concurrency}`);

  let synths: Synthesizer[] = await requireSynthesizers();
  if (o.synthesizers?.length) {
    const unknown = o.synthesizers.filter((s) => !synths.some((x) => x.name === s));
    if (unknown.length) throw new AdvlabError('NOT_FOUND', `audio corpus: synthesizer ${unknown.join(', ')} not installed (found: ${synths.map((s) => s.name).join(', ')})`);
    synths = synths.filter((s) => o.synthesizers!.includes(s.name));
  }
  const voices = synths.flatMap((s) => s.voices);
  const pools = { train: voices.filter((v) => !isHeldOutVoice(v)), test: voices.filter(isHeldOutVoice) };
  const textFile = o.sentences ?? join(corpusResourcesDir(), 'sentences.txt');
  const sentences = readSentences(textFile);

  await mkdir(join(o.out, 'clips'), { recursive: true });
  const clips: CorpusClip[] = [];
  const seconds: Record<CorpusSplit, number> = { train: 0, val: 0, test: 0 };
  const target = hours * 3600;
  let total = 0;
  let next = 0;
  while (total < target) {
    ctx.checkpoint();
    const plans = Array.from({ length: concurrency }, (_, k) => planClip(next + k, seed, sentences, pools));
    next += concurrency;
    const made = await Promise.all(plans.map((p) => makeClip(p, rate)));
    for (let k = 0; k < plans.length && total < target; k++) {
      const p = plans[k];
      const { samples, settings } = made[k];
      const id = `c${String(p.index).padStart(6, '0')}`;
      const file = `clips/${id}.wav`;
      const bytes = write16(samples, rate);
      await writeFile(join(o.out, file), bytes);
      clips.push({ id, file, split: p.split, source: p.voice.synth, voice: p.voice.id, transcript: p.transcript, settings, samples: samples.length, sha256: sha256(bytes) });
      const s = samples.length / rate;
      seconds[p.split] += s;
      total += s;
    }
    ctx.progress({ step: Math.min(total, target), total: target, phase: 'synthesizing', message: `${clips.length} clips, ${(total / 60).toFixed(1)} of ${(target / 60).toFixed(1)} min` });
  }

  let fsdd: CorpusManifest['fsdd'] = null;
  if (o.fsddDir) {
    const all = await listFsdd(o.fsddDir);
    const split = splitFsdd(all, { heldOutSpeaker: o.heldOutSpeaker });
    const heldOut = new Set(split.testUnseen.map((c) => c.file));
    const list: CorpusFsddClip[] = [];
    for (const c of all) {
      ctx.checkpoint();
      const bytes = await readFile(c.path);
      const part: CorpusFsddClip['split'] = heldOut.has(c.file) ? 'test-unseen' : c.index < 5 ? 'test-seen' : c.index < 10 ? 'val' : 'train';
      list.push({ file: c.file, speaker: c.speaker, digit: c.digit, index: c.index, transcript: DIGIT_WORDS[c.digit], split: part, sha256: sha256(bytes) });
    }
    fsdd = { heldOutSpeaker: split.heldOutSpeaker, clips: list };
  }

  const round = (v: number) => Number(v.toFixed(3));
  const manifest: CorpusManifest = {
    version: CORPUS_VERSION,
    seed,
    hours,
    sampleRate: rate,
    text: { file: 'resources/corpus/sentences.txt', sentences: sentences.length, sha256: sha256(readFileSync(textFile)), license: 'CC0-1.0 (written for AdvLab)' },
    synthesizers: synths.map((s) => ({ name: s.name, version: s.version, voices: s.voices.length })),
    heldOutVoices: pools.test.map((v) => v.id),
    trainVoices: pools.train.map((v) => v.id),
    clips,
    fsdd,
    seconds: { train: round(seconds.train), val: round(seconds.val), test: round(seconds.test) },
  };
  const tmp = join(o.out, `${CORPUS_MANIFEST}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 1)}\n`);
  await rename(tmp, join(o.out, CORPUS_MANIFEST));
  return manifest;
}

/** Reads DIR/corpus.json (or the file itself); errors name the file. */
export async function readCorpusManifest(dirOrFile: string): Promise<{ dir: string; manifest: CorpusManifest }> {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, CORPUS_MANIFEST);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new AdvlabError('NOT_FOUND', `${file}: no corpus manifest (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); make one with \`advlab audio corpus --out DIR\``, { file });
  }
  let m: CorpusManifest;
  try {
    m = JSON.parse(text) as CorpusManifest;
  } catch {
    throw new AdvlabError('BAD_FILE', `${file}: not JSON`, { file });
  }
  if (m.version !== CORPUS_VERSION || !Array.isArray(m.clips) || typeof m.sampleRate !== 'number') throw new AdvlabError('BAD_FILE', `${file}: not an AdvLab corpus manifest (version ${CORPUS_VERSION})`, { file });
  return { dir: dirname(file), manifest: m };
}

/** Reads one corpus clip's samples (at the corpus rate). */
export async function readCorpusClip(dir: string, clip: CorpusClip): Promise<Float32Array> {
  const path = join(dir, clip.file);
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new AdvlabError('NOT_FOUND', `${path}: cannot be read (${e.code ?? e.message})`, { file: path });
  });
  return readWav(bytes, path).samples;
}
