import type { BackendInfo } from '../engine/backend';
import type { JobContext } from '../engine/context';
import type { JobEnvInput } from './protocol';

export interface JobEnv extends Omit<JobEnvInput, 'backend'> {
  backend: BackendInfo;
  /** Tell the runner which session this job writes, as soon as it exists. */
  onSession(id: string): void;
}

/** A job kind's entry point: validated params in, a JSON-serialisable result out. */
export type JobHandler = (params: unknown, ctx: JobContext, env: JobEnv) => Promise<unknown>;
