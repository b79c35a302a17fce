/**
 * What `advlab bench --suite parallel` measures besides the speedups (issue 17):
 *
 * - The ceiling: the most any pool can give on this machine. The same 'attack-batch' shard (PGD-40
 *   on a fixed batch of the benchmark model, the attack's own forward and backward passes) runs on
 *   one pool thread alone, then on every pool thread at once, alternately (A/B/A/B). Throughput
 *   ratio = threads x alone / together. No job thread, no splitting, no judging: only the compute
 *   and one message each way. On a VM whose virtual cores share a physical core (or memory
 *   bandwidth) this is below the thread count, and no pool can beat it. The threads' CPU time per
 *   shard (Linux) tells the two causes apart: other work on the cores stretches the wall time only,
 *   the hardware (a shared core, memory) stretches the CPU time too.
 * - Where a pool run's time goes, from the pool's per-shard timings (jobs/pool.ts ShardTiming): the
 *   job's time outside the shards (clean logits before, judging after, in the job's thread), each
 *   thread's compute and idle time while shards run, the tail (the last thread working alone), and
 *   the messaging per shard.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ShardPool, ShardTiming } from '../jobs/pool';
import type { BenchRow } from './bench-row';
import type { SessionStore } from '../engine/sessions';

/** A parallel-suite row. */
export type CeilingRow = BenchRow & { suite: 'parallel' };

/** The shard the ceiling runs: PGD-40 Linf eps 0.1 with a random start, as the suite's PGD row, on `images` images. */
const CEILING_PARAMS = { eps: 0.1, steps: 40, randomStart: true, seed: 1 };

/**
 * The ceiling row: `threads` pool threads (the pool under test), `rounds` alternations of one shard
 * alone and `threads` shards together, on the suite's first `batchSize` images and the model `modelRef`.
 */
