/**
 * A robustness study: a grid of models x attacks x parameter values, each cell an ordinary attack job
 * started through the API's door (its params and paths checked there, its own session written exactly
 * as `advlab attack` would), and a summary session of kind 'study' holding the table across cells
 * (cells.json, table.csv) and the data of its charts (charts.json: robust accuracy and success rate
 * against each numeric grid parameter, one series per model and attack). `advlab study FILE.json`
 * (cli/study.ts) and the API's studies.start (the app's Study panel) both run it through startStudy.
 *
 * Every cell is checked (the attack job's schema and the attack's own parameters) before any starts,
 * so a typo in the last cell costs nothing. Cells' shards go wherever their jobs' shards go (the local
 * pool, or the cluster in Settings / --queue); the cells and the summary are written here either way.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { checkJobStart } from './job-check';
import { jobStartSchema, type JobParamsOf } from './jobs';
import type { ApiEvent, Envelope, JobInfo } from './contract';
import type { JobService } from './job-service';
import { AdvlabError, badInput, formatIssues, isErrorCode } from '../engine/errors';
import { ENGINE_REQUESTS } from '../engine/onnx/engines';
import { collectEnvironment, type SessionStore } from '../engine/sessions';

const scalar = z.union([z.number(), z.string(), z.boolean()]);

/** A study file. The fields beside models, attacks and grid are those of every cell's attack job. */
export const studySchema = z.strictObject({
  name: z.string().max(200).optional(),
  tags: z.array(z.string()).max(20).default([]),
  dataset: z.string().min(1),
  split: z.enum(['train', 'test']).optional(),
  n: z.number().int().min(1).max(10000).optional(),
  pick: z.enum(['first', 'random']).optional(),
  offset: z.number().int().min(0).optional(),
  seed: z.number().int().min(0).optional(),
  splitSpec: z.string().max(40).optional(),
  batchSize: z.number().int().min(1).max(4096).optional(),
  saveExamples: z.number().int().min(0).max(200).optional(),
  /** The engine every cell's attack runs on (auto|onnx|tfjs, as --engine); with --queue, auto means tfjs. */
  engine: z.enum(ENGINE_REQUESTS).optional(),
  /** Model references: session ids of trained models or model.json paths (relative to the study file). */
  models: z.array(z.string().min(1)).min(1).max(64),
  attacks: z.array(z.strictObject({
    attack: z.string().min(1),
    /** The attack's own parameters, shared by its cells; a grid value overrides one. */
    params: z.record(z.string(), z.unknown()).default({}),
    goal: z.unknown().optional(),
    /** How the table names it (default: the attack id). */
    label: z.string().max(60).optional(),
  })).min(1).max(64),
  /** Attack parameters to vary: every combination of the values (e.g. { "eps": [0.1, 0.2, 0.3] }). */
  grid: z.record(z.string(), z.array(scalar).min(1).max(64)).default({}),
});
export type Study = z.output<typeof studySchema>;

/** At most this many cells in one study. */
export const MAX_STUDY_CELLS = 1024;

export interface StudyCell {
  index: number;
  model: string;
  attack: string;
  label: string;
  /** The grid values of this cell. */
  point: Record<string, z.infer<typeof scalar>>;
  params: JobParamsOf<'attack'>;
}

/**
 * The cells in order (models, then attacks, then grid points, the first grid key slowest), each an
 * attack job's params. A model path relative to `baseDir` (the study file's folder) is made absolute;
 * with no baseDir (a study sent to the API) references stay as given.
 */
export function studyCells(study: Study, baseDir: string | null): StudyCell[] {
  const keys = Object.keys(study.grid);
  let points: Record<string, z.infer<typeof scalar>>[] = [{}];
  for (const k of keys) points = points.flatMap((p) => study.grid[k].map((v) => ({ ...p, [k]: v })));
  const total = study.models.length * study.attacks.length * points.length;
  if (total > MAX_STUDY_CELLS) throw badInput(`A study has at most ${MAX_STUDY_CELLS} cells (MAX_STUDY_CELLS); this one has ${total}`);
  const cells: StudyCell[] = [];
  const name = study.name ?? 'study';
  for (const model0 of study.models) {
    // A path relative to the study file; a session id stays as is.
    const rel = baseDir === null ? null : resolve(baseDir, model0);
    const model = rel !== null && existsSync(rel) ? rel : model0;
    for (const a of study.attacks) {
      for (const point of points) {
        const index = cells.length;
        const label = a.label ?? a.attack;
        const pointText = keys.map((k) => `${k}=${point[k]}`).join(' ');
        const params = JSON.parse(JSON.stringify({
          model, dataset: study.dataset, split: study.split, n: study.n, pick: study.pick, offset: study.offset, seed: study.seed,
          splitSpec: study.splitSpec, batchSize: study.batchSize, saveExamples: study.saveExamples, engine: study.engine,
          attack: a.attack, goal: a.goal, params: { ...a.params, ...point },
          name: `${name} [${index + 1}/${total}]: ${label}${pointText ? ` ${pointText}` : ''} on ${model0}`.slice(0, 200),
          tags: [...study.tags, 'study-cell'],
        })) as JobParamsOf<'attack'>;
        cells.push({ index, model: model0, attack: a.attack, label, point, params });
      }
    }
  }
  return cells;
}

