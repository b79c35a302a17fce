/**
 * Shards: the unit of work a job hands to other engine workers (local worker threads, or `advlab
 * worker` processes behind a NATS JetStream queue). A job (its coordinator, in its job worker) splits
 * its examples, grid cells or batch into shards, gives them to the ShardExecutor on its context and
 * merges the results in shard order; sessions look exactly as when the job ran alone.
 *
 * Rules every shard type keeps:
 * - A shard is data in, data out: its task and result are structured-clone (and JSON + typed array)
 *   serialisable; a classifier travels as a ClassifierSpec, never as an object.
 * - An executor may transfer (detach) the buffers of a task's typed arrays: give a shard copies
 *   (slice, not subarray) of anything the caller still uses.
 * - A shard is deterministic given its task: any randomness is seeded from the task (the job's seed
 *   and the shard's index), never from the worker that runs it, so a seeded job gives the same
 *   per-example results whatever the number of workers (1, the pool, a cluster).
 * - A shard checks the job's cancellation once per step (ctx.checkpoint()) and reports progress in
 *   its own units (step/total); the executor sums the shards' progress for the job.
 *
 * Shard types are declared by augmenting ShardTypes (module augmentation) next to their handler, so
 * each engine module owns its shard type; the handlers are registered in engine/shards/handlers.ts.
 */

/**
 * A Classifier another worker can rebuild exactly: a saved model (model.json + weights, identified by
 * the sha256 of its files), through classifierFor with the same options. Defended wrappers built in
 * memory (a detector's guard) have no spec: their attacks run in the job's own worker.
 */
export interface SavedClassifierSpec {
  kind: 'saved';
  /** Absolute path of the model.json on the machine that runs the shard (the cluster rewrites it to its cache). */
  modelJson: string;
  /** modelSha256 of the model's files: a worker checks it before trusting a cached copy. */
  sha256: string;
  /** classifierFor's gradient option: 'real' (the deployed defense) or 'bpda'. */
  gradient: 'real' | 'bpda';
}
export type ClassifierSpec = SavedClassifierSpec;

/**
 * Every shard type: its task and its result. Filled by augmentation, e.g.
 *   declare module '../shards/types' { interface ShardTypes { 'attack-batch': { task: AttackBatchTask; result: AttackBatchResult } } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ShardTypes {}

export type ShardType = keyof ShardTypes & string;
export type ShardTaskOf<T extends ShardType> = ShardTypes[T] extends { task: infer X } ? X : never;
export type ShardResultOf<T extends ShardType> = ShardTypes[T] extends { result: infer R } ? R : never;

/** One shard as it travels: its type, an id unique within the job (idempotency key) and its task. */
export interface Shard<T extends ShardType = ShardType> {
  type: T;
  /** Unique within the job and stable across retries ("<job>/<stage>/<index>"): a shard run twice is stored once. */
  id: string;
  task: ShardTaskOf<T>;
}

/** Progress of one shard, in the shard's own units. */
export interface ShardProgress {
  step: number;
  total: number;
  phase?: string;
  metrics?: Record<string, number>;
}

/**
 * Runs shards somewhere else (a local pool of worker threads, a cluster) and gives back their results
 * in the order of `shards`. Cancellation is the job's (the context's): every running shard stops
 * within one of its steps and `run` rejects with CancelledError; a shard whose worker dies is retried
 * (bounded) and then fails the run with the last error; `run` never hangs on a dead worker.
 */
export interface ShardExecutor {
  /** How many shards run at once (pool size, or the cluster's advertised capacity). Jobs size their shards from it. */
  readonly parallelism: number;
  /** Where it runs, for sessions and the Jobs list: 'pool' (local worker threads) or 'cluster'. */
  readonly where: 'pool' | 'cluster';
  run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]>;
  /**
   * A hint, as soon as a job knows its model (before it loads its data): its shards will use these
   * classifiers. The local pool's threads load them and compile their code meanwhile (engine/shards/
   * warmup.ts prepareClassifiers), so a thread's first shard of the job costs what its later ones do.
   * Optional and without effect on any result; an executor may ignore it.
   */
  prepare?(classifiers: readonly ClassifierSpec[]): void;
}
