import { test, expect, openView, openOnTrainedModel, api } from './fixtures';

const cell = async (page: import('@playwright/test').Page, id: string) => Number(await page.getByTestId(id).textContent());

test("C&W towards every target from the Attack view: best / average / worst case beside the paper's, also in the session", async ({ page, host, trainedModel, consoleErrors }) => {
  test.setTimeout(300_000);
  await openOnTrainedModel(page, host, 'attack', trainedModel, 'mnist');
  await page.getByTestId('attack-n').fill('3');
  await page.getByTestId('attack-id').selectOption('cw-l2');
  await page.getByTestId('attack-goal').selectOption('targeted');
  await page.getByTestId('attack-target').fill('all');
  await page.getByTestId('param-binarySearchSteps').fill('3');
  await page.getByTestId('param-maxIterations').fill('100');
  await page.getByTestId('param-learningRate').fill('0.1');
  await page.getByTestId('param-initialConst').fill('1');
  await page.getByTestId('attack-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });

  // The three cases over 3 images x 9 targets, and the paper's (C&W L2 on MNIST) beside them.
  const table = page.getByTestId('attack-target-cases');
  await expect(table).toContainText('9 per image');
  await expect(table.locator('tbody tr')).toHaveCount(3);
  await expect(page.getByTestId('attack-target-cases-paper-best')).toHaveText('1.36');
  await expect(page.getByTestId('attack-target-cases-paper-average')).toHaveText('1.76');
  await expect(page.getByTestId('attack-target-cases-paper-worst')).toHaveText('2.60');
  await expect(page.getByTestId('attack-target-cases-source')).toContainText('Carlini & Wagner 2017, Table IV');
  const best = await cell(page, 'attack-target-cases-best'), average = await cell(page, 'attack-target-cases-average');
  expect(best).toBeGreaterThan(0);
  expect(average).toBeGreaterThanOrEqual(best);
  const worstText = await page.getByTestId('attack-target-cases-worst').textContent();
  if (worstText !== '–') expect(Number(worstText)).toBeGreaterThanOrEqual(average);
  await table.scrollIntoViewIfNeeded();
  await page.screenshot({ path: 'test-results/views/attack-target-cases.png' });

  // The same numbers in the session's detail, from its saved summary.
  const jobs = await api<{ kind: string; state: string; session?: string; result?: { targetCases?: unknown } }[]>(host, 'jobs.list');
  const session = jobs.filter((j) => j.kind === 'attack' && j.state === 'finished' && j.result?.targetCases).at(-1)?.session;
  expect(session).toBeTruthy();
  await openView(page, 'sessions');
  await page.locator(`[data-testid=session-row][data-id="${session}"]`).click();
  await expect(page.getByTestId('session-detail')).toHaveAttribute('data-id', session!);
  await expect(page.getByTestId('session-target-cases').locator('tbody tr')).toHaveCount(3);
  expect(await cell(page, 'session-target-cases-best')).toBeCloseTo(best, 3);
  expect(await cell(page, 'session-target-cases-average')).toBeCloseTo(average, 3);
  await expect(page.getByTestId('session-target-cases-paper-average')).toHaveText('1.76');

  // Another attack (DDN) on the same images: its cases, but no paper column (the table is C&W's).
  await openView(page, 'attack');
  await page.getByTestId('attack-id').selectOption('ddn');
  await page.getByTestId('attack-goal').selectOption('targeted');
  await page.getByTestId('attack-target').fill('all');
  await page.getByTestId('param-steps').fill('30');
  await page.getByTestId('attack-start').click();
  await expect(page.getByTestId('attack-job')).toHaveAttribute('data-state', 'finished', { timeout: 240_000 });
  await expect(page.getByTestId('attack-target-cases').locator('tbody tr')).toHaveCount(3);
  await expect(page.getByTestId('attack-target-cases-paper-best')).toHaveCount(0);
  void consoleErrors;
});
