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
import { AUDIO_ATTACK_DEFAULTS, audioAttack, type AudioAttackOptions, type AudioAttackStopReason } from './attack';
import { readCorpusClip, readCorpusManifest, type CorpusClip } from './corpus';
import { ctcMinFrames } from './ctc';
import { buildUtterances, digitsToTranscript, fsddDir, listFsdd, mulberry32, splitFsdd } from './fsdd';
import { SpeechModel } from './model';
import { normalizePhrase } from '../../../src-shared/speech-phrase';

/**
 * Non-digit target phrases, written with the 15 letters that occur in the ten digit words (e f g h i
 * n o r s t u v w x z): a model trained only on FSDD has learned to emit these, while it never saw
 * a b c d j k l m p q y or the apostrophe in a training transcript.
 */
export const PHRASE_TARGETS = [
  'turn on the tv', 'go north', 'hit the siren', 'shut it off', 'turn right',
  'it is on fire', 'over there', 'get out', 'fix the oven', 'the sun is hot',
] as const;

/** Phrases that need letters a digits-only model never saw (the issue's "open the door", ...). */
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

/**
 * Issue 18's target phrases for the attack benchmark on a model with every letter: together they
 * use all 26 letters (checked by ALPHABET_TARGETS_LETTERS's test), "open the door" first.
 */
export const ALPHABET_TARGETS = [
  'open the door', 'turn off the lights', 'call my wife now', 'quickly jump back', 'send the box to zack',
  'play some jazz music', 'buy five dozen eggs', 'lock the front gate', 'take a quick walk', 'move the van away',
] as const;

/** Synthesizers in the order the synthesized clips are drawn from them (round robin). */
const SYNTH_ORDER = ['espeak-ng', 'flite', 'festival'] as const;

export interface TargetsClip {
  /** Corpus clip id ("c000017") or "fsdd-<speaker>-u0003". */
  id: string;
  kind: 'synthesized' | 'real';
  /** Voice ("espeak-ng:en-gb-x-rp+m3") or FSDD speaker, and the recordings used. */
  source: string;
  /** What was spoken. */
  transcript: string;
  samples: Float32Array;
  sampleRate: number;
}

export interface TargetsClipOptions {
  model: SpeechModel;
  targets: readonly string[];
  /** Corpus folder (`advlab audio corpus`) whose "test" clips (held-out voices) give the synthesized clips. */
  corpusDir: string;
  /** FSDD recordings folder: the held-out speaker's recordings give the real clips. */
  fsddDir: string;
  synthesized?: number;
  real?: number;
  /** Held-out FSDD speaker (default: the last alphabetically, as in the models' split). */
  heldOutSpeaker?: string;
  /** Synthesized clips' duration range, seconds. Default [1.6, 3]. */
  seconds?: [number, number];
  seed?: number;
}

/** Whether every target fits the clip's output frames (one per character, one more between repeats). */
function fitsAll(model: SpeechModel, targets: readonly string[], nAtModelRate: number): boolean {
  const have = model.outputFrames(nAtModelRate);
  return targets.every((t) => ctcMinFrames(model.alphabet.encode(normalizePhrase(t))) <= have);
}

/**
 * The benchmark's clips, chosen reproducibly:
 * - synthesized: the corpus's "test" clips (voices never in training) of 1.6-3 s that every target fits,
 *   in manifest order, taken round robin over the synthesizers (espeak-ng, flite, festival), so the
 *   first five are two espeak-ng, two flite and one festival clip when the corpus has them;
 * - real: connected-digit utterances of 4-5 recordings of the held-out FSDD speaker (the model never
 *   heard this speaker), built with a fixed seed; the first that every target fits.
 */
