/** Numbers and summaries as the Sessions view, the HTML report and the CLI print them. */
import { BOOKKEEPING_KEY, KEY_METRICS } from './conventions';

/** Four significant digits; exponent form for very small or large magnitudes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v);
}

/** A signed relative difference as a percentage, e.g. "+12.5%". */
export function formatPercent(rel: number): string {
  if (!Number.isFinite(rel)) return '';
  const p = 100 * rel;
  const digits = Math.abs(p) >= 100 ? 0 : Math.abs(p) >= 10 ? 1 : 2;
  return `${p >= 0 ? '+' : ''}${p.toFixed(digits)}%`;
}

/** Up to `n` summary keys worth showing in a listing: KEY_METRICS first, then other numbers. */
export function keyMetrics(summary: Record<string, unknown>, n = 3): string[] {
  const out: string[] = [];
  for (const k of KEY_METRICS) if (typeof summary[k] === 'number' && out.length < n) out.push(k);
  for (const [k, v] of Object.entries(summary)) {
    if (out.length >= n) break;
    if (typeof v === 'number' && !out.includes(k) && !BOOKKEEPING_KEY.test(k)) out.push(k);
  }
  return out;
}

/**
 * Smallest and largest finite value of `values` (null when there is none), in one loop: no
 * `Math.min(...values)`, whose argument spread overflows the call stack for large arrays (a
 * 350-class confusion matrix is 122,500 cells).
 */
export function finiteExtent(values: Iterable<number | null | undefined>): { lo: number; hi: number } | null {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? { lo, hi } : null;
}

/** The largest of `values` and `floor` (a loop, safe for arrays of any length). */
export function maxOf(values: Iterable<number>, floor = -Infinity): number {
  let m = floor;
  for (const v of values) if (v > m) m = v;
  return m;
}

/** Every value of a matrix, row by row, without building a flat copy. */
export function* cells<T>(rows: readonly (readonly T[])[]): Generator<T> {
  for (const r of rows) for (const v of r) yield v;
}
