/**
 * What a saved session looks like once read for display: charts, heat maps, tables, images, audio.
 * Pure data (no Node, no DOM): the Sessions view renders a SessionView with Svelte, the HTML report
 * renders the same SessionView as static HTML and SVG, so both show the same thing. The functions that
 * build its parts are beside it: format.ts (numbers, key metrics), charts.ts (metric series, overlays,
 * heat maps), tables.ts (JSON and CSV tables, comparisons), csv.ts (CSV text), claims.ts (case-study claims).
 */
import type { SessionManifest, SummaryValue } from '../../src-main/engine/sessions/schema';

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
