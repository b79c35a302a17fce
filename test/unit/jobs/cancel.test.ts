/**
 * Cancelling job kinds in-process: every kind ends with CancelledError, its session marked cancelled
 * (never failed), and what it kept rides on the error. The loss-surface job's per-direction context
 * once copied ctx with { ...ctx }, which lost a LocalContext's methods and froze `cancelled`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { DATA } from '../helpers';

let root: string;
let env: JobEnv;
let ids: string[];
let model: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-cancel-'));
  ids = [];
  env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot: join(root, 'sessions'), onSession: (id) => ids.push(id) };
  model = ((await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 200, testLimit: 20, validationSplit: 0 }, new LocalContext(), env)) as { session: string }).session;
}, 120_000);
afterAll(() => rm(root, { recursive: true, force: true }));

/** A context cancelled by the job's own progress once `when` holds. */
const cancelling = (when: (step: number, total: number) => boolean) => {
  const ctx: LocalContext = new LocalContext((p) => { if (when(p.step, p.total)) ctx.cancel(); });
  return ctx;
};
const rejection = (p: Promise<unknown>) => p.then(() => { throw new Error('the job was not cancelled'); }, (e: unknown) => e as CancelledError);

describe('cancelled jobs', () => {
  it('the loss-surface job stops at its next step after a cancel made while it runs, and its session is cancelled', async () => {
    const ctx = cancelling(() => true);
    const e = await rejection(jobHandlers['loss-surface']({ model, dataset: 'mnist', index: 0, directions: ['random-random', 'gradient-random'], resolution: 11 }, ctx, env));
    expect(e).toBeInstanceOf(CancelledError);
    expect(ctx.events).toHaveLength(1);
    expect(e.partial).toBeUndefined(); // nothing kept: the session (known to the runner) is all there is
    expect((await new SessionStore(env.sessionsRoot).manifest(ids.at(-1)!)).status).toBe('cancelled');
  });

  it('an attack cancelled mid-way marks its session cancelled, not failed', async () => {
    // Four batches of 5: the first batch's last progress event (always sent) cancels, the second batch stops.
    const e = await rejection(jobHandlers.attack({ model, dataset: 'mnist', attack: 'pgd', n: 20, batchSize: 5, params: { eps: 0.1, steps: 20 } }, cancelling(() => true), env));
    expect(e).toBeInstanceOf(CancelledError);
    const m = await new SessionStore(env.sessionsRoot).manifest(ids.at(-1)!);
    expect(m.status).toBe('cancelled');
    expect(m.error).toBeUndefined();
  });

  it('a cancelled attack keeps the examples attacked so far: its session (cancelled) holds their results', async () => {
    // Four batches of 5 with FGSM, whose one step always reports: cancelled when batch 2 is done, so
    // batch 3 stops at its checkpoint and the 10 examples of batches 1-2 are kept.
    const ctx: LocalContext = new LocalContext((p) => { if (p.phase === 'batch 2/4: fgsm') ctx.cancel(); });
    const e = await rejection(jobHandlers.attack({ model, dataset: 'mnist', attack: 'fgsm', n: 20, batchSize: 5, saveExamples: 24, params: { eps: 0.1 } }, ctx, env));
    expect(e).toBeInstanceOf(CancelledError);
    expect(ctx.events.map((p) => p.phase)).toEqual(['batch 1/4: fgsm', 'batch 2/4: fgsm']);
    const session = ids.at(-1)!;
    const kept = e.partial as { session: string; n: number; successRate: number | null };
    expect(kept).toMatchObject({ session, attack: 'fgsm', n: 10 });
    const store = new SessionStore(env.sessionsRoot);
    const m = await store.manifest(session);
    expect(m).toMatchObject({ status: 'cancelled', summary: { attack: 'fgsm', n: 10, requested: 20, successRate: kept.successRate } });
    expect(m.error).toBeUndefined();
    const paths = m.artifacts.map((a) => a.path);
    expect(paths).toEqual(expect.arrayContaining(['examples.json', 'logits.json', 'examples-detail.json', 'examples/9-adv.png']));
    expect(paths).not.toContain('examples/10-adv.png');
    const rows = JSON.parse(await readFile(join(env.sessionsRoot, session, 'artifacts', 'examples.json'), 'utf8')) as { index: number }[];
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a cancelled sweep keeps the points of the epsilons done so far, in its cancelled session', async () => {
    // Cancelled once the point for eps 0.05 is reported: the eps 0.1 attack stops at its first checkpoint.
    const ctx: LocalContext = new LocalContext((p) => { if (p.phase === 'eps 0.05') ctx.cancel(); });
    const e = await rejection(jobHandlers.sweep({ model, dataset: 'mnist', attack: 'fgsm', n: 20, epsilons: [0, 0.05, 0.1, 0.2] }, ctx, env));
    expect(e).toBeInstanceOf(CancelledError);
    const session = ids.at(-1)!;
    const kept = e.partial as { session: string; curve: { eps: number; robustAccuracy: number }[] };
    expect(kept.session).toBe(session);
    expect(kept.curve.map((c) => c.eps)).toEqual([0, 0.05]);
    const m = await new SessionStore(env.sessionsRoot).manifest(session);
    expect(m).toMatchObject({ status: 'cancelled', summary: { attack: 'fgsm', requestedEpsilons: 4, 'robustAcc@0.05': kept.curve[1].robustAccuracy } });
    expect(m.summary['robustAcc@0.1']).toBeUndefined();
    expect(m.artifacts.map((a) => a.path)).toContain('curve.json');
    const saved = JSON.parse(await readFile(join(env.sessionsRoot, session, 'artifacts', 'curve.json'), 'utf8')) as { points: unknown[] };
    expect(saved.points).toEqual(kept.curve);
  });

  it('a cancelled training keeps the model trained so far: its result rides on the error, the session holds it', async () => {
    const e = await rejection(jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 5, limit: 400, batchSize: 50, testLimit: 20, validationSplit: 0 }, cancelling((s) => s >= 3), env));
    expect(e).toBeInstanceOf(CancelledError);
    const session = ids.at(-1)!;
    const kept = e.partial as { epochsRun: number };
    expect(kept).toMatchObject({ session, model: expect.stringMatching(/model\.json$/), dataset: 'mnist' });
    expect(kept.epochsRun).toBeLessThan(5);
    const m = await new SessionStore(env.sessionsRoot).manifest(session);
    expect(m).toMatchObject({ status: 'cancelled', summary: { model: 'model/model.json', epochsRun: kept.epochsRun } });
    expect(m.summary.testAccuracy).toBeUndefined();
  });
});
