/**
 * The HTML report of one session or a comparison of several: ONE self-contained file (inline CSS,
 * charts and heat maps as inline SVG, images and audio as data: URIs, no script at all, a CSP that
 * forbids any network access), which opens offline in any browser.
 */
import { badInput } from '../engine/errors';
import type { SessionStore } from '../engine/sessions';
import { ADVLAB_VERSION } from '../paths';
import { mimeOf } from '../engine/core/mime';
import {
  compareLetter,
  compareRecords,
  formatCell,
  formatNumber,
  formatPercent,
  overlayCharts,
  type ChartSpec,
  type CompareRow,
  type SessionView,
  type TableSpec,
} from './model';
import { escapeXml as esc, heatmapSvg, lineChartSvg, waveformSvg } from './svg';
import { buildSessionView } from './view';

export interface ReportOptions {
  /** Total bytes of images and audio embedded (the rest is listed as omitted). Default 100 MB. */
  maxEmbedBytes?: number;
  /** A single file larger than this is not embedded. Default 20 MB. */
  maxFileBytes?: number;
  /** Default 150. */
  maxImagesPerSession?: number;
  /** Default 40. */
  maxAudioPerSession?: number;
  /** Rows of each table written into the report. Default 300. */
  maxTableRows?: number;
  /** Points per chart line. Default 800. */
  maxPoints?: number;
  /** The time printed as "generated" (tests). */
  now?: Date;
}

export interface ReportResult {
  html: string;
  bytes: number;
  title: string;
  /** A file name to save it under. */
  filename: string;
  sessions: string[];
  embedded: { images: number; audio: number; bytes: number };
  /** What was left out, and why. */
  omitted: string[];
}

/** Reads files and turns them into data: URIs within a byte budget. */
class Embedder {
  images = 0;
  audio = 0;
  bytes = 0;
  readonly omitted: string[] = [];
  private perSession = new Map<string, { images: number; audio: number }>();

  constructor(
    private readonly store: SessionStore,
    private readonly o: Required<Pick<ReportOptions, 'maxEmbedBytes' | 'maxFileBytes' | 'maxImagesPerSession' | 'maxAudioPerSession'>>,
  ) {}

  async uri(id: string, path: string, kind: 'image' | 'audio', size: number | null): Promise<string | null> {
    const count = this.perSession.get(id) ?? this.perSession.set(id, { images: 0, audio: 0 }).get(id)!;
    const label = `${id}/artifacts/${path}`;
    if (kind === 'image' && count.images >= this.o.maxImagesPerSession) return this.skip(label, `more than ${this.o.maxImagesPerSession} images in the session`);
    if (kind === 'audio' && count.audio >= this.o.maxAudioPerSession) return this.skip(label, `more than ${this.o.maxAudioPerSession} audio clips in the session`);
    if (size !== null && size > this.o.maxFileBytes) return this.skip(label, `${size} bytes, over the ${this.o.maxFileBytes}-byte limit per file`);
    if (size !== null && this.bytes + size > this.o.maxEmbedBytes) return this.skip(label, `the report reached its ${this.o.maxEmbedBytes}-byte budget`);
    let data: Buffer;
    try {
      data = await this.store.readArtifact(id, path);
    } catch (e) {
      return this.skip(label, (e as Error).message);
    }
    if (this.bytes + data.length > this.o.maxEmbedBytes) return this.skip(label, `the report reached its ${this.o.maxEmbedBytes}-byte budget`);
    this.bytes += data.length;
    if (kind === 'image') {
      this.images++;
      count.images++;
    } else {
      this.audio++;
      count.audio++;
    }
    const mime = mimeOf(path);
    return `data:${mime};base64,${data.toString('base64')}`;
  }

  private skip(label: string, why: string): null {
    this.omitted.push(`${label}: ${why}`);
    return null;
  }
}

