/**
 * Leaving a view and coming back, and reloading the page, in Chromium through `advlab serve`: a running
 * job is found again (the host's job list is the source of truth) with its progress, Cancel and its result
 * when it ends; a running case study keeps its card's state. The Sessions nav entry goes back to the list.
 * The status bar stays one line at 1024 px; a digest column in a session table is cut, its full value kept.
 */
import { test, expect, openView, api } from './fixtures';
import { SessionStore } from '../../src-main/engine/sessions';

const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'e2e' };
const SHA = '598ca54ce53f7c71af9b437b258361bcc8f4d363607df7d12d8126d4325a62e0';

test('a training job is followed again after leaving the Train view and after a reload, up to its result', async ({ page, host, consoleErrors }) => {
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.goto(host.url);
  await openView(page, 'train');
  await expect(page.getByTestId('train-dataset').locator('option[value="mnist"]')).toHaveCount(1);
  await page.getByTestId('train-dataset').selectOption('mnist');
  await page.getByTestId('train-arch').selectOption('small-cnn');
  await page.getByTestId('train-epochs').fill('5');
  await page.getByTestId('train-limit').fill('5000');
  await page.getByTestId('train-test-limit').fill('200');
  await page.getByTestId('train-start').click();
  const card = page.getByTestId('train-job');
  await expect(card).toHaveAttribute('data-state', 'running');
  await expect(card).toContainText('step', { timeout: 60_000 });

  // Leave and come back: the form is busy (Cancel offered), the card shows the running job.
  await openView(page, 'datasets');
  await openView(page, 'train');
  await expect(card).toHaveAttribute('data-state', 'running');
  await expect(page.getByTestId('train-cancel')).toBeVisible();
  await expect(page.getByTestId('train-start')).toBeDisabled();

  // Reload: the host still runs it; the view (opened at once, before any event of the job came) takes it up
  // from the job list, with its last progress.
  await page.reload();
  await openView(page, 'train');
  await expect(card).toHaveAttribute('data-state', 'running', { timeout: 10_000 });
  await expect(card).toContainText(/step \d+\/\d+/);
  await expect(page.getByTestId('train-cancel')).toBeVisible();
  // ... and shows its result when it ends.
  await expect(card).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });
  await expect(page.getByTestId('train-result')).toContainText('test accuracy');

  // Ended while another view was open: coming back shows the result too.
  await openView(page, 'attack');
  await openView(page, 'train');
  await expect(page.getByTestId('train-result')).toContainText('test accuracy');
  void consoleErrors;
});

test('the status bar stays one line at 1024 px with a long job line (an attack whose shards ran on the pool)', async ({ page, host, consoleErrors }) => {
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.goto(host.url);
  await expect(page.getByTestId('backend')).toContainText('wasm', { timeout: 60_000 });
  const oneLine = Math.ceil((await page.getByTestId('status-bar').boundingBox())!.height);
  // tfjs runs an attack's batches as shards on the worker pool: the line names the workers that ran them.
  await api(host, 'jobs.start', { kind: 'attack', params: { model: 'starter:cw-mnist', dataset: 'mnist', attack: 'fgsm', n: 64, engine: 'tfjs' } });
  const status = page.getByTestId('job-status');
  await expect(status).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('job-shards-ran')).toContainText('local');
  expect((await page.getByTestId('status-bar').boundingBox())!.height).toBeLessThanOrEqual(oneLine + 1);
  // The full line is in the title.
  await expect(status).toHaveAttribute('title', /^attack: finished · /);
  void consoleErrors;
});

