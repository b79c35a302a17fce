/**
 * CSV of a session's per-example rows: artifacts/examples.json when there is one, else the metric
 * series with the most rows. Every row, full precision, RFC 4180 quoting.
 */
import { AdvlabError, badFile } from '../engine/errors';
import { jsonSyntaxProblem } from '../engine/core/json-depth';
import type { SessionStore } from '../engine/sessions';
import { EXAMPLES_FILE } from '../../src-shared/report/conventions';
import { tableFromJson } from '../../src-shared/report/tables';
import { toCsv } from '../../src-shared/report/csv';
import { seriesNames } from './view';

export interface CsvResult {
  csv: string;
  /** Where the rows came from: "artifacts/examples.json" or "metrics/<series>.jsonl". */
  source: string;
  columns: string[];
  rows: number;
  /** A file name to save it under. */
  filename: string;
}

export async function sessionCsv(store: SessionStore, id: string): Promise<CsvResult> {
  await store.notes(id); // NOT_FOUND (naming the trash when it is there) for a session that does not exist
  let examples: Buffer | null = null;
  try {
    examples = await store.readArtifact(id, EXAMPLES_FILE);
  } catch (e) {
    if (!(e instanceof AdvlabError && e.code === 'NOT_FOUND')) throw e;
  }
  if (examples) {
    const file = `${store.dir(id)}/artifacts/${EXAMPLES_FILE}`;
    let doc: unknown;
    try {
      doc = JSON.parse(examples.toString('utf8'));
    } catch (e) {
      throw badFile(file, `not valid JSON (${jsonSyntaxProblem(e)})`);
    }
    const t = tableFromJson(doc);
    if (!t) {
      if (Array.isArray(doc) && doc.length === 0) return { csv: '\r\n', source: `artifacts/${EXAMPLES_FILE}`, columns: [], rows: 0, filename: `${id}-examples.csv` };
      throw badFile(file, 'expected an array of row objects (or {"rows": [...]})');
    }
    return { csv: toCsv(t.columns, t.rows), source: `artifacts/${EXAMPLES_FILE}`, columns: t.columns, rows: t.rows.length, filename: `${id}-examples.csv` };
  }
  // No examples.json: the longest metric series.
  const names = await seriesNames(store.dir(id)); // also for a damaged manifest
  let best: { series: string; rows: Record<string, unknown>[] } | null = null;
  for (const s of names) {
    const m = await store.readMetrics(id, s);
    if (!best || m.rows.length > best.rows.length) best = { series: s, rows: m.rows };
  }
  if (!best) throw new AdvlabError('NOT_FOUND', `Session ${id} has no per-example rows (artifacts/${EXAMPLES_FILE}) and no metric series to export as CSV`, { id });
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of best.rows) {
    for (const k of Object.keys(r)) {
      if (!seen.has(k)) {
        seen.add(k);
        columns.push(k);
      }
    }
  }
  return { csv: toCsv(columns, best.rows), source: `metrics/${best.series}.jsonl`, columns, rows: best.rows.length, filename: `${id}-${best.series}.csv` };
}
