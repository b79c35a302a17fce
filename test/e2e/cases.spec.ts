/**
 * The Case studies view, driven as a researcher does: run a recipe's quick mode from its card, watch
 * the per-epoch curves of the running session, then read the claim, the verdict and the evidence.
 */
import { test, expect, openView } from './fixtures';
import { SessionStore } from '../../src-main/engine/sessions';

const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'e2e' };

/** A finished full run of a recipe, as the recipe job saves one (report.json and the summary it lists by). */
async function fullRunSession(root: string, recipe: string, seconds: number, overrides: Record<string, unknown>): Promise<string> {
  const w = await new SessionStore(root).create({ kind: 'recipe', name: `${recipe} (full)`, params: { recipe, quick: false, overrides }, tags: [`recipe:${recipe}`], environment: ENV });
  const report = { recipe, title: recipe, claim: 'the claim', finding: 'the finding', claimReproduced: true, criterion: 'the criterion', quick: false, seconds, table: [{ what: 'accuracy', measured: 0.5, reference: 0.9, unit: '%' }] };
  await w.writeArtifact('report.json', JSON.stringify(report), 'json', 'claim and evidence');
  await w.finish({ recipe, claimReproduced: true, quick: false, seconds });
  return w.manifest.id;
}

test('adversarial training from the Case studies view: live clean / PGD accuracy per epoch, then the verdict', async ({ page, host, consoleErrors }) => {
  test.setTimeout(900_000);
  // Before pressing "Run full", a card says how long the last full run took here (with its --set overrides).
  const full = await fullRunSession(host.sessions, 'adversarial-training', 7200, { epochs: 4 });
  await page.goto(host.url);
  await openView(page, 'cases');
  const card = page.getByTestId('recipe-adversarial-training');
  await expect(card).toContainText('Madry');
  await expect(card.getByTestId('recipe-full-time-adversarial-training')).toHaveText(`Last full run here (with epochs=4): 2.0 h, session ${full}.`);
  await expect(page.getByTestId('recipe-full-time-detector')).toContainText('hours on a 2-core machine');
  await card.getByTestId('recipe-quick-adversarial-training').click();
  await expect(card.getByTestId('recipe-state-adversarial-training')).toHaveAttribute('data-state', 'running');
  await expect(card.getByTestId('recipe-state-adversarial-training')).toHaveText(/^running · \S/, { timeout: 120_000 }); // was 'running· ...'

  // While it runs: the session's epoch series, charted as they land (undefended model first).
  const live = card.getByTestId('recipe-live-adversarial-training');
  await expect(live).toBeVisible({ timeout: 600_000 });
  await expect(live.getByTestId('recipe-live-chart').first()).not.toHaveAttribute('data-points', '0');
  await expect(live.locator('h4').first()).toHaveText(/epochs/);
  await page.screenshot({ path: 'test-results/views/cases-live.png', fullPage: true });

  await expect(card.getByTestId('recipe-state-adversarial-training')).toHaveAttribute('data-state', 'finished', { timeout: 840_000 });
  const report = card.getByTestId('recipe-report-adversarial-training');
  await expect(report.getByTestId('claim-verdict')).toContainText('finding reproduced');
  await expect(report.getByTestId('claim-verdict')).toContainText('quick run');
  await expect(report.locator('table')).toContainText('PGD');
  // Both models' per-epoch curves (clean and PGD accuracy) are in the report, and the live view is gone.
  expect((await report.locator('h4').allTextContents()).sort()).toEqual(expect.arrayContaining(['epochs', 'undefended-epochs']));
  for (const chart of await report.getByTestId('recipe-chart').all()) expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThan(1);
  await expect(live).toHaveCount(0);
  await page.screenshot({ path: 'test-results/views/cases-report.png', fullPage: true });
  void consoleErrors;
});
