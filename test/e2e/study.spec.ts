import { test, expect, openOnTrainedModel } from './fixtures';

test('build and run a study from the Evaluate view: cells run on the local pool threads, then the summary table and chart', async ({ page, host, trainedModel, consoleErrors }) => {
  test.setTimeout(300_000);
  await openOnTrainedModel(page, host, 'evaluate', trainedModel, 'mnist');
  await page.getByTestId('tab-study').click();

  // Text that is not JSON is refused in the panel, before any request.
  await page.getByTestId('study-json').fill('{ "dataset": "mnist", ');
  await page.getByTestId('study-start').click();
  await expect(page.getByTestId('study-error')).toContainText(/not JSON/);

  // Built from the selection: FGSM at two eps values on 12 images, on tfjs (the pool's engine).
  await page.getByTestId('study-attack').fill('fgsm');
  await page.getByTestId('study-eps').fill('0.05, 0.3');
  await page.getByTestId('study-n').fill('12');
  await page.getByTestId('study-engine').selectOption('tfjs');
  await page.getByTestId('study-build').click();
  await expect(page.getByTestId('study-json')).toHaveValue(new RegExp(`"${trainedModel.id}"`));
  await page.getByTestId('study-start').click();
  await expect(page.getByTestId('study-cells').locator('tbody tr')).toHaveCount(2);
  await expect(page.getByTestId('study-job')).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });
  // Each cell says where its shards ran: the local pool's threads.
  for (const cell of await page.getByTestId('study-cell-where').all()) await expect(cell).toHaveText(/^local pool \(thread \d+: \d+/);
  // And the status bar says the same of the latest job (a cell): which local thread ran how many shards.
  await expect(page.getByTestId('job-shards-ran')).toHaveText(/^ \(local thread \d+: \d+(, local thread \d+: \d+)*\)$/);
  const summary = page.getByTestId('study-summary').locator('tbody tr');
  await expect(summary).toHaveCount(2);
  await expect(summary.nth(0)).toContainText('0.05');
  await expect(summary.nth(1)).toContainText('0.3');
  await expect(summary.nth(0)).toContainText('finished');
  await expect(page.getByTestId('study-chart')).toBeVisible();
  await page.screenshot({ path: 'test-results/views/study-result.png', fullPage: true });
  void consoleErrors;
});
