/**
 * The minnorm job runs on the engine it is given (it used to ignore `engine` and always run tfjs) and
 * records it; `cw` (C&W's own budget, the reference) reaches the comparison and the session;
 * `references` brings an earlier session's attacks into the comparison exactly as if they had run in it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minnormParams } from '../../../src-main/api/jobs';
import { LocalContext } from '../../../src-main/engine/context';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { trainSmallMnistModel, type SmallMnistModel } from '../../fixtures/small-mnist-model';

let env: JobEnv;
let model: string;
let fixture: SmallMnistModel | undefined;

beforeAll(async () => {
  fixture = await trainSmallMnistModel('advlab-minnorm-job-');
  ({ env, model } = fixture);
}, 120_000);
afterAll(() => fixture?.cleanup());

async function minnorm(extra: Record<string, unknown>) {
  const ctx = new LocalContext();
  const r = (await jobHandlers.minnorm({ model, dataset: 'mnist', n: 6, attacks: ['cw-l2', 'ddn'], budget: 10, curves: false, ...extra }, ctx, env)) as Record<string, unknown> & { session: string };
  const manifest = await new SessionStore(env.sessionsRoot).manifest(r.session);
  return { r, summary: manifest.summary, name: manifest.name, logs: ctx.logs, events: ctx.events };
}

describe('minnorm job: engine and the C&W reference budget', () => {
  it('runs on the requested engine and says so; auto puts a plain model on ONNX Runtime', async () => {
    const tfjs = await minnorm({ engine: 'tfjs' });
    expect(tfjs.summary).toMatchObject({ engine: 'tfjs', engineReason: 'tfjs: requested (--engine tfjs)' });
    const auto = await minnorm({});
    expect(auto.summary).toMatchObject({ engine: 'onnx' });
    expect(auto.logs.some((l) => /^engine: onnx/.test(l))).toBe(true);
  });

  it('cw: C&W at its own budget, recorded in the summary and the name; curves scale its iterations', async () => {
    const { r, summary, name } = await minnorm({ engine: 'tfjs', cw: { binarySearchSteps: 3, maxIterations: 7 }, curves: true });
    expect(summary).toMatchObject({ cw: '3 x 7' });
    expect(name).toMatch(/C&W 3 x 7/);
    const attacks = r.attacks as { attack: string; curve: { budget: number }[] }[];
    expect(attacks.find((a) => a.attack === 'cw-l2')!.curve.map((c) => c.budget)).toEqual([3, 6, 21]);
    expect(attacks.find((a) => a.attack === 'ddn')!.curve.map((c) => c.budget)).toEqual([1, 3, 10]);
    expect(minnormParams.safeParse({ model: 'm', dataset: 'mnist', cw: { binarySearchSteps: 9, maxIterations: 1000, extra: 1 } }).success).toBe(false);
  });

  it('fab: the job runs it and records its optimality and a distance per example (examples.json)', async () => {
    expect(minnormParams.safeParse({ model: 'm', dataset: 'mnist', attacks: ['cw-l2', 'ddn', 'fmn', 'apgd', 'fab'] }).success).toBe(true);
    // All 100 of the fixture's images: the small model is right on only some of them (counted: clean-correct).
    const { r, summary } = await minnorm({ engine: 'tfjs', attacks: ['ddn', 'fab'], n: 100 });
    expect(summary.counted as number).toBeGreaterThan(0);
    expect((r.attacks as { attack: string }[]).map((a) => a.attack)).toEqual(['ddn', 'fab']);
    expect(summary).toHaveProperty('optimality:fab');
    expect(summary['optimality:fab'] as number).toBeGreaterThan(0);
    const examples = JSON.parse((await new SessionStore(env.sessionsRoot).readArtifact(r.session, 'examples.json')).toString()) as Record<string, unknown>[];
    expect(examples.length).toBe(summary.counted);
    for (const e of examples) {
      expect(typeof e.fab).toBe('number');
      expect(e.distance as number).toBeLessThanOrEqual((e.fab as number) + 1e-12);
    }
  });
});

describe('minnorm job: references (attacks run in another session join the comparison)', () => {
  const store = () => new SessionStore(env.sessionsRoot);
  const examples = async (id: string) => JSON.parse((await store().readArtifact(id, 'examples.json')).toString()) as Record<string, number | null | string>[];
  type Row = { attack: string; optimality: number; meanDistance: number | null; successRate: number; seconds: number };

  it('gives the same optimality, distances and per-example best as one session running every attack', async () => {
    const base = { engine: 'tfjs', n: 20, goal: { kind: 'targeted', target: 'next' } };
    const alone = await minnorm({ ...base, attacks: ['ddn'] });
    const joined = await minnorm({ ...base, attacks: ['fmn'], references: [alone.r.session] });
    const together = await minnorm({ ...base, attacks: ['ddn', 'fmn'] });
    const rows = (r: Record<string, unknown>) => (r.attacks as Row[]).map(({ seconds: _s, ...a }) => a);
    expect(together.summary.counted as number).toBeGreaterThan(0);
    expect(rows(joined.r)).toEqual(rows(together.r));
    // The two attacks disagree somewhere, so the optimality really is computed over both (not 1 each).
    expect(rows(joined.r).some((a) => a.optimality < 1)).toBe(true);
    expect(await examples(joined.r.session)).toEqual(await examples(together.r.session));
    // The referenced attack keeps its own time and is recorded as taken from the reference.
    expect((joined.r.attacks as Row[])[0].seconds).toBe((alone.r.attacks as Row[])[0].seconds);
    expect(joined.summary).toMatchObject({ references: alone.r.session });
    expect(joined.name).toMatch(new RegExp(`with ddn from ${alone.r.session}`));
    // With no attack of its own (--attacks none) it only combines: two one-attack sessions give the same.
    const fmn = await minnorm({ ...base, attacks: ['fmn'] });
    const combined = await minnorm({ ...base, attacks: [], references: [alone.r.session, fmn.r.session] });
    expect(rows(combined.r)).toEqual(rows(together.r));
    const last = combined.events[combined.events.length - 1];
    expect(last).toMatchObject({ phase: 'done', step: 1, total: 1 });
    expect(await examples(combined.r.session)).toEqual(await examples(together.r.session));
    expect(minnormParams.safeParse({ model: 'm', dataset: 'mnist', attacks: [] }).success).toBe(false);
    expect(minnormParams.safeParse({ model: 'm', dataset: 'mnist', attacks: [], references: ['s'] }).success).toBe(true);
  });

  it('refuses a reference run on other images or with another goal, the same attack, or a session of another kind', async () => {
    const ref = await minnorm({ engine: 'tfjs', attacks: ['ddn'] });
    await expect(minnorm({ engine: 'tfjs', attacks: ['fmn'], n: 7, references: [ref.r.session] })).rejects.toThrow(/another n, dataset/);
    await expect(minnorm({ engine: 'tfjs', attacks: ['fmn'], goal: { kind: 'targeted', target: 'next' }, references: [ref.r.session] })).rejects.toThrow(/another goal/);
    await expect(minnorm({ engine: 'tfjs', attacks: ['fmn'], offset: 1, references: [ref.r.session] })).rejects.toThrow(/another offset, dataset/);
    await expect(minnorm({ engine: 'tfjs', attacks: ['ddn', 'fmn'], references: [ref.r.session] })).rejects.toThrow(/ddn is in the comparison twice/);
    await expect(minnorm({ engine: 'tfjs', attacks: ['fmn'], references: [model] })).rejects.toThrow(/finished train session; give a finished minnorm session/);
    expect(minnormParams.safeParse({ model: 'm', dataset: 'mnist', references: [] }).success).toBe(false);
  });
});
