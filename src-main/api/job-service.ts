/**
 * What the API needs of the jobs side: start, cancel, list and wait for jobs, and the backend a job
 * would get. jobs/runner.ts (worker threads) implements it; the API does not know how jobs run.
 */
import type { ApiEvent, AppSettings, BackendReport, JobInfo, SettingsReport, ClusterAuth } from './contract';
import type { JobKind, JobParamsOf } from './jobs';

/** How a job was let in. */
export interface JobStartOptions {
  /**
   * The real paths (folders or files) the job may read: set when the API's door checked its paths
   * (api/path-guard.ts), so its worker checks each file again where it opens it. Absent: any path
   * (the CLI, tests).
   */
  confine?: string[];
}

export interface JobService {
  /**
   * Starts a job, or queues it (state 'queued', event job.queued) while the maximum number of jobs
   * already run; queued jobs start in the order they came. `done` settles with its final JobInfo
   * (finished, failed or cancelled).
   */
  start<K extends JobKind>(kind: K, params: JobParamsOf<K>, options?: JobStartOptions): { jobId: string; done: Promise<JobInfo<K>> };
  /** Asks a running job to stop, or removes a queued one (cancelled, no worker ever started); false when there is no such job. */
  cancel(jobId: string): boolean;
  /** Running jobs first, then the queued ones in their order, then the most recent ended ones. */
  list(): JobInfo[];
  /** The running or queued job's final JobInfo, or undefined when it is neither. */
  wait(jobId: string): Promise<JobInfo> | undefined;
  /** The backend jobs run on (found once, by a probe). */
  backend(): Promise<BackendReport>;
  /** Every job event (job.queued, job.started, .progress, .log, .session, .finished, .failed, .cancelled, sessions.changed). */
  on(event: 'event', listener: (e: ApiEvent) => void): unknown;
}

/** The app's settings as the API sees them (host/settings.ts keeps them in the app data folder and applies them). */
export interface SettingsService {
  get(): SettingsReport;
  /** Saves the given fields (null clears one) and applies them where no flag or variable overrides them. */
  set(patch: Partial<AppSettings> & { cluster?: ClusterAuth | null }): Promise<SettingsReport>;
}
