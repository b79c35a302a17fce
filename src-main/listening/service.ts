/**
 * Listening tests: blind "original or adversarial?" trials built from audio-attack sessions, run
 * one answer at a time from the UI, saved as a session of kind 'listening'. With compare 'stages'
 * (ABX only) a pair is instead an attack's stage-1 (C&W, adversarial.wav) and stage-2 (imperceptible,
 * adversarial-stage2.wav) clips: can a listener tell the two perturbations apart? The plan's two
 * identities then stand for stage1 and stage2, and key.json, the answer rows and results say so.
 *
 * Session layout:
 *   params                       { sessions, mode, repeats, targetDbfs }, and `seed` once the test ends
 *   artifacts/clips/cNN.wav      the loudness-matched clips under neutral names (16-bit PCM)
 *   artifacts/key.json           which clip is which, the seed, the trial plan and the correct answers
 *   metrics/answers.jsonl        one row per answer, appended as the listener answers: while the test
 *                                is open only { trial, answer, ms, playsX.., time }; when it ends the
 *                                rows are rewritten with the truth (correct, truth, pair, source, x,
 *                                a, b, clipX, clipA, clipB)
 *   artifacts/results.json       per-pair results (written when the test ends)
 *   summary                      { mode, pairs, plannedTrials, trials, correct, accuracy, pValue, chance }
 *
 * Blinding: while a test is open nothing readable says which clip is which. The listener is given
 * clip paths only; key.json is on disk (an interrupted test keeps it) but sealed in the store (the
 * seal is the session's .sealed.json, so every process sees it: the CLI's `sessions export` too), so
 * no API call, file URL, report or export can read it; the answer rows on disk hold no truth; the seed
 * (from which the whole plan follows) is in key.json only; the clips are written and listed in the
 * order of their neutral names. An open test lives in this process (its writer); a test left open
 * when AdvLab exits is listed as incomplete, its answers so far stay on disk and the truth of each is
 * `trials[trial].correct` of its key.json, which is no longer sealed.
 */
import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { AdvlabError, badFile, badInput } from '../engine/errors';
import { binomialTest, matchLoudness, rmsDbfs } from '../engine/audio/dbx';
import { mulberry32 } from '../engine/audio/fsdd';
import { readWav, write16 } from '../engine/audio/wav';
import { collectEnvironment, type SessionEnvironment, type SessionStore, type SessionWriter } from '../engine/sessions';
import { formatMetricRow } from '../engine/sessions/metrics';
import { writeFileAtomic } from '../engine/core/fs-atomic';
import { ADVLAB_VERSION } from '../paths';
import { answersFor, isCorrect, planTrials, type Identity, type PlannedTrial } from './plan';
import {
  listeningAnswerSchema,
  listeningCreateSchema,
  type ListeningAnswerParams,
  type ListeningAnswerResult,
  type ListeningCompare,
  type ListeningCreateParams,
  type ListeningMode,
  type ListeningResult,
  type ListeningTestView,
} from './schemas';

export interface ListeningServiceOptions {
  /** The manifest's environment block (default: this process, backend 'none': a listening test runs no tensor code). */
  environment?: () => SessionEnvironment | Promise<SessionEnvironment>;
  /** Called after a listening session is created or ended. */
  onChange?: (id: string) => void;
}

/** One source pair as loaded from an audio-attack session. */
interface SourcePair {
  session: string;
  name: string;
  sampleRate: number;
  original: Float32Array;
  adversarial: Float32Array;
  summary: Record<string, unknown>;
}

interface ClipEntry {
  /** Artifact path, e.g. clips/c03.wav. */
  path: string;
  pair: number;
  /** 'original' | 'adversarial', or 'stage1' | 'stage2' when the stages are compared. */
  identity: string;
  source: string;
  gainDb: number;
  /** RMS level of the stored (quantised) clip, dBFS. */
  levelDbfs: number;
}

interface OpenTest {
  writer: SessionWriter;
  mode: ListeningMode;
  compare: ListeningCompare;
  seed: number;
  /** The answer rows with their truth, written to metrics/answers.jsonl when the test ends. */
  rows: Record<string, unknown>[];
  /** The last answer row's append (finish waits for it before rewriting the rows). */
  pending: Promise<void>;
  plan: PlannedTrial[];
  sources: string[];
  clipOf: (pair: number, identity: Identity) => string;
  answered: number;
  correct: number;
  perPair: { trials: number; correct: number }[];
}

