/**
 * The local shard pool: worker threads (jobs/shard-worker.ts), each with its own tensor backend,
 * started once (when the app starts, when a pooled job has its backend, or as shards arrive) and
 * reused by every job, that run the shards jobs send (engine/shards). The runner owns it; a job worker
 * sends its shards to the runner, which queues them here (one FIFO queue for all jobs, so jobs share
 * the threads in the order their shards came). A new thread warms up before its first shard
 * (engine/shards/warmup.ts: its code compiled on a small model); a shard given to it meanwhile waits
 * for that, and idle warm threads are given shards before cold ones.
 *
 * How the cores are shared: the pool threads do the tensor work (one shard per thread at a time, and
 * tfjs-wasm and tfjs-cpu are single-threaded in Node, so `size` threads keep `size` cores busy); the
 * job threads only coordinate (split, merge, judge, write sessions) and mostly wait. So the pool is
 * sized to the machine (os.availableParallelism()) and jobs at once default to the same number. A job
 * whose engine brings its own threads (tfjs-node's TensorFlow, ONNX Runtime's intra-op threads) does
 * not use the pool: it runs in place in its job thread (jobs/worker.ts gives it no executor), and
 * should size its intra-op threads to the cores the pool leaves (poolLeavesCores).
 *
 * Failures: a shard whose worker crashes or exits is retried once on a fresh worker
 * (MAX_SHARD_ATTEMPTS), then fails with an error naming the shard; a job's cancel flag travels with
 * each shard, so running shards stop within one step and queued ones never start.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Progress } from '../engine/context';
import { AdvlabError, CancelledError, isErrorCode } from '../engine/errors';
import { poolWorkerMessageSchema, type PoolPrepare, type PoolRequest, type RawShard, type ShardWorkerInput } from './protocol';
import type { ClassifierSpec } from '../engine/shards/types';
import { MAX_CACHED_CLASSIFIERS } from '../engine/shards/cache-size';

import { MAX_POOL_WORKERS } from '../engine/limits';

/** The largest pool accepted (--workers, ADVLAB_WORKERS, the Settings value), from the one table of bounds. */
export { MAX_POOL_WORKERS };
/**
 * The backends whose jobs send their shards to the pool: single-threaded engines (in Node, tfjs-wasm
 * and tfjs-cpu use one thread each), so the pool's threads are how they use more cores. tfjs-node
 * (TensorFlow's own thread pool) and ONNX Runtime jobs (intra-op threads) run in place.
 */
export const POOLED_BACKENDS: readonly string[] = ['wasm', 'cpu'];

/** Runs of a shard in all: a shard whose worker died is retried once on a fresh worker, then fails its job. */
export const MAX_SHARD_ATTEMPTS = 2;

/** The pool's size when nothing says otherwise: one thread per core. */
export function defaultPoolSize(): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_POOL_WORKERS));
}

/** Cores left for an engine with its own threads (ONNX Runtime, tfjs-node) while the pool is busy: at least one. */
export function poolLeavesCores(poolSize: number): number {
  return Math.max(1, availableParallelism() - poolSize);
}

/** --workers N / ADVLAB_WORKERS / the Settings value: an integer from 1 to MAX_POOL_WORKERS, else an error naming the bounds. */
export function parseWorkers(value: string | number | undefined, from: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_POOL_WORKERS) {
    throw new AdvlabError('BAD_INPUT', `${from} must be an integer from 1 to ${MAX_POOL_WORKERS} (MAX_POOL_WORKERS), got "${value}"; the default is ${defaultPoolSize()} (the machine's cores)`, { from, value });
  }
  return n;
}

export function defaultShardWorkerPath(): string {
  return fileURLToPath(new URL('./shard-worker.js', import.meta.url));
}

/** An error from another thread as the error it was (a CancelledError stays one). */
export function reviveError(e: { code: string; message: string; details: Record<string, unknown> }): AdvlabError {
  if (e.code === 'CANCELLED') return new CancelledError(e.message);
  return new AdvlabError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message, e.details);
}

