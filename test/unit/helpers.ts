import { resolve } from 'node:path';

/** The built job worker; `npm test` builds before the unit tests. */
export const WORKER = resolve(import.meta.dirname, '../../out/main/worker.js');
export const DATA = process.env.ADVLAB_DATA ?? resolve(import.meta.dirname, '../../../shared/data');

/** Progress events that go back (a recipe's bar must only move forward), as "phase step/total". */
export function backwardProgress(events: { step: number; total: number; phase?: string }[]): string[] {
  const f = events.map((p) => p.step / p.total);
  return events.filter((_, i) => i > 0 && f[i] < f[i - 1] - 1e-9).map((p) => `${p.phase} ${p.step}/${p.total}`);
}
