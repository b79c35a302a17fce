/**
 * The session manifest: `<root>/<id>/manifest.json`, validated with zod on every read.
 *
 * The format is meant to be read by other tools: plain JSON, ISO 8601 times, paths relative to the
 * session folder's `artifacts/`, POSIX separators. Objects are parsed loosely (unknown keys are kept
 * and written back untouched) so that a tool may add fields without a schema bump; a change that older
 * readers would misread bumps `schemaVersion`, and a reader never rewrites a manifest whose version is
 * newer than the one it knows.
 */
import { z } from 'zod';
import { MAX_SESSION_TAGS, MAX_TAG_CHARS } from '../limits';

/** The manifest schema version this code writes and the newest it reads. */
export const SESSION_SCHEMA_VERSION = 1;

/**
 * Job kinds we know of. The manifest's `kind` is an open string (a newer version or another tool may
 * add kinds); this list is what the UI offers as filters.
 */
export const SESSION_KINDS = [
  'train',
  'attack',
  'sweep',
  'loss-surface',
  'audio-train',
  'audio-attack',
  'audio-robust',
  'audio-universal',
  'listening',
  'recipe',
  'gradient-check',
  'import',
  'diagnostics',
  'evaluate',
  'minnorm',
  'study',
] as const;
export type KnownSessionKind = (typeof SESSION_KINDS)[number];
/** A known kind, or any other short name: the list is open. */
export type SessionKind = KnownSessionKind | (string & {});

/** What the manifest stores. */
export const SESSION_STATUSES = ['running', 'finished', 'cancelled', 'failed'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/**
 * What a listing reports: the stored status, or 'incomplete' (stored 'running' but its writer is
 * gone) or 'damaged' (the manifest is missing, unreadable, invalid or of a newer schema).
 */
export const LISTED_STATUSES = [...SESSION_STATUSES, 'incomplete', 'damaged'] as const;
export type ListedStatus = (typeof LISTED_STATUSES)[number];

export const ARTIFACT_KINDS = ['image', 'audio', 'model', 'table', 'json', 'other'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** Letters, digits, '.', '_' and '-', not starting with '.': safe as a folder name on every OS. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
/** A metric series name: the file is `metrics/<series>.jsonl`. */
export const SERIES_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;

const isoTime = z.iso.datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 is 64 lowercase hex digits');

/** JSON has no NaN or Infinity: a non-finite number is stored as null. */
export const summaryValueSchema = z.union([z.number(), z.string(), z.boolean(), z.null()]);
export type SummaryValue = z.infer<typeof summaryValueSchema>;
export type SummaryMetrics = Record<string, SummaryValue>;

export const datasetRefSchema = z.looseObject({
  /** Registry name: 'mnist', 'fashion-mnist', 'cifar10', 'fsdd', a folder name. */
  name: z.string().min(1).max(200),
  /** Which part was used: 'test', 'train', 'first:8000', ... */
  split: z.string().max(100).optional(),
  /** Content hash of the files read. */
  sha256: sha256.optional(),
});
export type DatasetRef = z.infer<typeof datasetRefSchema>;

export const modelRefSchema = z
  .looseObject({
    /** A session id (a model trained by AdvLab) or another stable name. */
    id: z.string().min(1).max(300).optional(),
    /** A model.json path when the model came from a file. */
    path: z.string().min(1).max(4096).optional(),
    arch: z.string().max(100).optional(),
    /** sha256 over model.json and its weight files. */
    sha256: sha256.optional(),
  })
  .refine((m) => m.id !== undefined || m.path !== undefined, { message: 'a model reference needs an id or a path' });
export type ModelRef = z.infer<typeof modelRefSchema>;

export const environmentSchema = z.looseObject({
  /** The tfjs backend the job ran on: 'tensorflow', 'wasm', 'cpu'. */
  backend: z.string().max(50),
  tfjsVersion: z.string().max(50),
  advlabVersion: z.string().max(50),
  /** process.version */
  node: z.string().max(50),
  /** process.platform + '-' + process.arch */
  platform: z.string().max(50),
  cpus: z.number().int().min(0),
  hostname: z.string().max(300),
});
export type SessionEnvironment = z.infer<typeof environmentSchema>;

export const artifactSchema = z.looseObject({
  /** Relative to the session's `artifacts/` folder, '/' separated. */
  path: z.string().min(1).max(1000),
  kind: z.enum(ARTIFACT_KINDS),
  description: z.string().max(2000).optional(),
  bytes: z.number().int().min(0).optional(),
  sha256: sha256.optional(),
});
export type ArtifactEntry = z.infer<typeof artifactSchema>;

export const sessionErrorSchema = z.looseObject({ code: z.string().max(50), message: z.string().max(10_000) });
export type SessionError = z.infer<typeof sessionErrorSchema>;

export const manifestSchema = z.looseObject({
  schemaVersion: z.number().int().min(1).max(SESSION_SCHEMA_VERSION),
  id: z.string().regex(SESSION_ID_PATTERN, 'ids contain only letters, digits, ".", "_" and "-"'),
  kind: z.string().min(1).max(40),
  /** A user-editable title. */
  name: z.string().max(200),
  tags: z.array(z.string().min(1).max(MAX_TAG_CHARS)).max(MAX_SESSION_TAGS),
  status: z.enum(SESSION_STATUSES),
  created: isoTime,
  /** Last write; while running it doubles as a heartbeat. */
  updated: isoTime,
  /** When the session reached finished, cancelled or failed. */
  finished: isoTime.optional(),
  /** The process that writes the session while it runs (used to tell a crashed job from a live one). */
  process: z.looseObject({
    pid: z.number().int().min(0),
    hostname: z.string().max(300),
    /** When that process started (manifest-io.ts processStartTime), so that a reused pid is not taken for the writer. */
    startTime: z.string().max(100).optional(),
  }).optional(),
  /** The job's parameters, as given (free JSON; checked only to be an object, which keeps listing fast). */
  params: z.custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'expected an object'),
  datasets: z.array(datasetRefSchema),
  models: z.array(modelRefSchema),
  /** Headline numbers for the listing: accuracy, success rate, mean L2, ... */
  summary: z.record(z.string(), summaryValueSchema),
  environment: environmentSchema,
  artifacts: z.array(artifactSchema),
  error: sessionErrorSchema.optional(),
});
export type SessionManifest = z.infer<typeof manifestSchema>;

/** What was wrong with a manifest: a message naming the file and the problem, and whether it is only too new. */
export interface ManifestProblem {
  reason: string;
  unsupported: boolean;
}

/**
 * Validates parsed manifest JSON. A newer schemaVersion is reported as unsupported before any other
 * check, so the message says what to do (update AdvLab) rather than listing field errors.
 */
export function checkManifest(raw: unknown, file: string): { ok: true; manifest: SessionManifest } | { ok: false; problem: ManifestProblem } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, problem: { reason: `${file}: not a JSON object`, unsupported: false } };
  }
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (typeof version === 'number' && Number.isInteger(version) && version > SESSION_SCHEMA_VERSION) {
    return {
      ok: false,
      problem: {
        reason: `${file}: written with session schema version ${version}; this AdvLab reads up to version ${SESSION_SCHEMA_VERSION} (update AdvLab to open it)`,
        unsupported: true,
      },
    };
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : '';
    return { ok: false, problem: { reason: `${file}: invalid manifest: ${issues}${more}`, unsupported: false } };
  }
  return { ok: true, manifest: parsed.data };
}