const CSS = `
:root{--border:#d9dde3;--muted:#67707c;--good:#1f8a4c;--bad:#c2352b;--warn:#b7791f;--accent:#2f6fdb}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d232b;background:#f6f7f9;margin:0;padding:1.5rem 2rem;line-height:1.4}
main{max-width:1200px;margin:0 auto}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.25rem;margin:0 0 .5rem}
h3{font-size:1.05rem;margin:1.25rem 0 .4rem}
h4{font-size:.95rem;margin:.75rem 0 .25rem}
section.card{background:#fff;border:1px solid var(--border);border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.muted{color:var(--muted)}.small{font-size:.82em}
table{border-collapse:collapse;font-size:.85rem;margin:.25rem 0}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid var(--border);vertical-align:top}
th{color:var(--muted);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow:auto;max-height:36rem;border:1px solid var(--border);border-radius:6px}
.scroll table{margin:0}
.scroll thead th{position:sticky;top:0;background:#fff}
.differs{background:#fff8e6}
.delta{display:block;font-size:.78em;color:var(--muted)}
.delta.up{color:#1d5fbf}.delta.down{color:#b35a00}
.status{font-weight:600}.st-finished{color:var(--good)}.st-failed,.st-damaged{color:var(--bad)}.st-incomplete,.st-cancelled,.st-running{color:var(--warn)}
.notice{border-left:4px solid var(--bad);background:#fdf1f0;padding:.5rem .75rem;border-radius:4px}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
.charts figure{margin:0}
figure{margin:0}
figcaption{font-size:.8rem;color:var(--muted);max-width:320px;overflow-wrap:anywhere}
.gallery{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-start}
.gallery img{max-width:320px;max-height:320px;image-rendering:pixelated;border:1px solid var(--border);background:#fff}
td img{max-height:84px;max-width:160px;image-rendering:pixelated;border:1px solid var(--border)}
.clip{margin:.5rem 0 1rem}
.clip svg{display:block;max-width:100%;height:auto}
.clip audio{width:600px;max-width:100%}
svg{max-width:100%;height:auto}
pre{background:#f3f4f6;padding:.5rem;border-radius:6px;overflow:auto;max-height:24rem;font-size:.8rem;white-space:pre-wrap}
.tag{display:inline-block;background:#eef1f5;border-radius:10px;padding:0 .5rem;margin-right:.25rem;font-size:.8em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.25rem 0;font-size:.9rem}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
@media print{body{background:#fff;padding:0}section.card{break-inside:avoid-page;border:none}}
`;

const anchor = (si: number, path: string) => `a${si}-${path.replace(/[^A-Za-z0-9_-]/g, '_')}`;

function statusSpan(status: string): string {
  return `<span class="status st-${esc(status)}">${esc(status)}</span>`;
}

function valueCell(v: unknown): string {
  return typeof v === 'number' ? `<td class="num">${esc(formatNumber(v))}</td>` : `<td>${esc(formatCell(v))}</td>`;
}

function chartFigure(c: ChartSpec): string {
  const notes = [c.downsampledTo ? `${c.rows} rows, drawn with at most ${c.downsampledTo} points per line` : '', c.note ?? ''].filter(Boolean).join('; ');
  return `<figure class="chart-figure" data-chart="${esc(c.id)}"><h4>${esc(c.title)}</h4>${lineChartSvg(c)}${notes ? `<figcaption>${esc(notes)}</figcaption>` : ''}</figure>`;
}

function compareTable(rows: CompareRow[], letters: string[], opts: { onlyDiffering?: boolean } = {}): string {
  const shown = opts.onlyDiffering ? rows.filter((r) => r.differs) : rows;
  if (!shown.length) return '<p class="muted">No differences.</p>';
  const head = `<tr><th>key</th>${letters.map((l, i) => `<th>${esc(l)}${i === 0 ? ' (reference)' : ''}</th>`).join('')}</tr>`;
  const body = shown.map((r) => {
    const cells = r.values.map((v, i) => {
      if (i === 0 || !r.numeric || r.diffs[i] === null || r.diffs[i] === 0) return valueCell(v);
      const d = r.diffs[i]!;
      const rel = r.rel[i];
      const cls = d > 0 ? 'up' : d < 0 ? 'down' : '';
      return `<td class="num">${esc(formatNumber(v as number))}<span class="delta ${cls}">Δ ${d > 0 ? '+' : ''}${esc(formatNumber(d))}${rel !== null ? ` (${esc(formatPercent(rel))})` : ''}</span></td>`;
    });
    return `<tr class="${r.differs ? 'differs' : ''}"><th>${esc(r.key)}</th>${cells.join('')}</tr>`;
  });
  return `<div class="scroll"><table class="compare"><thead>${head}</thead><tbody>${body.join('')}</tbody></table></div>`;
}

/** Parameters flattened one level for comparison (nested values compared as JSON). */
function flatParams(v: SessionView): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v.manifest?.params ?? {})) out[k] = val !== null && typeof val === 'object' ? JSON.stringify(val) : val;
  return out;
}

