/**
 * The audio benchmark of issue 6 (numbers for BENCHMARKS.md): attack held-out FSDD utterances,
 * each with a digit-phrase target and a non-digit phrase target, and report the exact-target success
 * rate, the dB_x of the successes and the time per clip. The paper (Carlini & Wagner 2018) reports
 * 100% success and a mean dB_x of -31 dB on DeepSpeech; our benchmark target is 100% and <= -30 dB.
 *
 * Clips are utterances of 3-4 digits built from held-out recordings (by default FSDD recordings 0-4 of
 * the speakers the model was trained on, as in `prepareSpeechData`; or the held-out speaker), so that
 * every target fits the clip's frames. Digit targets are random digit phrases (2-3 digits, never the
 * clip's own transcript); phrase targets cycle through PHRASE_TARGETS (or `phrases`, e.g.
 * UNSEEN_LETTER_PHRASES to measure what a digits-only model cannot be made to say).
 */
import type { JobContext } from '../context';
import { childContext, silentContext } from '../context';
import { badInput } from '../errors';
import { audioAttack, type AudioAttackOptions } from './attack';
import { ctcMinFrames } from './ctc';
import { buildUtterances, digitsToTranscript, fsddDir, listFsdd, mulberry32, splitFsdd } from './fsdd';
import { SpeechModel } from './model';

/**
 * Non-digit target phrases, written with the 15 letters that occur in the ten digit words (e f g h i
 * n o r s t u v w x z): a model trained only on FSDD has learned to emit these, while it never saw
 * a b c d j k l m p q y or the apostrophe in a training transcript.
 */
export const PHRASE_TARGETS = [
  'turn on the tv', 'go north', 'hit the siren', 'shut it off', 'turn right',
  'it is on fire', 'over there', 'get out', 'fix the oven', 'the sun is hot',
] as const;

/** Phrases that need letters a digits-only model never saw (the "open the door", ...). */
export const UNSEEN_LETTER_PHRASES = [
  'open the door', 'hello world', 'call my wife', 'play music', 'unlock the car',
] as const;

export interface AudioBenchmarkOptions {
  /** A loaded speech model, or the path of its model.json / folder. */
  model: SpeechModel | string;
  /** Clips to attack. Default 10. */
  clips?: number;
  /** Held-out utterances of seen speakers (default) or of the unseen speaker. */
  split?: 'test-seen' | 'test-unseen';
  /** Iteration budget per attack. Default 1000. */
  iterations?: number;
  /** Other attack options (c, learningRate, tau0, ...). */
  attack?: Omit<AudioAttackOptions, 'target' | 'iterations'>;
  /** Phrases to use instead of PHRASE_TARGETS. */
  phrases?: readonly string[];
  seed?: number;
  /** FSDD recordings folder. Default $ADVLAB_DATA/fsdd/recordings. */
  fsddDir?: string;
  heldOutSpeaker?: string;
  ctx?: JobContext;
  /** Called after each attack (for logs). */
  onAttack?: (row: AudioBenchmarkRow) => void;
}

export interface AudioBenchmarkRow {
  clip: string;
  transcript: string;
  /** The clean transcription (before the attack). */
  transcriptBefore: string;
  kind: 'digits' | 'phrase';
  target: string;
  success: boolean;
  transcriptAfter: string;
  dbx: number | null;
  iterations: number;
  successIteration: number | null;
  seconds: number;
  clipSeconds: number;
}

export interface AudioBenchmarkResult {
  clips: number;
  attacks: number;
  /** Clips the model transcribed exactly before the attack. */
  cleanCorrect: number;
  successRate: number;
  successRateDigits: number;
  successRatePhrase: number;
  /** Mean / median / worst dB_x over successful attacks (null without success). */
  meanDbx: number | null;
  medianDbx: number | null;
  maxDbx: number | null;
  /** Wall time of both attacks on a clip, averaged over clips. */
  secondsPerClip: number;
  secondsPerAttack: number;
  meanClipSeconds: number;
  iterations: number;
  arch: string;
  rows: AudioBenchmarkRow[];
}

