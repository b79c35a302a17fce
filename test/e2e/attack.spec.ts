import { test, expect, openView, openOnTrainedModel, api } from './fixtures';

test('attack a trained model from the Attack view: grid, detail, validation, epsilon curve, loss surfaces', async ({ page, host, trainedModel, consoleErrors }) => {
  test.setTimeout(300_000);
  // A model to attack, trained through the API by the worker's fixture (the Train view has its own test).
  expect((await api<{ name: string }[]>(host, 'models.list')).filter((m) => m.name === trainedModel.name)).toHaveLength(1);

  // The host is shared with other spec files: pick this test's model by name.
  const picked = await openOnTrainedModel(page, host, 'attack', trainedModel);
  // The option is the fixture's model (its session id).
  expect(picked).toBe(trainedModel.id);
  await page.getByTestId('attack-n').fill('20');
  // The first 20 images after an offset of 100 (the default pick); examples are named by their index in the split.
  await expect(page.getByTestId('attack-pick')).toHaveValue('first');
  // The engine: auto by default (the job schema's default), ONNX Runtime for this plain network.
  await expect(page.getByTestId('attack-engine')).toHaveValue('auto');
  await page.getByTestId('attack-offset').fill('100');
  await page.getByTestId('attack-id').selectOption('fgsm');

  // Inline validation: an impossible epsilon disables the run.
  await page.getByTestId('param-eps').fill('-1');
  await expect(page.getByTestId('param-error')).toContainText('eps must be');
  await expect(page.getByTestId('attack-start')).toBeDisabled();
  await page.getByTestId('param-eps').fill('0.3');
  await expect(page.getByTestId('attack-start')).toBeEnabled();

  await page.getByTestId('attack-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('attack-summary')).toContainText('success rate');
  await expect(page.getByTestId('attack-engine-used')).toContainText(/^onnx \(\d+ threads\): auto: every layer is exported/);
  await expect(page.getByTestId('job-engine')).toContainText('engine onnx');
  await expect(page.getByTestId('attack-cell')).toHaveCount(20);
  await page.getByTestId('attack-cell').nth(3).click();
  const detail = page.getByTestId('attack-detail');
  await expect(detail).toContainText('Example 103:');
  await expect(detail).toContainText('L∞ 0.300');
  await expect(detail.getByTestId('prob-bars').locator('tbody tr')).toHaveCount(10);
  for (const img of await detail.locator('img').all()) {
    await expect.poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
  }
  await page.screenshot({ path: 'test-results/views/attack-result.png', fullPage: true });

  await page.getByTestId('tab-sweep').click();
  // The attack's results stay under the Attack tab (they once showed under the sweep's form as if the sweep's); this tab says where its job came from.
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-kind', 'attack');
  await expect(page.getByTestId('attack-job-elsewhere')).toContainText('Started from the Attack tab');
  await expect(page.getByTestId('attack-summary')).toHaveCount(0);
  await page.getByTestId('sweep-eps').fill('0, 0.1, 0.3');
  await page.getByTestId('sweep-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-kind', 'sweep');
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  await expect(page.getByTestId('sweep-chart')).toHaveAttribute('data-points', /^[3-9]$/);
  await expect(page.getByTestId('attack-job-elsewhere')).toHaveCount(0);

  await page.getByTestId('tab-surface').click();
  await page.getByTestId('surface-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-kind', 'loss-surface');
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  // The loss surface's grid rows ran as shards on the pool (the attack above ran in place on ONNX Runtime's threads): the status bar says where.
  await expect(page.getByTestId('job-shards')).toHaveText(/shards (\d+)\/\1 on \d+ pool workers?$/);
  await expect(page.getByTestId('surface-gradient-random')).toBeVisible();
  await expect(page.getByTestId('surface-random-random')).toBeVisible();
  await page.screenshot({ path: 'test-results/views/attack-surfaces.png', fullPage: true });
  void consoleErrors;
});
