/**
 * A fresh machine: no ADVLAB_DATA, no system datasets (ADVLAB_SYSTEM_DATA empty), a new HOME with
 * nothing in it and an empty session store. The app opens on the starter pack: Datasets & Models
 * lists the starter samples and models (marked starter) and the Get datasets panel; the Attack view
 * opens on the starter cw-mnist and runs C&W on the starter MNIST sample; the Audio view opens on the
 * starter speech model and a starter clip and runs a short targeted attack. Nothing is trained.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, openView, startServe, api, type HostFixture } from './fixtures';

const test = base.extend<object, { freshHost: HostFixture & { home: string } }>({
  freshHost: [
    async ({}, use) => {
      const home = mkdtempSync(join(tmpdir(), 'advlab-e2e-home-'));
      const host = await startServe({ HOME: home, XDG_DATA_HOME: join(home, '.local', 'share'), ADVLAB_HOME: '', ADVLAB_DATA: '', ADVLAB_SYSTEM_DATA: '' });
      await use({ ...host, home });
      host.proc.kill('SIGTERM');
      rmSync(host.sessions, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
});

test('a fresh install attacks the starter models without training anything', async ({ page, freshHost, consoleErrors }) => {
  test.setTimeout(240_000);
  const info = await api<{ dataDirs: string[] }>(freshHost, 'app.info');
  expect(info.dataDirs).toEqual([join(freshHost.home, '.local', 'share', 'advlab'), expect.stringMatching(/resources\/starter\/data$/)]);

  await page.goto(freshHost.url);
  await openView(page, 'datasets');
  await expect(page.getByTestId('dataset-mnist').getByTestId('starter-badge')).toBeVisible();
  await expect(page.getByTestId('dataset-mnist').getByTestId('dataset-in-use')).toContainText('the starter sample (the first 1,000 test images)');
  await expect(page.getByTestId('models-table')).toContainText('starter:cw-mnist');
  // The badge stands apart from the name (it read "network (starter)starter").
  await expect(page.getByTestId('models-table')).toContainText("Carlini & Wagner's MNIST network (starter) starter");
  await expect(page.getByTestId('get-mnist-start')).toBeEnabled();
  await expect(page.getByTestId('get-datasets')).toContainText(join(freshHost.home, '.local', 'share', 'advlab'));

  // Attack: opens on the starter cw-mnist and the starter MNIST sample; C&W L2 on 3 images.
  await openView(page, 'attack');
  await expect(page.getByTestId('attack-model')).toHaveValue('starter:cw-mnist');
  await expect(page.getByTestId('attack-dataset')).toHaveValue('mnist');
  await expect(page.getByTestId('attack-dataset-source')).toContainText('the starter sample: the first 1,000 test images');
  // Image classifiers only: the starter speech models are attacked in the Audio view (an image attack on one failed
  // with "Model input must be [batch, h, w, c]"). Picking a model picks the dataset it was trained on.
  await expect(page.getByTestId('attack-model').locator('option')).toHaveCount(3);
  await expect(page.getByTestId('attack-model').locator('option', { hasText: 'speech' })).toHaveCount(0);
  await page.getByTestId('attack-model').selectOption('starter:small-cnn-fashion');
  await expect(page.getByTestId('attack-dataset')).toHaveValue('fashion-mnist');
  await page.getByTestId('attack-model').selectOption('starter:cw-mnist');
  await expect(page.getByTestId('attack-dataset')).toHaveValue('mnist');
  await page.getByTestId('attack-n').fill('3');
  await page.getByTestId('attack-id').selectOption('cw-l2');
  await page.getByTestId('param-binarySearchSteps').fill('2');
  await page.getByTestId('param-maxIterations').fill('100');
  await page.getByTestId('attack-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('attack-summary')).toContainText('success rate');
  await expect(page.getByTestId('attack-cell')).toHaveCount(3);

  // Audio: opens on the starter speech model and a starter clip; a short targeted attack.
  await openView(page, 'audio');
  // The full-alphabet starter:speech sorts first among the starter speech models.
  await expect(page.getByTestId('audio-model')).toHaveValue('starter:speech');
  await expect(page.getByTestId('audio-fsdd-source')).toContainText('the starter clips (30 FSDD recordings');
  await page.getByTestId('audio-target').fill('nine');
  await page.getByTestId('audio-iterations').fill('20');
  await page.getByTestId('audio-start').click();
  await expect(page.getByTestId('audio-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('audio-summary-target')).toHaveText('“nine”');
  await expect(page.getByTestId('audio-before')).not.toBeEmpty();

  // Nothing was trained: the store holds the two attacks only.
  const sessions = await api<{ kind: string }[]>(freshHost, 'sessions.list');
  expect(sessions.map((s) => s.kind).sort()).toEqual(['attack', 'audio-attack']);

  // Evaluate offers the same image classifiers, and follows the model's dataset too.
  await openView(page, 'evaluate');
  await expect(page.getByTestId('evaluate-model')).toHaveValue('starter:cw-mnist');
  await expect(page.getByTestId('evaluate-model').locator('option', { hasText: 'speech' })).toHaveCount(0);
  await page.getByTestId('evaluate-model').selectOption('starter:small-cnn-fashion-adv');
  await expect(page.getByTestId('evaluate-dataset')).toHaveValue('fashion-mnist');
  void consoleErrors;
});
