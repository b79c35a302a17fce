/** Charts of a session: metric series as line charts, the same charts overlaid across sessions, heat maps of JSON artifacts. */
import { IGNORED_COLUMNS, X_KEYS } from './conventions';
import { formatNumber, maxOf } from './format';
import type { ChartSpec, HeatmapSpec, LineSpec, Point } from './model';
import { isRowObject } from './tables';

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
    out.push({ ...first, lines, rows: maxOf(entries.map((e) => e.chart.rows)), note: undefined });
  }
  return out;
}

const isMatrix = (v: unknown): v is (number | null)[][] =>
  Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.every((x) => x === null || typeof x === 'number'));

const tickLabel = (v: unknown) => (typeof v === 'number' ? formatNumber(Number(v.toPrecision(3))) : String(v));

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
