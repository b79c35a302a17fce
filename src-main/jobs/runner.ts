/**
 * Runs jobs in worker threads and turns their messages into API events. One worker per job: a crash
 * or a stuck job cannot take the host down, and cancellation is a shared flag the job checks at every
 * step (with a hard stop if it does not react within the grace period).
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { ApiEvent, BackendReport, JobCancelledEvent, JobFinishedEvent, JobInfo, JobState, ProgressEvent, SerializedErrorShape } from '../api/contract';
import type { JobService } from '../api/job-service';
import type { JobKind, JobParamsOf } from '../api/jobs';
import { isErrorCode } from '../engine/errors';
import { PROBE } from './types';
import { workerMessageSchema, type JobEnvInput, type WorkerInput } from './protocol';

export interface RunnerOptions {
  env: JobEnvInput;
  /** The built worker (out/main/worker.js); defaults to the file next to this bundle. */
  workerPath?: string;
  /** How long a cancelled job may take to stop by itself before its worker is terminated. */
  cancelGraceMs?: number;
}

/** A job as the runner tracks it: the worker's result is JSON from its kind's handler (JobResultOf). */
interface Tracked {
  jobId: string;
  kind: JobKind | typeof PROBE;
  state: JobState;
  started: string;
  ended?: string;
  session?: string;
  last?: ProgressEvent;
  result?: unknown;
  error?: SerializedErrorShape;
}

interface Running {
  info: Tracked;
  worker: Worker;
  flag: Int32Array;
  started: number;
  done: Promise<Tracked>;
  killTimer?: NodeJS.Timeout;
}

export function defaultWorkerPath(): string {
  return fileURLToPath(new URL('./worker.js', import.meta.url));
}

/**
 * The job service of the API (api/job-service.ts). The worker's messages are validated here, and
 * its results are its kind's handler's (jobs/kinds/index.ts JobResultOf): this is where they
 * become typed again after crossing the thread.
 */
export class JobRunner extends EventEmitter<{ event: [ApiEvent] }> implements JobService {
  private readonly jobs = new Map<string, Running>();
  private readonly history: Tracked[] = [];
  private readonly workerPath: string;
  private backendInfo: Promise<BackendReport> | null = null;

  constructor(private readonly opts: RunnerOptions) {
    super();
    this.workerPath = opts.workerPath ?? defaultWorkerPath();
  }

  /** The backend a job would get, found once by a probe job. */
  backend(): Promise<BackendReport> {
    if (!this.backendInfo) {
      this.backendInfo = this.launch(PROBE, {}).done.then((info) => {
        if (info.state !== 'finished') throw new Error(info.error?.message ?? 'backend probe failed');
        return info.result as BackendReport;
      });
      this.backendInfo.catch(() => { this.backendInfo = null; });
    }
    return this.backendInfo;
  }

  /**
   * Starts a job in its own worker. `params` are the kind's params (api/jobs.ts); the handler
   * validates them with the kind's schema, so a caller that did not parse them (CLI, tests) gets
   * the same checks as jobs.start, as a failed job.
   */
  start<K extends JobKind>(kind: K, params: JobParamsOf<K>): { jobId: string; done: Promise<JobInfo<K>> } {
    const { jobId, done } = this.launch(kind, params);
    return { jobId, done: done as Promise<JobInfo<K>> };
  }

