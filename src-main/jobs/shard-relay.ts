/**
 * The ShardExecutor a job worker puts on its context when the runner has a shard pool: each shard goes
 * to the runner as a 'shard' message (its typed arrays transferred: runAttack and the other callers
 * give their shards copies), the runner runs it on its pool (jobs/pool.ts) and sends back its progress
 * and its result or error. The cluster's executor implements the same interface over NATS.
 */
import type { Progress } from '../engine/context';
import type { ClassifierSpec, Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../engine/shards/types';
import { reviveError } from './pool';
import { runnerMessageSchema, transferables, type WorkerMessage } from './protocol';

interface Waiting {
  resolve(result: unknown): void;
  reject(e: Error): void;
  onProgress?: (p: Progress) => void;
}

export class RelayShardExecutor implements ShardExecutor {
  readonly where = 'pool' as const;
  private seq = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(readonly parallelism: number, private readonly post: (m: WorkerMessage, transfer: ArrayBuffer[]) => void) {}

  /** Handles one message from the runner; false when it is not a shard answer. */
  receive(raw: unknown): boolean {
    const parsed = runnerMessageSchema.safeParse(raw);
    if (!parsed.success) return false;
    const m = parsed.data;
    const w = this.waiting.get(m.req);
    if (!w) return true;
    if (m.t === 'shard-progress') {
      w.onProgress?.(m.p);
      return true;
    }
    this.waiting.delete(m.req);
    if (m.t === 'shard-result') w.resolve(m.result);
    else w.reject(reviveError(m.error));
    return true;
  }

  /** The job's classifiers, before its shards: the runner's pool threads load and warm them meanwhile (ShardPool.prepare). */
  prepare(classifiers: readonly ClassifierSpec[]): void {
    if (classifiers.length > 0) this.post({ t: 'prepare', specs: classifiers.map((c) => ({ ...c })) }, []);
  }

  /** Every shard goes at once (the pool queues them); waits for all, then gives the results in order or the first error in shard order. */
  async run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    const settled = await Promise.allSettled(shards.map((shard, i) => new Promise<unknown>((resolve, reject) => {
      const req = ++this.seq;
      this.waiting.set(req, { resolve, reject, onProgress: (p) => onProgress?.(i, p) });
      try {
        this.post({ t: 'shard', req, shard: { type: shard.type, id: shard.id, task: shard.task } }, transferables(shard.task));
      } catch (e) {
        this.waiting.delete(req);
        reject(e as Error);
      }
    })));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value as ShardResultOf<T>);
  }
}
