/**
 * What a saved session looks like once read for display: charts, heat maps, tables, images, audio.
 * Pure data and pure functions (no Node, no DOM): the Sessions view renders a SessionView with Svelte,
 * the HTML report renders the same SessionView as static HTML and SVG, so both show the same thing.
 */
import type { SessionManifest, SummaryValue } from '../../src-main/engine/sessions/schema';
import { BOOKKEEPING_KEY, IGNORED_COLUMNS, KEY_METRICS, X_KEYS } from './conventions';

export type Cell = number | string | boolean | null;
export type Row = Record<string, Cell>;

export interface Point {
  x: number;
  y: number;
}

export interface LineSpec {
  label: string;
  points: Point[];
  color?: string;
  dashed?: boolean;
}

export interface ChartSpec {
  /** `<series>:<family>`: the same id in two sessions means the same curve (overlaid in comparisons). */
  id: string;
  series: string;
  family: 'loss' | 'rates' | 'values';
  title: string;
  xLabel: string;
  yMin?: number;
  yMax?: number;
  lines: LineSpec[];
  /** Rows in the series file. */
  rows: number;
  /** Points were thinned (largest-triangle-three-buckets) to at most this many per line. */
  downsampledTo?: number;
  note?: string;
}

export interface HeatmapSpec {
  id: string;
  /** The artifact it came from. */
  path: string;
  kind: 'confusion' | 'loss-surface' | 'classes';
  title: string;
  rowTitle: string;
  colTitle: string;
  rowLabels: string[];
  colLabels: string[];
  values: (number | null)[][];
  /** Write the value in each cell. */
  annotate: boolean;
  /** Categorical cells (class ids): coloured by value, not on a scale. */
  categorical?: boolean;
  note?: string;
}

export interface TableSpec {
  id: string;
  path: string;
  title: string;
  columns: string[];
  rows: Row[];
  /** Rows in the file (rows may hold fewer). */
  totalRows: number;
  /** Columns whose cells are artifact paths: shown as images or audio players. */
  media: Record<string, 'image' | 'audio'>;
}

export interface ImageItem {
  path: string;
  caption: string;
  bytes: number | null;
}

export interface ImageGroup {
  /** The folder under artifacts/ ('' for the top level). */
  title: string;
  images: ImageItem[];
}

export interface AudioItem {
  path: string;
  caption: string;
  bytes: number | null;
  sampleRate?: number;
  channels?: number;
  durationSec?: number;
  /** Peak |amplitude| per bucket, 0..1, for a waveform drawing. */
  peaks?: number[];
  problem?: string;
}

/** A case study's claim next to this run's evidence (artifacts/report.json of a recipe session). */
export interface ClaimSpec {
  path: string;
  title: string;
  claim: string;
  finding: string | null;
  /** Whether the key result held in this run; null when the file does not say. */
  reproduced: boolean | null;
  criterion: string | null;
  quick: boolean | null;
  rows: { what: string; measured: string; reference: string }[];
  notes: string[];
}

export interface JsonItem {
  path: string;
  text: string;
  truncated: boolean;
}

export interface FileItem {
  path: string;
  kind: string;
  bytes: number | null;
  description?: string;
  listed: boolean;
}

export interface SessionView {
  id: string;
  /** Listed status: finished, cancelled, failed, running, incomplete or damaged. */
  status: string;
  /** Why the manifest could not be read (then `manifest` is null and only files are shown). */
  damaged?: string;
  name: string;
  kind: string;
  created: string | null;
  finished: string | null;
  tags: string[];
  manifest: SessionManifest | null;
  notes: string | null;
  summary: { key: string; value: SummaryValue }[];
  keyMetrics: string[];
  datasets: string[];
  models: string[];
  charts: ChartSpec[];
  heatmaps: HeatmapSpec[];
  tables: TableSpec[];
  images: ImageGroup[];
  audio: AudioItem[];
  json: JsonItem[];
  /** Claim and evidence, when the session holds a case-study report (CLAIM_FILE). */
  claim: ClaimSpec | null;
  files: FileItem[];
  /** Things that could not be read (torn metric lines, bad JSON), each naming the file. */
  problems: string[];
}