function summaryRecord(v: SessionView): Record<string, unknown> {
  return Object.fromEntries(v.summary.map((s) => [s.key, s.value]));
}

async function tableHtml(t: TableSpec, v: SessionView, si: number, emb: Embedder, maxRows: number): Promise<string> {
  const rows = t.rows.slice(0, maxRows);
  const head = `<tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body: string[] = [];
  for (const r of rows) {
    const cells: string[] = [];
    for (const c of t.columns) {
      const val = r[c];
      const media = t.media[c];
      if (media === 'image' && typeof val === 'string' && val) {
        const p = val.replace(/^artifacts\//, '');
        const uri = await emb.uri(v.id, p, 'image', v.files.find((f) => f.path === p)?.bytes ?? null);
        cells.push(uri ? `<td><img src="${uri}" alt="${esc(p)}" title="${esc(p)}"></td>` : `<td>${esc(p)}</td>`);
      } else if (media === 'audio' && typeof val === 'string' && val) {
        const p = val.replace(/^artifacts\//, '');
        cells.push(`<td><a href="#${anchor(si, p)}">${esc(p)}</a></td>`);
      } else cells.push(valueCell(val));
    }
    body.push(`<tr>${cells.join('')}</tr>`);
  }
  const count = rows.length < t.totalRows ? `first ${rows.length} of ${t.totalRows} rows (the CSV export has them all)` : `${t.totalRows} rows`;
  return `<div class="table-block" data-table="${esc(t.path)}"><h4>${esc(t.title)}</h4><p class="muted small">${esc(count)}</p><div class="scroll"><table class="rows"><thead>${head}</thead><tbody>${body.join('')}</tbody></table></div></div>`;
}

function duration(v: SessionView): string {
  if (!v.created || !v.finished) return '';
  const s = (Date.parse(v.finished) - Date.parse(v.created)) / 1000;
  return Number.isFinite(s) ? (s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`) : '';
}