/** Checks every cell as jobs.start would (schema, then the attack's own parameters): BAD_INPUT naming the cell. */
export function checkCells(cells: StudyCell[]): void {
  for (const c of cells) {
    const parsed = jobStartSchema.safeParse({ kind: 'attack', params: c.params });
    try {
      if (!parsed.success) throw badInput(formatIssues(parsed.error.issues, { root: 'params' }).join('; '));
      checkJobStart(parsed.data);
    } catch (e) {
      throw badInput(`Study cell ${c.index + 1} (${c.label} ${JSON.stringify(c.point)} on ${c.model}): ${(e as Error).message}`, { cell: c.index });
    }
  }
}

/** One row of the study's table. */
export interface StudyRow {
  cell: number;
  model: string;
  attack: string;
  label: string;
  point: Record<string, unknown>;
  state: string;
  session: string | null;
  n: number | null;
  cleanAccuracy: number | null;
  successRate: number | null;
  robustAccuracy: number | null;
  meanL2: number | null;
  meanLinf: number | null;
  seconds: number | null;
  error: string | null;
}

const numOrNull = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

function rowOf(cell: StudyCell, info: JobInfo<'attack'>): StudyRow {
  const r = (info.result ?? {}) as Record<string, unknown>;
  return {
    cell: cell.index, model: cell.model, attack: cell.attack, label: cell.label, point: cell.point, state: info.state,
    session: info.session ?? null, n: numOrNull(r.n), cleanAccuracy: numOrNull(r.cleanAccuracy), successRate: numOrNull(r.successRate),
    robustAccuracy: numOrNull(r.robustAccuracy), meanL2: numOrNull(r.meanL2), meanLinf: numOrNull(r.meanLinf), seconds: numOrNull(r.seconds),
    error: info.error?.message ?? null,
  };
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function studyCsv(rows: StudyRow[], keys: string[]): string {
  const head = ['cell', 'model', 'attack', ...keys, 'state', 'n', 'cleanAccuracy', 'successRate', 'robustAccuracy', 'meanL2', 'meanLinf', 'seconds', 'session', 'error'];
  const lines = rows.map((r) => [r.cell + 1, r.model, r.label, ...keys.map((k) => r.point[k]), r.state, r.n, r.cleanAccuracy, r.successRate, r.robustAccuracy, r.meanL2, r.meanLinf, r.seconds, r.session, r.error].map(csvCell).join(','));
  return [head.join(','), ...lines].join('\n') + '\n';
}

/** Robust accuracy and success rate against each numeric grid key: one series per model and attack (the other keys fixed at each of their values). */
export function studyCharts(rows: StudyRow[], keys: string[]) {
  const charts: { x: string; metric: 'robustAccuracy' | 'successRate'; series: { name: string; points: { x: number; y: number | null; cell: number }[] }[] }[] = [];
  for (const x of keys) {
    if (!rows.every((r) => typeof r.point[x] === 'number')) continue;
    for (const metric of ['robustAccuracy', 'successRate'] as const) {
      const series = new Map<string, { x: number; y: number | null; cell: number }[]>();
      for (const r of rows) {
        const others = keys.filter((k) => k !== x).map((k) => `${k}=${r.point[k]}`).join(' ');
        const name = `${r.label} on ${r.model}${others ? ` (${others})` : ''}`;
        if (!series.has(name)) series.set(name, []);
        series.get(name)!.push({ x: r.point[x] as number, y: r[metric], cell: r.cell });
      }
      charts.push({ x, metric, series: [...series].map(([name, points]) => ({ name, points: points.sort((a, b) => a.x - b.x) })) });
    }
  }
  return charts;
}

/** A study's JSON checked against studySchema: BAD_INPUT listing every issue and the accepted fields (`from` names the file or the request). */
export function parseStudy(raw: unknown, from: string): Study {
  const parsed = studySchema.safeParse(raw);
  if (!parsed.success) throw badInput(`${from}: ${formatIssues(parsed.error.issues, { input: raw, accepted: Object.keys(studySchema.shape), root: 'study' }).join('; ')}`);
  return parsed.data;
}

/** What a finished (or cancelled) study reports. */
export interface StudyOutcome {
  session: string;
  cells: number;
  finished: number;
  failed: number;
  cancelled: number;
  where: 'local' | 'cluster';
  seconds: number;
  meanRobustAccuracy: number | null;
  meanSuccessRate: number | null;
  rows: StudyRow[];
  /** The study was cancelled (cancel()). */
  wasCancelled: boolean;
}

export interface StudyRunOptions {
  /** Starts one cell's attack job through the API's door (ApiCore.call('jobs.start')): its checks apply. */
  start: (params: JobParamsOf<'attack'>) => Promise<Envelope<{ jobId: string }>>;
  jobs: JobService;
  store: SessionStore;
  version: string;
  where: 'local' | 'cluster';
  /** Recorded in the summary session's params (the study file, when there is one). */
  file?: string;
  /** Each cell's job events (logs, its end), for a CLI's output. */
  onCellEvent?: (cell: StudyCell, e: ApiEvent, finishedCells: number) => void;
}

/** A started study: its summary session (written when every cell has ended), its cells' jobs and cancel. */
export interface RunningStudy {
  session: string;
  cells: StudyCell[];
  jobIds: string[];
  done: Promise<StudyOutcome>;
  cancel(): void;
}

/**
 * Starts a study: checks every cell, creates the summary session, starts every cell's attack job (the
 * runner queues beyond its maximum of jobs at once) and resolves `done` once all have ended, with the
 * summary session written (finished, or cancelled after cancel()). A cell that cannot start cancels the
 * cells already started and fails the summary session, and startStudy rejects with that error.
 */
export async function startStudy(spec: Study, baseDir: string | null, o: StudyRunOptions): Promise<RunningStudy> {
  const keys = Object.keys(spec.grid);
  const cells = studyCells(spec, baseDir);
  checkCells(cells);
  const backend = await o.jobs.backend();
  const writer = await o.store.create({
    kind: 'study',
    name: spec.name ?? `study of ${cells.length} cells`,
    params: { ...(o.file ? { file: o.file } : {}), ...(spec as unknown as Record<string, unknown>), cells: cells.length, where: o.where },
    tags: spec.tags,
    environment: collectEnvironment({ backend: backend.name, tfjsVersion: backend.tfjsVersion, advlabVersion: o.version }),
  });
  const t0 = performance.now();
  const jobs: { cell: StudyCell; jobId: string; done: Promise<JobInfo<'attack'>> }[] = [];
  const byJob = new Map<string, StudyCell>();
  let cancelled = false;
  let finishedCells = 0;
  const onEvent = (e: ApiEvent) => {
    if (!('jobId' in e) || !byJob.has(e.jobId)) return;
    if (e.type === 'job.finished' || e.type === 'job.failed' || e.type === 'job.cancelled') finishedCells++;
    o.onCellEvent?.(byJob.get(e.jobId)!, e, finishedCells);
  };
  o.jobs.on('event', onEvent);
  const off = () => (o.jobs as unknown as { off?: (ev: 'event', l: (e: ApiEvent) => void) => void }).off?.('event', onEvent);
  try {
    for (const cell of cells) {
      const started = await o.start(cell.params);
      if (!started.ok) throw new AdvlabError(isErrorCode(started.error.code) ? started.error.code : 'INTERNAL', `cell ${cell.index + 1}: ${started.error.message}`, started.error.details);
      const { jobId } = started.result;
      byJob.set(jobId, cell);
      const done = (o.jobs.wait(jobId) ?? Promise.resolve(o.jobs.list().find((j) => j.jobId === jobId)!)) as Promise<JobInfo<'attack'>>;
      jobs.push({ cell, jobId, done });
    }
  } catch (e) {
    for (const j of jobs) o.jobs.cancel(j.jobId);
    off();
    await writer.fail(e);
    throw e;
  }
  const done = (async (): Promise<StudyOutcome> => {
    let rows: StudyRow[];
    try {
      rows = await Promise.all(jobs.map(async (j) => rowOf(j.cell, await j.done)));
    } catch (e) {
      await writer.fail(e);
      throw e;
    } finally {
      off();
    }
    const failed = rows.filter((r) => r.state === 'failed').length;
    const seconds = (performance.now() - t0) / 1000;
    const ok = rows.filter((r) => r.state === 'finished');
    const mean = (f: (r: StudyRow) => number | null) => {
      const xs = ok.map(f).filter((x): x is number => x !== null);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
    };
    await writer.writeArtifacts([
      { path: 'cells.json', data: JSON.stringify({ keys, rows }, null, 1), kind: 'table', description: 'one row per cell: its session and results' },
      { path: 'table.csv', data: studyCsv(rows, keys), kind: 'table', description: 'the study table' },
      { path: 'charts.json', data: JSON.stringify(studyCharts(rows, keys)), kind: 'json', description: 'robust accuracy and success rate against each numeric grid parameter' },
    ]);
    const summary = { cells: cells.length, finished: ok.length, failed, cancelled: rows.length - ok.length - failed, where: o.where, seconds, meanRobustAccuracy: mean((r) => r.robustAccuracy), meanSuccessRate: mean((r) => r.successRate) };
    if (cancelled) await writer.cancel(summary);
    else await writer.finish(summary);
    return { session: writer.id, ...summary, rows, wasCancelled: cancelled };
  })();
  return {
    session: writer.id,
    cells,
    jobIds: jobs.map((j) => j.jobId),
    done,
    cancel: () => {
      cancelled = true;
      for (const j of jobs) o.jobs.cancel(j.jobId);
    },
  };
}
