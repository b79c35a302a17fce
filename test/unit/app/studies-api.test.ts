/**
 * studies.start (the app's Study panel): a study sent to the API runs as the CLI's does (api/study.ts):
 * every cell an attack job through jobs.start, a summary session with the table and charts once all
 * have ended; a bad study or a bad cell is refused before any job starts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import { JobRunner } from '../../../src-main/jobs/runner';
import { DATA, WORKER } from '../helpers';

let tmp: string, sessions: string, model: string;
let runner: JobRunner;
let core: ApiCore;
let store: SessionStore;

beforeAll(async () => {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run "npx electron-vite build" first`);
  tmp = mkdtempSync(join(os.tmpdir(), 'advlab-studies-'));
  sessions = join(tmp, 'sessions');
  const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot: sessions, onSession: () => undefined };
  model = ((await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 200, testLimit: 20, validationSplit: 0 }, new LocalContext(), env)) as { session: string }).session;
  runner = new JobRunner({ workerPath: WORKER, env: { backend: 'wasm', dataDirs: [DATA], sessionsRoot: sessions }, workers: 2 });
  store = new SessionStore(sessions);
  core = new ApiCore({ jobs: runner, dataDirs: [DATA], sessionsRoot: sessions, transport: 'http', version: 'test' }, () => apiHandlers({ store, dataDirs: [DATA] }));
}, 120_000);

afterAll(async () => {
  await runner?.shutdown();
  rmSync(tmp, { recursive: true, force: true });
});

async function until(f: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

describe('studies.start', () => {
  it('runs every cell as an attack job and writes the summary session (table and charts)', async () => {
    const study = { name: 'api study', dataset: 'mnist', n: 8, batchSize: 4, engine: 'tfjs', seed: 1, models: [model], attacks: [{ attack: 'fgsm' }], grid: { eps: [0.05, 0.3] } };
    const r = await core.call('studies.start', { study });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const { session, cells, jobIds } = (r as { ok: true; result: { session: string; cells: number; jobIds: string[] } }).result;
    expect(cells).toBe(2);
    expect(jobIds).toHaveLength(2);
    await until(async () => (await store.manifest(session)).status !== 'running', 120_000);
    const m = await store.manifest(session);
    expect(m.kind).toBe('study');
    expect(m.status).toBe('finished');
    expect(m.summary).toMatchObject({ cells: 2, finished: 2, failed: 0, where: 'local' });
    const { rows } = JSON.parse(readFileSync(join(sessions, session, 'artifacts', 'cells.json'), 'utf8')) as { rows: { state: string; session: string; point: { eps: number }; robustAccuracy: number; n: number }[] };
    expect(rows.map((x) => [x.state, x.point.eps, x.n])).toEqual([['finished', 0.05, 8], ['finished', 0.3, 8]]);
    expect(rows[1].robustAccuracy).toBeLessThanOrEqual(rows[0].robustAccuracy);
    for (const row of rows) expect((await store.manifest(row.session)).kind).toBe('attack');
    const charts = JSON.parse(readFileSync(join(sessions, session, 'artifacts', 'charts.json'), 'utf8')) as { x: string }[];
    expect(charts.map((c) => c.x)).toEqual(['eps', 'eps']);
  }, 180_000);

  it('refuses a study with an unknown field (listing the accepted ones) or a bad cell, before any job starts', async () => {
    const before = runner.list().length;
    const unknown = await core.call('studies.start', { study: { dataset: 'mnist', models: [model], attacks: [{ attack: 'fgsm' }], colour: 'red' } });
    expect(unknown.ok).toBe(false);
    expect(!unknown.ok && unknown.error.code).toBe('BAD_INPUT');
    expect(!unknown.ok && unknown.error.message).toMatch(/colour/);
    expect(!unknown.ok && unknown.error.message).toMatch(/attacks/);
    const badCell = await core.call('studies.start', { study: { dataset: 'mnist', models: [model], attacks: [{ attack: 'fgsm', params: { epsilon: 0.1 } }] } });
    expect(badCell.ok).toBe(false);
    expect(!badCell.ok && badCell.error.message).toMatch(/Study cell 1/);
    expect(runner.list().length).toBe(before);
  });
});
