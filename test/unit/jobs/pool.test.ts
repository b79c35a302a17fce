/**
 * The local shard pool through the real runner (out/main/worker.js and shard-worker.js): a seeded
 * attack gives the same examples.json with 1 and 2 pool threads, progress never goes back, the pool's
 * threads are reused across jobs, a cancel stops every shard and keeps the done batches, and a pool
 * thread that dies mid-shard is retried once on a fresh thread, then fails the job naming the shard.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiEvent, JobInfo } from '../../../src-main/api/contract';
import type { JobParamsOf } from '../../../src-main/api/jobs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import { MAX_SHARD_ATTEMPTS } from '../../../src-main/jobs/pool';
import { backwardProgress, DATA, poolRunners, progressOf, WORKER } from '../helpers';

let root: string;
let sessionsRoot: string;
let model: string;
const { runner, shutdown } = poolRunners(() => ({ sessionsRoot }));

const attack = (over: Partial<JobParamsOf<'attack'>['params']> = {}, n = 12, batchSize = 3): JobParamsOf<'attack'> => ({
  // engine tfjs: the pool runs the wasm engine's shards (auto would put this plain model on ONNX Runtime, which runs in place).
  model, dataset: 'mnist', n, batchSize, attack: 'pgd', engine: 'tfjs', saveExamples: 0, goal: { kind: 'untargeted' }, tags: [],
  params: { eps: 0.1, steps: 10, randomStart: true, restarts: 2, seed: 7, ...over },
} as unknown as JobParamsOf<'attack'>);

const examples = async (session: string) => readFile(join(sessionsRoot, session, 'artifacts', 'examples.json'), 'utf8');

beforeAll(async () => {
  for (const f of [WORKER, join(WORKER, '../shard-worker.js')]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npx electron-vite build" first`);
  root = await mkdtemp(join(tmpdir(), 'advlab-pool-'));
  sessionsRoot = join(root, 'sessions');
  const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
  model = ((await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 200, testLimit: 20, validationSplit: 0 }, new LocalContext(), env)) as { session: string }).session;
}, 120_000);

afterAll(async () => {
  await shutdown();
  await rm(root, { recursive: true, force: true });
});

describe('the shard pool through the runner', () => {
  let reference: string;

  it('a seeded attack gives the same examples.json with 1 and 2 pool threads; progress never goes back; shards and workers are reported', async () => {
    const outs: string[] = [];
    for (const workers of [1, 2]) {
      const { r, events } = runner(workers);
      const { jobId, done } = r.start('attack', attack());
      const info = await done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      outs.push(await examples(info.session!));
      expect(backwardProgress(progressOf(events, jobId))).toEqual([]);
      const { ran, ...counts } = info.shards!;
      expect(counts).toEqual({ where: 'pool', done: 4, total: 4, workers });
      // Where each shard ran: local pool threads, as many as the workers reported, 4 shards in all.
      expect(ran!.map((r) => r.worker).every((w) => /^thread \d+$/.test(w))).toBe(true);
      expect(ran!.reduce((a, r) => a + r.shards, 0)).toBe(4);
      expect(ran).toHaveLength(workers);
      expect(r.list().find((j) => j.jobId === jobId)?.shards?.done).toBe(4);
      const m = await new SessionStore(sessionsRoot).manifest(info.session!);
      expect(m.environment.workers).toBe(workers);
    }
    expect(outs[1]).toEqual(outs[0]);
    expect(JSON.parse(outs[0])).toHaveLength(12);
    reference = outs[0];
    // And the same as the job run in place, with no executor at all (in this thread).
    const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
    const inPlace = (await jobHandlers.attack(attack(), new LocalContext(), env)) as { session: string };
    expect(await examples(inPlace.session)).toEqual(reference);
  });

  it("a loss-surface job's grid batches run as shards on the pool and give the same loss-surface.json as in place", async () => {
    const { r, events } = runner(2);
    const params = { model, dataset: 'mnist', index: 3, resolution: 11 } as JobParamsOf<'loss-surface'>;
    const { jobId, done } = r.start('loss-surface', params);
    const info = await done;
    expect(info.state, JSON.stringify(info.error)).toBe('finished');
    expect(info.shards).toMatchObject({ where: 'pool', done: 2, total: 2 });
    // What the status bar shows last: every shard done (the last shard's result came after the job's last progress).
    expect(progressOf(events, jobId).at(-1)?.shards).toMatchObject({ done: 2, total: 2 });
    const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
    const inPlace = (await jobHandlers['loss-surface'](params, new LocalContext(), env)) as { session: string };
    const file = (session: string) => readFile(join(sessionsRoot, session, 'artifacts', 'loss-surface.json'), 'utf8');
    expect(await file(info.session!)).toEqual(await file(inPlace.session));
  });

  it('a gradient-check job runs its attacks, surfaces and the transfer attack on its trained surrogate as shards: same checks.json with 1 and 2 threads as in place', async () => {
    const params = {
      model, dataset: 'mnist', n: 8, steps: 4, restarts: 2, surrogateTrainLimit: 200, surrogateEpochs: 1, surfaceImages: 1, engine: 'tfjs', seed: 3,
    } as unknown as JobParamsOf<'gradient-check'>;
    const checks = async (session: string) => {
      const c = JSON.parse(await readFile(join(sessionsRoot, session, 'artifacts', 'checks.json'), 'utf8')) as { checks: { id: string; numbers: Record<string, number>; explanation?: string }[]; seconds?: number };
      // Every number but timings: the job's seconds and the RobustBench check's forward and gradient ms (and the text quoting them).
      delete c.seconds;
      for (const k of c.checks.filter((x) => x.id === 'robustbench-rules')) {
        for (const t of ['forwardMs', 'inputGradientMs', 'forwardToGradientRatio']) delete k.numbers[t];
        delete k.explanation;
      }
      return JSON.stringify(c);
    };
    const outs: string[] = [];
    for (const workers of [1, 2]) {
      const { r } = runner(workers);
      const info = await r.start('gradient-check', params).done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      expect(info.shards?.where).toBe('pool');
      expect(info.shards?.done).toBe(info.shards?.total);
      expect(info.shards!.total).toBeGreaterThan(4);
      outs.push(await checks(info.session!));
    }
    expect(outs[1]).toEqual(outs[0]);
    const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
    const inPlace = (await jobHandlers['gradient-check'](params, new LocalContext(), env)) as { session: string };
    expect(await checks(inPlace.session)).toEqual(outs[0]);
  }, 240_000);

  it('an audio attack runs its clip as an audio-clip shard on the pool: the same WAVs, metrics and summary with 1 and 2 threads as in place', async () => {
    const wav = join(import.meta.dirname, '../../../resources/starter/data/fsdd/recordings/0_george_0.wav');
    // Pinned to tfjs: the pool runs tfjs shards; auto would put the speech network on ONNX Runtime, in place.
    const params = { model: 'starter:speech-base', wav, target: null, iterations: 12, seed: 5, engine: 'tfjs' } as unknown as JobParamsOf<'audio-attack'>;
    const outcome = async (session: string) => {
      const dir = join(sessionsRoot, session);
      const m = await new SessionStore(sessionsRoot).manifest(session);
      const { seconds: _s, ...summary } = m.summary as Record<string, unknown>;
      return {
        summary,
        adversarial: await readFile(join(dir, 'artifacts', 'adversarial.wav'), 'base64'),
        perturbation: await readFile(join(dir, 'artifacts', 'perturbation.wav'), 'base64'),
        rows: await readFile(join(dir, 'metrics', 'attack.jsonl'), 'utf8'),
      };
    };
    const outs = [];
    for (const workers of [1, 2]) {
      const { r } = runner(workers);
      const info = await r.start('audio-attack', params).done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      expect(info.shards).toMatchObject({ where: 'pool', done: 1, total: 1, workers: 1 });
      outs.push(await outcome(info.session!));
    }
    expect(outs[1]).toEqual(outs[0]);
    expect(outs[0].rows.trim().split('\n').length).toBeGreaterThan(0);
    const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
    const inPlace = (await jobHandlers['audio-attack'](params, new LocalContext(), env)) as { session: string };
    expect(await outcome(inPlace.session)).toEqual(outs[0]);
  }, 240_000);

  it('starts all its threads when a pooled job has its backend, before the shards come (warm-up overlaps the job loading its data)', async () => {
    const { r } = runner(2);
    // One shard of 3 images: only one thread ever runs a shard, yet both were started for the job.
    const info = await r.start('attack', attack({}, 3, 3)).done;
    expect(info.state, JSON.stringify(info.error)).toBe('finished');
    expect(info.shards).toMatchObject({ where: 'pool', done: 1, total: 1, workers: 1 });
    expect(r.poolThreads()).toHaveLength(2);
  });

  it('reuses its threads across jobs (same thread ids)', async () => {
    const { r } = runner(2);
    const first = await r.start('attack', attack({}, 12, 3)).done;
    expect(first.state).toBe('finished');
    const threads = r.poolThreads().map((t) => t.threadId).sort();
    expect(threads).toHaveLength(2);
    const second = await r.start('attack', attack({ seed: 8 }, 12, 3)).done;
    expect(second.state).toBe('finished');
    expect(r.poolThreads().map((t) => t.threadId).sort()).toEqual(threads);
    expect(await examples(first.session!)).toEqual(reference);
  });

  it('warmPool (the app calls it when it starts) starts every thread and warms it up before any job; a job sent during the warm-up gives the same examples.json, on the same threads, which then report warm', async () => {
    const { r } = runner(2);
    expect(r.poolThreads()).toHaveLength(0);
    await r.warmPool();
    expect(r.pool!.warmth().map((w) => w.state)).toEqual(['starting', 'starting']);
    const threads = r.poolThreads().map((t) => t.threadId).sort();
    const info = await r.start('attack', attack()).done;
    expect(info.state, JSON.stringify(info.error)).toBe('finished');
    expect(await examples(info.session!)).toEqual(reference);
    await r.pool!.settled();
    expect(r.pool!.warmth().map((w) => w.state)).toEqual(['warm', 'warm']);
    expect(r.poolThreads().map((t) => t.threadId).sort()).toEqual(threads);
  });

  it('a cancel reaches every running shard within a step; the session ends cancelled with the done prefix of batches', async () => {
    const { r, events } = runner(2);
    // Warm both threads (started, model cached), so the cancelled job's first two shards start together.
    expect((await r.start('attack', attack({ steps: 2 }, 4, 2)).done).state).toBe('finished');
    // 6 shards of 2 images, 1,000 steps each at an eps too small to succeed (so no shard stops early: seconds per shard
    // even on an idle machine, and the cancel comes while the next two run, before the last two are sent):
    // cancelled once two shards are done.
    const { jobId, done } = r.start('attack', attack({ eps: 0.001, steps: 1000, restarts: 1 }, 12, 2));
    let cancelledAt = 0;
    r.on('event', (e: ApiEvent) => {
      if (cancelledAt || e.type !== 'job.progress' || e.jobId !== jobId) return;
      if ((e.shards?.done ?? 0) < 2) return;
      cancelledAt = performance.now();
      r.cancel(jobId);
    });
    const info = await done;
    const stopMs = performance.now() - cancelledAt;
    expect(cancelledAt).toBeGreaterThan(0);
    expect(info.state).toBe('cancelled');
    // A shard of 1,000 steps on 2 images takes seconds; every running one stopped within a step, far less.
    expect(stopMs).toBeLessThan(3000);
    expect(r.poolThreads().every((t) => t.jobId === undefined)).toBe(true);
    expect(info.shards!.total).toBeLessThan(6);
    const m = await new SessionStore(sessionsRoot).manifest(info.session!);
    expect(m.status).toBe('cancelled');
    // The done prefix (batches 0 and 1 ran first, on the two warm threads), in example order.
    const file = join(sessionsRoot, info.session!, 'artifacts', 'examples.json');
    expect(existsSync(file), JSON.stringify({ info, summary: m.summary, stopMs })).toBe(true);
    const kept = JSON.parse(await readFile(file, 'utf8')) as { index: number }[];
    // The done prefix: whole batches from the first, no more than the shards that finished (a thread slowed by other
    // load can finish batch 2 before batch 1, so the prefix may be shorter than the count of finished shards).
    expect(kept.length / 2).toBeLessThanOrEqual(info.shards!.done);
    expect(kept.length % 2).toBe(0);
    expect(kept.map((e) => e.index)).toEqual(kept.map((_, i) => i));
    expect(backwardProgress(progressOf(events, jobId))).toEqual([]);
  });

  it('a pool thread that dies mid-shard: the shard is retried once on a fresh thread and the job finishes with the same results', async () => {
    const { r } = runner(1);
    const { done } = r.start('attack', attack());
    let killed = 0;
    const timer = setInterval(() => {
      const busy = r.poolThreads().find((t) => t.jobId);
      if (!killed && busy) { killed = busy.threadId; void r.pool!.terminateThread(busy.threadId); }
    }, 5);
    const info = await done;
    clearInterval(timer);
    expect(killed).toBeGreaterThan(0);
    expect(info.state, JSON.stringify(info.error)).toBe('finished');
    expect(r.poolThreads().map((t) => t.threadId)).not.toContain(killed);
    expect(await examples(info.session!)).toEqual(reference);
  });

  it(`a shard whose thread dies on each of its ${MAX_SHARD_ATTEMPTS} attempts fails the job with an error naming the shard (no hang)`, async () => {
    const { r } = runner(1);
    const { done } = r.start('attack', attack());
    const killed = new Set<number>();
    const timer = setInterval(() => {
      for (const t of r.poolThreads()) if (t.jobId && !killed.has(t.threadId)) { killed.add(t.threadId); void r.pool!.terminateThread(t.threadId); }
    }, 5);
    const info = await done;
    clearInterval(timer);
    expect(info.state).toBe('failed');
    expect(info.error!.message).toMatch(/^Shard attack-batch\/0\/[0-9a-f]{16} of job-\w+ failed: its pool worker died on each of 2 attempts/);
    expect(killed.size).toBe(MAX_SHARD_ATTEMPTS);
    expect((await new SessionStore(sessionsRoot).manifest(info.session!)).status).toBe('failed');
  });
});
