import { test, expect, openOnTrainedModel } from './fixtures';

test('evaluate a trained model from the Evaluate view: waterfall, checks, per-example table', async ({ page, host, trainedModel, consoleErrors }) => {
  test.setTimeout(300_000);
  await openOnTrainedModel(page, host, 'evaluate', trainedModel, 'mnist');
  // The form starts from the job schema's defaults.
  await expect(page.getByTestId('evaluate-version')).toHaveValue('standard');
  await page.getByTestId('evaluate-version').selectOption('quick');
  await page.getByTestId('evaluate-n').fill('20');
  await page.getByTestId('evaluate-eps').fill('0.1');
  await page.getByTestId('evaluate-start').click();
  await expect(page.getByTestId('evaluate-job')).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });
  await expect(page.getByTestId('evaluate-result')).toContainText('robust accuracy');
  await expect(page.getByTestId('evaluate-waterfall')).toHaveAttribute('data-steps', /^clean:[\d.]+,apgd-ce:[\d.]+,apgd-t:[\d.]+,square:[\d.]+$/);
  await expect(page.getByTestId('evaluate-checks').locator('li')).toHaveCount(5);
  await expect(page.getByTestId('evaluate-checks').locator('li[data-check="square-beats-gradient"]')).toHaveAttribute('data-status', /pass|warn/);
  await expect(page.getByTestId('evaluate-examples').locator('tbody tr')).toHaveCount(20);
  await page.getByTestId('evaluate-filter').selectOption('broken');
  await expect(page.getByTestId('evaluate-examples').locator('tbody tr').first()).toContainText(/apgd-ce|apgd-t|square/);
  await page.screenshot({ path: 'test-results/views/evaluate-result.png', fullPage: true });

  // Minimum-norm comparison on the same model: two attacks at a small equal budget.
  await expect(page.getByTestId('evaluate-intro')).toContainText('The standard ensemble');
  await page.getByTestId('tab-minnorm').click();
  // The page's intro follows the tab (it described the ensemble under every tab).
  await expect(page.getByTestId('evaluate-intro')).toContainText('Minimum-norm attacks compared at equal cost');
  await page.getByTestId('minnorm-form').getByTestId('param-budget').fill('20');
  await page.getByTestId('minnorm-form').getByTestId('param-n').fill('10');
  await page.getByTestId('minnorm-attack-ddn').check();
  await page.getByTestId('minnorm-attack-fmn').check();
  await page.getByTestId('minnorm-start').click();
  await expect(page.getByTestId('minnorm-job')).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });
  await expect(page.getByTestId('minnorm-table').locator('tbody tr')).toHaveCount(2);
  await expect(page.getByTestId('minnorm-curves')).toHaveAttribute('data-points', /^[2-6]$/); // a budget where most inputs fail has no median
  await expect(page.getByTestId('minnorm-best').locator('tbody tr').first()).toContainText(/ddn|fmn/);
  await page.screenshot({ path: 'test-results/views/minnorm-result.png', fullPage: true });
  await expect(page.getByTestId('minnorm-status')).toHaveText(/^finished · /);
  // Another tab and back: the comparison is still there (the panel was rebuilt, and its job forgotten, on every tab switch).
  await page.getByTestId('tab-study').click();
  await expect(page.getByTestId('minnorm-table')).toBeHidden();
  await page.getByTestId('tab-minnorm').click();
  await expect(page.getByTestId('minnorm-table').locator('tbody tr')).toHaveCount(2);

  // FAB is one of the comparison's attacks: its row in the table (an optimality and a distance) and its curve.
  await page.getByTestId('minnorm-attack-fmn').uncheck();
  await page.getByTestId('minnorm-attack-fab').check();
  await page.getByTestId('minnorm-start').click();
  const fab = page.getByTestId('minnorm-table').locator('tbody tr[data-attack="fab"]');
  await expect(fab).toHaveCount(1, { timeout: 240_000 });
  await expect(page.getByTestId('minnorm-job')).toHaveAttribute('data-state', 'finished');
  await expect(page.getByTestId('minnorm-table').locator('tbody tr')).toHaveCount(2);
  await expect(page.getByTestId('minnorm-table').locator('tbody tr[data-attack="fmn"]')).toHaveCount(0);
  await expect(fab.locator('td').nth(1)).toHaveText(/^(0\.\d{3}|1\.000)$/);
  await expect(fab.locator('td').nth(2)).toHaveText(/^\d+\.\d{4}$/);
  await expect(page.getByTestId('minnorm-best').locator('tbody tr').first()).toContainText(/ddn|fab/);
  void consoleErrors;
});
