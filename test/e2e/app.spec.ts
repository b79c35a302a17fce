import { test, expect, openView, startServe, api } from './fixtures';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIEWS } from '../../src-renderer/lib/views';

test('every view opens, the status bar shows the engine backend, a screenshot per view', async ({ page, host, consoleErrors }) => {
  await page.goto(host.url);
  await expect(page.getByTestId('backend')).toContainText('wasm', { timeout: 60_000 });
  for (const v of VIEWS) {
    await openView(page, v.id);
    await expect(page.getByTestId(`view-${v.id}`).locator('h2').first()).toBeVisible();
    await page.screenshot({ path: `test-results/views/${v.id}.png`, fullPage: true });
  }
  void consoleErrors;
});

test('a small training job started from the UI reaches 100% and lands in Models and Sessions', async ({ page, host, consoleErrors }) => {
  // The host is shared with the other specs of this worker: count the models this test starts from.
  const before = (await api<unknown[]>(host, 'models.list')).length;
  await page.goto(host.url);
  await openView(page, 'train');
  await expect(page.getByTestId('train-dataset').locator('option[value="mnist"]')).toHaveCount(1);
  await page.getByTestId('train-dataset').selectOption('mnist');
  await page.getByTestId('train-arch').selectOption('small-cnn');
  // Momentum and Nesterov are offered with the momentum optimizer only (adam and sgd ignored them).
  await expect(page.getByTestId('train-optimizer')).toHaveValue('adam');
  await expect(page.getByTestId('train-momentum')).toHaveCount(0);
  await expect(page.getByTestId('train-nesterov')).toHaveCount(0);
  await page.getByTestId('train-optimizer').selectOption('momentum');
  await expect(page.getByTestId('train-momentum')).toBeVisible();
  await expect(page.getByTestId('train-nesterov')).toBeVisible();
  // An empty momentum means the engine's 0.9: shown from the job schema (absentDefault), not written in the label.
  await expect(page.getByTestId('train-momentum')).toHaveValue('');
  await expect(page.getByTestId('train-momentum')).toHaveAttribute('placeholder', '0.9');
  await expect(page.locator('label', { has: page.getByTestId('train-momentum') })).not.toContainText('empty =');
  await page.getByTestId('train-optimizer').selectOption('adam');
  await page.getByTestId('train-limit').fill('600');
  await page.getByTestId('train-test-limit').fill('300');
  // Augmentation: a field of the train job's schema, sent as typed and kept in the session's params.
  await page.getByTestId('train-augment').fill('shift:1');
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('train-job')).toHaveAttribute('data-state', 'finished', { timeout: 180_000 });
  await expect(page.getByTestId('job-percent')).toHaveText('100%');
  await expect(page.getByTestId('train-result')).toContainText('test accuracy');
  const points = Number(await page.getByTestId('train-loss-chart').getAttribute('data-points'));
  expect(points).toBeGreaterThan(3); // live curve was drawn from progress events
  await page.screenshot({ path: 'test-results/views/train-finished.png', fullPage: true });
  await openView(page, 'datasets');
  await expect(page.getByTestId('model-row')).toHaveCount(before + 1);
  await openView(page, 'sessions');
  await expect(page.getByTestId('session-row').first()).toHaveAttribute('data-status', 'finished');
  await expect(page.getByTestId('session-row').first()).toHaveAttribute('data-id', /-train-[0-9a-f]{4}$/);
  await page.getByTestId('session-row').first().click();
  await expect(page.getByTestId('session-detail')).toContainText('testAccuracy');
  await expect(page.getByTestId('session-detail')).toContainText('shift:1');
  await page.screenshot({ path: 'test-results/views/session-detail.png', fullPage: true });
  void consoleErrors;
});

test('the host refuses a missing or wrong token with a clear message', async ({ page, host }) => {
  const res = await page.request.get(`${host.origin}/`);
  expect(res.status()).toBe(401);
  expect(await res.text()).toContain('needs its token');
  const api = await page.request.post(`${host.origin}/api/app.info`, { headers: { 'x-advlab-token': 'wrong' }, data: {} });
  expect(api.status()).toBe(401);
  expect((await api.json()).error.message).toMatch(/Invalid or missing AdvLab token/);
  const bad = await page.request.post(`${host.origin}/api/jobs.start`, { headers: { 'x-advlab-token': host.token }, data: { kind: 'train', params: { dataset: 'mnist' } } });
  expect(bad.status()).toBe(400);
  expect((await bad.json()).error.message).toMatch(/params.arch/);
});

test('a second serve on a busy port fails with a clear message', async ({ host }) => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['bin/advlab.mjs', 'serve', '--port', String(new URL(host.origin).port), '--json'], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/already in use/);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  expect(last.error.code).toBe('CONFLICT');
  void startServe;
});

