/**
 * A pool worker (jobs/pool.ts): a worker thread with its own tensor backend that runs shards of any
 * job, one at a time, with the shard handlers (engine/shards/handlers.ts). It is started once and
 * reused: the classifiers it rebuilds stay cached for the next shards (engine/shards/classifiers.ts).
 * Once its backend is up it says 'ready', warms up (engine/shards/warmup.ts) and says 'warm' (with the
 * error, if the warm-up failed: the thread then runs its shards cold); shards wait for the warm-up.
 * Cancellation is the shard's job's: its cancel flag (a SharedArrayBuffer) comes with every shard and
 * the shard checks it at every step, so a cancel stops it within one step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../engine/backend';
import { CancelledError, serializeError } from '../engine/errors';
import type { JobContext, Progress } from '../engine/context';
import { executeShard } from '../engine/shards/handlers';
import { DEFAULT_WARM_UP, prepareClassifiers, warmUpEngine } from '../engine/shards/warmup';
import type { Shard } from '../engine/shards/types';
import { ownThreadId, threadCpuMs } from './thread-cpu';
import { poolPrepareSchema, poolRequestSchema, transferables, type PoolWorkerMessage, type ShardWorkerInput } from './protocol';

/** A shard's progress is sent at most this often (and at its last step). */
const PROGRESS_INTERVAL_MS = 100;

const input = workerData as ShardWorkerInput;

const post = (m: PoolWorkerMessage, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);

async function runOne(raw: unknown): Promise<void> {
  const parsed = poolRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const req = typeof (raw as { req?: unknown })?.req === 'number' ? (raw as { req: number }).req : -1;
    if (req >= 0) post({ t: 'error', req, error: { code: 'INTERNAL', message: `Malformed shard request: ${parsed.error.issues[0]?.message}`, details: {} } });
    return;
  }
  const t0 = performance.now(), cpu0 = threadCpuMs();
  const { req, shard, cancelFlag } = parsed.data;
  const flag = new Int32Array(cancelFlag);
  let lastEmit = -Infinity;
  const ctx: JobContext = {
    progress: (p: Progress) => {
      const now = performance.now();
      if (p.step < p.total && now - lastEmit < PROGRESS_INTERVAL_MS) return;
      lastEmit = now;
      const metrics = p.metrics ? Object.fromEntries(Object.entries(p.metrics).filter(([, v]) => Number.isFinite(v))) : undefined;
      post({ t: 'progress', req, p: { step: p.step, total: p.total, ...(p.phase ? { phase: p.phase } : {}), ...(metrics ? { metrics } : {}) } });
    },
    checkpoint: () => {
      if (Atomics.load(flag, 0) === 1) throw new CancelledError();
    },
    get cancelled() {
      return Atomics.load(flag, 0) === 1;
    },
    log: () => {},
  };
  try {
    ctx.checkpoint();
    const result = await executeShard(shard as Shard, ctx);
    const cpu1 = threadCpuMs();
    post({ t: 'result', req, result, ms: performance.now() - t0, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuMs: cpu1 - cpu0 } : {}) }, transferables(result));
  } catch (e) {
    post({ t: 'error', req, error: serializeError(e) });
  }
}

async function main(): Promise<void> {
  const tid = ownThreadId();
  let backend;
  try {
    backend = await initBackend(input.backend);
  } catch (e) {
    post({ t: 'fatal', error: serializeError(e) });
    return;
  }
  // One shard at a time, in the order they came (the pool gives a worker one shard at a time anyway),
  // after the warm-up: a shard that comes during it waits for it (its results do not depend on it).
  let chain = warmUp(input.warmUp ?? DEFAULT_WARM_UP);
  parentPort!.on('message', (m: unknown) => {
    const prepare = poolPrepareSchema.safeParse(m);
    chain = chain.then(() => (prepare.success ? prepareOne(prepare.data.specs) : runOne(m)));
  });
  post({ t: 'ready', backend: backend.name, ...(tid !== undefined ? { tid } : {}) });
}

/**
 * Compiles the engine's code before the first shard (engine/shards/warmup.ts) and says how it went; a
 * failed warm-up is reported, never fatal: the thread then runs its shards cold.
 */
async function warmUp(attacks: readonly string[]): Promise<void> {
  if (attacks.length === 0) return;
  // After 'ready' (posted synchronously once main() has set up), so the pool knows the thread is warming.
  await Promise.resolve();
  const cpu0 = threadCpuMs();
  try {
    const r = await warmUpEngine(attacks);
    const cpu1 = threadCpuMs();
    post({ t: 'warm', ms: r.ms, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuMs: cpu1 - cpu0 } : {}) });
  } catch (e) {
    post({ t: 'warm', error: serializeError(e) });
  }
}

/**
 * Loads and warms a job's classifiers before its shards (ShardExecutor.prepare; engine/shards/warmup.ts),
 * in turn with the shards like everything this thread does. A failure is reported, never fatal: the
 * shard that needs the model loads it itself and reports its error.
 */
async function prepareOne(specs: Parameters<typeof prepareClassifiers>[0]): Promise<void> {
  const cpu0 = threadCpuMs();
  const t0 = performance.now();
  try {
    const r = await prepareClassifiers(specs, input.warmUp ?? DEFAULT_WARM_UP);
    const cpu1 = threadCpuMs();
    post({ t: 'prepared', models: r.models, ms: r.ms, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuMs: cpu1 - cpu0 } : {}) });
  } catch (e) {
    post({ t: 'prepared', models: [], ms: performance.now() - t0, error: serializeError(e) });
  }
}

void main();
