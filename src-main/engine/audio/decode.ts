/**
 * Alphabet and CTC decoding.
 *
 * The default alphabet is the one of DeepSpeech-style English models (and of Carlini & Wagner's
 * targets): space, apostrophe, a-z, then the CTC blank as the last class (29 classes).
 * Decoders take per-frame scores [T][C] (logits or log-probabilities: they are log-softmaxed
 * here, which leaves log-probabilities unchanged):
 *  - greedy / best path: argmax per frame, collapse repeats, drop blanks;
 *  - prefix beam search (Hannun et al. 2014, without a language model): keeps the `beamWidth`
 *    most probable label prefixes, each with the probability of ending in a blank and in a
 *    non-blank, so that every alignment of a prefix is counted. With a beam wide enough to keep
 *    every prefix it returns the most probable labelling exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';
import { argmaxAt } from '../models/predict';
import { SPEECH_SYMBOLS } from '../../../src-shared/speech-phrase';

export class Alphabet {
  /** Symbols for classes 0..size-2; class size-1 is the blank. */
  readonly symbols: readonly string[];
  readonly blank: number;
  /** Number of classes, blank included. */
  readonly size: number;
  private readonly index: Map<string, number>;

  constructor(symbols: readonly string[]) {
    if (symbols.length === 0) throw badInput('Alphabet: no symbols');
    const seen = new Set<string>();
    for (const s of symbols) {
      if ([...s].length !== 1) throw badInput(`Alphabet: symbols must be single characters, got ${JSON.stringify(s)}`);
      if (seen.has(s)) throw badInput(`Alphabet: duplicate symbol ${JSON.stringify(s)}`);
      seen.add(s);
    }
    this.symbols = Object.freeze([...symbols]);
    this.blank = symbols.length;
    this.size = symbols.length + 1;
    this.index = new Map(symbols.map((s, i) => [s, i]));
  }

  /**
   * Class indices of a transcript. Letters are lower-cased first when the alphabet has no
   * upper-case letters; any other character outside the alphabet is an error naming it.
   */
  encode(text: string): number[] {
    const chars = [...text];
    const lower = !this.symbols.some((s) => s !== s.toLowerCase());
    return chars.map((ch, i) => {
      const c = lower ? ch.toLowerCase() : ch;
      const k = this.index.get(c);
      if (k === undefined) {
        throw badInput(`Transcript ${JSON.stringify(text)}: character ${JSON.stringify(ch)} at position ${i} is not in the alphabet (${this.describe()})`, { text, position: i });
      }
      return k;
    });
  }

  /** Text of a label sequence (no blanks allowed: decode first). */
  decode(labels: readonly number[]): string {
    return labels
      .map((k, i) => {
        if (!Number.isInteger(k) || k < 0 || k >= this.blank) {
          throw badInput(`Label ${k} at position ${i} is ${k === this.blank ? 'the blank' : 'not a class'} of this alphabet (symbols 0..${this.blank - 1})`);
        }
        return this.symbols[k];
      })
      .join('');
  }

  private describe(): string {
    return this.symbols.map((s) => (s === ' ' ? 'space' : s === "'" ? 'apostrophe' : s)).join(' ');
  }
}

/** space, apostrophe, a-z (src-shared/speech-phrase.ts, which the forms check targets with); blank = 28; 29 classes. */
export const DEFAULT_ALPHABET = new Alphabet(SPEECH_SYMBOLS);

export function textToLabels(text: string, alphabet: Alphabet = DEFAULT_ALPHABET): number[] {
  return alphabet.encode(text);
}

export function labelsToText(labels: readonly number[], alphabet: Alphabet = DEFAULT_ALPHABET): string {
  return alphabet.decode(labels);
}

/** Per-frame scores: T rows of C numbers. */
export type FrameScores = readonly ArrayLike<number>[];

