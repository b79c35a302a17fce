/**
 * jobs.start is the API's door for jobs: a job's params are checked there, the attack's own
 * parameters with that attack's strict schema, so a bad one is a refused request and no worker or
 * session ever exists for it. Also: the error codes' one table, and the typed result map.
 */
import { describe, expect, it } from 'vitest';
import type { ResultOf } from '../../../src-main/api/contract';
import type { Handlers } from '../../../src-main/api/core';
import { ERROR_CODES, httpStatusOf } from '../../../src-main/engine/errors';
import { mimeOf } from '../../../src-main/engine/core/mime';
import { DATA } from '../helpers';
import { recordingCore } from './api-fixture';

function core() {
  const { core: c, jobs, store } = recordingCore({ dataDirs: [DATA] });
  return { c, jobs, store };
}

const attack = (params: Record<string, unknown>, attackId = 'fgsm') => ({ kind: 'attack' as const, params: { model: 'some-model', dataset: 'mnist', attack: attackId, params } });

describe('jobs.start checks an attack\'s params with its own schema before any job starts', () => {
  it('refuses an unknown attack parameter, listing the accepted ones', async () => {
    const { c, jobs, store } = core();
    const r = await c.call('jobs.start', attack({ epsilon: 0.3 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('BAD_INPUT');
    expect(r.error.message).toMatch(/FGSM \(fgsm\): unknown parameter "epsilon" \(accepted: eps\)/);
    expect(jobs.started).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it('refuses an eps outside the attack\'s bounds, naming it and what it got', async () => {
    const { c, jobs } = core();
    const r = await c.call('jobs.start', attack({ eps: 5 }));
    expect(r).toMatchObject({ ok: false, error: { code: 'BAD_INPUT', details: { attack: 'fgsm' } } });
    expect(!r.ok && r.error.message).toMatch(/"eps": .*\(got 5\)/);
    const pgd = await c.call('jobs.start', attack({ eps: -0.1, steps: 10 }, 'pgd'));
    expect(!pgd.ok && pgd.error.message).toMatch(/PGD.*\(pgd\): "eps": .*\(got -0\.1\)/);
    expect(jobs.started).toEqual([]);
  });

  it('refuses an unknown attack, naming the available ones', async () => {
    const { c, jobs } = core();
    const r = await c.call('jobs.start', attack({}, 'no-such-attack'));
    expect(r).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(!r.ok && r.error.message).toMatch(/Unknown attack "no-such-attack"; available: .*pgd/);
    expect(jobs.started).toEqual([]);
  });

  it('checks every eps of a sweep against the attack', async () => {
    const { c, jobs } = core();
    const bad = await c.call('jobs.start', { kind: 'sweep', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', epsilons: [0.1, 2] } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(!bad.ok && bad.error.message).toMatch(/"eps": .*\(got 2\)/);
    const unknown = await c.call('jobs.start', { kind: 'sweep', params: { model: 'm', dataset: 'mnist', attack: 'pgd', epsilons: [0.1], params: { step: 3 } } });
    expect(!unknown.ok && unknown.error.message).toMatch(/unknown parameter "step" \(accepted: eps, steps, /);
    expect(jobs.started).toEqual([]);
  });

  it('starts a job whose params are good, with the params as jobs.start parsed them (defaults filled)', async () => {
    const { c, jobs } = core();
    const r = await c.call('jobs.start', attack({ eps: 0.1 }));
    expect(r).toEqual({ ok: true, result: { jobId: 'job-1' } });
    expect(jobs.started).toHaveLength(1);
    expect(jobs.started[0]).toMatchObject({ kind: 'attack', params: { attack: 'fgsm', params: { eps: 0.1 }, goal: { kind: 'untargeted' }, split: 'test', n: 100 } });
    const s = await c.call('jobs.start', { kind: 'sweep', params: { model: 'm', dataset: 'mnist', attack: 'pgd', epsilons: [0, 0.1, 0.3], params: { steps: 5 } } });
    expect(s.ok).toBe(true);
    expect(jobs.started).toHaveLength(2);
  });

  it('keeps one goal schema: a negative seed or a fractional class is refused at the door', async () => {
    const { c, jobs } = core();
    const seed = await c.call('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', goal: { kind: 'targeted', target: 'random', seed: -1 } } });
    expect(!seed.ok && seed.error.message).toMatch(/params\.goal\.seed/);
    const cls = await c.call('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', goal: { kind: 'targeted', target: 2.5 } } });
    expect(!cls.ok && cls.error.code).toBe('BAD_INPUT');
    // A class id past 999 is the classifier's to judge (models with more classes exist), not the door's.
    const many = await c.call('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', goal: { kind: 'targeted', target: 1500 } } });
    expect(many.ok).toBe(true);
    expect(jobs.started).toHaveLength(1);
  });
});

describe('error codes and media types have one table each', () => {
  it('maps every code to its HTTP status, unknown codes to 500', () => {
    expect(Object.keys(ERROR_CODES).sort()).toEqual(['BAD_FILE', 'BAD_INPUT', 'CANCELLED', 'CONFLICT', 'DISK_FULL', 'FORBIDDEN', 'INTERNAL', 'NETWORK', 'NOT_FOUND', 'TOO_LARGE', 'UNAUTHORIZED', 'UNSUPPORTED']);
    expect([httpStatusOf('BAD_INPUT'), httpStatusOf('UNAUTHORIZED'), httpStatusOf('FORBIDDEN'), httpStatusOf('NOT_FOUND'), httpStatusOf('TOO_LARGE'), httpStatusOf('INTERNAL')]).toEqual([400, 401, 403, 404, 413, 500]);
    expect(httpStatusOf('ENOENT')).toBe(500);
  });

  it('names media types by extension, case-insensitively', () => {
    expect(mimeOf('examples/1-adv.PNG')).toBe('image/png');
    expect(mimeOf('a/b/clip.wav')).toBe('audio/wav');
    expect(mimeOf('index.html')).toBe('text/html; charset=utf-8');
    expect(mimeOf('C:\\x\\y.jsonl')).toBe('application/x-ndjson');
    expect(mimeOf('weights')).toBe('application/octet-stream');
    expect(mimeOf('.hidden')).toBe('application/octet-stream');
  });
});

describe('the result map and the handlers cannot drift (checked by tsc)', () => {
  it('types a handler by its ResultOf', () => {
    const tags: Pick<Handlers, 'sessions.tag'> = { 'sessions.tag': () => ['a'] };
    const drifted: Pick<Handlers, 'sessions.tag'> = {
      // @ts-expect-error: sessions.tag answers the session's tags (string[]), not a count
      'sessions.tag': () => 3,
    };
    const result: ResultOf<'sessions.tag'> = ['x'];
    // @ts-expect-error: a result of another method does not pass for it
    const other: ResultOf<'sessions.tag'> = { saved: true };
    expect([typeof tags['sessions.tag'], typeof drifted['sessions.tag'], result, other]).toHaveLength(4);
  });
});
