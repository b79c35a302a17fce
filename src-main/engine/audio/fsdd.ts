/**
 * The Free Spoken Digit Dataset (FSDD: 6 speakers x 10 digits x 50 recordings, 8 kHz mono WAV,
 * files `{digit}_{speaker}_{index}.wav`) turned into a small connected-digit speech corpus:
 * utterances of 1-4 digits made by concatenating clips with short random silences, transcribed
 * as words ("seven two nine"), for a CTC speech model and the audio attack.
 *
 * Splits never share a recording: one speaker is held out entirely (unseen speaker); for the other
 * speakers recordings with index 0-4 are the test split (FSDD's own convention) and 5-49 train.
 * Everything random is driven by a seed, so the same options give the same utterances.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobContext } from '../context';
import { AdvlabError, badInput } from '../errors';
import { resample } from './resample';
import { readWav } from './wav';
import { mulberry32 } from '../core/random';

export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;

export interface FsddClip {
  /** File name, e.g. 7_jackson_32.wav. */
  file: string;
  path: string;
  digit: number;
  speaker: string;
  /** Recording index 0-49. */
  index: number;
}

const NAME = /^(\d)_([A-Za-z]+)_(\d+)\.wav$/;

/** The recordings folder under a data root (default $ADVLAB_DATA): <root>/fsdd/recordings. */
export function fsddDir(dataRoot: string | undefined = process.env.ADVLAB_DATA): string {
  if (!dataRoot) throw new AdvlabError('NOT_FOUND', 'FSDD: no data folder given and ADVLAB_DATA is not set');
  return join(dataRoot, 'fsdd', 'recordings');
}