function logSoftmaxRow(row: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** Collapses repeats and drops blanks: B(pi) of the CTC paper. */
export function collapse(path: readonly number[], blank: number): number[] {
  const out: number[] = [];
  let prev = -1;
  for (const k of path) {
    if (k !== prev && k !== blank) out.push(k);
    prev = k;
  }
  return out;
}

export interface DecodeOptions {
  /** Blank index; default the last class. */
  blank?: number;
}

/** Best-path decoding: argmax per frame, then collapse. */
export function greedyDecode(scores: FrameScores, options: DecodeOptions = {}): number[] {
  if (scores.length === 0) return [];
  const C = scores[0].length;
  const blank = options.blank ?? C - 1;
  const path = scores.map((row) => argmaxAt(row, 0, row.length));
  return collapse(path, blank);
}

export interface BeamOptions extends DecodeOptions {
  /** Prefixes kept per frame. Default 16. */
  beamWidth?: number;
  /** Hypotheses returned, best first. Default 1. */
  topN?: number;
}

export interface Hypothesis {
  labels: number[];
  /** log p(labels | x) summed over the alignments the beam kept. */
  logProb: number;
}

/** CTC prefix beam search; returns up to `topN` hypotheses, most probable first. */
export function beamSearchDecode(scores: FrameScores, options: BeamOptions = {}): Hypothesis[] {
  const beamWidth = options.beamWidth ?? 16;
  const topN = options.topN ?? 1;
  if (!Number.isInteger(beamWidth) || beamWidth < 1) throw badInput(`beam search: beamWidth must be a positive integer, got ${beamWidth}`);
  if (scores.length === 0) return [{ labels: [], logProb: 0 }];
  const C = scores[0].length;
  const blank = options.blank ?? C - 1;
  type Beam = { labels: number[]; pb: number; pnb: number };
  const key = (l: readonly number[]) => l.join(',');
  let beams = new Map<string, Beam>([['', { labels: [], pb: 0, pnb: -Infinity }]]);
  for (const row of scores) {
    if (row.length !== C) throw badInput(`beam search: every frame needs ${C} scores, got ${row.length}`);
    const lp = logSoftmaxRow(row);
    const next = new Map<string, Beam>();
    const get = (labels: number[]): Beam => {
      const k = key(labels);
      let b = next.get(k);
      if (!b) next.set(k, (b = { labels, pb: -Infinity, pnb: -Infinity }));
      return b;
    };
    for (const beam of beams.values()) {
      const total = logAdd(beam.pb, beam.pnb);
      const last = beam.labels.length ? beam.labels[beam.labels.length - 1] : -1;
      for (let c = 0; c < C; c++) {
        const p = lp[c];
        if (c === blank) {
          const same = get(beam.labels);
          same.pb = logAdd(same.pb, total + p);
        } else if (c === last) {
          // A repeat extends the prefix only after a blank; otherwise it merges into the same label.
          const extended = get([...beam.labels, c]);
          extended.pnb = logAdd(extended.pnb, beam.pb + p);
          const same = get(beam.labels);
          same.pnb = logAdd(same.pnb, beam.pnb + p);
        } else {
          const extended = get([...beam.labels, c]);
          extended.pnb = logAdd(extended.pnb, total + p);
        }
      }
    }
    const ranked = [...next.values()].sort((a, b) => logAdd(b.pb, b.pnb) - logAdd(a.pb, a.pnb));
    beams = new Map(ranked.slice(0, beamWidth).map((b) => [key(b.labels), b]));
  }
  return [...beams.values()]
    .map((b) => ({ labels: b.labels, logProb: logAdd(b.pb, b.pnb) }))
    .sort((a, b) => b.logProb - a.logProb)
    .slice(0, topN);
}

export interface BatchDecodeOptions extends BeamOptions {
  method?: 'greedy' | 'beam';
  /** Valid frames per example (default all). */
  inputLengths?: number[];
  alphabet?: Alphabet;
}

/** Decodes a batch of logits [B, T, C] to text (greedy by default). */
export async function decodeBatch(logits: tf.Tensor3D, options: BatchDecodeOptions = {}): Promise<string[]> {
  const alphabet = options.alphabet ?? DEFAULT_ALPHABET;
  const [B, T, C] = logits.shape;
  if (C !== alphabet.size) throw badInput(`decodeBatch: logits have ${C} classes but the alphabet has ${alphabet.size}`);
  const lengths = options.inputLengths ?? new Array<number>(B).fill(T);
  if (lengths.length !== B) throw badInput(`decodeBatch: ${lengths.length} input lengths for a batch of ${B}`);
  const data = (await logits.array()) as number[][][];
  return data.map((frames, b) => {
    const rows = frames.slice(0, lengths[b]);
    const labels = options.method === 'beam' ? beamSearchDecode(rows, { ...options, blank: alphabet.blank })[0].labels : greedyDecode(rows, { blank: alphabet.blank });
    return alphabet.decode(labels);
  });
}
