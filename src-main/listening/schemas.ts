/**
 * Parameters and results of the audio-input and listening-test API methods. Plain zod and types,
 * no Node imports: the API contract and the renderer both import this file.
 */
import { z } from 'zod';
import { MAX_LISTENING_SESSIONS, MAX_TAGS, MAX_TAG_CHARS, atMost } from '../engine/limits';

const sessionId = z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/, 'ids contain only letters, digits, ".", "_" and "-"');

/** The largest WAV accepted by audio.upload (the browser host takes request bodies up to 5 MB; base64 adds a third). */
export const MAX_UPLOAD_BYTES = 3_500_000;

export const audioUploadSchema = z
  .object({
    /** The file's name as the user chose it (only its last path segment is kept). */
    name: z.string().min(1).max(255),
    /** The file's bytes, base64. */
    base64: z.string().min(1).max(Math.ceil(MAX_UPLOAD_BYTES / 3) * 4 + 4, `a WAV upload is at most ${MAX_UPLOAD_BYTES / 1e6} MB`),
  })
  .strict();

export const audioClipsSchema = z
  .object({
    /** A speech model's session (audio-train): also list the held-out utterances it saved to attack. */
    model: sessionId.optional(),
  })
  .strict();

export const LISTENING_MODES = ['ab', 'abx'] as const;
export type ListeningMode = (typeof LISTENING_MODES)[number];

/**
 * What a pair compares: an attack's original and adversarial clips, or (ABX only) the two stages of an
 * attack run with the imperceptible second stage: adversarial.wav (C&W) and adversarial-stage2.wav.
 */
export const LISTENING_COMPARE = ['attack', 'stages'] as const;
export type ListeningCompare = (typeof LISTENING_COMPARE)[number];

export const listeningCreateSchema = z
  .object({
    /** audio-attack sessions whose clips are compared (one pair each; see `compare`). */
    sessions: z.array(sessionId).min(1).max(MAX_LISTENING_SESSIONS, atMost(MAX_LISTENING_SESSIONS, 'sessions in one listening test')),
    /** 'ab': one clip, "original or adversarial?"; 'abx': A, B and X, "is X A or B?". */
    mode: z.enum(LISTENING_MODES).default('ab'),
    compare: z.enum(LISTENING_COMPARE).default('attack'),
    /** Trials per pair; the test has repeats x pairs trials. */
    repeats: z.number().int().min(1).max(100).default(5),
    /** Seed of the trial order and of every random choice; random (and recorded) when omitted. */
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
    /** Common RMS level of the loudness-matched clips, dBFS (lowered if a clip would clip). */
    targetDbfs: z.number().min(-60).max(-3).default(-23),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict()
  .refine((p) => p.compare !== 'stages' || p.mode === 'abx', { message: 'the two stages of an attack are compared by ABX ("is X A or B?"): an A/B trial asks "original or adversarial?", and both stages are adversarial', path: ['mode'] })
  .refine((p) => p.sessions.length * p.repeats <= 500, { message: 'at most 500 trials (pairs x repeats)', path: ['repeats'] })
  .refine((p) => new Set(p.sessions).size === p.sessions.length, { message: 'a session is listed twice', path: ['sessions'] });

export const AB_ANSWERS = ['original', 'adversarial'] as const;
export const ABX_ANSWERS = ['A', 'B'] as const;

export const listeningAnswerSchema = z
  .object({
    session: sessionId,
    /** 0-based trial index; trials are answered in order, each once. */
    trial: z.number().int().min(0).max(10_000),
    answer: z.enum([...AB_ANSWERS, ...ABX_ANSWERS]),
    /** Milliseconds from the trial's first display to the answer (recorded, not used in scoring). */
    ms: z.number().min(0).max(24 * 3600_000).optional(),
    /** How many times each clip was played in this trial (recorded only). */
    plays: z.record(z.string().max(4), z.number().int().min(0).max(10_000)).optional(),
  })
  .strict();

export const listeningFinishSchema = z.object({ session: sessionId }).strict();

export type ListeningCreateParams = z.input<typeof listeningCreateSchema>;
export type ListeningAnswerParams = z.input<typeof listeningAnswerSchema>;

/** What the listener is given for one trial: artifact paths of the clips, nothing that says which is which. */
export interface ListeningTrialView {
  trial: number;
  /** 'ab': { x }; 'abx': { a, b, x }. Paths are relative to the listening session's artifacts/. */
  clips: { x: string; a?: string; b?: string };
}

/** Nothing here tells which clip is which: no identities, and no seed (from which the plan follows). */
export interface ListeningTestView {
  session: string;
  mode: ListeningMode;
  compare: ListeningCompare;
  pairs: number;
  trials: ListeningTrialView[];
  /** The common RMS level the clips were matched to, dBFS. */
  levelDbfs: number;
}

export interface ListeningAnswerResult {
  answered: number;
  remaining: number;
}

export interface ListeningResult {
  session: string;
  mode: ListeningMode;
  compare: ListeningCompare;
  /** The seed of the trial plan (also in the session's params from now on). */
  seed: number;
  /** Trials answered. */
  trials: number;
  plannedTrials: number;
  correct: number;
  /** correct / trials (null when nothing was answered). */
  accuracy: number | null;
  /** One-sided exact binomial p-value of `correct` against chance (p = 0.5). */
  pValue: number;
  /** 'finished' when every trial was answered, 'cancelled' when the test was ended early. */
  status: 'finished' | 'cancelled';
}

export interface AudioUploadResult {
  /** Where the main side saved the file: use it as an audio-attack job's `wav`. */
  path: string;
  name: string;
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  encoding: 'pcm' | 'float';
  duration: number;
}

export interface AudioClipsResult {
  /** FSDD recordings found under the data folders, or null with the reason. */
  fsdd: { dir: string; clips: { file: string; path: string; digit: number; speaker: string; index: number }[] } | null;
  fsddProblem?: string;
  /** Held-out utterances saved by the model's training session (when audio.clips was given a model). */
  examples?: { name: string; path: string; transcript: string; split: string }[];
  /** Earlier uploads and recordings, newest first. */
  uploads: { name: string; path: string; bytes: number; modified: string }[];
}
