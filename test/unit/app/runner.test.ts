/** The job runner with the built worker (npm test builds first): progress, results, cancellation, errors. */
import { describe, expect, it, beforeAll } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { JobRunner } from '../../../src-main/jobs/runner';
import type { ApiEvent, ProgressEvent } from '../../../src-main/api/contract';
import { SessionStore } from '../../../src-main/engine/sessions';
import { loadModel } from '../../../src-main/engine/models';
import { initBackend } from '../../../src-main/engine/backend';

import { WORKER } from '../helpers';

function runner() {
  return new JobRunner({ workerPath: WORKER, env: { dataDirs: [process.env.ADVLAB_DATA!], sessionsRoot: mkdtempSync(join(tmpdir(), 'advlab-runner-')) }, cancelGraceMs: 5000 });
}

describe('JobRunner', () => {
  beforeAll(() => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run "npm run build" before the unit tests (npm test does)`);
  });

  it('runs a job in a worker, streams progress with ETA, returns its result, and never blocks this thread', async () => {
    const r = runner();
    const events: ApiEvent[] = [];
    r.on('event', (e) => events.push(e));
    let last = performance.now();
    let worstGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 10);
    const { done } = r.start('diagnostics', { batch: 8, repeats: 2 });
    const info = await done;
    clearInterval(tick);
    expect(info.state).toBe('finished');
    const result = info.result as { backend: { name: string }; gradientCheck: { ok: boolean; maxAbsDiff: number } };
    expect(result.backend.name).toBe('wasm');
    expect(result.gradientCheck.ok).toBe(true);
    expect(result.gradientCheck.maxAbsDiff).toBeLessThan(1e-3);
    const progress = events.filter((e): e is ProgressEvent => e.type === 'job.progress');
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)!.fraction).toBe(1);
    expect(progress.some((p) => p.etaSeconds !== null && p.etaSeconds > 0)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'job.finished' });
    expect(worstGap).toBeLessThan(250); // tensor work happened elsewhere
    await r.shutdown();
  });

  it('cancels a running job at its next step', async () => {
    const r = runner();
    const { jobId, done } = r.start('diagnostics', { batch: 256, repeats: 100 });
    await new Promise<void>((ok) => r.on('event', (e) => { if (e.type === 'job.progress' && e.jobId === jobId) ok(); }));
    const t0 = performance.now();
    expect(r.cancel(jobId)).toBe(true);
    const info = await done;
    expect(info.state).toBe('cancelled');
    expect(performance.now() - t0).toBeLessThan(4000); // well before the 5 s hard stop
    await r.shutdown();
  });

  it('a cancelled training run keeps the model trained so far, in a session marked cancelled', async () => {
    const sessionsRoot = mkdtempSync(join(tmpdir(), 'advlab-cancel-'));
    const r = new JobRunner({ workerPath: WORKER, env: { dataDirs: [process.env.ADVLAB_DATA!], sessionsRoot }, cancelGraceMs: 10_000 });
    const { jobId, done } = r.start('train', { dataset: 'mnist', arch: 'small-cnn', epochs: 30, limit: 2000, testLimit: 100 });
    await new Promise<void>((ok) => r.on('event', (e) => { if (e.type === 'job.progress' && e.jobId === jobId && e.step >= 5) ok(); }));
    r.cancel(jobId);
    const info = await done;
    expect(info.state).toBe('cancelled');
    expect(info.session).toBeTruthy();
    const store = new SessionStore(sessionsRoot);
    const shown = await store.show(info.session!);
    expect(shown.manifest.status).toBe('cancelled');
    expect(shown.artifacts.map((a) => a.path)).toContain('model/model.json');
    expect(shown.series).toContain('train');
    await initBackend('wasm');
    const loaded = await loadModel(join(shown.dir, 'artifacts/model'));
    expect(loaded.meta.trainingStatus).toBe('cancelled');
    loaded.model.dispose();
    await r.shutdown();
  });

  it('reports failures as structured errors', async () => {
    const r = runner();
    // @ts-expect-error: the types rule it out; the worker refuses it too
    const unknown = await r.start('no-such-kind', {}).done;
    expect(unknown.state).toBe('failed');
    expect(unknown.error?.message).toMatch(/Unknown job kind "no-such-kind"/);
    const bad = await r.start('train', { dataset: 'mnist', arch: 'small-cnn', epochs: 0 }).done;
    expect(bad.state).toBe('failed');
    expect(bad.error?.code).toBe('BAD_INPUT');
    expect(bad.error?.message).toMatch(/epochs/);
    const missing = await r.start('train', { dataset: 'no-such-set', arch: 'small-cnn' }).done;
    expect(missing.state).toBe('failed');
    expect(missing.error?.message).toMatch(/no-such-set/);
    await r.shutdown();
  });
});
