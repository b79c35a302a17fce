/**
 * Messages between the job runner and its job workers, and between the runner's shard pool and its
 * pool workers (jobs/pool.ts, jobs/shard-worker.ts); each side validates every message it receives.
 * Typed arrays in shard tasks and results travel as transferred buffers where the sender keeps no use
 * for them (transferables()).
 */
import { z } from 'zod';
import type { ClusterAuth } from './cluster/connection';

export const progressSchema = z.object({
  step: z.number(),
  total: z.number(),
  phase: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
  message: z.string().optional(),
});

export const errorSchema = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) });

/** A shard as it crosses a thread: its type is checked against the handlers where it runs. */
export const shardSchema = z.object({ type: z.string().min(1).max(100), id: z.string().min(1).max(400), task: z.unknown() });
export type RawShard = z.infer<typeof shardSchema>;

/** A ClassifierSpec (engine/shards/types.ts) as it crosses a thread or the cluster: a saved model, its sha256 and gradient option. */
export const classifierSpecSchema = z.strictObject({
  kind: z.literal('saved'),
  modelJson: z.string().min(1).max(4096),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  gradient: z.enum(['real', 'bpda']),
});
/** At most this many models in one 'prepare' (a job names one or two). */
export const MAX_PREPARED_CLASSIFIERS = 8;
const prepareSpecs = z.array(classifierSpecSchema).min(1).max(MAX_PREPARED_CLASSIFIERS);

export const workerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('backend'), info: z.record(z.string(), z.unknown()) }),
  z.object({ t: z.literal('progress'), p: progressSchema }),
  z.object({ t: z.literal('log'), message: z.string() }),
  z.object({ t: z.literal('session'), id: z.string() }),
  z.object({ t: z.literal('done'), result: z.unknown() }),
  z.object({ t: z.literal('cancelled'), result: z.unknown().optional() }),
  z.object({ t: z.literal('error'), error: errorSchema }),
  /** A shard for the runner's pool (engine/shards/types.ts Shard); `req` numbers the job's requests. */
  z.object({ t: z.literal('shard'), req: z.number().int().nonnegative(), shard: shardSchema }),
  /** The job's shards will use these classifiers: the pool's threads load and warm them now (ShardExecutor.prepare). */
  z.object({ t: z.literal('prepare'), specs: prepareSpecs }),
  /** Where the job's shards ran when its executor is its own (a cluster: `--queue`), for JobInfo.shards. */
  z.object({ t: z.literal('shards'), shards: z.object({ where: z.literal('cluster'), done: z.number().int().min(0), total: z.number().int().min(0), workers: z.number().int().min(0), ran: z.array(z.object({ worker: z.string().max(200), shards: z.number().int().min(0) })).max(1000).optional() }) }),
]);

export type WorkerMessage = z.infer<typeof workerMessageSchema>;

/** The runner's answers to a job worker's 'shard' requests. */
export const runnerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('shard-progress'), req: z.number().int().nonnegative(), p: progressSchema }),
  z.object({ t: z.literal('shard-result'), req: z.number().int().nonnegative(), result: z.unknown() }),
  z.object({ t: z.literal('shard-error'), req: z.number().int().nonnegative(), error: errorSchema }),
]);
export type RunnerMessage = z.infer<typeof runnerMessageSchema>;

/** The pool's request to one of its workers: run this shard; [0] of the job's cancel flag stops it. */
export const poolRequestSchema = z.object({
  t: z.literal('run'),
  req: z.number().int().nonnegative(),
  shard: shardSchema,
  cancelFlag: z.instanceof(SharedArrayBuffer),
});
export type PoolRequest = z.infer<typeof poolRequestSchema>;

/** The pool's hint to one of its workers: load and warm these classifiers before the next shards (engine/shards/warmup.ts prepareClassifiers). */
export const poolPrepareSchema = z.object({ t: z.literal('prepare'), specs: prepareSpecs });
export type PoolPrepare = z.infer<typeof poolPrepareSchema>;

/** What a pool worker sends back: ready (backend up), a shard's progress, its result or its error. */
export const poolWorkerMessageSchema = z.discriminatedUnion('t', [
  /** `tid`: the worker's OS thread id (Linux), so the pool can read its CPU time (jobs/thread-cpu.ts). */
  z.object({ t: z.literal('ready'), backend: z.string(), tid: z.number().int().positive().optional() }),
  z.object({ t: z.literal('progress'), req: z.number().int().nonnegative(), p: progressSchema }),
  /** `ms`: the shard's time in the worker, from its request to its result; `cpuMs`: the worker thread's CPU time in it, where the OS tells (Linux) (the pool's timings). */
  z.object({ t: z.literal('result'), req: z.number().int().nonnegative(), result: z.unknown(), ms: z.number().nonnegative().optional(), cpuMs: z.number().nonnegative().optional() }),
  z.object({ t: z.literal('error'), req: z.number().int().nonnegative(), error: errorSchema }),
  /**
   * The worker's warm-up (engine/shards/warmup.ts) ended, after 'ready' and before it runs any shard:
   * `error` when it failed (the worker still runs shards, cold), else its time and CPU time.
   */
  z.object({ t: z.literal('warm'), ms: z.number().nonnegative().optional(), cpuMs: z.number().nonnegative().optional(), error: errorSchema.optional() }),
  /** A 'prepare' ended: the models (sha256) now loaded and warm in the worker, its time and CPU time; `error` when one could not be prepared (its shards then load it themselves, and report the error if it persists). */
  z.object({ t: z.literal('prepared'), models: z.array(z.string()).max(MAX_PREPARED_CLASSIFIERS), ms: z.number().nonnegative(), cpuMs: z.number().nonnegative().optional(), error: errorSchema.optional() }),
  /** The worker could not start (its backend failed): the pool fails what it gave it. */
  z.object({ t: z.literal('fatal'), error: errorSchema }),
]);
export type PoolWorkerMessage = z.infer<typeof poolWorkerMessageSchema>;

/** What the pool workers are started with. */
export interface ShardWorkerInput {
  backend?: string;
  /** The attacks the worker warms up with before its first shard (engine/shards/warmup.ts); absent: the default ones; empty: no warm-up. */
  warmUp?: string[];
}

/**
 * The buffers of the typed arrays in `value` (searched through plain objects and arrays), to transfer
 * with it: for a message whose sender keeps no use for them (they are detached on its side).
 * SharedArrayBuffers are shared, never transferred.
 */
export function transferables(value: unknown, found = new Set<ArrayBuffer>(), depth = 0): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) found.add(value.buffer);
  } else if (depth < 6 && value !== null && typeof value === 'object') {
    for (const v of Array.isArray(value) ? value : Object.values(value)) transferables(v, found, depth + 1);
  }
  return [...found];
}

export interface WorkerInput {
  jobId: string;
  kind: string;
  params: unknown;
  env: JobEnvInput;
  /** Int32Array over this: [0] becomes 1 when the job is cancelled. Read with Atomics, so a job in a
   * synchronous tensor loop sees it without returning to the event loop. */
  cancelFlag: SharedArrayBuffer;
  /** The runner's shard pool, when the job may use it (absent: the job's work all runs in its own thread). */
  pool?: { parallelism: number };
  /** The real paths the job may read (the API's door checked its paths: jobs/confine.ts checks again at each open); absent: any. */
  confine?: string[];
}

export interface JobEnvInput {
  backend?: string;
  dataDirs: string[];
  sessionsRoot: string;
  /** Send the job's shards to this NATS JetStream cluster (`--queue`): ctx.shards is a NatsShardExecutor. */
  cluster?: ClusterAuth;
}
