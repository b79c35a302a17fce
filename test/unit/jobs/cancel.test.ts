/**
 * Cancelling job kinds in-process: every kind ends with CancelledError, its session marked cancelled
 * (never failed), and what it kept rides on the error. The loss-surface job's per-direction context
 * once copied ctx with { ...ctx }, which lost a LocalContext's methods and froze `cancelled`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
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
