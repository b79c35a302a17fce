/**
 * The shard pool on its own (jobs/pool.ts with out/main/shard-worker.js): an unknown shard type fails
 * clearly without a retry, queued shards of an ended job fail, a thread still running an ended job's
 * shard is stopped and replaced, a cancel flag set before a shard starts means it never starts, and
 * shrinking the pool stops idle threads; each finished shard's timings (queued, started, finished,
 * the worker's compute and CPU time) are kept for the parallel bench.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { CancelledError } from '../../../src-main/engine/errors';
import { loadModel, saveModel } from '../../../src-main/engine/models/io';
import { classifierFor } from '../../../src-main/engine/models/defended';
import type { AttackBatchTask } from '../../../src-main/engine/attacks/base';
import { ShardPool } from '../../../src-main/jobs/pool';
import { mnist, trainDense } from '../attacks/helpers';
import { WORKER } from '../helpers';

const SHARD_WORKER = join(WORKER, '../shard-worker.js');
let dir: string;
let task: (steps: number) => AttackBatchTask;
const pools: ShardPool[] = [];
const pool = (size: number, warmUp?: string[]) => {
  const p = new ShardPool({ size, backend: 'wasm', workerPath: SHARD_WORKER, ...(warmUp ? { warmUp } : {}) });
  pools.push(p);
  return p;
};
const flag = () => new SharedArrayBuffer(4);
const until = async (cond: () => boolean, ms = 60_000) => {
  const t = performance.now();
  while (!cond()) {
    if (performance.now() - t > ms) throw new Error('timed out');
    await new Promise((ok) => setTimeout(ok, 10));
  }
};

beforeAll(async () => {
  if (!existsSync(SHARD_WORKER)) throw new Error(`${SHARD_WORKER} is missing: run "npx electron-vite build" first`);
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-pool-threads-'));
  const { model } = await trainDense(mnist(0, 200), 16, 1, 3);
  await saveModel(model, dir);
  model.dispose();
  const loaded = await loadModel(dir);
  const spec = classifierFor(loaded).spec!;
  loaded.model.dispose();
  const pts = mnist(5000, 2);
  task = (steps) => ({
    classifier: spec, attack: 'pgd', params: { eps: 0.1, steps, randomStart: true, restarts: 1, seed: 0, loss: 'ce', kappa: 0 },
    images: pts.images.slice(), shape: [2, 28, 28, 1], labels: pts.labels.slice(), targets: null, batch: 0,
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('ShardPool', () => {
  it('runs a shard and reuses its thread; an unknown shard type fails at once, named, without a retry', async () => {
    const p = pool(1);
    const out = (await p.run('job-a', { type: 'attack-batch', id: 'a/0', task: task(2) }, flag())) as { adversarial: Float32Array; iterations: Int32Array };
    expect(out.adversarial).toBeInstanceOf(Float32Array);
    expect(out.adversarial.length).toBe(2 * 784);
    const [thread] = p.threads();
    await expect(p.run('job-a', { type: 'no-such-shard', id: 'a/1', task: {} }, flag())).rejects.toThrow(/Unknown shard type "no-such-shard"/);
    expect(p.threads().map((t) => t.threadId)).toEqual([thread.threadId]);
  });

  it('a shard whose cancel flag is set before it starts never runs', async () => {
    const p = pool(1);
    const f = flag();
    const running = p.run('job-b', { type: 'attack-batch', id: 'b/0', task: task(300) }, f);
    const queued = p.run('job-b', { type: 'attack-batch', id: 'b/1', task: task(2) }, f);
    await until(() => p.threads().some((t) => t.shard === 'b/0'));
    Atomics.store(new Int32Array(f), 0, 1);
    await expect(running).rejects.toBeInstanceOf(CancelledError);
    await expect(queued).rejects.toBeInstanceOf(CancelledError);
  });

  it("an ended job's queued shards fail and a thread still running its shard is stopped and replaced", async () => {
    const p = pool(1);
    const running = p.run('job-c', { type: 'attack-batch', id: 'c/0', task: task(100_000) }, flag());
    const queued = p.run('job-c', { type: 'attack-batch', id: 'c/1', task: task(2) }, flag());
    await until(() => p.threads().some((t) => t.shard === 'c/0'));
    const stuck = p.threads()[0].threadId;
    p.dropJob('job-c');
    await expect(running).rejects.toThrow(/ended while its shard c\/0 ran/);
    await expect(queued).rejects.toThrow(/ended before its shard c\/1 ran/);
    // The next shard runs on a fresh thread.
    await p.run('job-d', { type: 'attack-batch', id: 'd/0', task: task(2) }, flag());
    expect(p.threads().map((t) => t.threadId)).not.toContain(stuck);
    expect(p.threads()).toHaveLength(1);
  });

  it('shrinking stops idle threads; growing starts threads as shards need them', async () => {
    const p = pool(2);
    await Promise.all([0, 1].map((i) => p.run('job-e', { type: 'attack-batch', id: `e/${i}`, task: task(30) }, flag())));
    expect(p.threads()).toHaveLength(2);
    p.resize(1);
    expect(p.threads()).toHaveLength(1);
    p.resize(3);
    expect(p.threads()).toHaveLength(1); // lazily
    await Promise.all([0, 1, 2].map((i) => p.run('job-f', { type: 'attack-batch', id: `f/${i}`, task: task(30) }, flag())));
    expect(p.threads()).toHaveLength(3);
    expect(() => p.resize(0)).toThrow(/pool size must be an integer from 1 to 64/);
  });

  it("keeps each finished shard's timings: in order queued <= started <= finished, the worker's compute within that, its thread CPU (Linux), per job", async () => {
    const p = pool(2);
    const t0 = performance.now();
    await Promise.all([p.run('timed-a', { type: 'attack-batch', id: 'a/0', task: task(5) }, flag()), p.run('timed-a', { type: 'attack-batch', id: 'a/1', task: task(5) }, flag())]);
    await p.run('timed-b', { type: 'attack-batch', id: 'b/0', task: task(2) }, flag());
    const a = p.timings('timed-a');
    expect(a.map((x) => x.shard).sort()).toEqual(['a/0', 'a/1']);
    expect(new Set(a.map((x) => x.threadId)).size).toBe(2); // one shard on each thread
    expect(p.timings('timed-b').map((x) => x.shard)).toEqual(['b/0']);
    expect(p.timings()).toHaveLength(3);
    for (const x of p.timings()) {
      expect(x.queued).toBeGreaterThanOrEqual(t0);
      expect(x.started).toBeGreaterThanOrEqual(x.queued);
      expect(x.finished).toBeGreaterThan(x.started);
      expect(x.computeMs).toBeGreaterThan(0);
      expect(x.computeMs!).toBeLessThanOrEqual(x.finished - x.started + 1);
      if (process.platform === 'linux') expect(x.cpuMs).toBeGreaterThanOrEqual(0);
    }
  }, 120_000);

  it('threads warm up when they start and report warm; a shard sent during the warm-up waits for it and gives the same result as on threads without one', async () => {
    type Out = { adversarial: Float32Array; iterations: Int32Array };
    const cold = pool(1, []);
    const reference = (await cold.run('cold', { type: 'attack-batch', id: 'w/0', task: task(5) }, flag())) as Out;
    expect(cold.warmth().map((w) => w.state)).toEqual(['cold']);

    const p = pool(2);
    p.warm();
    expect(p.warmth().map((w) => w.state)).toEqual(['starting', 'starting']);
    // Sent at once, while both threads start and warm up.
    const during = (await p.run('warming', { type: 'attack-batch', id: 'w/0', task: task(5) }, flag())) as Out;
    expect(p.warmth().some((w) => w.state === 'warm')).toBe(true);
    await p.settled();
    const warmth = p.warmth();
    expect(warmth.map((w) => w.state)).toEqual(['warm', 'warm']);
    for (const w of warmth) {
      expect(w.warmUpMs).toBeGreaterThan(0);
      if (process.platform === 'linux') expect(w.warmUpCpuMs).toBeGreaterThanOrEqual(0);
    }
    // It ran on one of the (now warm) threads, and gave the cold thread's result.
    const [timing] = p.timings('warming');
    expect(warmth.map((w) => w.threadId)).toContain(timing.threadId);
    expect(Buffer.from(during.adversarial.buffer).equals(Buffer.from(reference.adversarial.buffer))).toBe(true);
    expect([...during.iterations]).toEqual([...reference.iterations]);
    const after = (await p.run('warm', { type: 'attack-batch', id: 'w/0', task: task(5) }, flag())) as Out;
    expect(Buffer.from(after.adversarial.buffer).equals(Buffer.from(reference.adversarial.buffer))).toBe(true);
  }, 120_000);

  it('a failing warm-up leaves its thread cold, with the reason, and the thread still runs shards', async () => {
    const p = pool(1, ['no-such-attack']);
    p.warm();
    await p.settled();
    const [w] = p.warmth();
    expect(w.state).toBe('cold');
    expect(w.error).toMatch(/No warm-up for attack "no-such-attack" \(warm-up attacks: pgd, cw-l2\)/);
    const out = (await p.run('after-failed-warm-up', { type: 'attack-batch', id: 'f/0', task: task(2) }, flag())) as { adversarial: Float32Array };
    expect(out.adversarial.length).toBe(2 * 784);
    expect(p.threads().map((t) => t.threadId)).toEqual([w.threadId]);
  }, 120_000);
});
