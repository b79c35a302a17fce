/**
 * The one contract between the renderer (or any client) and the main side. Both transports, Electron
 * IPC and the browser host's HTTP + WebSocket, carry exactly these methods and events; every request
 * is validated against its schema on the receiving side before a handler sees it.
 */
import { z } from 'zod';
import { jobStartSchema, type JobKind, type JobResultOf } from './jobs';
import type { MethodName } from './methods';
import { formatIssues, type ErrorCode, type SerializedError } from '../engine/errors';
import {
  audioClipsSchema, audioUploadSchema, listeningAnswerSchema, listeningCreateSchema, listeningFinishSchema,
  type AudioClipsResult, type AudioUploadResult, type ListeningAnswerResult, type ListeningResult, type ListeningTestView,
} from '../listening/schemas';
import type { AttackInfo } from '../engine/attacks/registry';
import type { DownloadStatus } from '../engine/data/sources';
import type { ParamsDescription } from '../engine/core/describe-schema';
import type { RecipeFile } from '../engine/defenses/types';
import type { MetricSeries, SessionDetails, SessionManifest, SessionSummary, TrashEntry } from '../engine/sessions';
import type { ExportCallResult, ImportCallResult, ReportCallResult } from '../report/api';
import type { CsvResult } from '../report/csv';
import { MAX_POOL_WORKERS, MAX_REPORT_SESSIONS, MAX_TAGS, MAX_TAG_CHARS, atMost } from '../engine/limits';
import type { SessionView } from '../../src-shared/report/model';

/** What files.choose asks for: a model (model.json or its folder), a WAV clip, a dataset folder. */
export const FILE_PURPOSES = ['model', 'wav', 'dataset'] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];

const id = z.string().min(1).max(200).regex(/^[A-Za-z0-9._-]+$/, 'ids contain only letters, digits, ".", "_" and "-"');
const empty = z.object({}).strict();

export const sessionFilterSchema = z
  .object({
    kind: z.string().max(40).optional(),
    model: z.string().max(300).optional(),
    dataset: z.string().max(100).optional(),
    tag: z.string().max(100).optional(),
    status: z.string().max(20).optional(),
    since: z.string().max(40).optional(),
    until: z.string().max(40).optional(),
    text: z.string().max(200).optional(),
  })
  .strict();

/** Method name -> params schema. Results are typed in ApiResults. */
/**
 * A NATS JetStream cluster and its credentials (`--queue`, `advlab worker --nats`, Settings): a token,
 * a user and password, or a .creds file; anonymous access is refused. The secret stays in the main
 * process: settings.get reports the URL and the kind of credentials only (ClusterReport).
 */
export const clusterAuthSchema = z.strictObject({
  url: z.string().regex(/^(nats|tls):\/\/[^\s/]+$/, 'a NATS URL such as nats://host:4222'),
  token: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  pass: z.string().optional(),
  creds: z.string().min(1).optional(),
}).refine((a) => a.token !== undefined || a.creds !== undefined || (a.user !== undefined && a.pass !== undefined), {
  message: 'the cluster needs credentials: a token, a user and password, or a .creds file (no anonymous access)',
});
export type ClusterAuth = z.infer<typeof clusterAuthSchema>;

/** The cluster in effect, as settings.get shows it (never the secret). */
export interface ClusterReport {
  url: string;
  credentials: 'token' | 'user' | 'creds';
  user?: string;
  /** 'flag': --queue on this run (wins over the saved one); 'settings': saved in Settings. */
  from: 'flag' | 'settings';
}