test('a running case study keeps its card after leaving the view and after a reload; Cancel ends it there', async ({ page, host, consoleErrors }) => {
  await page.goto(host.url);
  await openView(page, 'cases');
  const state = page.getByTestId('recipe-state-distillation');
  await page.getByTestId('recipe-quick-distillation').click();
  await expect(state).toHaveAttribute('data-state', 'running');
  await openView(page, 'sessions');
  await openView(page, 'cases');
  await expect(state).toHaveAttribute('data-state', 'running');
  await expect(page.getByTestId('recipe-quick-distillation')).toBeDisabled();
  // After a reload the card finds its job through the job's session (tagged recipe:distillation).
  await expect
    .poll(async () => (await api<{ kind: string; state: string; session?: string }[]>(host, 'jobs.list')).some((j) => j.kind === 'recipe' && j.state === 'running' && !!j.session), { timeout: 60_000 })
    .toBe(true);
  await page.reload();
  await openView(page, 'cases');
  await expect(state).toHaveAttribute('data-state', 'running', { timeout: 20_000 });
  await page.getByTestId('recipe-cancel-distillation').click();
  await expect(state).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await expect(page.getByTestId('recipe-quick-distillation')).toBeEnabled();
  void consoleErrors;
});

test('the Sessions nav entry goes back to the list from an open session and from a comparison; a digest column is cut', async ({ page, host, consoleErrors }) => {
  const store = new SessionStore(host.sessions);
  const ids: string[] = [];
  for (const name of ['reattach one', 'reattach two']) {
    const w = await store.create({ kind: 'audio-attack', name, params: {}, tags: [], environment: ENV });
    await w.writeArtifact('survival.json', JSON.stringify([{ survived: true, fileSha256: SHA, modelFile: '/models/speech-base/model.json' }]), 'json', 'survival re-check');
    // A summary value without spaces (an attack's params as JSON, as the attack job writes them) once widened the page past the card.
    await w.finish({ survived: true, fileSha256: SHA, params: JSON.stringify({ binarySearchSteps: 4, maxIterations: 100, learningRate: 0.1, initialConst: 1, kappa: 0, abortEarly: true, objective: 'margin' }) });
    ids.push(w.manifest.id);
  }
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.goto(host.url);
  await openView(page, 'sessions');
  const row = (id: string) => page.locator(`[data-testid=session-row][data-id="${id}"]`);
  // At 1024 px every column of the list fits (the tags column was cut off by the list's edge).
  await expect(row(ids[0])).toBeVisible();
  const list = (await page.getByTestId('sessions-table').boundingBox())!;
  const tags = (await row(ids[0]).locator(':scope > span').last().boundingBox())!;
  expect(tags.x + tags.width).toBeLessThanOrEqual(list.x + list.width);
  await row(ids[0]).click();
  await expect(page.getByTestId('session-detail')).toHaveAttribute('data-id', ids[0]);

  // The digest: its first 12 digits, the full value in the title; the table does not scroll sideways.
  const table = page.getByTestId('rows-table');
  const digest = table.getByTestId('digest-cell');
  await expect(digest).toHaveText('598ca54ce53f…');
  await expect(digest).toHaveAttribute('title', new RegExp(SHA));
  const wide = await table.locator('.scroll').evaluate((e) => e.scrollWidth > e.clientWidth + 1);
  expect(wide, 'the survival table scrolls sideways at 1024 px').toBe(false);

  expect(await page.locator('main').evaluate((m) => m.scrollWidth - m.clientWidth), 'the open session scrolls sideways at 1024 px').toBeLessThanOrEqual(1);

  await page.getByTestId('nav-sessions').click();
  await expect(page.getByTestId('sessions-table')).toBeVisible();
  await expect(page.getByTestId('session-detail')).toHaveCount(0);

  await row(ids[0]).getByTestId('session-select').check();
  await row(ids[1]).getByTestId('session-select').check();
  await page.getByTestId('compare-selected').click();
  await expect(page.getByTestId('compare-back')).toBeVisible();
  await page.getByTestId('nav-sessions').click();
  await expect(page.getByTestId('sessions-table')).toBeVisible();
  await expect(page.getByTestId('compare-back')).toHaveCount(0);
  void consoleErrors;
});
