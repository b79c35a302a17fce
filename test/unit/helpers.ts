import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { AdvlabError } from '../../src-main/engine/errors';
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { ApiEvent, ProgressEvent } from '../../src-main/api/contract';
import { JobRunner } from '../../src-main/jobs/runner';

/** The built job worker; `npm test` builds before the unit tests. */
export const WORKER = resolve(import.meta.dirname, '../../out/main/worker.js');
export const DATA = process.env.ADVLAB_DATA ?? resolve(import.meta.dirname, '../../../shared/data');
/** The repository, and the CLI as a user runs it (bin/advlab.mjs starts the built out/main/cli.js). */
export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/advlab.mjs');

/** What the CLI printed last on stdout, read as JSON (with --json: the result, or `{ error }`). */
export type CliJson = { error?: { code: string; message: string } } & Record<string, unknown>;

/**
 * Runs the built CLI (`npm test` builds first) from the repository, with ADVLAB_DATA = DATA and `env`
 * added; its exit status, output, and its last stdout line as JSON (null when that is not JSON).
 * `timeoutMs` (default 120 s) ends a run that hangs.
 */
export function advlab(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string; json: CliJson | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, ADVLAB_DATA: DATA, ...opts.env } });
  let json: CliJson | null = null;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    json = null;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** Progress events that go back (a recipe's bar must only move forward), as "phase step/total". */
export function backwardProgress(events: { step: number; total: number; phase?: string }[]): string[] {
  const f = events.map((p) => p.step / p.total);
  return events.filter((_, i) => i > 0 && f[i] < f[i - 1] - 1e-9).map((p) => `${p.phase} ${p.step}/${p.total}`);
}

/**
 * This thread's scheduler counters in ms (Linux: /proc/self/task/<tid>/schedstat, field 0 = time on a
 * CPU, field 1 = time runnable but waiting for one; the test runner's main thread has tid = pid), or null.
 */
function schedstat(field: 0 | 1): number | null {
  if (!isMainThread) return null; // a worker thread's tid is not the pid
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[field]) / 1e6;
  } catch {
    return null;
  }
}
const runQueueWaitMs = () => schedstat(1);

/** CPU time this thread has run, in ms (Linux schedstat), or null elsewhere. */
export const cpuMs = () => schedstat(0);

/**
 * Watches this thread's event loop with a timer every `periodMs`: `worstGapMs` is the longest time between
 * two ticks, minus the time the OS kept the thread waiting for a CPU in that interval (on a loaded machine
 * most of a wall-clock gap is such waiting; what is left is what ran on, or blocked, this thread).
 * `wallWorstGapMs` is the raw wall-clock gap, reported for context. Without schedstat, both are wall time.
 */
export function watchEventLoop(periodMs = 10): { stop(): { worstGapMs: number; wallWorstGapMs: number; ticks: number; schedstat: boolean } } {
  const schedstat = runQueueWaitMs() !== null;
  let last = performance.now();
  let lastWait = runQueueWaitMs() ?? 0;
  let worstGapMs = 0, wallWorstGapMs = 0, ticks = 0;
  const tick = () => {
    const now = performance.now(), wait = runQueueWaitMs() ?? 0;
    const wall = now - last;
    wallWorstGapMs = Math.max(wallWorstGapMs, wall);
    worstGapMs = Math.max(worstGapMs, wall - (wait - lastWait));
    last = now;
    lastWait = wait;
    ticks++;
  };
  const timer = setInterval(tick, periodMs);
  return {
    stop() {
      tick();
      clearInterval(timer);
      return { worstGapMs, wallWorstGapMs, ticks, schedstat };
    },
  };
}

/** The AdvlabError a promise rejects with (fails the test if it resolves or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<AdvlabError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AdvlabError);
    return e as AdvlabError;
  }
  throw new Error('expected a rejection');
}

/**
 * Job runners on the built job worker (WORKER) with a shard pool, as the pool tests use them: each
 * runner(workers) has a pool of `workers` threads, the wasm backend and the sessions folder `env()`
 * gives when it is called (tests set it in beforeAll), and records every event it emits; shutdown()
 * stops them all (afterAll).
 */
export function poolRunners(env: () => { sessionsRoot: string; dataDirs?: string[] }): {
  runner(workers: number): { r: JobRunner; events: ApiEvent[] };
  shutdown(): Promise<void>;
} {
  const runners: JobRunner[] = [];
  return {
    runner(workers) {
      const { sessionsRoot, dataDirs = [DATA] } = env();
      const r = new JobRunner({ workerPath: WORKER, env: { backend: 'wasm', dataDirs, sessionsRoot }, workers, cancelGraceMs: 20_000 });
      const events: ApiEvent[] = [];
      r.on('event', (e) => events.push(e));
      runners.push(r);
      return { r, events };
    },
    async shutdown() {
      await Promise.all(runners.splice(0).map((r) => r.shutdown()));
    },
  };
}

/** A job's progress events among `events`, in order. */
export const progressOf = (events: ApiEvent[], jobId: string): ProgressEvent[] =>
  events.filter((e): e is ProgressEvent => e.type === 'job.progress' && e.jobId === jobId);
