/**
 * Reviewing saved sessions: a display model of one session (SessionView), comparisons, the
 * self-contained HTML report and the CSV of per-example rows. Pure Node (no tfjs); model.ts, svg.ts,
 * wav.ts and conventions.ts are also pure of Node, so the renderer imports them too.
 * The file conventions a job kind follows to be displayed are in conventions.ts.
 */
export * from '../../src-shared/report/conventions';
export {
  chartsFromSeries,
  compareLetter,
  compareRecords,
  csvField,
  formatCell,
  formatNumber,
  formatPercent,
  heatmapsFromJson,
  keyMetrics,
  lttb,
  overlayCharts,
  parseCsv,
  pickX,
  tableFromCsv,
  tableFromJson,
  toCell,
  toCsv,
  PALETTE,
  type AudioItem,
  type Cell,
  type ChartSpec,
  type CompareRow,
  type FileItem,
  type HeatmapSpec,
  type ImageGroup,
  type ImageItem,
  type JsonItem,
  type LineSpec,
  type Point,
  type Row,
  type SessionView,
  type TableSpec,
} from '../../src-shared/report/model';
export { escapeXml, heatmapSvg, lineChartSvg, niceTicks, viridis, waveformSvg } from '../../src-shared/report/svg';
export { wavInfo, wavPeaks, type WavInfo } from './wav';
export { buildSessionView, seriesNames, type ViewOptions } from './view';
export { buildReport, type ReportOptions, type ReportResult } from './html';
export { sessionCsv, type CsvResult } from './csv';
export { writeOutputFile } from './output';
export {
  reviewHandlers,
  importArchiveBytes,
  exportArchiveBytes,
  MAX_EXPORT_BYTES,
  MAX_IMPORT_BYTES,
  type ReviewHandlers,
  type ImportParams,
  type ImportCallResult,
  type ExportCallResult,
} from './api';
