/**
 * `advlab study FILE.json`: a robustness study as a grid of models x attacks x parameter values. Each
 * cell is an ordinary attack job (the API's door checks it, it writes its own session, exactly as
 * `advlab attack` would), and a summary session of kind 'study' holds the table across cells
 * (cells.json, table.csv) and the data of its charts (charts.json: robust accuracy and success rate
 * against each numeric grid parameter, one series per model and attack). With --queue the cells'
 * shards go to the cluster; the cells and the summary are written here either way.
 *
 * Every cell is checked (the attack job's schema and the attack's own parameters) before any starts,
 * so a typo in the last cell costs nothing.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { checkJobStart } from '../api/job-check';
import { jobStartSchema, type JobParamsOf } from '../api/jobs';
import type { ApiEvent, JobInfo } from '../api/contract';
import { AdvlabError, badInput, formatIssues, isErrorCode } from '../engine/errors';
import { ENGINE_REQUESTS } from '../engine/onnx/engines';
import { collectEnvironment } from '../engine/sessions';
import { ADVLAB_VERSION } from '../paths';
import type { CliContext, Command } from './context';
import { QUEUE_OPTIONS, QUEUE_USAGE, queueFromArgs } from './cluster';

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

/** The cells in order (models, then attacks, then grid points, the first grid key slowest), each an attack job's params. */
export function studyCells(study: Study, baseDir: string): StudyCell[] {
  const keys = Object.keys(study.grid);
  let points: Record<string, z.infer<typeof scalar>>[] = [{}];
  for (const k of keys) points = points.flatMap((p) => study.grid[k].map((v) => ({ ...p, [k]: v })));
  const total = study.models.length * study.attacks.length * points.length;
  if (total > MAX_STUDY_CELLS) throw badInput(`A study has at most ${MAX_STUDY_CELLS} cells (MAX_STUDY_CELLS); this one has ${total}`);
  const cells: StudyCell[] = [];
  const name = study.name ?? 'study';
  for (const model0 of study.models) {
    // A path relative to the study file; a session id stays as is.
    const rel = resolve(baseDir, model0);
    const model = existsSync(rel) ? rel : model0;
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

export const study: Command = {
  summary: 'a robustness study: models x attacks x parameter grid from a JSON file, one attack session per cell plus a summary session (table and charts)',
  usage: `advlab study FILE.json ${QUEUE_USAGE} [--max-jobs N (cells at once)] [--json]`,
  async run(c: CliContext) {
    const { positionals } = c.parse({ ...QUEUE_OPTIONS }, true);
    const [file, ...extra] = positionals;
    if (!file || extra.length) throw badInput(`advlab study needs one study file\nusage: ${study.usage}`);
    const path = resolve(file);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw new AdvlabError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `${path}: ${(e as Error).message}`, { file: path });
    }
    const parsed = studySchema.safeParse(raw);
    if (!parsed.success) throw badInput(`${path}: ${formatIssues(parsed.error.issues, { input: raw, accepted: Object.keys(studySchema.shape), root: 'study' }).join('; ')}`);
    const spec = parsed.data;
    const keys = Object.keys(spec.grid);
    const cells = studyCells(spec, resolve(path, '..'));
    checkCells(cells);

    const app = c.app();
    const where = queueFromArgs(c.argv) ? 'cluster' : 'local';
    const backend = await app.runner.backend();
    const writer = await app.store.create({
      kind: 'study',
      name: spec.name ?? `study of ${cells.length} cells`,
      params: { file: path, ...(spec as unknown as Record<string, unknown>), cells: cells.length, where },
      tags: spec.tags,
      environment: collectEnvironment({ backend: backend.name, tfjsVersion: backend.tfjsVersion, advlabVersion: ADVLAB_VERSION }),
    });
    const t0 = performance.now();
    c.out.info(`study ${writer.id}: ${cells.length} cells (${spec.models.length} models x ${spec.attacks.length} attacks x ${cells.length / (spec.models.length * spec.attacks.length)} grid points), ${where}`);

    // Start every cell through the API's door (the runner queues beyond --max-jobs); Ctrl-C cancels them all.
    const jobs: { cell: StudyCell; jobId: string; done: Promise<JobInfo<'attack'>> }[] = [];
    const byJob = new Map<string, StudyCell>();
    let cancelled = false;
    const onSigint = () => {
      cancelled = true;
      process.stderr.write('\ncancelling the study (Ctrl-C again to abort)...\n');
      for (const j of jobs) app.runner.cancel(j.jobId);
      process.once('SIGINT', () => process.exit(130));
    };
    process.once('SIGINT', onSigint);
    let finishedCells = 0;
    const onEvent = (e: ApiEvent) => {
      if (!('jobId' in e) || !byJob.has(e.jobId)) return;
      if (e.type === 'job.log') c.out.info(`cell ${byJob.get(e.jobId)!.index + 1}: ${e.message}`);
      if (e.type === 'job.finished' || e.type === 'job.failed' || e.type === 'job.cancelled') {
        finishedCells++;
        c.out.progress({ type: 'job.progress', jobId: e.jobId, kind: 'attack', step: finishedCells, total: cells.length, fraction: finishedCells / cells.length, phase: `cells (${e.type.slice(4)}: ${byJob.get(e.jobId)!.label})`, elapsedSeconds: (performance.now() - t0) / 1000, etaSeconds: null });
      }
    };
    app.runner.on('event', onEvent);
    let rows: StudyRow[];
    try {
      for (const cell of cells) {
        const started = await app.core.call('jobs.start', { kind: 'attack', params: cell.params });
        if (!started.ok) throw new AdvlabError(isErrorCode(started.error.code) ? started.error.code : 'INTERNAL', `cell ${cell.index + 1}: ${started.error.message}`, started.error.details);
        const { jobId } = started.result;
        byJob.set(jobId, cell);
        const done = (app.runner.wait(jobId) ?? Promise.resolve(app.runner.list().find((j) => j.jobId === jobId)!)) as Promise<JobInfo<'attack'>>;
        jobs.push({ cell, jobId, done });
      }
      rows = await Promise.all(jobs.map(async (j) => rowOf(j.cell, await j.done)));
    } catch (e) {
      for (const j of jobs) app.runner.cancel(j.jobId);
      await writer.fail(e);
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      app.runner.off('event', onEvent);
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
    const summary = { cells: cells.length, finished: ok.length, failed, cancelled: rows.length - ok.length - failed, where, seconds, meanRobustAccuracy: mean((r) => r.robustAccuracy), meanSuccessRate: mean((r) => r.successRate) };
    if (cancelled) await writer.cancel(summary);
    else await writer.finish(summary);
    const result = { session: writer.id, ...summary, rows };
    const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
    c.out.result(result, [
      ...rows.map((r) => `${String(r.cell + 1).padStart(3)}  ${r.label.padEnd(12)} ${keys.map((k) => `${k}=${r.point[k]}`).join(' ').padEnd(16)} ${r.model.slice(-40).padEnd(40)} ${r.state === 'finished' ? `robust ${pct(r.robustAccuracy)}, success ${pct(r.successRate)}` : `${r.state}${r.error ? `: ${r.error}` : ''}`}`),
      `study ${writer.id}: ${ok.length}/${cells.length} cells finished in ${seconds.toFixed(1)} s (${where})`,
    ].join('\n'));
    return cancelled ? 130 : failed ? 1 : 0;
  },
};
