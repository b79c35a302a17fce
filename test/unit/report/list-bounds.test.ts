/**
 * Every list-valued API parameter has a maximum length (the constants of engine/limits.ts, said in
 * the error), and nothing the API does with a list is quadratic in its length on the host thread:
 * tag add/remove and its dedupe, the session filters, and the parts of a chunked archive upload.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { METHODS, methodSchemas, parseParams, type Method } from '../../../src-main/api/contract';
import { MAX_LISTENING_SESSIONS, MAX_REPORT_SESSIONS, MAX_TAGS, MAX_TARGET_CLASSES } from '../../../src-main/engine/limits';
import { SessionStore } from '../../../src-main/engine/sessions';
import { normalizeTags } from '../../../src-main/engine/sessions/writer';
import { reviewHandlers } from '../../../src-main/report';
import { FIXTURE_ENV } from '../../fixtures/session-store';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const tmpStore = () => {
  const d = mkdtempSync(join(os.tmpdir(), 'advlab-bounds-'));
  made.push(d);
  return new SessionStore(d);
};

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

/** Paths of the arrays in a schema that have no maximum length. */
function unboundedArrays(schema: unknown, at: string, seen = new Set<unknown>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const d = defOf(schema);
  const sub = (s: unknown, p: string) => unboundedArrays(s, p, seen);
  switch (d.type) {
    case 'array': {
      const checks = (d.checks as { _zod: { def: { check: string } } }[] | undefined) ?? [];
      const bounded = checks.some((c) => ['max_length', 'length_equals'].includes(c._zod.def.check));
      return [...(bounded ? [] : [at]), ...sub(d.element, `${at}[]`)];
    }
    case 'object':
      return Object.entries(d.shape as Record<string, unknown>).flatMap(([k, v]) => sub(v, `${at}.${k}`));
    case 'union':
      return (d.options as unknown[]).flatMap((o, i) => sub(o, `${at}|${i}`));
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
      return sub(d.innerType, at);
    case 'pipe':
      return [...sub(d.in, at), ...sub(d.out, at)];
    case 'record':
      return sub(d.valueType, `${at}{}`);
    case 'tuple':
      return (d.items as unknown[]).flatMap((o, i) => sub(o, `${at}[${i}]`));
    case 'lazy':
      return sub((d.getter as () => unknown)(), at);
    default:
      return [];
  }
}

describe('list-valued API parameters are bounded', () => {
  it('every array in every method schema (jobs.start and attack goals included) has a maximum length', () => {
    const found = METHODS.flatMap((m) => unboundedArrays(methodSchemas[m as Method] as z.ZodType, m));
    expect(found).toEqual([]);
    // the walker sees arrays (so the empty list above means something)
    expect(unboundedArrays((methodSchemas['sessions.tag'] as unknown as { _zod: { def: { shape: { add: unknown } } } })._zod.def.shape.add, 'x')).toEqual([]);
  });

  it('a list over its bound is refused with the bound in the message', () => {
    const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
    const refused = (m: Method, p: unknown) => {
      try {
        parseParams(m, p);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error(`${m} accepted ${JSON.stringify(p).slice(0, 80)}`);
    };
    expect(refused('sessions.tag', { id: 's', add: many(MAX_TAGS + 1, (i) => `t${i}`) })).toMatch(`at most ${MAX_TAGS} tags`);
    expect(refused('sessions.tag', { id: 's', remove: many(MAX_TAGS + 1, (i) => `t${i}`) })).toMatch(`at most ${MAX_TAGS} tags`);
    expect(parseParams('sessions.tag', { id: 's', add: many(MAX_TAGS, (i) => `t${i}`) }).add).toHaveLength(MAX_TAGS);
    expect(refused('sessions.report', { ids: many(MAX_REPORT_SESSIONS + 1, (i) => `s${i}`) })).toMatch(`at most ${MAX_REPORT_SESSIONS} sessions`);
    expect(refused('listening.create', { sessions: many(MAX_LISTENING_SESSIONS + 1, (i) => `s${i}`) })).toMatch(`at most ${MAX_LISTENING_SESSIONS} sessions`);
    expect(refused('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', tags: many(MAX_TAGS + 1, String) } })).toMatch(`at most ${MAX_TAGS} tags`);
    const target = many(MAX_TARGET_CLASSES + 1, () => '1').map(Number);
    expect(refused('jobs.start', { kind: 'attack', params: { model: 'm', dataset: 'mnist', attack: 'fgsm', goal: { kind: 'targeted', target } } })).toMatch(`at most ${MAX_TARGET_CLASSES} target classes`);
  });
});

describe('nothing quadratic in user input', () => {
  it('tag dedupe is linear: 200,000 tags in well under a second', () => {
    const tags = Array.from({ length: 200_000 }, (_, i) => `tag-${i % 150_000}`);
    const t0 = performance.now();
    const out = normalizeTags(tags);
    const ms = performance.now() - t0;
    expect(out).toHaveLength(150_000);
    expect(out[0]).toBe('tag-0');
    expect(ms).toBeLessThan(1000); // out.includes per tag: ~1.1e10 comparisons, minutes
  });

  it('sessions.tag adds and removes the most tags allowed, order kept, no duplicates', async () => {
    const store = tmpStore();
    const w = await store.create({ kind: 'train', params: {}, environment: FIXTURE_ENV, tags: ['a', 'b'] });
    await w.finish({});
    const add = Array.from({ length: MAX_TAGS }, (_, i) => `x${i % 40}`);
    expect(await store.tag(w.id, ['b', ...add.slice(1)], [])).toEqual(['a', 'b', ...Array.from({ length: 40 }, (_, i) => `x${i}`).filter((t) => t !== 'x0'), 'x0'].filter((t, i, a) => a.indexOf(t) === i));
    expect(await store.tag(w.id, [], ['a', ...add])).toEqual(['b']);
  });

  it('a chunked archive upload of many parts costs linear time', async () => {
    const h = reviewHandlers(tmpStore());
    const parts = 60_000;
    const t0 = performance.now();
    for (let part = 0; part < parts - 1; part++) {
      const r = await h['sessions.import']({ data: 'AAAA', upload: { id: 'many', part, parts } });
      if (r.complete || r.received !== part + 1) throw new Error(`part ${part}: ${JSON.stringify(r)}`);
    }
    const ms = performance.now() - t0;
    // counting the parts held on each call (filter over all parts) was 3.6e9 visits here
    expect(ms).toBeLessThan(4000);
  }, 30_000);
});
