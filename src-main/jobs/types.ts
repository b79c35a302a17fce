import type { JobKind, JobParamsOf } from '../api/jobs';
import type { BackendInfo } from '../engine/backend';
import type { JobContext } from '../engine/context';
import type { JobEnvInput } from './protocol';

export interface JobEnv extends Omit<JobEnvInput, 'backend'> {
  backend: BackendInfo;
  /** Pool threads this job's shards may use (the runner's pool size), or 1 (also when absent) when all its work runs in its own thread. Recorded in its session. */
  workers?: number;
  /** Tell the runner which session this job writes, as soon as it exists. */
  onSession(id: string): void;
}

/**
 * A job kind's entry point: its params in, a JSON-serialisable result out. The params are those of
 * the kind's schema (api/jobs.ts), which jobs.start parsed at the API door; the handler re-validates
 * them with that same schema (the CLI and tests call the runner and handlers directly). Declared as
 * `(async (p, ctx, env) => ...) satisfies JobHandler<K>` so that its result type is inferred
 * (JobResultOf<K> in kinds/index.ts).
 */
export type JobHandler<K extends JobKind> = (params: JobParamsOf<K>, ctx: JobContext, env: JobEnv) => Promise<unknown>;

/** The internal job kind that starts the backend and reports it (the status bar's first question). */
export const PROBE = 'probe' as const;
