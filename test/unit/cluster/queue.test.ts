/**
 * The queue's delivery rules, with a real nats-server and in-process workers whose shard runner is
 * given (so a shard can fail or take long on purpose): a shard longer than the ack wait is kept alive
 * by in-progress acks and run once; a shard that keeps failing with a retryable error is delivered
 * max-deliver times and then fails its run with the last error; a shard taken by a worker that goes
 * silent (dies without acking, no in-progress acks, no error) is redelivered after each ack wait and,
 * after max-deliver, fails its run (with the last error any delivery reported) instead of hanging;
 * progress reaches the submitter and never goes back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import type { AttackBatchTask } from '../../../src-main/engine/attacks/base';
import type { Shard, ShardProgress } from '../../../src-main/engine/shards/types';
import { NatsShardExecutor } from '../../../src-main/jobs/cluster/executor';
import { ClusterWorker, type ShardRunner } from '../../../src-main/jobs/cluster/cluster-worker';
import { connectCluster, NAMES } from '../../../src-main/jobs/cluster/connection';
import { jetstream } from '@nats-io/jetstream';
import { startNatsServer, type NatsTestServer } from './nats-server';
import { linearModelTask } from './linear-task';

const TIMINGS = { ackWaitMs: 1500, maxDeliver: 3 };
let server: NatsTestServer;
let tmp: string;
let task: AttackBatchTask;

beforeAll(async () => {
  server = await startNatsServer();
  tmp = mkdtempSync(join(tmpdir(), 'advlab-queue-'));
  await initBackend('wasm');
  task = await linearModelTask(tmp);
});
afterAll(async () => {
  await server?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** `count` workers (one shard at once each) running shards with `run`, for the time of f. */
async function withWorkers<T>(count: number, run: ShardRunner, f: () => Promise<T>): Promise<T> {
  const ws = Array.from({ length: count }, () => new ClusterWorker({ auth: { url: server.url, token: server.token }, concurrency: 1, run, cacheDir: join(tmp, 'cache'), timings: TIMINGS }));
  await Promise.all(ws.map((w) => w.start()));
  try {
    return await f();
  } finally {
    await Promise.all(ws.map((w) => w.stop(1000)));
  }
}

/**
 * A worker that takes shards from the workers' consumer and goes silent with each: no ack, no
 * in-progress ack, no event (what a SIGKILLed or frozen process leaves). Records each delivery's count.
 */
async function silentWorker(): Promise<{ deliveries: number[]; stop(): Promise<void> }> {
  const cluster = await connectCluster({ url: server.url, token: server.token }, { name: 'silent-worker', timings: TIMINGS, worker: true });
  const consumer = await jetstream(cluster.nc).consumers.get(NAMES.shardStream, NAMES.workers);
  const messages = await consumer.consume({ max_messages: 1 });
  const deliveries: number[] = [];
  void (async () => {
    for await (const m of messages) deliveries.push(m.info.deliveryCount); // and never answers
  })().catch(() => undefined);
  return {
    deliveries,
    stop: async () => {
      await messages.close();
      await cluster.close();
    },
  };
}

async function submit(shards: Shard<'attack-batch'>[], onProgress?: (i: number, p: ShardProgress) => void, ctx = { cancelled: false, log: () => undefined }) {
  const executor = await NatsShardExecutor.open({ auth: { url: server.url, token: server.token }, job: 'queue-test', ctx, timings: TIMINGS });
  try {
    return await executor.run(shards, onProgress);
  } finally {
    await executor.close();
  }
}

