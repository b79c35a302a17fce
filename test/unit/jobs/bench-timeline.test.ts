/**
 * The parallel bench's account of a pool run (cli/bench-parallel-ceiling.ts timelineOf): from the
 * pool's per-shard timings and the job's own time, the time outside the shards, each thread's idle
 * time while shards ran, the tail (the last thread working alone) and the messaging per shard.
 */
import { describe, expect, it } from 'vitest';
import { cpuAccountOf, timelineOf } from '../../../src-main/cli/bench-parallel-ceiling';
import type { ShardTiming } from '../../../src-main/jobs/pool';

const t = (threadId: number, started: number, finished: number, computeMs: number, cpuMs?: number): ShardTiming =>
  ({ jobId: 'j', shard: `s${started}`, threadId, queued: 0, started, finished, computeMs, ...(cpuMs !== undefined ? { cpuMs } : {}) });

describe('timelineOf', () => {
  it('says how long the shards spanned, what ran outside them, the idle thread time, the tail and the messaging', () => {
    // Thread 1: 0-1000, 1000-2000; thread 2: 100-1100, 1200-2600 (ends alone for 600 ms). Job: 3 s.
    const line = timelineOf([t(1, 0, 1000, 990, 900), t(2, 100, 1100, 980, 900), t(1, 1000, 2000, 990, 900), t(2, 1200, 2600, 1390, 1300)], 3);
    expect(line).toContain('4 shards on 2 threads (2/2)');
    expect(line).toContain('shards span 2.60 s of the job\'s 3.00 s');
    expect(line).toContain('outside the shards, in the job\'s thread: 0.40 s');
    expect(line).toContain('thread compute 4.35 s (thread CPU 4.00 s)');
    // 2 threads x 2.6 s - busy (2000 + 2400 ms) = 0.8 s.
    expect(line).toContain('idle while shards ran 0.80 s thread-time');
    expect(line).toContain('tail 0.60 s');
    // (10 + 20 + 10 + 10) / 4 ms.
    expect(line).toContain('messaging 12.5 ms per shard');
  });

  it('no timings: says so; no CPU times: leaves them out', () => {
    expect(timelineOf([], 1)).toBe('no shard timings');
    expect(timelineOf([t(1, 0, 100, 90)], 1)).not.toContain('thread CPU');
  });
});

describe('cpuAccountOf', () => {
  it("splits the job's CPU by thread: pool threads in and outside their shards, main, older helper threads, new threads, ended ones; each pool thread's first shard against the rest", () => {
    const main = process.pid;
    // Pool threads 101 and 102 (102 started during the job), helper 50, the job's thread 200 (new).
    const before = new Map([[main, 1000], [50, 300], [101, 500]]);
    const after = new Map([[main, 1100], [50, 700], [101, 2500], [102, 1800], [200, 600]]);
    const timings = [t(101, 0, 1, 1, 600), t(101, 1, 2, 1, 400), t(101, 2, 3, 1, 500), t(101, 3, 4, 1, 300), t(102, 0, 1, 1, 900), t(102, 1, 2, 1, 700)];
    const line = cpuAccountOf(before, after, [101, 102], timings, 5500);
    // Pool: 2000 + 1800 ms, 3400 of it in shards.
    expect(line).toContain('pool 3.80 s (in shards 3.40, outside 0.40)');
    expect(line).toContain('main 0.10 s');
    expect(line).toContain('threads older than the job (V8\'s compiler and GC helpers, libuv) 0.40 s');
    expect(line).toContain('threads started in it (the job\'s thread) 0.60 s');
    // 5500 - (3800 + 100 + 400 + 600).
    expect(line).toContain('the job\'s thread once gone) 0.60 s');
    expect(line).toContain('first / median (min-max) of the rest: 600 / 400 (300-500), 900 / 700 (700-700) ms');
  });

  it('says so when the OS gives no per-thread CPU', () => {
    expect(cpuAccountOf(new Map(), new Map(), [], [])).toBe('no per-thread CPU (not Linux)');
  });
});