async function sessionSection(v: SessionView, si: number, letter: string | null, emb: Embedder, o: { maxTableRows: number }): Promise<string> {
  const m = v.manifest;
  const out: string[] = [];
  out.push(`<section class="card session" id="session-${esc(v.id)}" data-session="${esc(v.id)}">`);
  out.push(`<h2>${letter ? `${esc(letter)}. ` : ''}${esc(v.name)}</h2>`);
  const meta: [string, string][] = [
    ['id', esc(v.id)],
    ['kind', esc(v.kind)],
    ['status', statusSpan(v.status)],
    ...(v.created ? [['created', esc(v.created)] as [string, string]] : []),
    ...(v.finished ? [['finished', `${esc(v.finished)}${duration(v) ? ` (${esc(duration(v))})` : ''}`] as [string, string]] : []),
    ...(v.datasets.length ? [['datasets', esc(v.datasets.join(', '))] as [string, string]] : []),
    ...(v.models.length ? [['models', esc(v.models.join(', '))] as [string, string]] : []),
    ...(v.tags.length ? [['tags', v.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join('')] as [string, string]] : []),
    ...(m ? [['environment', esc(`${m.environment.backend} backend, tfjs ${m.environment.tfjsVersion}, AdvLab ${m.environment.advlabVersion}, Node ${m.environment.node}, ${m.environment.platform}, ${m.environment.cpus} CPUs`)] as [string, string]] : []),
  ];
  out.push(`<dl class="meta">${meta.map(([k, val]) => `<dt>${k}</dt><dd>${val}</dd>`).join('')}</dl>`);
  if (v.damaged) out.push(`<p class="notice">This session is damaged: ${esc(v.damaged)}. Shown below is what its files still hold.</p>`);
  if (m?.error) out.push(`<p class="notice">The job failed: ${esc(m.error.code)}: ${esc(m.error.message)}</p>`);
  if (v.status === 'incomplete') out.push('<p class="notice">Incomplete: the job stopped without finishing (its process is gone). Everything it saved is shown.</p>');

  if (v.claim) {
    const c = v.claim;
    out.push(`<h3>Claim and evidence</h3><section class="claim" data-claim="${esc(c.path)}"><p><strong>Claim:</strong> ${esc(c.claim)}</p>`
      + (c.finding ? `<p><strong>What the talk shows:</strong> ${esc(c.finding)}</p>` : '')
      + (c.reproduced === null ? '' : `<p class="notice">${c.reproduced ? '&#10004; finding reproduced' : '&#10008; finding not reproduced'}${c.criterion ? ` &mdash; ${esc(c.criterion)}` : ''}${c.quick === null ? '' : c.quick ? ' (quick run)' : ' (full run)'}</p>`)
      + `<table><thead><tr><th>measured</th><th>this run</th><th>paper / talk</th></tr></thead><tbody>${c.rows.map((r) => `<tr><td>${esc(r.what)}</td><td>${esc(r.measured)}</td><td>${esc(r.reference)}</td></tr>`).join('')}</tbody></table>`
      + c.notes.map((n) => `<p>${esc(n)}</p>`).join('') + '</section>');
  }
  if (v.summary.length) {
    out.push(`<h3>Summary</h3><table class="summary"><tbody>${v.summary.map((s) => `<tr><th>${esc(s.key)}</th>${valueCell(s.value)}</tr>`).join('')}</tbody></table>`);
  }
  if (v.notes?.trim()) out.push(`<h3>Notes</h3><pre class="notes">${esc(v.notes)}</pre>`);
  if (v.charts.length) out.push(`<h3>Curves</h3><div class="charts">${v.charts.map(chartFigure).join('')}</div>`);
  if (v.heatmaps.length) {
    out.push(`<h3>Heat maps</h3><div class="charts">${v.heatmaps.map((h) => `<figure data-heatmap="${esc(h.id)}"><h4>${esc(h.title)}</h4>${heatmapSvg(h)}${h.note ? `<figcaption>${esc(h.note)}</figcaption>` : ''}</figure>`).join('')}</div>`);
  }
  if (v.tables.length) {
    out.push('<h3>Tables</h3>');
    for (const t of v.tables) out.push(await tableHtml(t, v, si, emb, o.maxTableRows));
  }
  for (const g of v.images) {
    out.push(`<h3>Images${g.title ? `: ${esc(g.title)}` : ''}</h3><div class="gallery">`);
    for (const img of g.images) {
      const uri = await emb.uri(v.id, img.path, 'image', img.bytes);
      out.push(uri ? `<figure><img src="${uri}" alt="${esc(img.caption)}"><figcaption>${esc(img.caption)}</figcaption></figure>` : `<figure><figcaption>${esc(img.path)} (not embedded)</figcaption></figure>`);
    }
    out.push('</div>');
  }
  if (v.audio.length) {
    out.push('<h3>Audio</h3>');
    for (const a of v.audio) {
      const uri = await emb.uri(v.id, a.path, 'audio', a.bytes);
      const info = [a.durationSec !== undefined ? `${a.durationSec.toFixed(2)} s` : '', a.sampleRate ? `${a.sampleRate} Hz` : '', a.channels ? `${a.channels} ch` : ''].filter(Boolean).join(', ');
      out.push(`<figure class="clip" id="${anchor(si, a.path)}"><figcaption>${esc(a.caption)}${info ? ` <span class="muted">(${esc(info)})</span>` : ''}</figcaption>`);
      if (a.peaks) out.push(waveformSvg(a.peaks));
      if (a.problem) out.push(`<p class="muted small">${esc(a.problem)}</p>`);
      out.push(uri ? `<audio controls preload="auto" src="${uri}"></audio>` : `<p class="muted small">${esc(a.path)} not embedded</p>`);
      out.push('</figure>');
    }
  }
  if (m && Object.keys(m.params).length) out.push(`<details><summary>Parameters</summary><pre>${esc(JSON.stringify(m.params, null, 2))}</pre></details>`);
  for (const j of v.json) out.push(`<details><summary>${esc(j.path)}${j.truncated ? ' (truncated)' : ''}</summary><pre>${esc(j.text)}</pre></details>`);
  if (v.files.length) {
    out.push(`<details><summary>Files (${v.files.length})</summary><table><thead><tr><th>path</th><th>kind</th><th>bytes</th><th>description</th></tr></thead><tbody>${v.files
      .map((f) => `<tr><td>${esc(f.path)}</td><td>${esc(f.kind)}</td><td class="num">${f.bytes === null ? 'missing' : f.bytes}</td><td>${esc(f.description ?? '')}</td></tr>`)
      .join('')}</tbody></table></details>`);
  }
  if (v.problems.length) out.push(`<h4>Problems reading this session</h4><ul>${v.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`);
  out.push('</section>');
  return out.join('\n');
}

