/**
 * Reads one session folder into a SessionView (see src-shared/report/model.ts and conventions.ts): charts from its
 * metric series, heat maps, tables, image galleries and audio from its artifacts. Works from saved data
 * alone; a damaged manifest still yields a view of whatever files are readable.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AdvlabError } from '../engine/errors';
import { jsonSyntaxProblem } from '../engine/core/json-depth';
import { isTempFile, walkFiles } from '../engine/core/fs-atomic';
import { inferArtifactKind } from '../engine/sessions/paths';
import type { ArtifactInfo, SessionStore } from '../engine/sessions';
import { CLAIM_FILE, EXAMPLES_FILE, GRID_DIR, extOf, isAudioPath, isImagePath } from '../../src-shared/report/conventions';
import type { AudioItem, FileItem, ImageGroup, JsonItem, Row, SessionView, TableSpec } from '../../src-shared/report/model';
import { keyMetrics } from '../../src-shared/report/format';
import { chartsFromSeries, heatmapsFromJson, pickX } from '../../src-shared/report/charts';
import { tableFromCsv, tableFromJson } from '../../src-shared/report/tables';
import { claimFromJson } from '../../src-shared/report/claims';
import { wavInfo, wavPeaks } from './wav';
import { parseMetricLines } from '../engine/sessions/metrics';

export interface ViewOptions {
  /** Points per chart line (more are thinned). Default 1500. */
  maxPoints?: number;
  /** Rows sent per table. Default 1000. */
  maxTableRows?: number;
  /** JSON artifacts shown as text are cut at this many characters. Default 20,000. */
  maxJsonChars?: number;
  /** JSON/CSV files larger than this are listed, not parsed. Default 32 MB. */
  maxParseBytes?: number;
  /** Waveform resolution. Default 480. */
  peaks?: number;
}

const isDamageError = (e: unknown) => e instanceof AdvlabError && (e.code === 'BAD_FILE' || e.code === 'UNSUPPORTED');

/** Series names in <dir>/metrics (without .jsonl). */
export async function seriesNames(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(path.join(dir, 'metrics'))).filter((f) => f.endsWith('.jsonl') && !isTempFile(f)).map((f) => f.slice(0, -6)).sort();
  } catch {
    return [];
  }
}

/** Folder of an artifact path ('' for the top level). */
const folderOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

