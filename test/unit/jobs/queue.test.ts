/**
 * The job runner's bound (issue 14, Jobs): at most maxJobs jobs run at once, the rest wait in a FIFO
 * queue that jobs.list and the job.queued event show, and a queued job can be cancelled without any
 * worker or session. The backend probe never waits in the queue. Real runner, real (fast) jobs.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../../src-main/api/contract';
import { DEFAULT_MAX_JOBS, JobRunner } from '../../../src-main/jobs/runner';
import { defaultPoolSize } from '../../../src-main/jobs/pool';
import { parseMaxJobs, resolveAppOptions } from '../../../src-main/host/app';
import { DATA, WORKER } from '../helpers';

function runner(maxJobs?: number) {
  const sessionsRoot = mkdtempSync(join(tmpdir(), 'advlab-queue-'));
  const r = new JobRunner({ workerPath: WORKER, env: { dataDirs: [DATA], sessionsRoot }, cancelGraceMs: 5000, maxJobs });
  const events: ApiEvent[] = [];
  r.on('event', (e) => events.push(e));
  return { r, events, sessionsRoot };
}

const sessionsIn = (root: string) => (existsSync(root) ? readdirSync(root).filter((f) => !f.startsWith('.')) : []);

describe('job queue', () => {
  beforeAll(() => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run "npm run build" first`);
  });

  it("the default is the shard pool's size (one per core: issue 14's 'the worker pool's size'); --max-jobs and ADVLAB_MAX_JOBS set it, with bounds", () => {
    expect(defaultPoolSize()).toBe(availableParallelism());
    expect(DEFAULT_MAX_JOBS).toBe(defaultPoolSize());
    expect(resolveAppOptions([], { ADVLAB_DATA: DATA }).maxJobs).toBeUndefined();
    expect(resolveAppOptions([], { ADVLAB_DATA: DATA, ADVLAB_MAX_JOBS: '3' }).maxJobs).toBe(3);
    expect(resolveAppOptions(['--max-jobs', '1'], { ADVLAB_DATA: DATA, ADVLAB_MAX_JOBS: '3' }).maxJobs).toBe(1);
    for (const bad of ['0', '-1', '1.5', 'two', '65']) expect(() => parseMaxJobs(bad, '--max-jobs')).toThrow(/--max-jobs must be an integer from 1 to 64/);
    expect(() => new JobRunner({ workerPath: WORKER, env: { dataDirs: [], sessionsRoot: tmpdir() }, maxJobs: 0 })).toThrow(/maxJobs/);
  });

  it('runs at most maxJobs at once and starts the queued ones in the order they came', async () => {
    const { r, events } = runner(2);
    const jobs = Array.from({ length: 5 }, () => r.start('diagnostics', { batch: 1, repeats: 1 }));
    const ids = jobs.map((j) => j.jobId);
    // Right after starting: two run, three wait, in order, and the API says so.
    const listed = r.list();
    expect(listed.map((j) => [j.jobId, j.state])).toEqual([
      [ids[0], 'running'], [ids[1], 'running'], [ids[2], 'queued'], [ids[3], 'queued'], [ids[4], 'queued'],
    ]);
    expect(events.filter((e) => e.type === 'job.queued')).toEqual(ids.slice(2).map((jobId, i) => ({ type: 'job.queued', jobId, kind: 'diagnostics', position: i + 1 })));
    expect(r.wait(ids[4])).toBeDefined();
    const infos = await Promise.all(jobs.map((j) => j.done));
    expect(infos.map((i) => i.state)).toEqual(['finished', 'finished', 'finished', 'finished', 'finished']);
    // Replay the events: never more than two running, two reached, and started in FIFO order.
    let running = 0;
    let most = 0;
    const startedOrder: string[] = [];
    for (const e of events) {
      if (e.type === 'job.started') { running++; startedOrder.push(e.jobId); }
      if (e.type === 'job.finished' || e.type === 'job.failed' || e.type === 'job.cancelled') running--;
      most = Math.max(most, running);
    }
    expect(most).toBe(2);
    expect(startedOrder).toEqual(ids);
    await r.shutdown();
  }, 120_000);

  it('a queued job is cancelled without a worker or a session; the probe does not wait; the next queued job runs', async () => {
    const { r, events, sessionsRoot } = runner(1);
    const holder = r.start('diagnostics', { batch: 256, repeats: 100 });
    const queuedTrain = r.start('train', { dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 20, testLimit: 10, validationSplit: 0 });
    const next = r.start('diagnostics', { batch: 1, repeats: 1 });
    expect(r.list().map((j) => j.state)).toEqual(['running', 'queued', 'queued']);
    // The backend probe is internal: it runs now, although the only slot is taken.
    const backend = await r.backend();
    expect(backend.name).toBe('wasm');
    expect(r.list().find((j) => j.jobId === holder.jobId)?.state).toBe('running');

    expect(r.cancel(queuedTrain.jobId)).toBe(true);
    const cancelled = await queuedTrain.done;
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.session).toBeUndefined();
    expect(events.some((e) => e.type === 'job.started' && e.jobId === queuedTrain.jobId)).toBe(false);
    expect(events.find((e) => e.type === 'job.cancelled' && e.jobId === queuedTrain.jobId)).toBeDefined();
    expect(r.cancel(queuedTrain.jobId)).toBe(false); // ended: nothing to cancel
    expect(r.list().find((j) => j.jobId === next.jobId)?.state).toBe('queued'); // still waits for the holder

    expect(r.cancel(holder.jobId)).toBe(true);
    expect((await holder.done).state).toBe('cancelled');
    expect((await next.done).state).toBe('finished');
    const started = events.filter((e) => e.type === 'job.started').map((e) => (e as { jobId: string }).jobId);
    expect(started).toEqual([holder.jobId, next.jobId]);
    expect(sessionsIn(sessionsRoot)).toEqual([]); // the cancelled train never opened a session
    await r.shutdown();
  }, 120_000);

  it('shutdown cancels queued jobs and starts none of them', async () => {
    const { r, events } = runner(1);
    const holder = r.start('diagnostics', { batch: 256, repeats: 100 });
    const waiting = r.start('diagnostics', { batch: 1, repeats: 1 });
    await r.shutdown();
    expect((await waiting.done).state).toBe('cancelled');
    expect(['cancelled', 'failed']).toContain((await holder.done).state);
    expect(events.some((e) => e.type === 'job.started' && e.jobId === waiting.jobId)).toBe(false);
  }, 60_000);
});
