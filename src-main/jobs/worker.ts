/**
 * The job worker: one per job, in a worker thread, so that tensor work never blocks Electron's main
 * thread, the browser host's event loop or the renderer. Initialises the backend, runs the job's
 * handler and streams progress; cancellation arrives through a shared flag checked at every step,
 * and a cancelled job ends by throwing CancelledError (with the result it kept, if any).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../engine/backend';
import { CancelledError, serializeError } from '../engine/errors';
import type { JobContext, Progress } from '../engine/context';
import type { ShardExecutor } from '../engine/shards/types';
import type { WorkerInput, WorkerMessage } from './protocol';
import { handlerFor } from './kinds';
import { RelayShardExecutor } from './shard-relay';
import { POOLED_BACKENDS } from './pool';
import { setConfinement } from './confine';

const input = workerData as WorkerInput;
const flag = new Int32Array(input.cancelFlag);
const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);

/** The backends whose jobs send their shards to the runner's pool (declared with the pool). */
export { POOLED_BACKENDS };

/** Where the job's shards go: a cluster (env.cluster: `--queue`), the runner's pool (relayed), or nowhere (the job runs them here). */
let shards: ShardExecutor | undefined;

const ctx: JobContext = {
  progress: (p: Progress) => post({ t: 'progress', p: { ...p, metrics: finiteOnly(p.metrics) } }),
  checkpoint: () => {
    if (Atomics.load(flag, 0) === 1) throw new CancelledError();
  },
  get cancelled() {
    return Atomics.load(flag, 0) === 1;
  },
  log: (message: string) => post({ t: 'log', message }),
  get shards() {
    return shards;
  },
};

function finiteOnly(m?: Record<string, number>): Record<string, number> | undefined {
  if (!m) return m;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

async function main(): Promise<void> {
  setConfinement(input.confine);
  const handler = handlerFor(input.kind);
  if (!handler) throw new Error(`Unknown job kind "${input.kind}"`);
  const backend = await initBackend(input.env.backend);
  post({ t: 'backend', info: backend as unknown as Record<string, unknown> });
  // A cluster takes every job's shards whatever the backend here: its workers run their own engine.
  const cluster = input.env.cluster ? await (await import('./cluster/executor')).NatsShardExecutor.open({ auth: input.env.cluster, job: input.jobId, ctx, onShards: (s) => post({ t: 'shards', shards: s }) }) : undefined;
  if (cluster) shards = cluster;
  else if (input.pool && POOLED_BACKENDS.includes(backend.name)) {
    const relay = new RelayShardExecutor(input.pool.parallelism, post);
    parentPort!.on('message', (m: unknown) => relay.receive(m));
    shards = relay;
  }
  try {
    const result = await handler(input.params, ctx, {
      ...input.env,
      backend,
      workers: shards ? shards.parallelism : 1,
      onSession: (id: string) => post({ t: 'session', id }),
    });
    if (cluster?.ran.size) post({ t: 'log', message: `shards ran on ${[...cluster.ran].map(([w, n]) => `${w} (${n})`).join(', ')}` });
    post({ t: 'done', result: result ?? null });
  } finally {
    await cluster?.close();
  }
}

// A cancelled job ends with CancelledError; what the job kept (runInSession's { session, ... }) rides on it.
main().catch((e) => {
  if (!(e instanceof CancelledError)) post({ t: 'error', error: serializeError(e) });
  else if (e.partial === undefined) post({ t: 'cancelled' });
  else {
    try {
      post({ t: 'cancelled', result: e.partial });
    } catch {
      post({ t: 'cancelled' }); // not a job's result (e.g. a model): nothing to report
    }
  }
});
