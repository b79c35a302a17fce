/**
 * A server restart while shards run, with a real nats-server and an in-process worker (so the moment
 * of the restart is exact): a shard that finishes while the server is down stores and announces its
 * result once the server is back (run once, never retried: the work done is not thrown away, no
 * delivery is burnt), and the submitting run gets it; the logs on both sides say the server went away
 * and came back. A separate server: stopping it must not disturb the other cluster tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import type { AttackBatchTask } from '../../../src-main/engine/attacks/base';
import { NatsShardExecutor } from '../../../src-main/jobs/cluster/executor';
import { ClusterWorker } from '../../../src-main/jobs/cluster/cluster-worker';
import { startNatsServer, type NatsTestServer } from './nats-server';
import { linearModelTask } from './linear-task';

const TIMINGS = { ackWaitMs: 3000, maxDeliver: 3 };
let server: NatsTestServer;
let tmp: string;
let task: AttackBatchTask;

beforeAll(async () => {
  server = await startNatsServer();
  tmp = mkdtempSync(join(tmpdir(), 'advlab-restart-'));
  await initBackend('wasm');
  task = await linearModelTask(tmp);
});
afterAll(async () => {
  await server?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a server restart while a shard runs', () => {
  it('a shard finishing while the server is down stores its result once the server is back: run once, attempt 1, the run gets it', async () => {
    const workerLog: string[] = [];
    const jobLog: string[] = [];
    const result = { adversarial: new Float32Array(2 * 784).fill(0.75), iterations: new Int32Array([1, 1]) };
    let runs = 0;
    let restarted: Promise<void> = Promise.resolve();
    const worker = new ClusterWorker({
      auth: { url: server.url, token: server.token }, concurrency: 1, cacheDir: join(tmp, 'cache'), timings: TIMINGS, offlineMs: 20_000,
      log: (l) => workerLog.push(l),
      run: async () => {
        runs++;
        // The server goes away while the shard computes, and comes back 1.5 s after it finished.
        await server.stop();
        restarted = new Promise((ok) => setTimeout(ok, 1500)).then(() => server.start());
        return result;
      },
    });
    await worker.start();
    const executor = await NatsShardExecutor.open({ auth: { url: server.url, token: server.token }, job: 'restart-test', ctx: { cancelled: false, log: (l) => jobLog.push(l) }, timings: TIMINGS, offlineMs: 20_000 });
    try {
      const t0 = Date.now();
      const [out] = await executor.run([{ type: 'attack-batch', id: 'restart/0', task }]);
      await restarted;
      expect(out.adversarial[0]).toBe(0.75);
      expect(Array.from(out.iterations)).toEqual([1, 1]);
      // Run once, on its first delivery: the restart cost a pause, not the shard.
      expect(runs).toBe(1);
      expect(workerLog.join('\n')).toMatch(/restart\/0: done in \d+ ms \(run \w+, attempt 1\)/);
      expect(workerLog.join('\n')).not.toMatch(/will retry|failed/);
      expect(workerLog.join('\n')).toMatch(/is back after \d+\.\d s/);
      expect(jobLog.join('\n')).toMatch(/lost the cluster at nats:\/\/127\.0\.0\.1:\d+: reconnecting/);
      expect(jobLog.join('\n')).toMatch(/the cluster at nats:\/\/127\.0\.0\.1:\d+ is back after/);
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await executor.close();
      await worker.stop(1000);
    }
  });
});