export async function targetsClips(o: TargetsClipOptions): Promise<TargetsClip[]> {
  const nSynth = o.synthesized ?? 5, nReal = o.real ?? 5;
  const [minS, maxS] = o.seconds ?? [1.6, 3];
  const model = o.model;
  const atModel = (n: number, rate: number) => (rate === model.sampleRate ? n : Math.ceil((n * model.sampleRate) / rate));
  const out: TargetsClip[] = [];
  if (nSynth > 0) {
    const { dir, manifest } = await readCorpusManifest(o.corpusDir);
    const rate = manifest.sampleRate;
    const eligible = manifest.clips.filter((c) => c.split === 'test' && c.samples / rate >= minS && c.samples / rate <= maxS && fitsAll(model, o.targets, atModel(c.samples, rate)));
    const queues = SYNTH_ORDER.map((s) => eligible.filter((c) => c.source === s));
    const picked: CorpusClip[] = [];
    for (let round = 0; picked.length < nSynth && queues.some((q) => q.length > 0); round++) {
      for (const q of queues) if (picked.length < nSynth && q.length > 0) picked.push(q.shift()!);
    }
    if (picked.length < nSynth) throw badInput(`audio targets benchmark: the corpus at ${dir} has ${picked.length} held-out-voice clips of ${minS}-${maxS} s that every target fits; ${nSynth} needed`);
    for (const c of picked) out.push({ id: c.id, kind: 'synthesized', source: c.voice, transcript: c.transcript, samples: await readCorpusClip(dir, c), sampleRate: rate });
  }
  if (nReal > 0) {
    const split = splitFsdd(await listFsdd(o.fsddDir), { heldOutSpeaker: o.heldOutSpeaker });
    if (split.testUnseen.length === 0) throw badInput(`audio targets benchmark: no recordings of the held-out FSDD speaker in ${o.fsddDir}`);
    const speaker = split.testUnseen[0].speaker;
    const set = await buildUtterances(split.testUnseen, { count: nReal * 8, seed: (o.seed ?? 1) * 7919 + 1818, minDigits: 4, maxDigits: 5, sampleRate: model.sampleRate, split: 'test-unseen' });
    const fit = set.utterances.filter((u) => fitsAll(model, o.targets, u.samples.length)).slice(0, nReal);
    if (fit.length < nReal) throw badInput(`audio targets benchmark: only ${fit.length} of ${set.utterances.length} utterances of ${speaker} fit every target; ${nReal} needed`);
    for (const u of fit) out.push({ id: `fsdd-${speaker}-${u.id}`, kind: 'real', source: `fsdd:${speaker} ${u.clips.join(' ')}`, transcript: u.transcript, samples: u.samples, sampleRate: set.sampleRate });
  }
  return out;
}

export interface AudioTargetsOptions {
  model: SpeechModel;
  clips: readonly TargetsClip[];
  targets: readonly string[];
  /** Iteration budget per attack. Default the attack's (1000). */
  iterations?: number;
  /** Other attack options (c, learningRate, tau0, ...). */
  attack?: Omit<AudioAttackOptions, 'target' | 'iterations' | 'stage2'>;
  /** Run only the attacks whose index (clip-major) is `index` mod `count` (to split a run over processes). */
  shard?: { index: number; count: number };
  /**
   * Rows of an earlier, stopped run with the same settings (the CLI's rows file): their attacks are not run
   * again and they count in the summary. Each must name the clip and target of its index.
   */
  done?: readonly AudioTargetsRow[];
  ctx?: JobContext;
  onAttack?: (row: AudioTargetsRow) => void;
}

export interface AudioTargetsRow {
  /** Index of the (clip, target) pair, clip-major. */
  index: number;
  clip: string;
  kind: TargetsClip['kind'];
  clipSeconds: number;
  transcriptBefore: string;
  target: string;
  /** The 16-bit adversarial WAV transcribes as exactly the target (transcribed again here, from the stored samples). */
  exact: boolean;
  /** Its transcript. */
  transcriptAfter: string;
  /** dB_x of the 16-bit adversarial's perturbation (null when it is all zeros). */
  dbx: number | null;
  seconds: number;
  iterations: number;
  /** Iteration of the first success (null: none). */
  firstSuccessIteration: number | null;
  /** Iteration of the quietest success, the one returned. */
  successIteration: number | null;
  successes: number;
  /** Why the attack ended (audioAttack's stopReason: 'budget' when every iteration ran). */
  stopReason: AudioAttackStopReason;
}

export interface AudioTargetsResult {
  attacks: number;
  exact: number;
  exactRate: number;
  /** Over exact attacks. */
  meanDbx: number | null;
  medianDbx: number | null;
  maxDbx: number | null;
  meanSeconds: number;
  totalSeconds: number;
  meanFirstSuccessIteration: number | null;
  byKind: Record<TargetsClip['kind'], { attacks: number; exact: number; meanDbx: number | null }>;
  iterations: number;
  rows: AudioTargetsRow[];
}

