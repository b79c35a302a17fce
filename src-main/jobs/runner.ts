/**
 * Runs jobs in worker threads and turns their messages into API events. One worker per job: a crash
 * or a stuck job cannot take the host down, and cancellation is a shared flag the job checks at every
 * step (with a hard stop if it does not react within the grace period).
 *
 * The runner owns the shard pool (jobs/pool.ts): a job worker whose engine is single-threaded sends
 * its shards here ('shard' messages), they queue on the pool with the job's cancel flag, and their
 * progress and results go back to the job. Pool threads do the tensor work, job threads coordinate;
 * so jobs at once default to the pool's size.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { ApiEvent, BackendReport, JobShards, JobCancelledEvent, JobFinishedEvent, JobInfo, JobState, ProgressEvent, SerializedErrorShape } from '../api/contract';
import type { JobService, JobStartOptions } from '../api/job-service';
import type { JobKind, JobParamsOf } from '../api/jobs';
import { isErrorCode, serializeError } from '../engine/errors';
import { PROBE } from './types';
import { transferables, workerMessageSchema, type JobEnvInput, type RunnerMessage, type WorkerInput } from './protocol';
import { defaultPoolSize, POOLED_BACKENDS, ShardPool } from './pool';

export interface RunnerOptions {
  env: JobEnvInput;
  /** The built worker (out/main/worker.js); defaults to the file next to this bundle. */
  workerPath?: string;
  /** How long a cancelled job may take to stop by itself before its worker is terminated. */
  cancelGraceMs?: number;
  /** At most this many jobs run at once (default: the pool's size); the rest wait in a FIFO queue. The backend probe does not count. */
  maxJobs?: number;
  /** Threads of the shard pool (--workers, ADVLAB_WORKERS, the Settings value; default: one per core, defaultPoolSize()). */
  workers?: number;
  /** The built pool worker; defaults to shard-worker.js next to the job worker. Without it, jobs run all their work in their own thread. */
  shardWorkerPath?: string;
}

/**
 * Jobs that run at once unless --max-jobs / ADVLAB_MAX_JOBS say otherwise: the pool's size (pool
 * threads do the tensor work of pooled jobs; a job that runs in place uses one core as before).
 */
export function defaultMaxJobs(poolSize: number): number {
  return poolSize;
}
/** The default of --max-jobs on this machine with the default pool, for help texts. */
export const DEFAULT_MAX_JOBS = defaultMaxJobs(defaultPoolSize());
/** How long a host that is shutting down (SIGTERM, SIGINT, quit) gives its cancelled jobs to save what they have before terminating them. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** The largest --max-jobs / ADVLAB_MAX_JOBS accepted (each running job is a worker thread with its own tensor memory). */
export const MAX_JOBS_LIMIT = 64;

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
  shards?: JobShards;
}

/** A job not yet ended: queued (no worker yet) or running. */
interface Active {
  info: Tracked;
  params: unknown;
  /** Where the job may read (JobStartOptions.confine), checked again by its worker where it opens a file. */
  confine?: string[];
  worker?: Worker;
  flag: Int32Array;
  started: number;
  done: Promise<Tracked>;
  settle: (i: Tracked) => void;
  killTimer?: NodeJS.Timeout;
  /** The pool threads its shards ran on. */
  threads: Set<number>;
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
  /** Queued and running jobs, in the order they came (Map keeps insertion order). */
  private readonly jobs = new Map<string, Active>();
  private readonly history: Tracked[] = [];
  private readonly workerPath: string;
  /** Set by --max-jobs / ADVLAB_MAX_JOBS; else the pool's size (which Settings may change). */
  private readonly maxJobsGiven: number | undefined;
  /** The shard pool every pooled job shares; its threads start with the first shard. Null when the pool worker is not built. */
  readonly pool: ShardPool | null;
  private backendInfo: Promise<BackendReport> | null = null;
  /** Set by shutdown: nothing more starts from the queue. */
  private closing = false;

