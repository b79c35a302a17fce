/**
 * The on-disk experiment store. A session is a plain folder: manifest.json (schema-versioned),
 * metrics/<series>.jsonl, artifacts/ and notes.md. See store.ts for the layout and guarantees.
 */
export { SessionStore, NOTES_FILE, SEAL_FILE, type SessionStoreOptions, type CreateSessionOptions, type SessionDetails, type ArtifactInfo } from './store';
export { type SessionSummary } from './list-index';
export { type SessionFilter } from './list-filter';
export { TRASH_DIR, type TrashEntry } from './trash';
export { SessionWriter, type SessionPatch, type ArtifactWrite } from './writer';
export { type ExportResult, type ImportOptions, type ImportResult } from './archive';
export {
  SESSION_SCHEMA_VERSION,
  SESSION_KINDS,
  SESSION_STATUSES,
  LISTED_STATUSES,
  ARTIFACT_KINDS,
  SESSION_ID_PATTERN,
  SERIES_PATTERN,
  manifestSchema,
  checkManifest,
  type SessionManifest,
  type SessionKind,
  type KnownSessionKind,
  type SessionStatus,
  type ListedStatus,
  type ArtifactKind,
  type ArtifactEntry,
  type DatasetRef,
  type ModelRef,
  type SessionEnvironment,
  type SessionError,
  type SummaryMetrics,
  type SummaryValue,
} from './schema';
export { type MetricSeries, type MetricRow, type MetricProblem, type MetricValue, parseMetricLines } from './metrics';
export { newSessionId, dateFromId, isSessionId, assertSessionId } from './ids';
export { isPidAlive } from './manifest-io';
export { collectEnvironment } from './environment';
export { resolveSessionsRoot, type SessionsRootOptions } from './root';