export class ListeningService {
  private readonly open = new Map<string, OpenTest>();

  constructor(
    private readonly store: SessionStore,
    private readonly options: ListeningServiceOptions = {},
  ) {}

  /** Ids of the tests open in this process. */
  openTests(): string[] {
    return [...this.open.keys()];
  }

  /**
   * Builds a test: loads each session's original.wav and adversarial.wav, matches the loudness of
   * every clip (one common RMS level), stores them under neutral names, plans the trials and opens a
   * 'listening' session. Returns what the listener needs (no identities).
   */
  async create(raw: ListeningCreateParams): Promise<ListeningTestView> {
    const p = listeningCreateSchema.parse(raw);
    const seed = p.seed ?? randomInt(0, 2 ** 31 - 1);
    const pairs: SourcePair[] = [];
    for (const id of p.sessions) pairs.push(await this.loadPair(id, p.compare));
    const name = identityName(p.compare);

    const matched = matchLoudness(pairs.flatMap((q) => [q.original, q.adversarial]), p.targetDbfs);
    // Neutral names: a seeded permutation of c01..cNN over (pair, identity).
    const rng = mulberry32(seed ^ 0x5bd1e995);
    const slots = pairs.flatMap((_, pair) => (['original', 'adversarial'] as const).map((identity) => ({ pair, identity })));
    const numbers = slots.map((_, i) => i + 1);
    for (let i = numbers.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [numbers[i], numbers[j]] = [numbers[j], numbers[i]];
    }
    const width = String(slots.length).length < 2 ? 2 : String(slots.length).length;
    const clips: ClipEntry[] = [];
    const files: { path: string; data: Uint8Array; kind: 'audio' }[] = [];
    slots.forEach((s, i) => {
      const path = `clips/c${String(numbers[i]).padStart(width, '0')}.wav`;
      const bytes = write16(matched.clips[i], pairs[s.pair].sampleRate);
      const stored = readWav(bytes, path).samples; // measure what will be heard
      clips.push({ path, pair: s.pair, identity: name(s.identity), source: pairs[s.pair].session, gainDb: matched.gainsDb[i], levelDbfs: rmsDbfs(stored) });
      files.push({ path, data: bytes, kind: 'audio' });
    });
    // Written (so listed in the manifest, and timestamped) in the order of the neutral names, not of
    // (pair, identity): the listing must not tell which clip is which.
    files.sort((x, y) => (x.path < y.path ? -1 : 1));
    const clipOf = (pair: number, identity: Identity) => clips.find((c) => c.pair === pair && c.identity === name(identity))!.path;

    const plan = planTrials({ pairs: pairs.length, repeats: p.repeats, mode: p.mode, seed });
    const environment = await (this.options.environment?.() ?? collectEnvironment({ backend: 'none', tfjsVersion: 'none', advlabVersion: ADVLAB_VERSION }));
    const writer = await this.store.create({
      kind: 'listening',
      name: p.name ?? `${p.mode === 'ab' ? 'A/B' : 'ABX'} listening test${p.compare === 'stages' ? ' (stage 1 vs stage 2)' : ''}, ${pairs.length} clip${pairs.length > 1 ? 's' : ''} x ${p.repeats}`,
      // No seed while the test is open: the seed gives the whole plan. It is added when the test ends.
      params: { sessions: p.sessions, mode: p.mode, ...(p.compare !== 'attack' ? { compare: p.compare } : {}), repeats: p.repeats, targetDbfs: p.targetDbfs },
      tags: p.tags,
      environment,
    });
    try {
      const key = {
        mode: p.mode,
        compare: p.compare,
        seed,
        chance: 0.5,
        requestedDbfs: p.targetDbfs,
        levelDbfs: matched.targetDbfs,
        pairs: pairs.map((q, i) => ({
          pair: i,
          session: q.session,
          name: q.name,
          sampleRate: q.sampleRate,
          samples: q.original.length,
          target: q.summary.target ?? null,
          transcriptBefore: q.summary.transcriptBefore ?? null,
          transcriptAfter: q.summary.transcriptAfter ?? null,
          dbx: q.summary.dbx ?? null,
          success: q.summary.success ?? null,
          ...(p.compare === 'stages' ? { dbxStage2: q.summary.dbxStage2 ?? null, violationDbStage1: q.summary.violationDbStage1 ?? null, violationDbStage2: q.summary.violationDbStage2 ?? null } : {}),
        })),
        clips,
        trials: plan.map((t) => ({ ...t, x: name(t.x), ...(t.a ? { a: name(t.a), b: name(t.b!) } : {}), clips: trialClips(p.mode, t, clipOf) })),
      };
      await this.store.seal(writer.id, 'key.json');
      await writer.writeArtifacts([
        ...files,
        { path: 'key.json', data: JSON.stringify(key, null, 2), kind: 'json', description: 'which clip is which, the trial plan and the correct answers' },
      ]);
      await writer.update({ summary: { mode: p.mode, pairs: pairs.length, plannedTrials: plan.length, trials: 0, correct: 0, levelDbfs: matched.targetDbfs } });
    } catch (e) {
      await this.store.unseal(writer.id).catch(() => undefined);
      await writer.fail(e).catch(() => undefined);
      throw e;
    }
    this.open.set(writer.id, {
      writer,
      mode: p.mode,
      compare: p.compare,
      seed,
      rows: [],
      pending: Promise.resolve(),
      plan,
      sources: p.sessions,
      clipOf,
      answered: 0,
      correct: 0,
      perPair: pairs.map(() => ({ trials: 0, correct: 0 })),
    });
    this.options.onChange?.(writer.id);
    return {
      session: writer.id,
      mode: p.mode,
      compare: p.compare,
      pairs: pairs.length,
      levelDbfs: matched.targetDbfs,
      trials: plan.map((t) => ({ trial: t.trial, clips: trialClips(p.mode, t, clipOf) })),
    };
  }