  constructor(private readonly opts: RunnerOptions) {
    super();
    this.workerPath = opts.workerPath ?? defaultWorkerPath();
    const size = opts.workers ?? defaultPoolSize();
    const shardWorkerPath = opts.shardWorkerPath ?? join(dirname(this.workerPath), 'shard-worker.js');
    this.pool = existsSync(shardWorkerPath) ? new ShardPool({ size, backend: opts.env.backend, workerPath: shardWorkerPath }) : null;
    this.maxJobsGiven = opts.maxJobs;
    this.poolSize = size;
    if (!Number.isInteger(this.maxJobs) || this.maxJobs < 1 || this.maxJobs > MAX_JOBS_LIMIT) {
      throw new Error(`maxJobs must be an integer from 1 to ${MAX_JOBS_LIMIT} (MAX_JOBS_LIMIT), got ${this.maxJobs}`);
    }
  }

  private poolSize: number;

  /** Jobs at once: --max-jobs, else the pool's size. */
  get maxJobs(): number {
    return this.maxJobsGiven ?? defaultMaxJobs(this.poolSize);
  }

  /** The shard pool's size (threads), which jobs started from now on split their work for. */
  get workers(): number {
    return this.poolSize;
  }

  /** Sends the shards of jobs started from now on to this cluster (Settings), or keeps them here (undefined). */
  setCluster(cluster: JobEnvInput['cluster']): void {
    const { cluster: _old, ...env } = this.opts.env;
    this.opts.env = cluster ? { ...env, cluster } : env;
  }

  /** Resizes the shard pool (Settings): more threads start as shards need them, extra ones stop once idle; queued jobs may start. */
  setWorkers(workers: number): void {
    this.pool?.resize(workers);
    this.poolSize = workers;
    this.drain();
  }

