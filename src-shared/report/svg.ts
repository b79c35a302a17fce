/**
 * Static SVG drawings (strings): line charts, heat maps and waveforms. Used by the HTML report (so it
 * needs no script) and by the Sessions view for heat maps and waveforms. Pure; every text is escaped.
 */
import type { ChartSpec, HeatmapSpec } from './model';
import { cells, finiteExtent, formatNumber, maxOf } from './format';
import { PALETTE } from './charts';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const r1 = (v: number) => Math.round(v * 10) / 10;

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function domain(values: number[], fixedMin?: number, fixedMax?: number): [number, number] {
  const e = finiteExtent(values);
  let lo = e?.lo ?? NaN, hi = e?.hi ?? NaN;
  if (fixedMin !== undefined) lo = Math.min(lo, fixedMin);
  if (fixedMax !== undefined) hi = Math.max(hi, fixedMax);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

export interface LineChartOptions {
  width?: number;
  height?: number;
}

/** A line chart of `spec` (axes, ticks, one polyline per line, a legend below). */
export function lineChartSvg(spec: Pick<ChartSpec, 'title' | 'xLabel' | 'yMin' | 'yMax' | 'lines'>, opts: LineChartOptions = {}): string {
  const W = opts.width ?? 540;
  const plotH = opts.height ?? 240;
  const ml = 60, mr = 16, mt = 10;
  const lines = spec.lines.filter((l) => l.points.length > 0);
  const legendCols = Math.max(1, Math.floor((W - ml) / 200));
  const legendRows = Math.ceil(lines.length / legendCols);
  const H = mt + plotH + 38 + legendRows * 16 + 4;
  const pw = W - ml - mr;
  const xs = lines.flatMap((l) => l.points.map((p) => p.x));
  const ys = lines.flatMap((l) => l.points.map((p) => p.y));
  const [x0, x1] = domain(xs);
  const [y0, y1] = domain(ys, spec.yMin, spec.yMax);
  const sx = (x: number) => ml + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => mt + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" font-family="system-ui, sans-serif" font-size="11">`);
  parts.push(`<title>${escapeXml(spec.title)}</title>`);
  parts.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${plotH}" fill="#fff" stroke="#c9ced6"/>`);
  for (const t of niceTicks(y0, y1, 6)) {
    const y = r1(sy(t));
    parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y}" y2="${y}" stroke="#eceff3"/><text x="${ml - 6}" y="${y + 3.5}" text-anchor="end" fill="#555">${escapeXml(formatNumber(t))}</text>`);
  }
  for (const t of niceTicks(x0, x1, 7)) {
    const x = r1(sx(t));
    parts.push(`<line x1="${x}" x2="${x}" y1="${mt}" y2="${mt + plotH}" stroke="#f3f4f6"/><text x="${x}" y="${mt + plotH + 14}" text-anchor="middle" fill="#555">${escapeXml(formatNumber(t))}</text>`);
  }
  parts.push(`<text x="${ml + pw / 2}" y="${mt + plotH + 30}" text-anchor="middle" fill="#333">${escapeXml(spec.xLabel)}</text>`);
  lines.forEach((l, i) => {
    const color = escapeXml(l.color ?? PALETTE[i % PALETTE.length]);
    if (l.points.length === 1) {
      parts.push(`<circle cx="${r1(sx(l.points[0].x))}" cy="${r1(sy(l.points[0].y))}" r="3" fill="${color}"/>`);
    } else {
      const pts = l.points.map((p) => `${r1(sx(p.x))},${r1(sy(p.y))}`).join(' ');
      parts.push(`<polyline class="line" data-points="${l.points.length}" fill="none" stroke="${color}" stroke-width="1.6"${l.dashed ? ' stroke-dasharray="5 4"' : ''} points="${pts}"/>`);
    }
    const lx = ml + (i % legendCols) * 200;
    const ly = mt + plotH + 46 + Math.floor(i / legendCols) * 16;
    parts.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${lx + 22}" y="${ly}" fill="#333">${escapeXml(l.label.length > 32 ? l.label.slice(0, 31) + '…' : l.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Viridis, sampled at 9 stops. */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];
const CATEGORICAL = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function hexToRgb(h: string): [number, number, number] {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

/** Viridis colour of t in [0, 1]. */
export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(VIRIDIS[i]), b = hexToRgb(VIRIDIS[i + 1]);
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Every k-th label so that at most ~max are written. */
function labelStep(n: number, max: number): number {
  return Math.max(1, Math.ceil(n / max));
}

/** A heat map of `spec`: cells coloured on viridis (or by class), labels, optional values, a colour bar. */
export function heatmapSvg(spec: HeatmapSpec, opts: { maxSize?: number } = {}): string {
  const rows = spec.values.length;
  const cols = maxOf(spec.values.map((r) => r.length), 0);
  const max = opts.maxSize ?? 360;
  const cs = Math.max(3, Math.min(36, Math.floor(Math.min(max / Math.max(1, cols), max / Math.max(1, rows)))));
  const longest = maxOf(spec.rowLabels.map((l) => l.length), 1);
  const ml = 30 + Math.min(90, longest * 6.5 + 6);
  const mt = 8;
  const gw = cols * cs, gh = rows * cs;
  const barX = ml + gw + 16;
  const W = barX + 70;
  const H = mt + gh + 48;
  const extent = finiteExtent(cells(spec.values));
  const lo = extent?.lo ?? 0;
  const hi = extent?.hi ?? 1;
  const norm = (v: number) => (hi === lo ? 0.5 : (v - lo) / (hi - lo));
  const colour = (v: number | null) =>
    v === null || !Number.isFinite(v) ? '#e5e7eb' : spec.categorical ? CATEGORICAL[((Math.round(v) % 10) + 10) % 10] : viridis(norm(v));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" font-family="system-ui, sans-serif" font-size="10">`);
  parts.push(`<title>${escapeXml(spec.title)}</title>`);
  const fontPx = Math.min(11, Math.max(7, cs * 0.38));
  spec.values.forEach((row, i) => {
    row.forEach((v, j) => {
      const x = ml + j * cs, y = mt + i * cs;
      const fill = colour(v);
      parts.push(`<rect x="${x}" y="${y}" width="${cs}" height="${cs}" fill="${fill}"><title>${escapeXml(`${spec.rowLabels[i] ?? i}, ${spec.colLabels[j] ?? j}: ${v === null ? 'n/a' : formatNumber(v)}`)}</title></rect>`);
      if (spec.annotate && v !== null && cs >= 14) {
        const dark = spec.categorical ? false : norm(v) < 0.55;
        parts.push(`<text x="${x + cs / 2}" y="${y + cs / 2 + fontPx / 3}" text-anchor="middle" font-size="${fontPx.toFixed(1)}" fill="${dark ? '#fff' : '#111'}">${escapeXml(formatNumber(v))}</text>`);
      }
    });
  });
  const rs = labelStep(rows, Math.max(2, Math.floor(gh / 12)));
  spec.rowLabels.forEach((l, i) => {
    if (i % rs === 0) parts.push(`<text x="${ml - 4}" y="${mt + i * cs + cs / 2 + 3.5}" text-anchor="end" fill="#444">${escapeXml(l)}</text>`);
  });
  const csStep = labelStep(cols, Math.max(2, Math.floor(gw / 28)));
  spec.colLabels.forEach((l, j) => {
    if (j % csStep === 0) parts.push(`<text x="${ml + j * cs + cs / 2}" y="${mt + gh + 12}" text-anchor="middle" fill="#444">${escapeXml(l)}</text>`);
  });
  parts.push(`<text x="${ml + gw / 2}" y="${mt + gh + 30}" text-anchor="middle" fill="#222" font-size="11">${escapeXml(spec.colTitle)}</text>`);
  parts.push(`<text transform="translate(12 ${mt + gh / 2}) rotate(-90)" text-anchor="middle" fill="#222" font-size="11">${escapeXml(spec.rowTitle)}</text>`);
  if (!spec.categorical && extent) {
    const steps = 24;
    const bh = Math.max(60, Math.min(gh, 200));
    for (let k = 0; k < steps; k++) {
      const t = 1 - k / (steps - 1);
      parts.push(`<rect x="${barX}" y="${r1(mt + (k * bh) / steps)}" width="12" height="${r1(bh / steps + 0.6)}" fill="${viridis(t)}"/>`);
    }
    parts.push(`<text x="${barX + 16}" y="${mt + 8}" fill="#444">${escapeXml(formatNumber(hi))}</text><text x="${barX + 16}" y="${mt + bh}" fill="#444">${escapeXml(formatNumber(lo))}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

/** A waveform from peak amplitudes (0..1): mirrored bars around the centre line. */
export function waveformSvg(peaks: readonly number[], opts: { width?: number; height?: number; color?: string } = {}): string {
  const W = opts.width ?? 600, H = opts.height ?? 72;
  const mid = H / 2;
  const n = Math.max(1, peaks.length);
  const dx = W / n;
  const d = peaks.map((p, i) => {
    const h = Math.max(0.5, Math.min(1, p) * (H / 2 - 2));
    const x = r1(i * dx + dx / 2);
    return `M${x} ${r1(mid - h)}V${r1(mid + h)}`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" class="waveform" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img"><title>waveform</title><rect width="${W}" height="${H}" fill="#f6f8fb"/><line x1="0" x2="${W}" y1="${mid}" y2="${mid}" stroke="#d5dae1"/><path d="${d}" stroke="${escapeXml(opts.color ?? '#2f6fdb')}" stroke-width="${Math.max(1, r1(dx * 0.7))}" fill="none"/></svg>`;
}