export interface PoolOptions {
  size: number;
  /** The backend each pool worker starts (the runner's; undefined = auto, as job workers). */
  backend?: string;
  /** The built pool worker (out/main/shard-worker.js); defaults to the file next to this bundle. */
  workerPath?: string;
  /**
   * The attacks each thread warms up with when it starts, before its first shard (ids of
   * engine/shards/warmup.ts WARM_UP_ATTACKS); absent: the default ones; empty: no warm-up.
   */
  warmUp?: string[];
}

/**
 * Where a pool thread is: starting (loading the engine and its backend), warming up (compiling the
 * engine's code on a small model, engine/shards/warmup.ts), warm, or cold (its warm-up was off or
 * failed: it runs shards all the same).
 */
export type ThreadWarmth = 'starting' | 'warming' | 'warm' | 'cold';

/** A pool thread's warmth, for status, tests and the parallel bench. */
export interface ThreadWarmthReport {
  threadId: number;
  state: ThreadWarmth;
  /** How long its warm-up took (wall and thread CPU, ms), or why it failed. */
  warmUpMs?: number;
  warmUpCpuMs?: number;
  error?: string;
  /** Its last preparation of a job's models (prepare()): their sha256, its time and CPU time (ms), or why it failed. */
  prepared?: { models: string[]; ms: number; cpuMs?: number; error?: string };
}

/** A shard waiting for, or running on, a pool worker. */
interface Pending {
  req: number;
  jobId: string;
  shard: RawShard;
  flag: Int32Array;
  cancelFlag: SharedArrayBuffer;
  onProgress?: (p: Progress) => void;
  onStart?: (threadId: number) => void;
  resolve(result: unknown): void;
  reject(e: Error): void;
  attempts: number;
  /** Why the last attempt's worker died. */
  lastError?: string;
  /** performance.now() when it was queued and when its (last) attempt was given to a thread. */
  queuedAt: number;
  startedAt?: number;
}

interface Slot {
  worker: Worker;
  threadId: number;
  busy: Pending | null;
  /** Set when the worker is being stopped on purpose (shrink, close): its exit is not a crash. */
  retiring: boolean;
  /** The error event that came before the exit, if any. */
  error?: string;
  /** The worker's OS thread id, once it is ready (Linux): its CPU time is readable (jobs/thread-cpu.ts). */
  tid?: number;
  warmth: ThreadWarmthReport;
  /** The classifiers it was asked to prepare (keys, oldest first; at most what its classifier cache keeps). */
  prepared: string[];
}

/**
 * When one finished shard ran (performance.now() of the pool's thread, ms): queued, given to a thread,
 * and its result back; `computeMs` is the time the worker spent on it (request in to result out), so
 * finished - started - computeMs is the messaging both ways (task and result structured-cloned).
 */
export interface ShardTiming {
  jobId: string;
  shard: string;
  threadId: number;
  queued: number;
  started: number;
  finished: number;
  computeMs?: number;
  /** The worker thread's CPU time in the shard (Linux; 10 ms resolution). */
  cpuMs?: number;
}

/** The pool keeps the timings of this many finished shards (the latest), for `advlab bench --suite parallel`. */
export const MAX_SHARD_TIMINGS = 10_000;

/** What a pool worker is doing, for status and tests. */
export interface PoolThread {
  threadId: number;
  jobId?: string;
  shard?: string;
}

export class ShardPool {
  private readonly queue: Pending[] = [];
  private readonly timingLog: ShardTiming[] = [];
  private readonly slots = new Set<Slot>();
  /** Called when a thread's warmth changes or a thread goes (settled()). */
  private settledWaiters: (() => void)[] = [];
  private seq = 0;
  private closed = false;
  private _size: number;
  private readonly workerPath: string;

  constructor(private readonly opts: PoolOptions) {
    this._size = checkedSize(opts.size);
    this.workerPath = opts.workerPath ?? defaultShardWorkerPath();
  }

  /** How many shards run at once (threads the pool may have). */
  get size(): number {
    return this._size;
  }

  /** Changes the size: more threads start as shards need them; extra idle ones stop now, busy ones when their shard ends. */
  resize(size: number): void {
    this._size = checkedSize(size);
    this.trim();
    this.dispatch();
  }

