import { describe, expect, it } from 'vitest';
import { emptyFilter, facets, filterSessions, indexSessions, sortSessions, type SessionSummary } from '../../../src-shared/session-list';

function summaries(n: number): SessionSummary[] {
  const kinds = ['train', 'attack', 'sweep', 'audio-attack'];
  return Array.from({ length: n }, (_, i) => {
    const created = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
    const kind = kinds[i % kinds.length];
    return {
      id: `s${String(i).padStart(5, '0')}-${kind}`, kind, name: `${kind} run ${i}`, status: i % 10 === 9 ? 'failed' : 'finished', created, updated: created,
      tags: [`t${i % 3}`], summary: (kind === 'train' ? { testAccuracy: (i % 97) / 100 } : { successRate: (i % 89) / 100 }) as SessionSummary['summary'],
      datasets: [i % 2 ? 'mnist' : 'fashion-mnist'], models: kind === 'train' ? [] : [`m${i % 5}`],
    };
  });
}

describe('Sessions list filtering and sorting (renderer)', () => {
  const list = summaries(5000);
  const idx = indexSessions(list);

  it('filters by every field and by all words of the search text', () => {
    expect(filterSessions(idx, { ...emptyFilter(), kind: 'attack' })).toHaveLength(1250);
    expect(filterSessions(idx, { ...emptyFilter(), status: 'failed' })).toHaveLength(500);
    expect(filterSessions(idx, { ...emptyFilter(), tag: 't1', dataset: 'mnist' }).every(({ s }) => s.tags[0] === 't1' && s.datasets[0] === 'mnist')).toBe(true);
    expect(filterSessions(idx, { ...emptyFilter(), model: 'm3' })).toHaveLength(750);
    const hit = filterSessions(idx, { ...emptyFilter(), text: 'RUN  4321 attack' });
    expect(hit.map((r) => r.s.id)).toEqual(['s04321-attack']);
  });

  it('sorts by date, name and a metric (sessions without the metric last, both ways)', () => {
    const byDate = sortSessions(idx, 'created', true);
    expect(byDate[0].id).toBe('s04999-audio-attack');
    expect(sortSessions(idx, 'created', false)[0].id).toBe('s00000-train');
    const desc = sortSessions(idx, 'metric:testAccuracy', true);
    expect(desc[0].summary.testAccuracy).toBe(0.96);
    expect(desc.at(-1)!.summary.testAccuracy).toBeUndefined();
    const asc = sortSessions(idx, 'metric:testAccuracy', false);
    expect(asc[0].summary.testAccuracy).toBe(0);
    expect(asc.at(-1)!.summary.testAccuracy).toBeUndefined();
    expect(sortSessions(idx, 'name', false)[0].name).toBe('attack run 1');
  });

  it('facets list kinds, tags, metrics and status counts', () => {
    const f = facets(list);
    expect(f.kinds).toEqual(['attack', 'audio-attack', 'sweep', 'train']);
    expect(f.metrics).toEqual(['successRate', 'testAccuracy']);
    expect(f.statusCounts).toEqual({ finished: 4500, failed: 500 });
  });

});
