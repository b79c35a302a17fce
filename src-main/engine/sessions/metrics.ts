/**
 * Metric series: `metrics/<series>.jsonl`, one JSON object per line, appended as the job runs
 * (e.g. {"step":120,"epoch":1,"loss":0.31}). A crash mid-append can leave the last line torn; readers
 * skip it, keep every earlier row and say what they skipped.
 */
import { badInput } from '../errors';

export type MetricValue = number | string | boolean | null;
export type MetricRow = Record<string, MetricValue>;

export interface MetricProblem {
  /** 1-based line number in the file. */
  line: number;
  problem: string;
}

export interface MetricSeries {
  series: string;
  rows: MetricRow[];
  /** Lines that were skipped, with why. Empty for a clean file. */
  skipped: MetricProblem[];
  /** True when the last line had no newline and did not parse: a crash mid-append. */
  torn: boolean;
}

/** One row as the line appended to the file (with its newline). Non-finite numbers become null. */
export function formatMetricRow(row: Record<string, unknown>): string {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) throw badInput('A metric row must be an object such as {"step": 1, "loss": 0.5}');
  const clean: MetricRow = {};
  for (const [key, value] of Object.entries(row)) {
    if (value === undefined) continue;
    if (typeof value === 'number') clean[key] = Number.isFinite(value) ? value : null;
    else if (typeof value === 'string' || typeof value === 'boolean' || value === null) clean[key] = value;
    else throw badInput(`Metric "${key}" must be a number, string, boolean or null; got ${typeof value}`);
  }
  return `${JSON.stringify(clean)}\n`;
}

/** Parses a JSONL metric file; never throws on content, reports bad lines instead. */
export function parseMetricLines(series: string, text: string): MetricSeries {
  const rows: MetricRow[] = [];
  const skipped: MetricProblem[] = [];
  let torn = false;
  const endsClean = text.length === 0 || text.endsWith('\n');
  const lines = text.split('\n');
  if (endsClean) lines.pop(); // the empty string after the final newline
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const last = i === lines.length - 1 && !endsClean;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (last) {
        torn = true;
        skipped.push({ line: i + 1, problem: `torn last line (${line.length} bytes, no newline): the writer stopped mid-append` });
      } else {
        skipped.push({ line: i + 1, problem: `not JSON (${(e as Error).message})` });
      }
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      skipped.push({ line: i + 1, problem: 'not a JSON object' });
      continue;
    }
    rows.push(value as MetricRow);
  }
  return { series, rows, skipped, torn };
}
