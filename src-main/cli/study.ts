/**
 * `advlab study FILE.json`: a robustness study as a grid of models x attacks x parameter values, run
 * by api/study.ts (the same as the app's Study panel, through the API's studies.start): one attack
 * session per cell and a summary session of kind 'study' with the table and its charts. With --queue
 * the cells' shards go to the cluster; the cells and the summary are written here either way. Paths
 * to models are relative to the study file.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseStudy, startStudy, type StudyRow } from '../api/study';
import { AdvlabError, badInput } from '../engine/errors';
import { ADVLAB_VERSION } from '../paths';
import type { CliContext, Command } from './context';
import { QUEUE_OPTIONS, QUEUE_USAGE, queueFromArgs } from './cluster';

export { studySchema, studyCells, checkCells, studyCsv, studyCharts, MAX_STUDY_CELLS, type Study, type StudyCell, type StudyRow } from '../api/study';

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
    const spec = parseStudy(raw, path);
    const keys = Object.keys(spec.grid);
    const app = c.app();
    const where = queueFromArgs(c.argv) ? 'cluster' : 'local';
    const t0 = performance.now();
    const running = await startStudy(spec, resolve(path, '..'), {
      start: (params) => app.core.call('jobs.start', { kind: 'attack', params }),
      jobs: app.runner, store: app.store, version: ADVLAB_VERSION, where, file: path,
      onCellEvent: (cell, e, finishedCells) => {
        if (e.type === 'job.log') c.out.info(`cell ${cell.index + 1}: ${e.message}`);
        if (e.type === 'job.finished' || e.type === 'job.failed' || e.type === 'job.cancelled') {
          c.out.progress({ type: 'job.progress', jobId: e.jobId, kind: 'attack', step: finishedCells, total: running.cells.length, fraction: finishedCells / running.cells.length, phase: `cells (${e.type.slice(4)}: ${cell.label})`, elapsedSeconds: (performance.now() - t0) / 1000, etaSeconds: null });
        }
      },
    });
    const { cells } = running;
    c.out.info(`study ${running.session}: ${cells.length} cells (${spec.models.length} models x ${spec.attacks.length} attacks x ${cells.length / (spec.models.length * spec.attacks.length)} grid points), ${where}`);
    // Ctrl-C cancels every cell; the summary session ends cancelled.
    const onSigint = () => {
      process.stderr.write('\ncancelling the study (Ctrl-C again to abort)...\n');
      running.cancel();
      process.once('SIGINT', () => process.exit(130));
    };
    process.once('SIGINT', onSigint);
    let outcome;
    try {
      outcome = await running.done;
    } finally {
      process.off('SIGINT', onSigint);
    }
    const { rows, wasCancelled, ...summary } = outcome;
    const ok = rows.filter((r) => r.state === 'finished');
    const result = { ...summary, rows };
    const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
    c.out.result(result, [
      ...rows.map((r: StudyRow) => `${String(r.cell + 1).padStart(3)}  ${r.label.padEnd(12)} ${keys.map((k) => `${k}=${r.point[k]}`).join(' ').padEnd(16)} ${r.model.slice(-40).padEnd(40)} ${r.state === 'finished' ? `robust ${pct(r.robustAccuracy)}, success ${pct(r.successRate)}` : `${r.state}${r.error ? `: ${r.error}` : ''}`}`),
      `study ${summary.session}: ${ok.length}/${cells.length} cells finished in ${summary.seconds.toFixed(1)} s (${where})`,
    ].join('\n'));
    return wasCancelled ? 130 : summary.failed ? 1 : 0;
  },
};