export const methodSchemas = {
  'app.info': empty,
  'datasets.list': empty,
  /** The datasets `data-get` jobs can download, where copies are installed and where a get installs. */
  'datasets.downloads': empty,
  'models.list': empty,
  'models.architectures': empty,
  'attacks.list': empty,
  'recipes.list': empty,
  /** JSON Schema of every job kind's params (fields, bounds, defaults), for building forms. */
  'jobs.schemas': empty,
  'jobs.start': jobStartSchema,
  'jobs.cancel': z.object({ jobId: id }).strict(),
  'jobs.list': empty,
  /**
   * Asks the user for a file or folder with the app's own open dialog (Electron only); what they choose
   * may then be given to jobs.start (api/path-guard.ts). The browser host answers UNSUPPORTED.
   */
  'files.choose': z.object({ purpose: z.enum(FILE_PURPOSES) }).strict(),
  'sessions.list': z.object({ filter: sessionFilterSchema.optional() }).strict(),
  'sessions.show': z.object({ id }).strict(),
  'sessions.metrics': z.object({ id, series: z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/) }).strict(),
  'sessions.artifact': z.object({ id, path: z.string().min(1).max(500) }).strict(),
  'sessions.rename': z.object({ id, name: z.string().min(1).max(200) }).strict(),
  'sessions.tag': z.object({ id, add: z.array(z.string().min(1).max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags at once')).default([]), remove: z.array(z.string().min(1).max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags at once')).default([]) }).strict(),
  'sessions.notes': z.object({ id, text: z.string().max(100_000) }).strict(),
  'sessions.delete': z.object({ id }).strict(),
  'sessions.restore': z.object({ id }).strict(),
  // Reviewing sessions (src-main/report): display model, HTML report, CSV, archives, trash.
  'sessions.view': z.object({ id }).strict(),
  'sessions.report': z.object({ ids: z.array(id).min(1).max(MAX_REPORT_SESSIONS, atMost(MAX_REPORT_SESSIONS, 'sessions in one report')) }).strict(),
  'sessions.csv': z.object({ id }).strict(),
  'sessions.export': z.object({ id }).strict(),
  'sessions.import': z
    .object({
      /** Base64 of the archive, or of one part of it (the browser host takes 5 MB bodies: send <= 3 MB parts). */
      data: z.string().max(8 * 1024 * 1024),
      filename: z.string().max(300).optional(),
      upload: z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), part: z.number().int().min(0), parts: z.number().int().min(1).max(100_000) }).strict().optional(),
    })
    .strict(),
  'sessions.trash': empty,
  /** Permanently removes trashed sessions deleted at least olderThanDays ago (0: all of them). */
  'sessions.emptyTrash': z.object({ olderThanDays: z.number().min(0).max(36500).default(0) }).strict(),
  // Audio input and listening tests (src-main/listening).
  'audio.upload': audioUploadSchema,
  'audio.clips': audioClipsSchema,
  'listening.create': listeningCreateSchema,
  'listening.answer': listeningAnswerSchema,
  'listening.finish': listeningFinishSchema,
  /**
   * Starts a robustness study (api/study.ts): `study` is a study file's JSON (models x attacks x grid);
   * every cell is an attack job started through jobs.start; the summary session is written when all end.
   */
  'studies.start': z.object({ study: z.unknown() }).strict(),
  // The app's own settings (saved in the app data folder; Settings view).
  'settings.get': empty,
  /** Changes the saved settings; null clears a value (back to its default). Returns the settings after the change. */
  'settings.set': z.object({ workers: z.number().int().min(1).max(MAX_POOL_WORKERS).nullable().optional(), cluster: clusterAuthSchema.nullable().optional() }).strict(),
} as const;

export type Method = keyof typeof methodSchemas;
export const METHODS = Object.keys(methodSchemas) as Method[];
// The preload's name list and the schemas must name the same methods.
type _SameNames = [MethodName] extends [Method] ? ([Method] extends [MethodName] ? true : never) : never;
export const sameMethodNames: _SameNames = true;
export type ParamsOf<M extends Method> = z.input<(typeof methodSchemas)[M]>;
export type ParsedParamsOf<M extends Method> = z.output<(typeof methodSchemas)[M]>;

/** A session artifact's bytes over the API (sessions.artifact). */
export interface ArtifactPayload {
  base64: string;
  mime: string;
  bytes: number;
}

/**
 * Method name -> what its handler returns (as JSON). The handlers are typed against this map
 * (api/core.ts Handlers), so a handler that returns something else does not compile, and every
 * client's `call` is typed by it: no call site names or casts a result type.
 */
