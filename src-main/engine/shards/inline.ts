/**
 * A ShardExecutor that runs every shard here, one after another, with the job's own context: the
 * reference the pool and the cluster must agree with (same results, same order), and what tests use
 * to exercise a job's sharded path without threads.
 */
import type { JobContext } from '../context';
import { executeShard } from './handlers';
import type { Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from './types';

export class InlineShardExecutor implements ShardExecutor {
  readonly parallelism: number;
  readonly where = 'pool' as const;
  /** `parallelism` is what jobs size their shards from; the shards still run one at a time here. */
  constructor(private readonly ctx: JobContext, parallelism = 1) {
    this.parallelism = parallelism;
  }

  async run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    const job = this.ctx;
    const out: ShardResultOf<T>[] = [];
    for (const [i, shard] of shards.entries()) {
      job.checkpoint();
      // The shard reports in its own units; the caller sums them. No nested executor: a shard runs where it is.
      const own: JobContext = {
        progress: (p) => onProgress?.(i, p),
        checkpoint: () => job.checkpoint(),
        get cancelled() { return job.cancelled; },
        log: (m) => job.log(m),
      };
      out.push(await executeShard(shard, own));
    }
    return out;
  }
}

/** For tests: a context like `ctx` whose shards run inline (parallelism says how jobs split them). */
export function withInlineShards(ctx: JobContext, parallelism = 2): JobContext {
  const shards = new InlineShardExecutor(ctx, parallelism);
  return {
    progress: (p) => ctx.progress(p),
    checkpoint: () => ctx.checkpoint(),
    get cancelled() { return ctx.cancelled; },
    log: (m) => ctx.log(m),
    shards,
  };
}