test('importing a model: a bad path is refused clearly, a real model.json lands in Models with its accuracy', async ({ page, host, trainedModel, consoleErrors }) => {
  await page.goto(host.url);
  await openView(page, 'datasets');
  // A path inside the sessions folder (paths outside the data folders and the store are refused at the door, below).
  const missing = `${host.sessions}/no/such/model.json`;
  await page.getByTestId('import-path').fill(missing);
  await page.getByTestId('import-start').click();
  await expect(page.getByTestId('import-state')).toHaveAttribute('data-state', 'failed', { timeout: 60_000 });
  await expect(page.getByTestId('import-state')).toContainText(missing);
  // Outside every allowed folder: 403 FORBIDDEN naming the path, before any job.
  const outside = await page.request.post(`${host.origin}/api/jobs.start`, { headers: { 'x-advlab-token': host.token }, data: { kind: 'import-model', params: { path: '/no/such/model.json' } } });
  expect(outside.status()).toBe(403);
  expect((await outside.json()).error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('"/no/such/model.json" is outside the folders the API may read') });
  // A real model.json: the worker's trained model (made on first use; this test does not rely on the one above).
  const models = (await (await page.request.post(`${host.origin}/api/models.list`, { headers: { 'x-advlab-token': host.token }, data: {} })).json()).result as { path: string }[];
  expect(models.length).toBeGreaterThan(0);
  expect(models.map((m) => m.path)).toContain(trainedModel.path);
  const before = await page.getByTestId('model-row').count();
  await page.getByTestId('import-path').fill(trainedModel.path);
  await page.getByTestId('import-dataset').selectOption('mnist');
  await page.getByTestId('import-start').click();
  await expect(page.getByTestId('import-state')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('model-row')).toHaveCount(before + 1);
  void consoleErrors;
});

test('with --max-jobs 1 a second job waits: the status bar says queued, and Cancel removes it before it starts', async ({ page }) => {
  const own = await startServe({ ADVLAB_MAX_JOBS: '1' });
  try {
    await page.goto(own.url);
    await expect(page.getByTestId('backend')).toContainText('wasm', { timeout: 60_000 });
    const holder = await api<{ jobId: string }>(own, 'jobs.start', { kind: 'diagnostics', params: { batch: 256, repeats: 100 } });
    const waiting = await api<{ jobId: string }>(own, 'jobs.start', { kind: 'diagnostics', params: { batch: 1, repeats: 1 } });
    await expect(page.getByTestId('jobs-queued')).toHaveText('1 queued');
    const listed = await api<{ jobId: string; state: string }[]>(own, 'jobs.list');
    expect(listed.map((j) => [j.jobId, j.state])).toEqual([[holder.jobId, 'running'], [waiting.jobId, 'queued']]);
    await api(own, 'jobs.cancel', { jobId: waiting.jobId });
    await expect(page.getByTestId('jobs-queued')).toHaveCount(0);
    expect((await api<{ jobId: string; state: string }[]>(own, 'jobs.list')).find((j) => j.jobId === waiting.jobId)?.state).toBe('cancelled');
    // A form whose job is queued stays busy: Run disabled, Cancel offered (and it removes the queued job).
    await page.getByRole('button', { name: 'Train', exact: true }).first().click();
    await page.getByTestId('train-start').click();
    await expect(page.getByTestId('jobs-queued')).toHaveText('1 queued');
    await expect(page.getByTestId('train-start')).toBeDisabled();
    // Another view and back: the Train form still follows its queued job (it forgot it, and offered Train again).
    await openView(page, 'datasets');
    await openView(page, 'train');
    await expect(page.getByTestId('train-job')).toHaveAttribute('data-state', 'queued');
    await expect(page.getByTestId('train-start')).toBeDisabled();
    await page.getByTestId('train-cancel').click();
    await expect(page.getByTestId('jobs-queued')).toHaveCount(0);
    await expect(page.getByTestId('train-start')).toBeEnabled();
    expect((await api<{ kind: string; state: string }[]>(own, 'jobs.list')).filter((j) => j.kind === 'train').map((j) => j.state)).toEqual(['cancelled']);
    await page.getByTestId('status-cancel').click(); // the running holder
    await expect(page.getByTestId('job-status')).toHaveAttribute('data-state', 'cancelled', { timeout: 30_000 });
  } finally {
    own.proc.kill('SIGTERM');
  }
});

test('Settings: the worker pool size is saved in the app data folder and applies at once', async ({ page }) => {
  const home = mkdtempSync(join(tmpdir(), 'advlab-e2e-home-'));
  const own = await startServe({ ADVLAB_HOME: home });
  try {
    await page.goto(own.url);
    await openView(page, 'settings');
    await expect(page.getByTestId('workers-effective')).toContainText('from the default (one per core)');
    // Sized like the other views' numeric inputs (at most a number input's natural width in a form row), not
    // stretched across the card or to its long label.
    const natural = await page.locator('main').evaluate((main) => {
      const make = <K extends 'div' | 'label' | 'input'>(tag: K) => main.ownerDocument.createElement(tag);
      const row = Object.assign(make('div'), { className: 'row' });
      const label = make('label');
      const probe = Object.assign(make('input'), { type: 'number' });
      label.append('n', probe);
      row.append(label);
      main.append(row);
      const w = probe.getBoundingClientRect().width;
      row.remove();
      return w;
    });
    const width = (await page.getByTestId('workers-input').boundingBox())!.width;
    expect(width, `workers input ${width} px, a number input in a form row ${natural} px`).toBeLessThanOrEqual(natural + 1);
    await page.getByTestId('workers-input').fill('1');
    await page.getByTestId('settings-save').click();
    await expect(page.getByTestId('settings-saved')).toHaveText('saved');
    await expect(page.getByTestId('workers-effective')).toContainText('In effect: 1 worker, from this setting');
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8'))).toEqual({ workers: 1 });
    const report = await api<{ workers: { value: number; from: string } }>(own, 'settings.get');
    expect(report.workers).toMatchObject({ value: 1, from: 'settings' });
    await page.getByTestId('workers-input').fill('0');
    await page.getByTestId('settings-save').click();
    await expect(page.getByTestId('settings-error')).toContainText('workers');
  } finally {
    own.proc.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  }
});
