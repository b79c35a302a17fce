/** Tables of a session: rows of JSON and CSV/TSV artifacts, and key-by-key comparisons of sessions. */
import { parseCsv } from './csv';
import type { Cell, Row } from './model';

/** A JSON value as a table cell: nested arrays and objects become their JSON text. */
export function toCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

/** A plain object (a table row, or a JSON document's top level). */
export const isRowObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Rows of a JSON document, when it holds a table: an array of objects, `{ rows: [...] }` (with an
 * optional `columns` order), or an object with exactly one array-of-objects field (e.g. `points`,
 * `perExample`). Returns null otherwise.
 */
export function tableFromJson(doc: unknown): { columns: string[]; rows: Row[]; field?: string } | null {
  let arr: unknown[] | null = null;
  let order: string[] | undefined;
  let field: string | undefined;
  if (Array.isArray(doc)) arr = doc;
  else if (isRowObject(doc)) {
    if (Array.isArray(doc.rows)) {
      arr = doc.rows;
      field = 'rows';
      if (Array.isArray(doc.columns) && doc.columns.every((c) => typeof c === 'string')) order = doc.columns as string[];
    } else {
      const candidates = Object.entries(doc).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every(isRowObject));
      if (candidates.length === 1) [field, arr] = [candidates[0][0], candidates[0][1] as unknown[]];
    }
  }
  if (!arr || arr.length === 0 || !arr.every(isRowObject)) return null;
  const columns = order ? [...order] : [];
  const seen = new Set(columns);
  for (const r of arr as Record<string, unknown>[]) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
    }
  }
  const rows = (arr as Record<string, unknown>[]).map((r) => {
    const out: Row = {};
    for (const c of columns) out[c] = toCell(r[c]);
    return out;
  });
  return { columns, rows, ...(field ? { field } : {}) };
}

/** CSV/TSV text as a table (first row the header; numeric-looking cells become numbers). */
export function tableFromCsv(text: string, delimiter = ','): { columns: string[]; rows: Row[] } | null {
  const grid = parseCsv(text, delimiter);
  if (grid.length < 1 || grid[0].length === 0) return null;
  const columns = grid[0].map((c, i) => c || `column ${i + 1}`);
  const rows = grid.slice(1).map((cells) => {
    const r: Row = {};
    columns.forEach((c, i) => {
      const v = cells[i] ?? '';
      r[c] = v !== '' && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v.trim()) ? Number(v) : v;
    });
    return r;
  });
  return { columns, rows };
}

export interface CompareRow {
  key: string;
  values: unknown[];
  numeric: boolean;
  /** values[i] - values[0] (null when either is missing or not a number). */
  diffs: (number | null)[];
  /** (values[i] - values[0]) / |values[0]| (null when values[0] is 0 or missing). */
  rel: (number | null)[];
  /** Not all sessions have the same value. */
  differs: boolean;
}

/**
 * Key-by-key comparison of records (summaries or parameters) against the first one. Keys keep the
 * order of their first appearance; nested values are compared by their JSON text.
 */
export function compareRecords(records: readonly Record<string, unknown>[]): CompareRow[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const r of records) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  return keys.map((key) => {
    const values = records.map((r) => (key in r ? r[key] : undefined));
    const present = values.filter((v) => v !== undefined);
    const numeric = present.length > 0 && present.every((v) => typeof v === 'number');
    const base = values[0];
    const diffs = values.map((v) => (typeof v === 'number' && typeof base === 'number' ? v - base : null));
    const rel = values.map((v) => (typeof v === 'number' && typeof base === 'number' && base !== 0 ? (v - base) / Math.abs(base) : null));
    const texts = values.map((v) => (v === undefined ? '\u0000' : JSON.stringify(v)));
    return { key, values: values.map((v) => (v === undefined ? null : v)), numeric, diffs, rel, differs: texts.some((t) => t !== texts[0]) };
  });
}