export async function ceilingRow(opts: {
  modelRef: string; store: SessionStore; dataDirs: string[]; threads: number; batchSize: number; rounds: number; backend?: string;
  load: () => string; info: (line: string) => void;
}): Promise<CeilingRow> {
  const { ShardPool } = await import('../jobs/pool');
  const { locateModel } = await import('../jobs/model-ref');
  const { modelSha256, resolveModelJson } = await import('../engine/models');
  const { loadDataset } = await import('../engine/data');
  const { path } = await locateModel(opts.modelRef, opts.store);
  const modelJson = resolve(await resolveModelJson(path));
  const sha256 = await modelSha256(modelJson);
  // The suite's first batch: the first test images of Fashion-MNIST as the attack job picks them (pick first).
  const set = await loadDataset('fashion-mnist', { dataDirs: opts.dataDirs, split: 'test', choice: { n: opts.batchSize, pick: 'first', offset: 0, seed: 0 } });
  const [h, w, c] = set.shape;
  const images = set.images, labels = Int32Array.from(set.labels);
  const pool = new ShardPool({ size: opts.threads, ...(opts.backend ? { backend: opts.backend } : {}) });
  let seq = 0;
  const shard = () => ({
    type: 'attack-batch', id: `ceiling/${seq++}`,
    task: { classifier: { kind: 'saved', modelJson, sha256, gradient: 'real' }, attack: 'pgd', params: CEILING_PARAMS, images: images.slice(), shape: [opts.batchSize, h, w, c], labels: labels.slice(), targets: null, batch: 0 },
  });
  const flag = new SharedArrayBuffer(4);
  /** Runs k shards at once: the wall time until all are back, and the worker threads' mean CPU ms per shard (Linux). */
  const wave = async (k: number) => {
    const t = performance.now();
    await Promise.all(Array.from({ length: k }, () => pool.run('ceiling', shard(), flag)));
    const wall = performance.now() - t;
    const cpus = pool.timings('ceiling').slice(-k).map((x) => x.cpuMs).filter((x): x is number => x !== undefined);
    return { wall, cpu: cpus.length === k ? cpus.reduce((a, b) => a + b, 0) / k : undefined };
  };
  try {
    pool.warm();
    // Warm-up: every thread loads the model and runs the shard once (wasm compiled, kernels warm).
    await wave(opts.threads);
    await wave(opts.threads);
    const ratios: number[] = [], alone: number[] = [], together: number[] = [], cpuAlone: number[] = [], cpuTogether: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const a = await wave(1);
      const b = await wave(opts.threads);
      alone.push(a.wall);
      together.push(b.wall);
      if (a.cpu !== undefined) cpuAlone.push(a.cpu);
      if (b.cpu !== undefined) cpuTogether.push(b.cpu);
      ratios.push((opts.threads * a.wall) / b.wall);
      const cpu = a.cpu !== undefined && b.cpu !== undefined ? `; thread CPU per shard ${a.cpu.toFixed(0)} / ${b.cpu.toFixed(0)} ms` : '';
      opts.info(`  ceiling round ${r + 1}: 1 shard alone ${a.wall.toFixed(0)} ms, ${opts.threads} at once ${b.wall.toFixed(0)} ms: ${ratios.at(-1)!.toFixed(2)}x${cpu} (${opts.load()})`);
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    const median = sorted[Math.floor(sorted.length / 2)];
    const cpu = cpuAlone.length && cpuTogether.length ? `; thread CPU per shard alone / together ${medianOf(cpuAlone).toFixed(0)} / ${medianOf(cpuTogether).toFixed(0)} ms` : '';
    return {
      suite: 'parallel',
      benchmark: `ceiling: the same PGD-40 shard (${opts.batchSize} images, the benchmark model) on 1 pool thread alone vs on ${opts.threads} threads at once, ${opts.rounds} alternations, ${availableParallelism()} cores (${opts.load()})`,
      metric: 'throughput ratio threads x alone / together: median (min-max); ms alone / together (medians)',
      value: `${median.toFixed(2)}x (${sorted[0].toFixed(2)}-${sorted.at(-1)!.toFixed(2)}); ${medianOf(alone).toFixed(0)} / ${medianOf(together).toFixed(0)} ms${cpu}`,
    };
  } finally {
    await pool.close();
  }
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Where one pool run's time went (its shards' timings and the job's own `seconds`), as one line. */
export function timelineOf(timings: ShardTiming[], jobSeconds: number): string {
  if (timings.length === 0) return 'no shard timings';
  const first = Math.min(...timings.map((t) => t.started));
  const last = Math.max(...timings.map((t) => t.finished));
  const span = last - first;
  const byThread = new Map<number, ShardTiming[]>();
  for (const t of timings) byThread.set(t.threadId, [...(byThread.get(t.threadId) ?? []), t]);
  const threads = [...byThread.values()];
  const ends = threads.map((ts) => Math.max(...ts.map((t) => t.finished))).sort((a, b) => a - b);
  const tail = ends.length > 1 ? ends.at(-1)! - ends.at(-2)! : 0;
  const busy = threads.map((ts) => ts.reduce((a, t) => a + (t.finished - t.started), 0));
  const compute = timings.reduce((a, t) => a + (t.computeMs ?? 0), 0);
  const cpu = timings.every((t) => t.cpuMs !== undefined) ? timings.reduce((a, t) => a + t.cpuMs!, 0) : undefined;
  const messaging = timings.reduce((a, t) => a + Math.max(0, t.finished - t.started - (t.computeMs ?? 0)), 0) / timings.length;
  const idle = threads.length * span - busy.reduce((a, b) => a + b, 0);
  const outside = jobSeconds * 1000 - span;
  return `${timings.length} shards on ${threads.length} threads (${threads.map((ts) => ts.length).join('/')}); shards span ${(span / 1000).toFixed(2)} s of the job's ${jobSeconds.toFixed(2)} s `
    + `(outside the shards, in the job's thread: ${(outside / 1000).toFixed(2)} s); thread compute ${(compute / 1000).toFixed(2)} s${cpu !== undefined ? ` (thread CPU ${(cpu / 1000).toFixed(2)} s)` : ''}, idle while shards ran ${(idle / 1000).toFixed(2)} s thread-time, `
    + `tail ${(tail / 1000).toFixed(2)} s, messaging ${messaging.toFixed(1)} ms per shard`;
}

/**
 * Where one job's CPU time went, by thread (Linux; from two snapshots of every thread's CPU time,
 * jobs/thread-cpu.ts): the pool threads in their shards and outside them (starting the engine,
 * loading the model, compiling code, garbage collection between shards), the main thread, and every
 * other thread (the job's own thread: clean logits, judging, session writes; V8's compiler and GC
 * helpers; libuv), and threads that ended during the job (the process's CPU time `processMs` less
 * every live thread's). And the pool threads' CPU per shard: each thread's first shard (a cold thread
 * compiles its code and loads the model in it) against the median and range of the rest.
 */
export function cpuAccountOf(before: Map<number, number>, after: Map<number, number>, poolTids: number[], timings: ShardTiming[], processMs?: number): string {
  if (after.size === 0) return 'no per-thread CPU (not Linux)';
  const delta = (tid: number) => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  const pool = new Set(poolTids);
  let poolMs = 0, mainMs = 0, helperMs = 0, newMs = 0;
  for (const tid of after.keys()) {
    const d = delta(tid);
    if (pool.has(tid)) poolMs += d;
    else if (tid === process.pid) mainMs += d;
    else if (before.has(tid)) helperMs += d;
    else newMs += d;
  }
  // Threads that ended during the job (the job's own thread, a replaced pool thread) are in the process's total only.
  const ended = processMs !== undefined ? processMs - (poolMs + mainMs + helperMs + newMs) : undefined;
  const inShards = timings.reduce((a, t) => a + (t.cpuMs ?? 0), 0);
  const byThread = new Map<number, number[]>();
  for (const t of timings) if (t.cpuMs !== undefined) byThread.set(t.threadId, [...(byThread.get(t.threadId) ?? []), t.cpuMs]);
  const perThread = [...byThread.values()].map((cpus) => {
    const rest = cpus.slice(1);
    return `${cpus[0].toFixed(0)} / ${rest.length ? `${medianOf(rest).toFixed(0)} (${Math.min(...rest).toFixed(0)}-${Math.max(...rest).toFixed(0)})` : '-'}`;
  });
  const s = (ms: number) => (ms / 1000).toFixed(2);
  return `CPU by thread: pool ${s(poolMs)} s (in shards ${s(inShards)}, outside ${s(poolMs - inShards)}), main ${s(mainMs)} s, threads older than the job (V8's compiler and GC helpers, libuv) ${s(helperMs)} s, `
    + `threads started in it (the job's thread) ${s(newMs)} s${ended !== undefined ? `, threads that ended in it (the rest of the process's CPU: the job's thread once gone) ${s(ended)} s` : ''}; `
    + `pool thread CPU per shard, first / median (min-max) of the rest: ${perThread.join(', ')} ms`;
}