export async function buildSessionView(store: SessionStore, id: string, opts: ViewOptions = {}): Promise<SessionView> {
  const maxPoints = opts.maxPoints ?? 1500;
  const maxRows = opts.maxTableRows ?? 1000;
  const maxJson = opts.maxJsonChars ?? 20_000;
  const maxParse = opts.maxParseBytes ?? 32 * 1024 * 1024;
  const problems: string[] = [];

  let view: SessionView;
  let artifacts: ArtifactInfo[];
  let series: string[];
  try {
    const d = await store.show(id);
    const m = d.manifest;
    artifacts = d.artifacts;
    series = d.series;
    view = {
      id, status: d.status, name: m.name, kind: m.kind, created: m.created, finished: m.finished ?? null, tags: m.tags, manifest: m, notes: d.notes,
      summary: Object.entries(m.summary).map(([key, value]) => ({ key, value })), keyMetrics: keyMetrics(m.summary),
      datasets: m.datasets.map((x) => `${x.name}${x.split ? ` (${x.split})` : ''}`), models: m.models.map((x) => x.id ?? x.path ?? ''),
      charts: [], heatmaps: [], tables: [], images: [], audio: [], json: [], claim: null, files: [], problems,
    };
  } catch (e) {
    if (!isDamageError(e)) throw e;
    // The manifest cannot be read: show the files that are there.
    const dir = store.dir(id);
    const onDisk = await walkFiles(path.join(dir, 'artifacts'), { skipTemp: true });
    artifacts = await Promise.all(onDisk.map(async (rel) => {
      const st = await fsp.stat(path.join(dir, 'artifacts', ...rel.split('/'))).catch(() => null);
      return { path: rel, kind: inferArtifactKind(rel), bytes: st?.size ?? null, listed: false };
    }));
    series = await seriesNames(dir);
    let notes: string | null = null;
    try {
      notes = await store.notes(id);
    } catch {
      // unreadable notes are not worth another message
    }
    view = {
      id, status: 'damaged', damaged: (e as Error).message, name: id, kind: 'unknown', created: null, finished: null, tags: [], manifest: null, notes,
      summary: [], keyMetrics: [], datasets: [], models: [], charts: [], heatmaps: [], tables: [], images: [], audio: [], json: [], claim: null, files: [], problems,
    };
  }

  // Curves. A series with no x column whose rows are labelled by text (e.g. one row per check, or
  // the answers of a listening test) is a table, not a curve.
  const tables: TableSpec[] = [];
  for (const s of series) {
    try {
      const m = await store.readMetrics(id, s);
      for (const p of m.skipped) problems.push(`metrics/${s}.jsonl line ${p.line}: ${p.problem}`);
      const labelled = pickX(m.rows) === null && m.rows.some((r) => Object.values(r).some((v) => typeof v === 'string'));
      const table = labelled ? tableFromJson(m.rows) : null;
      if (table) {
        const path = `metrics/${s}.jsonl`;
        tables.push({ id: path, path, title: path, columns: table.columns, rows: table.rows.slice(0, maxRows), totalRows: table.rows.length, media: {} });
      } else for (const c of chartsFromSeries(s, m.rows, maxPoints)) view.charts.push(c);
    } catch (e) {
      problems.push(`metrics/${s}.jsonl: ${(e as Error).message}`);
    }
  }

  const present = new Map(artifacts.filter((a) => a.bytes !== null).map((a) => [a.path, a]));
  for (const a of artifacts) if (a.bytes === null) problems.push(`artifacts/${a.path}: listed in the manifest but missing on disk`);
  view.files = artifacts.map((a): FileItem => ({ path: a.path, kind: a.kind, bytes: a.bytes, ...(a.description ? { description: a.description } : {}), listed: a.listed }));
  const caption = (a: ArtifactInfo) => a.description ?? a.path;

  // Tables, heat maps and other JSON.
  const json: JsonItem[] = [];
  for (const a of present.values()) {
    const ext = extOf(a.path);
    const isModel = a.kind === 'model' || a.path.startsWith('model/');
    if (isModel || !['json', 'jsonl', 'csv', 'tsv'].includes(ext)) continue;
    if ((a.bytes ?? 0) > maxParse) {
      problems.push(`artifacts/${a.path}: ${a.bytes} bytes, too large to display (download the session to read it)`);
      continue;
    }
    let text: string;
    try {
      text = (await store.readArtifact(id, a.path)).toString('utf8');
    } catch (e) {
      problems.push(`artifacts/${a.path}: ${(e as Error).message}`);
      continue;
    }
    let table: { columns: string[]; rows: Row[]; field?: string } | null = null;
    if (ext === 'csv' || ext === 'tsv') table = tableFromCsv(text, ext === 'tsv' ? '\t' : ',');
    else if (ext === 'jsonl') {
      const parsed = parseMetricLines(a.path, text);
      table = tableFromJson(parsed.rows);
      for (const p of parsed.skipped) problems.push(`artifacts/${a.path} line ${p.line}: ${p.problem}`);
    } else {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        problems.push(`artifacts/${a.path}: not valid JSON (${jsonSyntaxProblem(e)})`);
        continue;
      }
      if (a.path === CLAIM_FILE && !view.claim) view.claim = claimFromJson(a.path, doc);
      const maps = heatmapsFromJson(a.path, doc);
      if (maps.length) {
        for (const h of maps) view.heatmaps.push(h);
        continue;
      }
      table = tableFromJson(doc);
      if (!table) {
        const pretty = JSON.stringify(doc, null, 2);
        json.push({ path: a.path, text: pretty.slice(0, maxJson), truncated: pretty.length > maxJson });
        continue;
      }
    }
    if (!table) {
      json.push({ path: a.path, text: text.slice(0, maxJson), truncated: text.length > maxJson });
      continue;
    }
    tables.push({
      id: a.path, path: a.path, title: `${a.path}${table.field && table.field !== 'rows' ? ` (${table.field})` : ''}${a.description ? `: ${a.description}` : ''}`,
      columns: table.columns, rows: table.rows.slice(0, maxRows), totalRows: table.rows.length, media: {},
    });
  }
  tables.sort((x, y) => (x.path === EXAMPLES_FILE ? -1 : y.path === EXAMPLES_FILE ? 1 : x.path.localeCompare(y.path)));

  // Media referenced by table rows: path cells, and <folder>/<index>-<variant>.<ext> files.
  const referenced = new Set<string>();
  const byIndex = new Map<string, Map<string, string>>(); // index -> variant -> path
  for (const p of present.keys()) {
    const m = /^[^/]+\/(\d+)-([A-Za-z0-9_]+)\.[A-Za-z0-9]+$/.exec(p);
    if (m && (isImagePath(p) || isAudioPath(p))) {
      const variants = byIndex.get(m[1]) ?? byIndex.set(m[1], new Map()).get(m[1])!;
      variants.set(m[2], p);
    }
  }
  const resolveMedia = (v: unknown): string | null => {
    if (typeof v !== 'string') return null;
    const p = v.replace(/^artifacts\//, '');
    return present.has(p) && (isImagePath(p) || isAudioPath(p)) ? p : null;
  };
  for (const t of tables) {
    for (const c of t.columns) {
      const cells = t.rows.map((r) => r[c]).filter((v) => v !== null && v !== '');
      if (cells.length && cells.every((v) => resolveMedia(v) !== null)) {
        t.media[c] = cells.every((v) => isImagePath(String(v))) ? 'image' : 'audio';
        for (const v of cells) if (isImagePath(String(v))) referenced.add(resolveMedia(v)!);
      }
    }
    if (t.path === EXAMPLES_FILE && t.columns.includes('index') && byIndex.size) {
      const variants: string[] = [];
      for (const r of t.rows) {
        const found = byIndex.get(String(r.index));
        if (!found) continue;
        for (const [variant, p] of found) {
          const col = t.columns.includes(variant) || t.media[variant] ? `${variant} file` : variant;
          if (!variants.includes(col)) variants.push(col);
          r[col] = p;
          if (isImagePath(p)) referenced.add(p);
        }
      }
      for (const col of variants) {
        t.columns.push(col);
        for (const r of t.rows) r[col] ??= null;
        t.media[col] = t.rows.every((r) => r[col] == null || isImagePath(String(r[col]))) ? 'image' : 'audio';
      }
    }
    // Pictures first (after the index), so that they are in view without scrolling sideways.
    const mediaCols = t.columns.filter((c) => t.media[c] === 'image');
    if (mediaCols.length) {
      const rest = t.columns.filter((c) => t.media[c] !== 'image');
      const at = rest[0] === 'index' ? 1 : 0;
      t.columns = [...rest.slice(0, at), ...mediaCols, ...rest.slice(at)];
    }
  }
  view.tables = tables;
  view.json = json;

  // Galleries: one per folder, grid/ first; images already shown in a table are not repeated. Audio
  // cells of tables link to the clip's player below, which is listed once, with its waveform.
  const groups = new Map<string, ImageGroup>();
  for (const a of present.values()) {
    if (!isImagePath(a.path) || referenced.has(a.path)) continue;
    const folder = folderOf(a.path);
    const g = groups.get(folder) ?? groups.set(folder, { title: folder, images: [] }).get(folder)!;
    g.images.push({ path: a.path, caption: caption(a), bytes: a.bytes });
  }
  view.images = [...groups.entries()]
    .sort(([x], [y]) => (x === GRID_DIR ? -1 : y === GRID_DIR ? 1 : x.localeCompare(y)))
    .map(([, g]) => ({ ...g, images: g.images.sort((x, y) => x.path.localeCompare(y.path, undefined, { numeric: true })) }));

  // Audio: every clip, with its waveform.
  const audio: AudioItem[] = [];
  for (const a of present.values()) {
    if (!isAudioPath(a.path)) continue;
    audio.push(await audioItem(store, id, a, caption(a), opts.peaks ?? 480));
  }
  view.audio = audio.sort((x, y) => x.path.localeCompare(y.path, undefined, { numeric: true }));
  return view;
}

/** Header and waveform of one audio artifact (WAV only; other formats are just played). */
export async function audioItem(store: SessionStore, id: string, a: { path: string; bytes: number | null }, caption: string, buckets = 480): Promise<AudioItem> {
  const item: AudioItem = { path: a.path, caption, bytes: a.bytes };
  if (extOf(a.path) !== 'wav') return item;
  try {
    const bytes = await store.readArtifact(id, a.path);
    const info = wavInfo(bytes);
    return { ...item, sampleRate: info.sampleRate, channels: info.channels, durationSec: info.durationSec, peaks: wavPeaks(bytes, buckets, info) };
  } catch (e) {
    return { ...item, problem: `artifacts/${a.path}: ${(e as Error).message}` };
  }
}