  /**
   * Runs one shard of job `jobId` on a pool worker: resolves with its result (structured-cloned, its
   * typed arrays transferred back), rejects with its error, with CancelledError once the job's flag is
   * set, or (its worker having died MAX_SHARD_ATTEMPTS times) with an error naming the shard. The shard
   * is sent by copy, so the pool still has it for a retry.
   */
  run(jobId: string, shard: RawShard, cancelFlag: SharedArrayBuffer, onProgress?: (p: Progress) => void, onStart?: (threadId: number) => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new AdvlabError('INTERNAL', `The shard pool is closed; shard ${shard.id} of ${jobId} was not run`, { shard: shard.id }));
      this.queue.push({ req: ++this.seq, jobId, shard, flag: new Int32Array(cancelFlag), cancelFlag, onProgress, onStart, resolve, reject, attempts: 0, queuedAt: performance.now() });
      this.dispatch();
    });
  }

  /**
   * Starts the threads the pool may have now, instead of with the first shards: the runner calls it
   * when a job whose shards come here has its backend, so the threads' start-up (loading the engine
   * bundle, initialising the backend: about half a second of CPU each, measured) overlaps the job's
   * own loading of its data and model instead of delaying its first shards. Threads already running
   * are reused; a thread that cannot start is left to dispatch() to report with the shard it was for.
   * Each new thread then warms up (PoolOptions.warmUp) before its first shard; the app starts its pool
   * this way when it starts (JobRunner.warmPool), so the first job finds warm threads.
   */
  warm(): void {
    while (!this.closed && this.live().length < this._size) {
      try {
        this.spawn();
      } catch {
        return;
      }
    }
  }

  /**
   * A job's classifiers, as soon as the job knows them (ShardExecutor.prepare, before it loads its
   * data): every thread (started now, up to the size, if the pool has fewer) loads them into its
   * classifier cache and runs a few attack steps on them (engine/shards/warmup.ts prepareClassifiers),
   * after its warm-up and in turn with its shards, so its first shard of the job does not pay for the
   * model's loading and first compilation. A thread asked already for a model is not asked again.
   */
  prepare(specs: readonly ClassifierSpec[]): void {
    if (this.closed || specs.length === 0) return;
    this.warm();
    for (const s of this.live()) {
      const todo = specs.filter((x) => !s.prepared.includes(specKey(x)));
      if (todo.length === 0) continue;
      for (const x of todo) s.prepared.push(specKey(x));
      // The thread's cache keeps MAX_CACHED_CLASSIFIERS models: one it may have dropped is asked for again.
      if (s.prepared.length > MAX_CACHED_CLASSIFIERS) s.prepared.splice(0, s.prepared.length - MAX_CACHED_CLASSIFIERS);
      const request: PoolPrepare = { t: 'prepare', specs: todo.map((x) => ({ ...x })) };
      s.worker.postMessage(request);
    }
  }

  /**
   * A job ended: its queued shards fail, and a thread still running one of its shards (orphaned: a job
   * waits for its shards, so only a job whose worker died or was terminated leaves one) is stopped and
   * replaced when needed, so a stuck shard cannot hold a thread after its job is gone.
   */
  dropJob(jobId: string): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].jobId !== jobId) continue;
      const [p] = this.queue.splice(i, 1);
      p.reject(new CancelledError(`Job ${jobId} ended before its shard ${p.shard.id} ran`));
    }
    for (const s of this.live()) {
      if (s.busy?.jobId !== jobId) continue;
      const p = s.busy;
      s.retiring = true;
      s.busy = null;
      p.reject(new CancelledError(`Job ${jobId} ended while its shard ${p.shard.id} ran`));
      void s.worker.terminate();
    }
  }

  /** The pool's threads and what each runs now. */
  threads(): PoolThread[] {
    return [...this.slots].filter((s) => !s.retiring).map((s) => ({ threadId: s.threadId, ...(s.busy ? { jobId: s.busy.jobId, shard: s.busy.shard.id } : {}) }));
  }

  /** The OS thread ids of the pool's live threads that are ready (Linux; for CPU accounting: jobs/thread-cpu.ts). */
  osThreadIds(): number[] {
    return this.live().flatMap((s) => (s.tid !== undefined ? [s.tid] : []));
  }

  /** Each live thread's warmth (starting, warming, warm, cold), oldest thread first. */
  warmth(): ThreadWarmthReport[] {
    return this.live().map((s) => ({ ...s.warmth }));
  }

  /**
   * Resolves once no live thread is starting or warming up any more (at once when the pool has no
   * thread): whether they ended warm or cold, see warmth().
   */
  async settled(): Promise<void> {
    while (this.live().some((s) => s.warmth.state === 'starting' || s.warmth.state === 'warming')) {
      await new Promise<void>((ok) => this.settledWaiters.push(ok));
    }
  }

  /** The timings of the finished shards of `jobId` (every job's without it), oldest first; at most MAX_SHARD_TIMINGS are kept. */
  timings(jobId?: string): ShardTiming[] {
    return this.timingLog.filter((t) => jobId === undefined || t.jobId === jobId);
  }

  /** Shards waiting for a thread. */
  queued(): number {
    return this.queue.length;
  }

  /**
   * Terminates a pool thread as a crash would (its shard, if any, is retried on a fresh thread, or
   * fails after MAX_SHARD_ATTEMPTS): for tests of that path, and for an operator's stuck thread.
   */
  async terminateThread(threadId: number): Promise<boolean> {
    const slot = [...this.slots].find((s) => s.threadId === threadId);
    if (!slot) return false;
    await slot.worker.terminate();
    return true;
  }

  /** Stops every thread; queued and running shards fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new CancelledError('The shard pool was closed'));
    const slots = [...this.slots];
    for (const s of slots) {
      s.retiring = true;
      s.busy?.reject(new CancelledError('The shard pool was closed'));
      s.busy = null;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
    this.slots.clear();
    this.wakeSettled();
  }

  private live(): Slot[] {
    return [...this.slots].filter((s) => !s.retiring);
  }

  /** Stops idle threads beyond the size. */
  private trim(): void {
    let extra = this.live().length - this._size;
    for (const s of this.live()) {
      if (extra <= 0) break;
      if (s.busy) continue;
      s.retiring = true;
      void s.worker.terminate();
      extra--;
    }
  }

  /** Gives queued shards to idle threads (starting threads up to the size), oldest shard first. */
  private dispatch(): void {
    while (!this.closed && this.queue.length > 0) {
      const p = this.queue[0];
      if (Atomics.load(p.flag, 0) === 1) {
        this.queue.shift();
        p.reject(new CancelledError());
        continue;
      }
      // A warm idle thread first; else an idle one still starting or warming (the shard waits for it there).
      const idle = this.live().filter((s) => !s.busy);
      let slot = idle.find((s) => s.warmth.state === 'warm') ?? idle[0];
      if (!slot && this.live().length < this._size) {
        try {
          slot = this.spawn();
        } catch (e) {
          this.queue.shift();
          p.reject(new AdvlabError('INTERNAL', `Could not start a pool worker for shard ${p.shard.id}: ${(e as Error).message}`, { shard: p.shard.id }));
          continue;
        }
      }
      if (!slot) return;
      this.queue.shift();
      this.assign(slot, p);
    }
  }

  private assign(slot: Slot, p: Pending): void {
    slot.busy = p;
    p.attempts++;
    p.startedAt = performance.now();
    p.onStart?.(slot.threadId);
    const request: PoolRequest = { t: 'run', req: p.req, shard: p.shard, cancelFlag: p.cancelFlag };
    slot.worker.postMessage(request);
  }

  private spawn(): Slot {
    const workerData: ShardWorkerInput = { backend: this.opts.backend, ...(this.opts.warmUp ? { warmUp: [...this.opts.warmUp] } : {}) };
    const worker = new Worker(this.workerPath, { workerData });
    const slot: Slot = { worker, threadId: worker.threadId, busy: null, retiring: false, warmth: { threadId: worker.threadId, state: 'starting' }, prepared: [] };
    this.slots.add(slot);
    worker.on('message', (raw: unknown) => this.onMessage(slot, raw));
    worker.on('error', (e) => { slot.error = e.message; });
    worker.on('exit', (code) => this.onExit(slot, code));
    return slot;
  }

  private finish(slot: Slot, req: number): Pending | null {
    const p = slot.busy;
    if (!p || p.req !== req) return null;
    slot.busy = null;
    queueMicrotask(() => {
      this.trim();
      this.dispatch();
    });
    return p;
  }

  private onMessage(slot: Slot, raw: unknown): void {
    const parsed = poolWorkerMessageSchema.safeParse(raw);
    if (!parsed.success) {
      slot.error = `malformed message: ${parsed.error.issues[0]?.message}`;
      void slot.worker.terminate(); // treated as a crash: retried elsewhere
      return;
    }
    const m = parsed.data;
    switch (m.t) {
      case 'ready':
        slot.tid = m.tid;
        slot.warmth.state = this.opts.warmUp?.length === 0 ? 'cold' : 'warming';
        this.wakeSettled();
        break;
      case 'warm':
        slot.warmth = {
          threadId: slot.threadId, state: m.error ? 'cold' : 'warm',
          ...(m.ms !== undefined ? { warmUpMs: m.ms } : {}), ...(m.cpuMs !== undefined ? { warmUpCpuMs: m.cpuMs } : {}), ...(m.error ? { error: m.error.message } : {}),
        };
        this.wakeSettled();
        break;
      case 'prepared':
        slot.warmth.prepared = { models: m.models, ms: m.ms, ...(m.cpuMs !== undefined ? { cpuMs: m.cpuMs } : {}), ...(m.error ? { error: m.error.message } : {}) };
        break;
      case 'progress':
        if (slot.busy?.req === m.req) slot.busy.onProgress?.(m.p);
        break;
      case 'result': {
        const p = this.finish(slot, m.req);
        if (!p) break;
        this.timingLog.push({ jobId: p.jobId, shard: p.shard.id, threadId: slot.threadId, queued: p.queuedAt, started: p.startedAt ?? p.queuedAt, finished: performance.now(), ...(m.ms !== undefined ? { computeMs: m.ms } : {}), ...(m.cpuMs !== undefined ? { cpuMs: m.cpuMs } : {}) });
        if (this.timingLog.length > MAX_SHARD_TIMINGS) this.timingLog.splice(0, this.timingLog.length - MAX_SHARD_TIMINGS);
        p.resolve(m.result);
        break;
      }
      case 'error':
        this.finish(slot, m.req)?.reject(reviveError(m.error));
        break;
      case 'fatal': {
        // The worker cannot run anything (its backend failed): fail its shard without a retry and drop the worker.
        slot.retiring = true;
        const p = slot.busy;
        slot.busy = null;
        p?.reject(new AdvlabError('INTERNAL', `A pool worker could not start: ${m.error.message}`, { shard: p.shard.id }));
        void slot.worker.terminate();
        break;
      }
    }
  }

  private wakeSettled(): void {
    for (const ok of this.settledWaiters.splice(0)) ok();
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot);
    this.wakeSettled();
    const p = slot.busy;
    slot.busy = null;
    if (p && !slot.retiring) {
      p.lastError = slot.error ? `${slot.error} (exit code ${code})` : `exit code ${code}`;
      if (p.attempts < MAX_SHARD_ATTEMPTS && !this.closed) {
        this.queue.unshift(p); // first in line, on a fresh worker
      } else {
        p.reject(new AdvlabError('INTERNAL',
          `Shard ${p.shard.id} of ${p.jobId} failed: its pool worker died on each of ${p.attempts} attempts (last: ${p.lastError})`,
          { shard: p.shard.id, attempts: p.attempts }));
      }
    }
    this.dispatch();
  }
}

const specKey = (s: ClassifierSpec) => JSON.stringify([s.modelJson, s.sha256, s.gradient]);

function checkedSize(size: number): number {
  if (!Number.isInteger(size) || size < 1 || size > MAX_POOL_WORKERS) throw new Error(`The pool size must be an integer from 1 to ${MAX_POOL_WORKERS} (MAX_POOL_WORKERS), got ${size}`);
  return size;
}