  /**
   * Records one answer (trials in order, each once) as a row of metrics/answers.jsonl. No feedback is
   * given, and the row written holds nothing that tells the truth (see the layout above).
   */
  async answer(raw: ListeningAnswerParams): Promise<ListeningAnswerResult> {
    const p = listeningAnswerSchema.parse(raw);
    const t = this.get(p.session);
    if (!answersFor(t.mode).includes(p.answer)) {
      throw badInput(`A ${t.mode === 'ab' ? 'A/B' : 'ABX'} answer is ${answersFor(t.mode).map((a) => `"${a}"`).join(' or ')}, got "${p.answer}"`);
    }
    if (p.trial !== t.answered) {
      if (p.trial < t.answered) throw new AdvlabError('CONFLICT', `Trial ${p.trial} of ${p.session} is already answered`, { trial: p.trial });
      if (p.trial >= t.plan.length) throw badInput(`Listening test ${p.session} has ${t.plan.length} trials (0 to ${t.plan.length - 1}); got trial ${p.trial}`);
      throw new AdvlabError('CONFLICT', `Trials are answered in order: the next one of ${p.session} is trial ${t.answered}, got ${p.trial}`, { trial: p.trial, next: t.answered });
    }
    const planned = t.plan[p.trial];
    const correct = isCorrect(planned, p.answer);
    // Counted before the write so that a concurrent answer to the same trial is refused above.
    t.answered++;
    if (correct) t.correct++;
    t.perPair[planned.pair].trials++;
    if (correct) t.perPair[planned.pair].correct++;
    const clips = trialClips(t.mode, planned, t.clipOf);
    const recorded = {
      ...(p.ms !== undefined ? { ms: Math.round(p.ms) } : {}),
      ...Object.fromEntries(Object.entries(p.plays ?? {}).map(([k, v]) => [`plays${k.toUpperCase()}`, v])),
      time: new Date().toISOString(),
    };
    t.rows.push({
      trial: p.trial,
      answer: p.answer,
      correct,
      truth: planned.correct,
      pair: planned.pair,
      source: t.sources[planned.pair],
      x: identityName(t.compare)(planned.x),
      ...(planned.a ? { a: identityName(t.compare)(planned.a), b: identityName(t.compare)(planned.b!) } : {}),
      clipX: clips.x,
      ...(clips.a ? { clipA: clips.a, clipB: clips.b } : {}),
      ...recorded,
    });
    const append = t.writer.appendMetric('answers', { trial: p.trial, answer: p.answer, ...recorded });
    t.pending = append.catch(() => undefined);
    await append;
    return { answered: t.answered, remaining: t.plan.length - t.answered };
  }

