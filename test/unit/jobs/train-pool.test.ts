/**
 * Data-parallel training through the real runner and shard pool (out/main/worker.js and
 * shard-worker.js): a seeded cw-mnist train job (dropout 0.5) gives the same loss curve with 2 pool
 * threads as with 1 (which trains in the job's own thread) within 1e-5, its gradients computed on 2
 * shards per step, and bit for bit the same with 3 threads as with 2 (the split does not depend on
 * the workers); the session looks the same; a cancel stops it within a step, the model saved as cancelled.
 */
import { existsSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent } from '../../../src-main/api/contract';
import { SessionStore } from '../../../src-main/engine/sessions';
import { backwardProgress, poolRunners, progressOf, WORKER } from '../helpers';

let root: string;
let sessionsRoot: string;
const { runner, shutdown } = poolRunners(() => ({ sessionsRoot }));

// 2 epochs of 2 steps of 64 images (2 shards of 32 each on a pool).
// On tfjs: a job on ONNX Runtime (the default engine, auto) trains in its own worker, not on the pool.
const params = { dataset: 'mnist', arch: 'cw-mnist', epochs: 2, batchSize: 64, limit: 128, testLimit: 20, validationSplit: 0, seed: 3, optimizer: 'adam', engine: 'tfjs' } as const;
const jsonl = async (session: string, series: string) =>
  (await readFile(join(sessionsRoot, session, 'metrics', `${series}.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

beforeAll(async () => {
  for (const f of [WORKER, join(WORKER, '../shard-worker.js')]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npx electron-vite build" first`);
  root = await mkdtemp(join(tmpdir(), 'advlab-train-pool-'));
  sessionsRoot = join(root, 'sessions');
});

afterAll(async () => {
  await shutdown();
  await rm(root, { recursive: true, force: true });
});

describe('training on the shard pool', () => {
  it('a train job with 2 pool workers gives the loss curve of 1 worker (within 1e-5), its steps computed on 2 shards each; 3 workers give the 2-worker run bit for bit', async () => {
    const runs: { train: Record<string, number>[]; epochs: Record<string, number>[]; summary: Record<string, unknown>; files: string[]; model: string }[] = [];
    for (const workers of [1, 2, 3]) {
      const { r, events } = runner(workers);
      const { jobId, done } = r.start('train', params);
      const info = await done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      expect(backwardProgress(progressOf(events, jobId))).toEqual([]);
      // 1 worker: the job trains in its own thread; 2 or 3: every step (2 per epoch) is 2 shards on the pool.
      if (workers === 1) expect(info.shards).toBeUndefined();
      else expect(info.shards).toMatchObject({ where: 'pool', done: 8, total: 8 });
      const m = await new SessionStore(sessionsRoot).manifest(info.session!);
      expect(m.status).toBe('finished');
      runs.push({
        train: await jsonl(info.session!, 'train'),
        epochs: await jsonl(info.session!, 'epochs'),
        summary: m.summary as Record<string, unknown>,
        files: m.artifacts.map((a) => a.path).sort(),
        model: await readFile(join(sessionsRoot, info.session!, 'artifacts', 'model', 'weights.bin'), 'base64'),
      });
    }
    const [one, two, three] = runs;
    expect(one.train).toHaveLength(4);
    expect(two.train.map((row) => [row.step, row.epoch, row.batch, row.size])).toEqual(one.train.map((row) => [row.step, row.epoch, row.batch, row.size]));
    two.train.forEach((row, i) => {
      expect(Math.abs(row.loss - one.train[i].loss)).toBeLessThan(1e-5);
      expect(row.acc).toBe(one.train[i].acc);
    });
    two.epochs.forEach((row, i) => expect(Math.abs(row.loss - one.epochs[i].loss)).toBeLessThan(1e-5));
    expect(Math.abs((two.summary.testLoss as number) - (one.summary.testLoss as number))).toBeLessThan(1e-4);
    expect(two.files).toEqual(one.files);
    expect(three.train).toEqual(two.train);
    expect(three.model).toBe(two.model);
    expect(two.model).not.toBe(one.model); // float noise: within 1e-5, not bit for bit
  });

  it('a cancel stops the sharded training within a step: the session ends cancelled with the model trained so far', async () => {
    const { r, events } = runner(2);
    const { jobId, done } = r.start('train', { ...params, epochs: 4 });
    let cancelled = false;
    r.on('event', (e: ApiEvent) => {
      if (cancelled || e.type !== 'job.progress' || e.jobId !== jobId) return;
      if ((r.list().find((j) => j.jobId === jobId)?.shards?.done ?? 0) < 2) return;
      cancelled = true;
      r.cancel(jobId);
    });
    const info = await done;
    expect(cancelled).toBe(true);
    expect(info.state).toBe('cancelled');
    expect(info.shards!.total).toBeLessThan(16);
    expect(r.poolThreads().every((t) => t.jobId === undefined)).toBe(true); // no shard left running
    const m = await new SessionStore(sessionsRoot).manifest(info.session!);
    expect(m.status).toBe('cancelled');
    const rows = await jsonl(info.session!, 'train');
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.length).toBeLessThan(8);
    const saved = await readFile(join(sessionsRoot, info.session!, 'artifacts', 'model', 'model.json'), 'utf8');
    expect(JSON.stringify(JSON.parse(saved))).toContain('"trainingStatus":"cancelled"');
    expect(backwardProgress(progressOf(events, jobId))).toEqual([]);
  });
});

describe('speech training on the shard pool', () => {
  it('an audio-train job with 2 pool workers computes each step on 2 speech-grad shards and follows the 1-worker loss curve; 3 workers = 2 bit for bit', async () => {
    // On tfjs: on ONNX Runtime (the default engine, auto) speech training runs in the job's worker, not on the pool.
    const params = { quick: true, epochs: 1, utterances: 32, batchSize: 16, seed: 2, engine: 'tfjs' } as const;
    const curves: number[][] = [];
    for (const workers of [1, 2, 3]) {
      const { r } = runner(workers);
      const info = await r.start('audio-train', params).done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      // 1 worker: the job trains in its own thread; 2 or 3: every step (2 per epoch) is 2 shards on the pool.
      if (workers === 1) expect(info.shards).toBeUndefined();
      else expect(info.shards).toMatchObject({ where: 'pool', done: 4, total: 4 });
      curves.push((await jsonl(info.session!, 'train')).map((row) => row.loss));
    }
    const [one, two, three] = curves;
    expect(one).toHaveLength(2);
    two.forEach((l, i) => expect(Math.abs(l - one[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(one[i]))));
    expect(three).toEqual(two);
  }, 300_000);
});