  /** The backend a job would get, found once by a probe job (which never waits in the queue). */
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
   * Starts the shard pool's threads in the background when the app starts (the server, the desktop
   * app), so the first pooled job finds them started and warmed up (ShardPool.warm) instead of paying
   * for that inside its first shards: only when jobs would send their shards to the pool (a pooled
   * backend, no cluster). Finds the backend with the probe; never fails (a backend that cannot start
   * is reported by the jobs).
   */
  async warmPool(): Promise<void> {
    try {
      const b = await this.backend();
      if (this.pool && !this.closing && !this.opts.env.cluster && POOLED_BACKENDS.includes(b.name)) this.pool.warm();
    } catch {
      // The status bar and the first job report it.
    }
  }

  /**
   * Starts a job in its own worker, or queues it when maxJobs jobs already run. `params` are the
   * kind's params (api/jobs.ts); the handler validates them with the kind's schema, so a caller that
   * did not parse them gets the same checks as jobs.start, as a failed job.
   */
  start<K extends JobKind>(kind: K, params: JobParamsOf<K>, options: JobStartOptions = {}): { jobId: string; done: Promise<JobInfo<K>> } {
    const { jobId, done } = this.launch(kind, params, options.confine);
    return { jobId, done: done as Promise<JobInfo<K>> };
  }

  private launch(kind: JobKind | typeof PROBE, params: unknown, confine?: string[]): { jobId: string; done: Promise<Tracked> } {
    if (!existsSync(this.workerPath)) {
      throw new Error(`The job worker ${this.workerPath} is missing: run "npm run build" first`);
    }
    const jobId = `job-${randomUUID().slice(0, 8)}`;
    const info: Tracked = { jobId, kind, state: 'queued', started: new Date().toISOString() };
    let settle!: (i: Tracked) => void;
    const done = new Promise<Tracked>((resolve) => (settle = resolve));
    const job: Active = { info, params, ...(confine ? { confine } : {}), flag: new Int32Array(new SharedArrayBuffer(4)), started: 0, done, settle, threads: new Set() };
    this.jobs.set(jobId, job);
    if (kind === PROBE || this.runningCount() < this.maxJobs) this.run(job);
    else this.emit('event', { type: 'job.queued', jobId, kind, position: this.queued().length });
    return { jobId, done };
  }

  private runningCount(): number {
    return [...this.jobs.values()].filter((j) => j.info.state === 'running' && j.info.kind !== PROBE).length;
  }

  private queued(): Active[] {
    return [...this.jobs.values()].filter((j) => j.info.state === 'queued');
  }

  /** Starts queued jobs, oldest first, while there are free slots. */
  private drain(): void {
    if (this.closing) return;
    for (const job of this.queued()) {
      if (this.runningCount() >= this.maxJobs) break;
      this.run(job);
    }
  }

  /** Ends a job (running or queued) once: records it, sends its final event and starts the next queued job. */
  private end(job: Active, state: JobState, patch: Partial<Tracked>): void {
    const { info } = job;
    if (info.state !== 'running' && info.state !== 'queued') return;
    const jobId = info.jobId;
    Object.assign(info, patch, { state, ended: new Date().toISOString() });
    clearTimeout(job.killTimer);
    this.jobs.delete(jobId);
    // The probe is internal: it sends no events and stays out of jobs.list.
    const internal = info.kind === PROBE;
    if (!internal) {
      this.history.unshift({ ...info });
      this.history.length = Math.min(this.history.length, 50);
      const kind = info.kind as JobKind;
      if (state === 'finished') this.emit('event', { type: 'job.finished', jobId, kind, result: info.result, session: info.session } as JobFinishedEvent);
      else if (state === 'cancelled') this.emit('event', { type: 'job.cancelled', jobId, kind, session: info.session, result: info.result } as JobCancelledEvent);
      else this.emit('event', { type: 'job.failed', jobId, kind, error: info.error!, session: info.session });
      if (info.session) this.emit('event', { type: 'sessions.changed' });
    }
    if (job.worker) void job.worker.terminate();
    this.pool?.dropJob(jobId);
    job.settle({ ...info });
    this.drain();
  }

  private run(job: Active): void {
    const { info, flag } = job;
    const { jobId, kind } = info;
    const input: WorkerInput = {
      jobId, kind, params: job.params, env: this.opts.env, cancelFlag: flag.buffer as SharedArrayBuffer, ...(job.confine ? { confine: job.confine } : {}),
      ...(this.pool && kind !== PROBE ? { pool: { parallelism: this.pool.size } } : {}),
    };
    info.state = 'running';
    job.started = performance.now();
    const internal = kind === PROBE;
    const emit = (e: ApiEvent) => { if (!internal) this.emit('event', e); };
    const jobKind = kind as JobKind; // only used in events, which the probe never sends
    let worker: Worker;
    try {
      worker = new Worker(this.workerPath, { workerData: input });
    } catch (e) {
      this.end(job, 'failed', { error: { code: 'INTERNAL', message: `Could not start a job worker: ${(e as Error).message}`, details: {} } });
      return;
    }
    job.worker = worker;
    emit({ type: 'job.started', jobId, kind: jobKind });
    const end = (state: JobState, patch: Partial<Tracked>) => this.end(job, state, patch);

    worker.on('message', (raw: unknown) => {
      const parsed = workerMessageSchema.safeParse(raw);
      if (!parsed.success) {
        end('failed', { error: { code: 'INTERNAL', message: `Malformed message from job worker: ${parsed.error.issues[0]?.message}`, details: {} } });
        return;
      }
      const m = parsed.data;
      switch (m.t) {
        case 'backend':
          // Its shards will come to the pool: start the pool's threads while the job loads its data and model.
          if (input.pool && !internal && !this.opts.env.cluster && POOLED_BACKENDS.includes(String(m.info['name']))) this.pool?.warm();
          break;
        case 'progress': {
          const elapsed = (performance.now() - job.started) / 1000;
          const fraction = m.p.total > 0 ? Math.min(1, m.p.step / m.p.total) : 0;
          const ev: ProgressEvent = {
            type: 'job.progress', jobId, kind: jobKind, step: m.p.step, total: m.p.total, fraction,
            phase: m.p.phase, metrics: m.p.metrics, message: m.p.message, ...(info.shards ? { shards: { ...info.shards } } : {}), elapsedSeconds: elapsed,
            etaSeconds: fraction > 0 && fraction < 1 ? (elapsed * (1 - fraction)) / fraction : fraction >= 1 ? 0 : null,
          };
          info.last = ev;
          emit(ev);
          break;
        }
        case 'log':
          emit({ type: 'job.log', jobId, message: m.message });
          break;
        case 'shards':
          info.shards = m.shards;
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
        case 'shard':
          this.runShard(job, worker, m.req, m.shard);
          break;
        case 'prepare':
          if (job.worker === worker && job.info.state === 'running') this.pool?.prepare(m.specs);
          break;
      }
    });
    worker.on('error', (e) => end('failed', { error: { code: 'INTERNAL', message: `Job worker crashed: ${e.message}`, details: {} } }));
    worker.on('exit', (code) => {
      if (Atomics.load(flag, 0) === 1) end('cancelled', {});
      else end('failed', { error: { code: 'INTERNAL', message: `Job worker exited (code ${code}) before reporting a result`, details: {} } });
    });
  }

  /** Runs a job's shard on the pool and sends its progress and its result (or error) back to the job's worker. */
  private runShard(job: Active, worker: Worker, req: number, shard: { type: string; id: string; task: unknown }): void {
    const reply = (m: RunnerMessage, transfer: ArrayBuffer[] = []) => {
      if (job.worker !== worker || (job.info.state !== 'running')) return; // the job ended: nobody waits
      try {
        worker.postMessage(m, transfer);
      } catch {
        // the worker is exiting
      }
    };
    if (!this.pool) {
      reply({ t: 'shard-error', req, error: { code: 'INTERNAL', message: `No shard pool: shard ${shard.id} cannot run (the pool worker is not built)`, details: {} } });
      return;
    }
    const info = job.info;
    const counts = (info.shards ??= { where: 'pool', done: 0, total: 0, workers: 0 });
    counts.total++;
    let ranOn = -1;
    this.pool.run(info.jobId, shard, job.flag.buffer as SharedArrayBuffer, (p) => reply({ t: 'shard-progress', req, p }), (threadId) => {
      ranOn = threadId;
      job.threads.add(threadId);
      counts.workers = job.threads.size;
    }).then(
      (result) => {
        counts.done++;
        this.shardsChanged(job);
        // Where it ran: the pool thread that finished it (a retried shard counts on the thread of its last attempt).
        const worker = `thread ${ranOn}`;
        const ran = (counts.ran ??= []);
        const entry = ran.find((r) => r.worker === worker);
        if (entry) entry.shards++;
        else ran.push({ worker, shards: 1 });
        reply({ t: 'shard-result', req, result }, transferables(result));
      },
      (e) => reply({ t: 'shard-error', req, error: serializeError(e) }),
    );
  }

  /**
   * Progress events carry the shard counts as they were when the job last reported; a shard that finishes after
   * that report (the job's last progress comes before its last shard's result) re-sends that progress with the
   * current counts, so "shards done / sent" reaches its end with the job.
   */
  private shardsChanged(job: Active): void {
    const { info } = job;
    if (info.state !== 'running' || !info.last || !info.shards || info.kind === PROBE) return;
    info.last = { ...info.last, shards: { ...info.shards } };
    this.emit('event', info.last);
  }

  /** The shard pool's threads and what they run (for status and tests). */
  poolThreads() {
    return this.pool?.threads() ?? [];
  }

  /**
   * Asks a running job to stop at its next step (terminating it if it has not stopped after the
   * grace period); a queued job is removed from the queue and ends cancelled without ever starting.
   */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job) return false;
    if (job.info.state === 'queued') {
      this.end(job, 'cancelled', {});
      return true;
    }
    Atomics.store(job.flag, 0, 1);
    clearTimeout(job.killTimer);
    job.killTimer = setTimeout(() => void job.worker?.terminate(), this.opts.cancelGraceMs ?? 15_000);
    return true;
  }

  wait(jobId: string): Promise<JobInfo> | undefined {
    return this.jobs.get(jobId)?.done as Promise<JobInfo> | undefined;
  }

  list(): JobInfo[] {
    const active = [...this.jobs.values()].filter((j) => j.info.kind !== PROBE).map((j) => ({ ...j.info }));
    const order = (s: JobState) => (s === 'running' ? 0 : 1);
    return [...active.sort((a, b) => order(a.state) - order(b.state)), ...this.history] as JobInfo[];
  }

  /**
   * Ends every job: queued ones are cancelled (they never start), running ones are asked to stop and
   * given `graceMs` to save what they have (their sessions end cancelled, as a Cancel would), then
   * terminated. Resolves once every job has ended.
   */
  async shutdown(graceMs = 0): Promise<void> {
    this.closing = true;
    for (const job of this.queued()) this.end(job, 'cancelled', {});
    const running = [...this.jobs.values()];
    if (graceMs > 0) {
      for (const job of running) this.cancel(job.info.jobId);
      await Promise.race([Promise.all(running.map((j) => j.done)), new Promise((ok) => setTimeout(ok, graceMs).unref())]);
    }
    await Promise.all([...this.jobs.values()].map((j) => j.worker?.terminate()));
    await this.pool?.close();
  }
}