/** Summary of benchmark rows (also used to merge rows of several shards). */
export function summarizeTargets(rows: readonly AudioTargetsRow[], iterations: number): AudioTargetsResult {
  const sorted = [...rows].sort((a, b) => a.index - b.index);
  const ok = sorted.filter((r) => r.exact && r.dbx !== null);
  const dbxs = ok.map((r) => r.dbx as number);
  const firsts = sorted.flatMap((r) => (r.firstSuccessIteration === null ? [] : [r.firstSuccessIteration]));
  const total = sorted.reduce((a, r) => a + r.seconds, 0);
  const kind = (k: TargetsClip['kind']) => {
    const sel = sorted.filter((r) => r.kind === k);
    return { attacks: sel.length, exact: sel.filter((r) => r.exact).length, meanDbx: mean(sel.filter((r) => r.exact && r.dbx !== null).map((r) => r.dbx as number)) };
  };
  return {
    attacks: sorted.length, exact: sorted.filter((r) => r.exact).length,
    exactRate: sorted.length ? sorted.filter((r) => r.exact).length / sorted.length : 0,
    meanDbx: mean(dbxs), medianDbx: median(dbxs), maxDbx: dbxs.length ? Math.max(...dbxs) : null,
    meanSeconds: sorted.length ? total / sorted.length : 0, totalSeconds: total, meanFirstSuccessIteration: mean(firsts),
    byKind: { synthesized: kind('synthesized'), real: kind('real') }, iterations, rows: sorted,
  };
}

/**
 * Issue 18's targeted attack benchmark: every clip x every target through the audio-attack job's engine
 * (audioAttack), each adversarial judged on its stored 16-bit samples. Every (clip, target) pair is
 * checked before the first attack: a target that needs more CTC frames than its clip gives fails the
 * run up front with the pairs named.
 */
export async function audioTargetsBenchmark(o: AudioTargetsOptions): Promise<AudioTargetsResult> {
  const ctx = o.ctx ?? silentContext;
  const { model } = o;
  if (o.clips.length === 0 || o.targets.length === 0) throw badInput('audio targets benchmark: no clips or no targets');
  const shard = o.shard ?? { index: 0, count: 1 };
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) throw badInput(`audio targets benchmark: shard must be K/N with 0 <= K < N, got ${shard.index}/${shard.count}`);
  const pairs = o.clips.flatMap((clip, ci) => o.targets.map((target, ti) => ({ index: ci * o.targets.length + ti, clip, target: normalizePhrase(target) })));
  const misfits = pairs.flatMap(({ clip, target }) => {
    const n = clip.sampleRate === model.sampleRate ? clip.samples.length : Math.ceil((clip.samples.length * model.sampleRate) / clip.sampleRate);
    const need = ctcMinFrames(model.alphabet.encode(target)), have = model.outputFrames(n);
    return need > have ? [`"${target}" on ${clip.id} (needs ${need} frames, the ${(clip.samples.length / clip.sampleRate).toFixed(2)} s clip gives ${have})`] : [];
  });
  if (misfits.length) throw badInput(`audio targets benchmark: ${misfits.length} target(s) do not fit their clip: ${misfits.join('; ')}`);
  const mine = pairs.filter((p) => p.index % shard.count === shard.index);
  const iterations = o.iterations ?? AUDIO_ATTACK_DEFAULTS.iterations;
  const done = new Map<number, AudioTargetsRow>();
  for (const d of o.done ?? []) {
    const pair = pairs[d.index];
    if (!pair || pair.clip.id !== d.clip || pair.target !== d.target) throw badInput(`audio targets benchmark: an earlier row (attack ${d.index}, ${d.clip} -> "${d.target}") is not this run's attack ${d.index}${pair ? ` (${pair.clip.id} -> "${pair.target}")` : ''}`);
    if (d.index % shard.count === shard.index) done.set(d.index, d);
  }
  const rows: AudioTargetsRow[] = [...done.values()];
  for (const { index, clip, target } of mine) {
    if (done.has(index)) continue;
    const r = await audioAttack(model, { samples: clip.samples, sampleRate: clip.sampleRate }, { ...o.attack, target, iterations },
      childContext(ctx, { from: rows.length, span: 1, total: mine.length, label: `${clip.id} -> "${target}"` }));
    const after = await model.transcribe(r.adversarial, r.sampleRate);
    const row: AudioTargetsRow = {
      index, clip: clip.id, kind: clip.kind, clipSeconds: clip.samples.length / clip.sampleRate, transcriptBefore: r.transcriptBefore, target,
      exact: after.text === target, transcriptAfter: after.text, dbx: r.dbx, seconds: r.seconds, iterations: r.iterations,
      firstSuccessIteration: r.firstSuccessIteration, successIteration: r.successIteration, successes: r.successes, stopReason: r.stopReason,
    };
    rows.push(row);
    o.onAttack?.(row);
    ctx.progress({ step: rows.length, total: mine.length, phase: 'audio targets benchmark', metrics: { exact: row.exact ? 1 : 0, ...(row.dbx !== null ? { dbx: row.dbx } : {}) } });
  }
  return summarizeTargets(rows, iterations);
}