// ---------------------------------------------------------------------------------------------
// numbers

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

// ---------------------------------------------------------------------------------------------
// summaries

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

// ---------------------------------------------------------------------------------------------
// metric series -> charts

/** Largest-triangle-three-buckets (Steinarsson 2013): keeps the shape of a curve with `threshold` points. */
export function lttb(points: Point[], threshold: number): Point[] {
  const n = points.length;
  if (threshold >= n || threshold < 3) return points.slice();
  const out: Point[] = [points[0]];
  const every = (n - 2) / (threshold - 2);
  let a = 0;
  for (let i = 0; i < threshold - 2; i++) {
    const avgStart = Math.floor((i + 1) * every) + 1;
    const avgEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let ax = 0, ay = 0;
    for (let j = avgStart; j < avgEnd; j++) {
      ax += points[j].x;
      ay += points[j].y;
    }
    const len = Math.max(1, avgEnd - avgStart);
    ax /= len;
    ay /= len;
    const start = Math.floor(i * every) + 1;
    const end = Math.floor((i + 1) * every) + 1;
    let best = start, bestArea = -1;
    const pa = points[a];
    for (let j = start; j < end; j++) {
      const area = Math.abs((pa.x - ax) * (points[j].y - pa.y) - (pa.x - points[j].x) * (ay - pa.y));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    out.push(points[best]);
    a = best;
  }
  out.push(points[n - 1]);
  return out;
}

/** The x column of a series: the first X_KEYS column numeric in at least 90% of rows, else null (row number). */
export function pickX(rows: readonly Record<string, unknown>[]): string | null {
  for (const k of X_KEYS) {
    let numeric = 0;
    for (const r of rows) if (typeof r[k] === 'number' && Number.isFinite(r[k])) numeric++;
    if (rows.length > 0 && numeric >= 0.9 * rows.length) return k;
  }
  return null;
}

function family(name: string, values: number[]): ChartSpec['family'] {
  if (/loss|objective|cost/i.test(name)) return 'loss';
  if (/acc|rate|success|fraction|precision|recall/i.test(name) && values.every((v) => v >= 0 && v <= 1)) return 'rates';
  return 'values';
}

const FAMILY_LABEL: Record<ChartSpec['family'], string> = { loss: 'loss', rates: 'rates', values: 'other values' };

/**
 * Charts of one metric series: one per family of columns (loss, rates in [0, 1], other values), each
 * numeric column a line against the x column. Non-finite values (stored as null) are left out and counted.
 */
export function chartsFromSeries(series: string, rows: readonly Record<string, unknown>[], maxPoints = 1500): ChartSpec[] {
  if (rows.length === 0) return [];
  const x = pickX(rows);
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (seen.has(k)) continue;
      if (typeof v === 'number') {
        seen.add(k);
        if (k !== x && !IGNORED_COLUMNS.has(k)) columns.push(k);
      }
    }
  }
  const groups = new Map<ChartSpec['family'], LineSpec[]>();
  let missing = 0;
  let thinned = false;
  for (const col of columns) {
    const pts: Point[] = [];
    rows.forEach((r, i) => {
      const xv = x ? r[x] : i;
      const yv = r[col];
      if (typeof xv === 'number' && Number.isFinite(xv) && typeof yv === 'number' && Number.isFinite(yv)) pts.push({ x: xv, y: yv });
      else if (col in r) missing++;
    });
    if (pts.length === 0) continue;
    const fam = family(col, pts.map((p) => p.y));
    const thin = lttb(pts, maxPoints);
    if (thin.length < pts.length) thinned = true;
    (groups.get(fam) ?? groups.set(fam, []).get(fam)!).push({ label: col, points: thin });
  }
  const multi = groups.size > 1;
  const out: ChartSpec[] = [];
  for (const fam of ['loss', 'rates', 'values'] as const) {
    const lines = groups.get(fam);
    if (!lines) continue;
    out.push({
      id: `${series}:${fam}`,
      series,
      family: fam,
      title: multi ? `${series}: ${FAMILY_LABEL[fam]}` : series,
      xLabel: x ?? 'row',
      ...(fam === 'rates' ? { yMin: 0, yMax: 1 } : {}),
      lines,
      rows: rows.length,
      ...(thinned ? { downsampledTo: maxPoints } : {}),
      ...(missing ? { note: `${missing} non-numeric or non-finite value(s) not drawn` } : {}),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// comparisons

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

export const PALETTE = ['#2f6fdb', '#c2352b', '#1f8a4c', '#b7791f', '#7b3fb5', '#0f8b8d', '#d45d9c', '#555555'];

/** Short labels for sessions in a comparison: A, B, C, ... */
export function compareLetter(i: number): string {
  return i < 26 ? String.fromCharCode(65 + i) : `S${i + 1}`;
}

/**
 * Charts present (same series and family) in at least two sessions, with every session's lines
 * overlaid: one colour per session, the second and later metrics of a session dashed.
 */
export function overlayCharts(items: readonly { label: string; charts: readonly ChartSpec[] }[]): ChartSpec[] {
  const order: string[] = [];
  const byId = new Map<string, { si: number; chart: ChartSpec }[]>();
  items.forEach((item, si) => {
    for (const c of item.charts) {
      if (!byId.has(c.id)) {
        byId.set(c.id, []);
        order.push(c.id);
      }
      byId.get(c.id)!.push({ si, chart: c });
    }
  });
  const out: ChartSpec[] = [];
  for (const id of order) {
    const entries = byId.get(id)!;
    if (new Set(entries.map((e) => e.si)).size < 2) continue;
    const first = entries[0].chart;
    const lines: LineSpec[] = [];
    for (const { si, chart } of entries) {
      chart.lines.forEach((l, li) => lines.push({ label: `${items[si].label} · ${l.label}`, points: l.points, color: PALETTE[si % PALETTE.length], dashed: li > 0 }));
    }
    out.push({ ...first, lines, rows: Math.max(...entries.map((e) => e.chart.rows)), note: undefined });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// tables and CSV

/** A JSON value as a table cell: nested arrays and objects become their JSON text. */
export function toCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

const isRowObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

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

/** One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, or starts/ends with a space. */
export function csvField(v: unknown): string {
  let s = typeof v === 'string' ? v : formatCsvValue(v);
  // A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
  // apostrophe (OWASP "CSV injection"); numbers, and text that is just a negative number, do not.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s) && !/^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s)) s = `'${s}`;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function formatCsvValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** A CSV document (RFC 4180, CRLF line ends, header row first). Numbers keep full precision. */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** Parses CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF) or TSV (`delimiter` '\t'). */
export function parseCsv(text: string, delimiter = ','): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < s.length) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      row.push(field);
      out.push(row);
      row = [];
      field = '';
      if (ch === '\r' && s[i + 1] === '\n') i++;
    } else field += ch;
    i++;
  }
  if (field !== '' || row.length) {
    row.push(field);
    out.push(row);
  }
  return out;
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

// ---------------------------------------------------------------------------------------------
// heat maps

const isMatrix = (v: unknown): v is (number | null)[][] =>
  Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.every((x) => x === null || typeof x === 'number'));

const tickLabel = (v: unknown) => (typeof v === 'number' ? formatNumber(Number(v.toPrecision(3))) : String(v));

/** One measured or reference value of a claim table, in its unit ('%' for fractions in [0, 1]). */
export function formatClaimValue(v: unknown, unit: unknown): string {
  if (v === null || v === undefined || v === '') return '';
  if (typeof v === 'number') return unit === '%' ? `${formatNumber(Number((100 * v).toPrecision(4)))}%` : `${formatNumber(v)}${typeof unit === 'string' && unit ? ` ${unit}` : ''}`;
  return formatCell(v);
}

/** The claim and evidence of a case-study report (CLAIM_FILE), or null when `doc` is not one. */
export function claimFromJson(path: string, doc: unknown): ClaimSpec | null {
  if (!isRowObject(doc) || typeof doc.claim !== 'string' || !Array.isArray(doc.table)) return null;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const rows = doc.table.filter(isRowObject).map((r) => ({ what: formatCell(r.what), measured: formatClaimValue(r.measured, r.unit), reference: formatClaimValue(r.reference, r.unit) }));
  return {
    path, title: str(doc.title) ?? str(doc.recipe) ?? path, claim: doc.claim, finding: str(doc.finding),
    reproduced: typeof doc.claimReproduced === 'boolean' ? doc.claimReproduced : null, criterion: str(doc.criterion),
    quick: typeof doc.quick === 'boolean' ? doc.quick : null, rows,
    notes: Array.isArray(doc.notes) ? doc.notes.filter((n): n is string => typeof n === 'string') : [],
  };
}

/**
 * Heat maps of a JSON artifact: a confusion matrix `{ classNames?, confusion }`, or loss surfaces
 * `{ alphas, betas, loss }` / `{ surfaces: [...] }`. Returns [] for anything else.
 */
export function heatmapsFromJson(path: string, doc: unknown): HeatmapSpec[] {
  if (!isRowObject(doc)) return [];
  if (isMatrix(doc.confusion)) {
    const m = doc.confusion;
    const names = Array.isArray(doc.classNames) ? doc.classNames.map(String) : m.map((_, i) => String(i));
    let total = 0, correct = 0;
    m.forEach((r, i) =>
      r.forEach((v, j) => {
        total += v ?? 0;
        if (i === j) correct += v ?? 0;
      }),
    );
    return [{
      id: `${path}#confusion`, path, kind: 'confusion', title: 'confusion matrix', rowTitle: 'true class', colTitle: 'predicted class',
      rowLabels: m.map((_, i) => names[i] ?? String(i)), colLabels: m[0].map((_, j) => names[j] ?? String(j)), values: m,
      annotate: m.length <= 20, note: total ? `${total} examples, accuracy ${formatNumber(correct / total)}` : undefined,
    }];
  }
  const surfaces = Array.isArray(doc.surfaces) ? doc.surfaces : [doc];
  const out: HeatmapSpec[] = [];
  surfaces.forEach((s: unknown, k: number) => {
    if (!isRowObject(s) || !Array.isArray(s.alphas) || !Array.isArray(s.betas) || !isMatrix(s.loss)) return;
    const dir = typeof s.directions === 'string' ? s.directions : surfaces.length > 1 ? `surface ${k + 1}` : '';
    const label = typeof doc.labelName === 'string' ? ` (label ${doc.labelName})` : typeof s.label === 'number' ? ` (label ${s.label})` : '';
    const id = `${path}#${k}`;
    out.push({
      id, path, kind: 'loss-surface', title: `loss surface${dir ? `: ${dir}` : ''}${label}`,
      rowTitle: dir.startsWith('gradient') ? 'α along sign(gradient)' : 'α along d1', colTitle: 'β along d2',
      rowLabels: s.alphas.map(tickLabel), colLabels: s.betas.map(tickLabel), values: s.loss, annotate: false,
      note: typeof s.note === 'string' ? s.note : undefined,
    });
    if (isMatrix(s.predicted)) {
      out.push({
        id: `${id}-predicted`, path, kind: 'classes', title: `predicted class${dir ? `: ${dir}` : ''}${label}`,
        rowTitle: out[out.length - 1].rowTitle, colTitle: 'β along d2', rowLabels: s.alphas.map(tickLabel), colLabels: s.betas.map(tickLabel),
        values: s.predicted, annotate: s.predicted.length <= 25, categorical: true,
      });
    }
  });
  return out;
}