  /**
   * Ends a test: accuracy and the one-sided exact binomial p-value against chance (1/2) over the
   * answered trials. Finished when every trial was answered, cancelled (with the partial result)
   * when it was ended early.
   */
  async finish(session: string): Promise<ListeningResult> {
    const t = this.get(session);
    this.open.delete(session);
    await t.pending;
    // The truth of every answered trial, now that the test is over (one atomic rewrite of the rows).
    if (t.rows.length) await writeFileAtomic(path.join(this.store.dir(session), 'metrics', 'answers.jsonl'), t.rows.map(formatMetricRow).join(''));
    await t.writer.update({ params: { seed: t.seed } });
    await this.store.unseal(session);
    const trials = t.answered;
    const pValue = binomialTest(t.correct, trials, 0.5);
    const accuracy = trials > 0 ? t.correct / trials : null;
    const status = trials === t.plan.length ? 'finished' : 'cancelled';
    const summary = { mode: t.mode, ...(t.compare !== 'attack' ? { compare: t.compare } : {}), pairs: t.sources.length, plannedTrials: t.plan.length, trials, correct: t.correct, accuracy, pValue, chance: 0.5 };
    const perPair = t.perPair.map((r, i) => ({
      pair: i,
      session: t.sources[i],
      trials: r.trials,
      correct: r.correct,
      accuracy: r.trials ? r.correct / r.trials : null,
      pValue: binomialTest(r.correct, r.trials, 0.5),
    }));
    await t.writer.writeArtifact('results.json', JSON.stringify({ ...summary, status, perPair }, null, 2), 'json', 'accuracy and binomial p-value, overall and per pair');
    if (status === 'finished') await t.writer.finish(summary);
    else await t.writer.cancel(summary);
    this.options.onChange?.(session);
    return { session, mode: t.mode, compare: t.compare, seed: t.seed, trials, plannedTrials: t.plan.length, correct: t.correct, accuracy, pValue, status };
  }

  private get(session: string): OpenTest {
    const t = this.open.get(session);
    if (!t) {
      throw new AdvlabError('NOT_FOUND', `No open listening test ${session}: it has ended, or it was started by an AdvLab process that has since exited (its answers so far are in the session)`, { session });
    }
    return t;
  }

  /** The pair's two clips: original and adversarial, or (compare 'stages') stage 1 and stage 2 in those slots. */
  private async loadPair(id: string, compare: ListeningCompare = 'attack'): Promise<SourcePair> {
    const m = await this.store.manifest(id);
    if (m.kind !== 'audio-attack') throw badInput(`Session ${id} is a "${m.kind}" session; a listening test compares the clips of audio-attack sessions`);
    if (m.status !== 'finished') throw badInput(`Session ${id} is ${m.status}; a listening test needs a finished audio attack`);
    if (compare === 'stages' && m.summary.stage2 !== true) throw badInput(`Session ${id} ran no imperceptible second stage (no adversarial-stage2.wav); compare its stages only after an attack with stage 2`);
    const read = async (name: string) => readWav(await this.store.readArtifact(id, name), `${id}/artifacts/${name}`);
    const [first, second] = compare === 'stages' ? ['adversarial.wav', 'adversarial-stage2.wav'] : ['original.wav', 'adversarial.wav'];
    const original = await read(first);
    const adversarial = await read(second);
    if (original.sampleRate !== adversarial.sampleRate) {
      throw badFile(`${id}/artifacts/${second}`, `sample rate ${adversarial.sampleRate} Hz differs from ${first}'s ${original.sampleRate} Hz`);
    }
    if (original.samples.length !== adversarial.samples.length) {
      throw badFile(`${id}/artifacts/${second}`, `${adversarial.samples.length} samples, ${first} has ${original.samples.length}: the clips must be the same length`);
    }
    return { session: id, name: m.name, sampleRate: original.sampleRate, original: original.samples, adversarial: adversarial.samples, summary: m.summary };
  }
}

/** How the plan's two identities are written down: as they are, or as the attack's stages. */
function identityName(compare: ListeningCompare): (i: Identity) => string {
  return compare === 'stages' ? (i) => (i === 'original' ? 'stage1' : 'stage2') : (i) => i;
}

function trialClips(mode: ListeningMode, t: PlannedTrial, clipOf: (pair: number, identity: Identity) => string): { x: string; a?: string; b?: string } {
  if (mode === 'ab') return { x: clipOf(t.pair, t.x) };
  return { a: clipOf(t.pair, t.a!), b: clipOf(t.pair, t.b!), x: clipOf(t.pair, t.x) };
}