function comparisonSection(views: SessionView[], letters: string[]): string {
  const out: string[] = ['<section class="card comparison" id="comparison">', `<h2>Comparison of ${views.length} sessions</h2>`];
  out.push(`<table class="sessions"><thead><tr><th></th><th>name</th><th>id</th><th>kind</th><th>status</th><th>created</th><th>datasets</th><th>models</th></tr></thead><tbody>${views
    .map((v, i) => `<tr><th><a href="#session-${esc(v.id)}">${esc(letters[i])}</a></th><td>${esc(v.name)}</td><td>${esc(v.id)}</td><td>${esc(v.kind)}</td><td>${statusSpan(v.status)}</td><td>${esc(v.created ?? '')}</td><td>${esc(v.datasets.join(', '))}</td><td>${esc(v.models.join(', '))}</td></tr>`)
    .join('')}</tbody></table>`);
  out.push(`<h3>Summary metrics</h3><p class="muted small">Differences (Δ) are relative to ${esc(letters[0])}; rows that differ are highlighted.</p>`);
  out.push(compareTable(compareRecords(views.map(summaryRecord)), letters));
  const params = compareRecords(views.map(flatParams));
  const same = params.filter((r) => !r.differs).length;
  out.push(`<h3>Parameters that differ</h3>${compareTable(params, letters, { onlyDiffering: true })}${same ? `<p class="muted small">${same} parameter(s) are the same in every session.</p>` : ''}`);
  const overlays = overlayCharts(views.map((v, i) => ({ label: letters[i], charts: v.charts })));
  if (overlays.length) out.push(`<h3>Curves overlaid</h3><div class="charts">${overlays.map(chartFigure).join('')}</div>`);
  out.push('</section>');
  return out.join('\n');
}

/** The report of `ids`: one session, or a comparison (with every session in full after it). */
export async function buildReport(store: SessionStore, ids: readonly string[], opts: ReportOptions = {}): Promise<ReportResult> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) throw badInput('A report needs at least one session id');
  const maxTableRows = opts.maxTableRows ?? 300;
  const views: SessionView[] = [];
  for (const id of unique) views.push(await buildSessionView(store, id, { maxTableRows, maxPoints: opts.maxPoints ?? 800 }));
  const emb = new Embedder(store, {
    maxEmbedBytes: opts.maxEmbedBytes ?? 100 * 1024 * 1024,
    maxFileBytes: opts.maxFileBytes ?? 20 * 1024 * 1024,
    maxImagesPerSession: opts.maxImagesPerSession ?? 150,
    maxAudioPerSession: opts.maxAudioPerSession ?? 40,
  });
  const compare = views.length > 1;
  const letters = views.map((_, i) => compareLetter(i));
  const title = compare ? `AdvLab comparison: ${views.map((v, i) => `${letters[i]}. ${v.name}`).join(' vs ')}` : `AdvLab report: ${views[0].name}`;
  const sections: string[] = [];
  if (compare) sections.push(comparisonSection(views, letters));
  for (const [i, v] of views.entries()) sections.push(await sessionSection(v, i, compare ? letters[i] : null, emb, { maxTableRows }));
  const generated = (opts.now ?? new Date()).toISOString();
  const omitted = emb.omitted;
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // No scripts, no network: everything the page shows is inside this file.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'">`,
    '<meta name="generator" content="AdvLab ' + esc(ADVLAB_VERSION) + '">',
    '<link rel="icon" href="data:,">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body><main>',
    `<header><h1>${esc(title)}</h1><p class="muted small">Generated ${esc(generated)} by AdvLab ${esc(ADVLAB_VERSION)} from the saved session${compare ? 's' : ''} ${unique.map(esc).join(', ')}. Self-contained: images and audio are embedded; it needs no network.</p></header>`,
    ...sections,
    omitted.length ? `<section class="card"><h3>Not embedded</h3><ul class="omitted">${omitted.map((x) => `<li>${esc(x)}</li>`).join('')}</ul></section>` : '',
    '</main></body></html>',
    '',
  ].join('\n');
  const filename = compare ? `advlab-comparison-${unique.length}-sessions-${unique[0]}.html` : `${unique[0]}-report.html`;
  return { html, bytes: Buffer.byteLength(html), title, filename, sessions: unique, embedded: { images: emb.images, audio: emb.audio, bytes: emb.bytes }, omitted };
}