describe('cluster queue delivery', () => {
  it('a shard longer than the ack wait is kept alive by in-progress acks: run once, its progress reaches the submitter in order', async () => {
    let runs = 0;
    const result = { adversarial: new Float32Array(2 * 784).fill(0.25), iterations: new Int32Array([3, 4]) };
    const seen: number[] = [];
    // Two workers: a redelivery (an ack not kept alive) would go to the idle one and run the shard twice.
    const out = await withWorkers(2, async (_shard, ctx) => {
      runs++;
      for (let s = 1; s <= 8; s++) {
        await new Promise((ok) => setTimeout(ok, 500)); // 4 s in all, well past the 1.5 s ack wait
        ctx.checkpoint();
        ctx.progress({ step: s, total: 8 });
      }
      return result;
    }, () => submit([{ type: 'attack-batch', id: 'long/0', task }], (_i, p) => seen.push(p.step)));
    expect(runs).toBe(1);
    expect(Array.from(out[0].iterations)).toEqual([3, 4]);
    expect(out[0].adversarial[0]).toBe(0.25);
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.every((s, i) => i === 0 || s >= seen[i - 1])).toBe(true);
    expect(seen.at(-1)).toBe(8);
  });

  it('a shard failing with a retryable error is delivered max-deliver times, then its run fails with the last error', async () => {
    let runs = 0;
    const t0 = Date.now();
    const e = await withWorkers(1, async () => {
      runs++;
      throw new AdvlabError('INTERNAL', `transient failure ${runs}`);
    }, () => submit([{ type: 'attack-batch', id: 'flaky/0', task }]).then(() => null, (err: unknown) => err));
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as AdvlabError).message).toMatch(/Shard flaky\/0 failed on .* \(attempt 3\): transient failure 3/);
    expect(runs).toBe(TIMINGS.maxDeliver);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('a shard whose worker goes silent on every delivery is redelivered after each ack wait, then its run fails at max-deliver (no hang)', async () => {
    const silent = await silentWorker();
    const t0 = Date.now();
    try {
      const e = await submit([{ type: 'attack-batch', id: 'silent/0', task }]).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(AdvlabError);
      expect((e as AdvlabError).message).toMatch(/Shard silent\/0 was delivered 3 times \(max-deliver\) without a result; its workers stopped answering/);
      expect(silent.deliveries).toEqual([1, 2, 3]); // redelivered after each ack wait, never beyond max-deliver
      // Three ack waits and the advisory's grace, well under the stall bound: the path ends the run, not a timeout.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3 * TIMINGS.ackWaitMs);
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await silent.stop();
    }
  });

  it('a shard that failed once with a retryable error and then went to a worker that went silent: at max-deliver its run fails with that last error', async () => {
    let runs = 0;
    let firstRun!: () => void;
    const ran = new Promise<void>((ok) => (firstRun = ok));
    const failing = new ClusterWorker({
      auth: { url: server.url, token: server.token }, concurrency: 1, cacheDir: join(tmp, 'cache'), timings: TIMINGS,
      run: async () => {
        runs++;
        firstRun();
        throw new AdvlabError('INTERNAL', `transient failure ${runs}`);
      },
    });
    await failing.start();
    const outcome = submit([{ type: 'attack-batch', id: 'then-silent/0', task }]).then(() => null, (err: unknown) => err);
    await ran;
    await failing.stop(1000); // it nak'ed the shard (redelivery in 1 s) and is gone
    const silent = await silentWorker();
    try {
      const e = await outcome;
      expect(runs).toBe(1);
      expect(e).toBeInstanceOf(AdvlabError);
      expect((e as AdvlabError).message).toMatch(/Shard then-silent\/0 was delivered 3 times \(max-deliver\) without a result; last error: transient failure 1/);
      expect(silent.deliveries).toEqual([2, 3]);
    } finally {
      await silent.stop();
    }
  });

  it('a cancel while a shard runs: a shard that answers with its partial result (as the audio attack does) gives it to the run, as on the local pool', async () => {
    const partial = { adversarial: new Float32Array(2 * 784).fill(0.125), iterations: new Int32Array([7, 7]) };
    const ctx = { cancelled: false, log: () => undefined };
    let started!: () => void;
    const running = new Promise<void>((ok) => (started = ok));
    let runs = 0;
    const t0 = Date.now();
    const out = await withWorkers(1, async (_shard, shardCtx) => {
      runs++;
      started();
      // Steps until the job's cancel reaches this worker, then returns what it has (audio-clip's handler does so).
      for (let s = 0; s < 600 && !shardCtx.cancelled; s++) await new Promise((ok) => setTimeout(ok, 50));
      if (!shardCtx.cancelled) throw new Error('the cancel never reached the shard');
      return partial;
    }, async () => {
      const outcome = submit([{ type: 'attack-batch', id: 'partial/0', task }], undefined, ctx).then((r) => r, (err: unknown) => err);
      await running;
      ctx.cancelled = true;
      return outcome;
    });
    expect(out).not.toBeInstanceOf(Error);
    const [r] = out as Awaited<ReturnType<typeof submit>>;
    expect(Array.from(r.iterations)).toEqual([7, 7]);
    expect(r.adversarial[0]).toBe(0.125);
    expect(runs).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a cancel while a shard runs: a shard that stops without a result fails the run with CancelledError, within the grace', async () => {
    const ctx = { cancelled: false, log: () => undefined };
    let started!: () => void;
    const running = new Promise<void>((ok) => (started = ok));
    const t0 = Date.now();
    const e = await withWorkers(1, async (_shard, shardCtx) => {
      started();
      for (let s = 0; s < 600; s++) {
        await new Promise((ok) => setTimeout(ok, 50));
        shardCtx.checkpoint();
      }
      throw new Error('the cancel never reached the shard');
    }, async () => {
      const outcome = submit([{ type: 'attack-batch', id: 'stopped/0', task }], undefined, ctx).then(() => null, (err: unknown) => err);
      await running;
      ctx.cancelled = true;
      return outcome;
    });
    expect(e).toBeInstanceOf(CancelledError);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
