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
import type { WorkerInput, WorkerMessage } from './protocol';
import { handlerFor } from './kinds';
import { RelayShardExecutor } from './shard-relay';

const input = workerData as WorkerInput;
const flag = new Int32Array(input.cancelFlag);
const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);

/**
 * The backends whose jobs send their shards to the runner's pool: single-threaded engines (in Node,
 * tfjs-wasm and tfjs-cpu use one thread each), so the pool's threads are how they use more cores.
 * tfjs-node (TensorFlow's own thread pool) and ONNX Runtime jobs (intra-op threads) run in place.
 */
export const POOLED_BACKENDS: readonly string[] = ['wasm', 'cpu'];

let shards: RelayShardExecutor | undefined;

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
  const handler = handlerFor(input.kind);
  if (!handler) throw new Error(`Unknown job kind "${input.kind}"`);
  const backend = await initBackend(input.env.backend);
  post({ t: 'backend', info: backend as unknown as Record<string, unknown> });
  if (input.pool && POOLED_BACKENDS.includes(backend.name)) {
    const relay = new RelayShardExecutor(input.pool.parallelism, post);
    parentPort!.on('message', (m: unknown) => relay.receive(m));
    shards = relay;
  }
  const result = await handler(input.params, ctx, {
    ...input.env,
    backend,
    workers: shards ? shards.parallelism : 1,
    onSession: (id: string) => post({ t: 'session', id }),
  });
  post({ t: 'done', result: result ?? null });
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