export interface ApiResults {
  'app.info': AppInfo;
  'datasets.list': DatasetEntry[];
  'datasets.downloads': DatasetDownloads;
  'models.list': ModelEntry[];
  'models.architectures': ArchitectureEntry[];
  'attacks.list': AttackInfo[];
  'recipes.list': RecipeFile[];
  /** Each job kind's params as JSON Schema (fields, bounds, defaults), for building forms. */
  'jobs.schemas': Record<JobKind, ParamsDescription>;
  'jobs.start': { jobId: string };
  'jobs.cancel': { cancelled: true };
  'jobs.list': JobInfo[];
  /** The chosen path, or null when the user cancelled the dialog. */
  'files.choose': { path: string | null };
  'sessions.list': SessionSummary[];
  'sessions.show': SessionDetails;
  'sessions.metrics': MetricSeries;
  'sessions.artifact': ArtifactPayload;
  'sessions.rename': SessionManifest;
  /** The session's tags after the change. */
  'sessions.tag': string[];
  'sessions.notes': { saved: true };
  'sessions.delete': { deleted: string; restorable: true };
  'sessions.restore': { restored: string };
  'sessions.view': SessionView;
  'sessions.report': ReportCallResult;
  'sessions.csv': CsvResult;
  'sessions.export': ExportCallResult;
  'sessions.import': ImportCallResult;
  'sessions.trash': TrashEntry[];
  'sessions.emptyTrash': { purged: string[] };
  'audio.upload': AudioUploadResult;
  'audio.clips': AudioClipsResult;
  'listening.create': ListeningTestView;
  'listening.answer': ListeningAnswerResult;
  'listening.finish': ListeningResult;
  /** The summary session (written once every cell has ended), the number of cells and their jobs. */
  'studies.start': { session: string; cells: number; jobIds: string[] };
  'settings.get': SettingsReport;
  'settings.set': SettingsReport;
}

/** What the user saved in Settings (null: not set, the default applies). */
export interface AppSettings {
  /** Threads of the local shard pool. */
  workers: number | null;
}

/** The saved settings and what is in effect (a --workers flag or ADVLAB_WORKERS wins over the saved value). */
export interface SettingsReport {
  saved: AppSettings;
  /** Whether settings are kept on disk (false for a host started without an app data folder: they last until it stops). */
  persistent: boolean;
  workers: { value: number; from: 'flag' | 'env' | 'settings' | 'default'; default: number; max: number };
  /** Where jobs send their shards: this cluster; absent, here (on the pool). */
  cluster?: ClusterReport;
}
export type ResultOf<M extends Method> = ApiResults[M];
// The result map names exactly the methods.
type _SameResults = [keyof ApiResults] extends [Method] ? ([Method] extends [keyof ApiResults] ? true : never) : never;
export const sameResultNames: _SameResults = true;

/** The params argument of a call: optional when the method's params are all optional. */
export type ParamsArg<M extends Method> = {} extends ParamsOf<M> ? [params?: ParamsOf<M>] : [params: ParamsOf<M>];

/** What the preload exposes as `window.advlab` (electron/preload.ts builds it). */
export interface AdvlabBridge {
  readonly transport: 'electron';
  readonly methods: readonly MethodName[];
  call<M extends Method>(method: M, ...params: ParamsArg<M>): Promise<Envelope<ResultOf<M>>>;
  onEvent(listener: (event: ApiEvent) => void): () => void;
}

/** An error as it crosses IPC, HTTP and the worker boundary: its code (engine/errors.ts ERROR_CODES), message and fields. */
export type SerializedErrorShape = SerializedError;
export type { ErrorCode };

export type Envelope<T> = { ok: true; result: T } | { ok: false; error: SerializedErrorShape };

export interface BackendReport {
  name: string;
  requested: string;
  tfjsVersion: string;
  skipped: { name: string; reason: string }[];
  wasm?: { simd: boolean; threads: boolean; threadsCount: number };
  conv2dGradient: string;
}

export interface AppInfo {
  version: string;
  transport: 'electron' | 'http';
  backend: BackendReport | null;
  backendError?: string;
  dataDirs: string[];
  sessionsRoot: string;
  platform: string;
}

/** 'queued': waiting for one of the runner's slots (at most maxJobs run at once); no worker or session exists yet. */
export type JobState = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled';

/**
 * Where a job's shards ran (engine/shards): 'pool' (the local worker threads) or 'cluster'; shards
 * sent and done so far, and how many distinct workers ran them. Absent for a job that ran in place.
 */
export interface JobShards {
  where: 'pool' | 'cluster';
  done: number;
  total: number;
  workers: number;
  /** Where the finished shards ran: each worker ('thread <id>' of the local pool, or a cluster worker's id) and its count. */
  ran?: { worker: string; shards: number }[];
}