function mean(v: number[]): number | null {
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

function median(v: number[]): number | null {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs the benchmark; loads (and disposes) the model when given a path. */
export async function audioBenchmark(opts: AudioBenchmarkOptions): Promise<AudioBenchmarkResult> {
  const nClips = opts.clips ?? 10;
  const iterations = opts.iterations ?? 1000;
  const seed = opts.seed ?? 1;
  const ctx = opts.ctx ?? silentContext;
  const phrases = opts.phrases ?? PHRASE_TARGETS;
  if (!Number.isInteger(nClips) || nClips < 1) throw badInput(`audio benchmark: clips must be a positive integer, got ${nClips}`);
  if (phrases.length === 0) throw badInput('audio benchmark: no phrase targets');
  const model = typeof opts.model === 'string' ? await SpeechModel.load(opts.model) : opts.model;
  try {
    const split = splitFsdd(await listFsdd(opts.fsddDir ?? fsddDir()), { heldOutSpeaker: opts.heldOutSpeaker });
    const pool = opts.split === 'test-unseen' ? split.testUnseen : split.testSeen;
    const set = await buildUtterances(pool, { count: nClips, seed: seed * 7919 + 404, minDigits: 3, maxDigits: 4, sampleRate: model.sampleRate, split: opts.split ?? 'test-seen' });
    const rng = mulberry32(seed * 131 + 9);
    const rows: AudioBenchmarkRow[] = [];
    const total = nClips * 2;
    for (const [k, u] of set.utterances.entries()) {
      let digitTarget: string;
      do {
        const n = 2 + Math.floor(rng() * 2);
        digitTarget = digitsToTranscript(Array.from({ length: n }, () => Math.floor(rng() * 10)));
      } while (digitTarget === u.transcript);
      const targets: [AudioBenchmarkRow['kind'], string][] = [['digits', digitTarget], ['phrase', phrases[k % phrases.length]]];
      for (const [kind, target] of targets) {
        if (ctcMinFrames(model.alphabet.encode(target)) > model.outputFrames(u.samples.length)) {
          throw badInput(`audio benchmark: target "${target}" does not fit clip ${u.id} (${(u.samples.length / model.sampleRate).toFixed(2)} s)`);
        }
        const r = await audioAttack(model, { samples: u.samples, sampleRate: model.sampleRate }, { ...opts.attack, target, iterations }, childContext(ctx, { from: rows.length, span: 0, total, label: `clip ${k + 1}/${nClips}, ${kind} target` }));
        const row: AudioBenchmarkRow = {
          clip: u.id, transcript: u.transcript, transcriptBefore: r.transcriptBefore, kind, target, success: r.success, transcriptAfter: r.transcriptAfter,
          dbx: r.dbx, iterations: r.iterations, successIteration: r.successIteration, seconds: r.seconds, clipSeconds: u.samples.length / model.sampleRate,
        };
        rows.push(row);
        opts.onAttack?.(row);
        ctx.progress({ step: rows.length, total, phase: 'audio benchmark', metrics: { success: r.success ? 1 : 0, ...(r.dbx !== null ? { dbx: r.dbx } : {}) } });
      }
    }
    const ok = rows.filter((r) => r.success && r.dbx !== null);
    const rate = (kind?: AudioBenchmarkRow['kind']) => {
      const sel = rows.filter((r) => !kind || r.kind === kind);
      return sel.filter((r) => r.success).length / sel.length;
    };
    const seconds = rows.reduce((a, r) => a + r.seconds, 0);
    const dbxs = ok.map((r) => r.dbx as number);
    const cleanIds = new Set(rows.filter((r) => r.transcriptBefore === r.transcript).map((r) => r.clip));
    return {
      clips: nClips, attacks: rows.length, cleanCorrect: cleanIds.size,
      successRate: rate(), successRateDigits: rate('digits'), successRatePhrase: rate('phrase'),
      meanDbx: mean(dbxs), medianDbx: median(dbxs), maxDbx: dbxs.length ? Math.max(...dbxs) : null,
      secondsPerClip: seconds / nClips, secondsPerAttack: seconds / rows.length,
      meanClipSeconds: set.utterances.reduce((a, u) => a + u.samples.length, 0) / model.sampleRate / nClips,
      iterations, arch: model.arch, rows,
    };
  } finally {
    if (typeof opts.model === 'string') model.dispose();
  }
}
