/**
 * Reviewing saved sessions: a display model of one session (SessionView), comparisons, the
 * self-contained HTML report and the CSV of per-example rows. Pure Node (no tfjs). The display model
 * (model.ts and the format, charts, tables, csv and claims beside it), the SVG drawings and the file
 * conventions a job kind follows to be displayed (conventions.ts) are pure of Node and live in
 * src-shared/report/, which the renderer imports too.
 */
export * from '../../src-shared/report/conventions';
export type { AudioItem, Cell, ChartSpec, FileItem, HeatmapSpec, ImageGroup, ImageItem, JsonItem, LineSpec, Point, Row, SessionView, TableSpec } from '../../src-shared/report/model';
export { formatCell, formatNumber, formatPercent, keyMetrics } from '../../src-shared/report/format';
export { chartsFromSeries, compareLetter, heatmapsFromJson, lttb, overlayCharts, pickX, PALETTE } from '../../src-shared/report/charts';
export { compareRecords, tableFromCsv, tableFromJson, toCell, type CompareRow } from '../../src-shared/report/tables';
export { csvField, parseCsv, toCsv } from '../../src-shared/report/csv';
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