/** One job as jobs.list reports it; `result` is its kind's JobResultOf (a cancelled job's partial one, if any). */
export type JobInfo<K extends JobKind = JobKind> = {
  [Kind in K]: {
    jobId: string;
    kind: Kind;
    state: JobState;
    started: string;
    ended?: string;
    session?: string;
    last?: ProgressEvent;
    result?: JobResultOf<Kind>;
    error?: SerializedErrorShape;
    shards?: JobShards;
  };
}[K];

export interface ProgressEvent {
  type: 'job.progress';
  jobId: string;
  kind: JobKind;
  step: number;
  total: number;
  fraction: number;
  phase?: string;
  metrics?: Record<string, number>;
  message?: string;
  /** Where the job's shards run and how many are done, when it sends any (the local pool, a cluster). */
  shards?: JobShards;
  elapsedSeconds: number;
  etaSeconds: number | null;
}

/** job.finished of each kind, with that kind's result: narrowing on `kind` types `result`. */
export type JobFinishedEvent<K extends JobKind = JobKind> = { [Kind in K]: { type: 'job.finished'; jobId: string; kind: Kind; result: JobResultOf<Kind>; session?: string } }[K];
/** job.cancelled of each kind; a job that stopped cleanly may report what it had (e.g. a partly trained model). */
export type JobCancelledEvent<K extends JobKind = JobKind> = { [Kind in K]: { type: 'job.cancelled'; jobId: string; kind: Kind; session?: string; result?: JobResultOf<Kind> } }[K];

export type ApiEvent =
  | ProgressEvent
  /** The job waits for a slot; `position` is its place in the (FIFO) queue, 1 = next to start. job.started follows when it runs. */
  | { type: 'job.queued'; jobId: string; kind: JobKind; position: number }
  | { type: 'job.started'; jobId: string; kind: JobKind; session?: string }
  | { type: 'job.log'; jobId: string; message: string }
  | { type: 'job.session'; jobId: string; session: string }
  | JobFinishedEvent
  | { type: 'job.failed'; jobId: string; kind: JobKind; error: SerializedErrorShape; session?: string }
  | JobCancelledEvent
  | { type: 'sessions.changed' };

export function parseParams<M extends Method>(method: M, raw: unknown): ParsedParamsOf<M> {
  const schema = methodSchemas[method];
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = formatIssues(parsed.error.issues).join('; ');
    const err = new Error(`Invalid parameters for ${method}: ${issues}`) as Error & { code: string };
    err.code = 'BAD_INPUT';
    throw err;
  }
  return parsed.data as ParsedParamsOf<M>;
}

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methodSchemas, name);
}

/** A dataset the data directories hold (datasets.list). */
export interface DatasetEntry {
  name: string;
  dir: string;
  shape: number[];
  classes: number;
  classNames: string[];
  /** Split name -> number of images, e.g. { train: 60000, test: 10000 }. */
  splits: Record<string, number>;
  note?: string;
  /** The starter pack's sample (resources/starter): test images only, read-only; `starter:<name>` names it. */
  starter?: boolean;
  /** This copy is in use and a starter sample of the same name is shadowed by it. */
  shadowsStarter?: boolean;
}

/** datasets.downloads: what can be downloaded (a 'data-get' job) and what is installed where. */
export interface DatasetDownloads {
  /** The app's data folder, where a get installs (always searched). */
  target: string;
  sources: DownloadStatus[];
}

/** A trained or imported model (models.list): lives in a session's artifacts. */
export interface ModelEntry {
  /** `<session id>` of the session that holds it. */
  id: string;
  name: string;
  arch: string;
  dataset?: string;
  inputShape?: number[];
  testAccuracy?: number;
  created: string;
  status: string;
  path: string;
  defense?: string;
  /** A starter model shipped with the app (id `starter:<name>`): read-only, no session, never deleted. */
  starter?: boolean;
  /** 'speech' for a speech-to-text model (a starter model says so; a session holds one when it is an audio-train run), else 'image'. */
  kind: 'image' | 'speech';
}

export interface ArchitectureEntry {
  name: string;
  description: string;
  /** Input shape it was designed for, e.g. [28, 28, 1]. */
  inputShape?: number[];
  params?: number;
}