/** Lists the clips of an FSDD recordings folder, sorted by speaker, digit, index. Other files are ignored. */
export async function listFsdd(dir: string = fsddDir()): Promise<FsddClip[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new AdvlabError('NOT_FOUND', `FSDD: cannot read the recordings folder ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { dir });
  }
  const clips: FsddClip[] = [];
  for (const file of names) {
    const m = NAME.exec(file);
    if (m) clips.push({ file, path: join(dir, file), digit: Number(m[1]), speaker: m[2], index: Number(m[3]) });
  }
  if (clips.length === 0) throw new AdvlabError('NOT_FOUND', `FSDD: no {digit}_{speaker}_{index}.wav files in ${dir}`, { dir });
  return clips.sort((a, b) => (a.speaker < b.speaker ? -1 : a.speaker > b.speaker ? 1 : a.digit - b.digit || a.index - b.index));
}

/** Speakers present, sorted. */
export function fsddSpeakers(clips: readonly FsddClip[]): string[] {
  return [...new Set(clips.map((c) => c.speaker))].sort();
}

export interface FsddSplitOptions {
  /** Speaker kept out of training entirely. Default: the last speaker alphabetically. */
  heldOutSpeaker?: string;
  /** Recordings with index < testIndices are the seen-speaker test split. Default 5 (FSDD's 0-4). */
  testIndices?: number;
}

export interface FsddSplits {
  heldOutSpeaker: string;
  /** Seen speakers, index >= testIndices. */
  train: FsddClip[];
  /** Seen speakers, index < testIndices. */
  testSeen: FsddClip[];
  /** Every recording of the held-out speaker. */
  testUnseen: FsddClip[];
}

export function splitFsdd(clips: readonly FsddClip[], options: FsddSplitOptions = {}): FsddSplits {
  const speakers = fsddSpeakers(clips);
  const heldOutSpeaker = options.heldOutSpeaker ?? speakers[speakers.length - 1];
  const testIndices = options.testIndices ?? 5;
  if (!speakers.includes(heldOutSpeaker)) throw badInput(`FSDD: unknown speaker "${heldOutSpeaker}" (have ${speakers.join(', ')})`);
  if (!Number.isInteger(testIndices) || testIndices < 0) throw badInput(`FSDD: testIndices must be a non-negative integer, got ${testIndices}`);
  const seen = clips.filter((c) => c.speaker !== heldOutSpeaker);
  return {
    heldOutSpeaker,
    train: seen.filter((c) => c.index >= testIndices),
    testSeen: seen.filter((c) => c.index < testIndices),
    testUnseen: clips.filter((c) => c.speaker === heldOutSpeaker),
  };
}

/** "seven two nine" for [7, 2, 9]. */
export function digitsToTranscript(digits: readonly number[]): string {
  return digits.map((d) => DIGIT_WORDS[d]).join(' ');
}

/** Re-exported for existing importers; the one implementation is engine/random.ts. */
export { mulberry32 };

export interface TrimOptions {
  /** Frames whose RMS is this far below the loudest frame's are silence. Default -40 dB. */
  thresholdDb?: number;
  /** Analysis frame, seconds. Default 0.01. */
  frameSeconds?: number;
  /** Silence kept on each side of the speech, seconds. Default 0.01. */
  padSeconds?: number;
}

/** Removes leading and trailing silence (frame RMS below the threshold relative to the loudest frame). */
export function trimSilence(x: Float32Array, sampleRate: number, options: TrimOptions = {}): Float32Array {
  const frame = Math.max(1, Math.round((options.frameSeconds ?? 0.01) * sampleRate));
  const pad = Math.round((options.padSeconds ?? 0.01) * sampleRate);
  const nFrames = Math.ceil(x.length / frame);
  const energy = new Float64Array(nFrames);
  let loudest = 0;
  for (let f = 0; f < nFrames; f++) {
    let s = 0;
    const end = Math.min(x.length, (f + 1) * frame);
    for (let i = f * frame; i < end; i++) s += x[i] * x[i];
    energy[f] = s / (end - f * frame);
    loudest = Math.max(loudest, energy[f]);
  }
  if (loudest === 0) return x.slice();
  const threshold = loudest * 10 ** ((options.thresholdDb ?? -40) / 10);
  let first = 0;
  while (energy[first] < threshold) first++;
  let last = nFrames - 1;
  while (energy[last] < threshold) last--;
  return x.slice(Math.max(0, first * frame - pad), Math.min(x.length, (last + 1) * frame + pad));
}

export interface UtteranceOptions {
  /** Utterances to build. */
  count: number;
  seed?: number;
  /** Digits per utterance, drawn uniformly in [minDigits, maxDigits]. Default 1-4. */
  minDigits?: number;
  maxDigits?: number;
  /** Silence between digits, seconds, uniform in [min, max]. Default [0.05, 0.25]. */
  gapSeconds?: [number, number];
  /** Silence before the first and after the last digit, seconds. Default [0.02, 0.1]. */
  edgeSeconds?: [number, number];
  /** Trim each clip's leading/trailing silence first (default true; false keeps clips whole). */
  trim?: boolean | TrimOptions;
  /** Output rate; clips at other rates are resampled. Default 8000. */
  sampleRate?: number;
  /** Name of the split, recorded in the source. */
  split?: string;
}

export interface Utterance {
  /** Stable id within the set, e.g. "u0007". */
  id: string;
  samples: Float32Array;
  digits: number[];
  transcript: string;
  /** The clip files used, in order. */
  clips: string[];
}

export interface UtteranceSet {
  utterances: Utterance[];
  sampleRate: number;
  /** Files read and a sha256 over their names and contents (in sorted order), for manifests. */
  source: { files: string[]; sha256: string; split?: string };
}

/** Decoded (resampled, trimmed) clips by path, reusable across builds with the same options. */
export type ClipCache = Map<string, { samples: Float32Array; sha256: string }>;

/**
 * Builds `count` utterances from `clips` (one split's clips only, so splits stay disjoint).
 * Each utterance draws its number of digits, then each clip uniformly from the pool, then the
 * silences, all from one seeded generator.
 */
export async function buildUtterances(clips: readonly FsddClip[], options: UtteranceOptions, ctx?: JobContext, cache: ClipCache = new Map()): Promise<UtteranceSet> {
  const { count } = options;
  const minDigits = options.minDigits ?? 1;
  const maxDigits = options.maxDigits ?? 4;
  const [gapMin, gapMax] = options.gapSeconds ?? [0.05, 0.25];
  const [edgeMin, edgeMax] = options.edgeSeconds ?? [0.02, 0.1];
  const rate = options.sampleRate ?? 8000;
  const trim = options.trim ?? true;
  if (!Number.isInteger(count) || count < 0) throw badInput(`FSDD utterances: count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(minDigits) || !Number.isInteger(maxDigits) || minDigits < 1 || maxDigits < minDigits) {
    throw badInput(`FSDD utterances: need integers 1 <= minDigits <= maxDigits, got ${minDigits}-${maxDigits}`);
  }
  if (!(gapMin >= 0 && gapMax >= gapMin && edgeMin >= 0 && edgeMax >= edgeMin)) throw badInput('FSDD utterances: silence ranges must be [min, max] with 0 <= min <= max');
  if (clips.length === 0 && count > 0) throw badInput('FSDD utterances: no clips to draw from');

  const load = async (clip: FsddClip) => {
    const hit = cache.get(clip.path);
    if (hit) return hit;
    const bytes = await readFile(clip.path).catch((e: NodeJS.ErrnoException) => {
      throw new AdvlabError('NOT_FOUND', `${clip.path}: cannot be read (${e.code ?? e.message})`, { file: clip.path });
    });
    const wav = readWav(bytes, clip.path);
    let samples = wav.sampleRate === rate ? wav.samples : resample(wav.samples, wav.sampleRate, rate);
    if (trim) samples = trimSilence(samples, rate, trim === true ? {} : trim);
    const entry = { samples, sha256: createHash('sha256').update(bytes).digest('hex') };
    cache.set(clip.path, entry);
    return entry;
  };

  const rng = mulberry32(options.seed ?? 0);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rng();
  const silence = (lo: number, hi: number) => Math.round(uniform(lo, hi) * rate);
  const used = new Map<string, string>(); // file -> sha256
  const utterances: Utterance[] = [];
  for (let u = 0; u < count; u++) {
    ctx?.checkpoint();
    const n = minDigits + Math.floor(rng() * (maxDigits - minDigits + 1));
    const picked = Array.from({ length: n }, () => clips[Math.floor(rng() * clips.length)]);
    const lead = silence(edgeMin, edgeMax);
    const gaps = Array.from({ length: n - 1 }, () => silence(gapMin, gapMax));
    const tail = silence(edgeMin, edgeMax);
    const audio = [];
    for (const c of picked) {
      const a = await load(c);
      used.set(c.file, a.sha256);
      audio.push(a.samples);
    }
    const total = lead + tail + gaps.reduce((s, g) => s + g, 0) + audio.reduce((s, a) => s + a.length, 0);
    const samples = new Float32Array(total);
    let p = lead;
    audio.forEach((a, i) => {
      samples.set(a, p);
      p += a.length + (i < gaps.length ? gaps[i] : 0);
    });
    const digits = picked.map((c) => c.digit);
    utterances.push({ id: `u${String(u).padStart(4, '0')}`, samples, digits, transcript: digitsToTranscript(digits), clips: picked.map((c) => c.file) });
    if ((u + 1) % 50 === 0 || u + 1 === count) ctx?.progress({ step: u + 1, total: count, phase: 'building utterances' });
  }
  const files = [...used.keys()].sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f}\0${used.get(f)}\n`);
  return { utterances, sampleRate: rate, source: { files, sha256: hash.digest('hex'), ...(options.split ? { split: options.split } : {}) } };
}