  private launch(kind: JobKind | typeof PROBE, params: unknown): { jobId: string; done: Promise<Tracked> } {
    if (!existsSync(this.workerPath)) {
      throw new Error(`The job worker ${this.workerPath} is missing: run "npm run build" first`);
    }
    const jobId = `job-${randomUUID().slice(0, 8)}`;
    const shared = new SharedArrayBuffer(4);
    const input: WorkerInput = { jobId, kind, params, env: this.opts.env, cancelFlag: shared };
    const worker = new Worker(this.workerPath, { workerData: input });
    const info: Tracked = { jobId, kind, state: 'running', started: new Date().toISOString() };
    const started = performance.now();
    let settle!: (i: Tracked) => void;
    const done = new Promise<Tracked>((resolve) => (settle = resolve));
    const job: Running = { info, worker, flag: new Int32Array(shared), started, done };
    this.jobs.set(jobId, job);
    // The probe is internal: it sends no events and stays out of jobs.list.
    const internal = kind === PROBE;
    const emit = (e: ApiEvent) => { if (!internal) this.emit('event', e); };
    const jobKind = kind as JobKind; // only used in events, which the probe never sends
    emit({ type: 'job.started', jobId, kind: jobKind });

    const end = (state: JobState, patch: Partial<Tracked>) => {
      if (info.state !== 'running') return;
      Object.assign(info, patch, { state, ended: new Date().toISOString() });
      clearTimeout(job.killTimer);
      this.jobs.delete(jobId);
      if (!internal) this.history.unshift({ ...info });
      this.history.length = Math.min(this.history.length, 50);
      void worker.terminate();
      if (state === 'finished') emit({ type: 'job.finished', jobId, kind: jobKind, result: info.result, session: info.session } as JobFinishedEvent);
      else if (state === 'cancelled') emit({ type: 'job.cancelled', jobId, kind: jobKind, session: info.session, result: info.result } as JobCancelledEvent);
      else emit({ type: 'job.failed', jobId, kind: jobKind, error: info.error!, session: info.session });
      if (info.session) emit({ type: 'sessions.changed' });
      settle({ ...info });
    };

    worker.on('message', (raw: unknown) => {
      const parsed = workerMessageSchema.safeParse(raw);
      if (!parsed.success) {
        end('failed', { error: { code: 'INTERNAL', message: `Malformed message from job worker: ${parsed.error.issues[0]?.message}`, details: {} } });
        return;
      }
      const m = parsed.data;
      switch (m.t) {
        case 'backend':
          break;
        case 'progress': {
          const elapsed = (performance.now() - started) / 1000;
          const fraction = m.p.total > 0 ? Math.min(1, m.p.step / m.p.total) : 0;
          const ev: ProgressEvent = {
            type: 'job.progress', jobId, kind: jobKind, step: m.p.step, total: m.p.total, fraction,
            phase: m.p.phase, metrics: m.p.metrics, message: m.p.message, elapsedSeconds: elapsed,
            etaSeconds: fraction > 0 && fraction < 1 ? (elapsed * (1 - fraction)) / fraction : fraction >= 1 ? 0 : null,
          };
          info.last = ev;
          emit(ev);
          break;
        }
        case 'log':
          emit({ type: 'job.log', jobId, message: m.message });
          break;
        case 'session':
          info.session = m.id;
          emit({ type: 'job.session', jobId, session: m.id });
          emit({ type: 'sessions.changed' });
          break;
        case 'done':
          end('finished', { result: m.result });
          break;
        case 'cancelled':
          end('cancelled', { result: m.result });
          break;
        case 'error':
          end('failed', { error: { ...m.error, code: isErrorCode(m.error.code) ? m.error.code : 'INTERNAL' } });
          break;
      }
    });
    worker.on('error', (e) => end('failed', { error: { code: 'INTERNAL', message: `Job worker crashed: ${e.message}`, details: {} } }));
    worker.on('exit', (code) => {
      if (Atomics.load(job.flag, 0) === 1) end('cancelled', {});
      else end('failed', { error: { code: 'INTERNAL', message: `Job worker exited (code ${code}) before reporting a result`, details: {} } });
    });
    return { jobId, done };
  }

  /** Asks a job to stop at its next step; terminates it if it has not stopped after the grace period. */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job) return false;
    Atomics.store(job.flag, 0, 1);
    job.killTimer = setTimeout(() => void job.worker.terminate(), this.opts.cancelGraceMs ?? 15_000);
    return true;
  }

  wait(jobId: string): Promise<JobInfo> | undefined {
    return this.jobs.get(jobId)?.done as Promise<JobInfo> | undefined;
  }

  list(): JobInfo[] {
    return [...[...this.jobs.values()].filter((j) => j.info.kind !== PROBE).map((j) => ({ ...j.info })), ...this.history] as JobInfo[];
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.jobs.values()].map((j) => j.worker.terminate()));
  }
}
