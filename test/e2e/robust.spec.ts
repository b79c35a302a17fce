/**
 * Attacks that survive, from the Audio view in Chromium against `advlab serve`: a robust-mode (EOT) attack
 * on the starter speech model with its held-out comparison and survival re-check, and a universal
 * perturbation trained on FSDD clips with its curve. Short budgets: this checks the path, not the numbers.
 */
import { test, expect, openAudio, api } from './fixtures';

test('robust mode and the universal perturbation run from the Audio view and show their reports', async ({ page, host, consoleErrors }) => {
  // The small FSDD model: the view opens on the full-alphabet starter:speech (1.0M parameters, about 4x the
  // work per step on tfjs, where robust mode runs), and these short budgets are sized for speech-base.
  await openAudio(page, host.url, 'starter:speech-base');

  // Robust mode: the switch shows its settings; the run compares with the plain attack on held-out transformations.
  await page.getByTestId('audio-target').fill('nine');
  await page.getByTestId('audio-iterations').fill('10');
  await expect(page.getByTestId('robust-samples')).toHaveCount(0);
  await page.getByTestId('audio-robust').check();
  await page.getByTestId('robust-samples').fill('2');
  await page.getByTestId('robust-heldout').fill('4');
  await expect(page.getByTestId('robust-compare')).toBeChecked();
  await expect(page.getByTestId('audio-start')).toHaveText('Run robust attack');
  await page.getByTestId('audio-start').click();
  await expect(page.getByTestId('audio-job')).toHaveAttribute('data-state', 'finished', { timeout: 180_000 });
  await expect(page.getByTestId('audio-session')).toHaveValue(/audio-robust/);
  await expect(page.getByTestId('audio-robust-summary')).toBeVisible();
  await expect(page.getByTestId('robust-heldout-success')).toContainText(/\d+% of 4/);
  await expect(page.getByTestId('plain-heldout-success')).toContainText(/\d+%/);
  await expect(page.getByTestId('audio-survived')).toBeVisible();
  await expect(page.getByTestId('audio-second-copy')).not.toBeEmpty();
  for (const w of ['wave-original', 'wave-adversarial']) await expect(page.getByTestId(w)).toHaveAttribute('data-state', 'ready');

  // Universal perturbation: one bound, a few clips.
  await page.getByTestId('universal-target').fill('nine');
  await page.getByTestId('universal-eps').fill('0.05, 0.2');
  await page.getByTestId('universal-train').fill('4');
  await page.getByTestId('universal-test').fill('3');
  await page.getByTestId('universal-iterations').fill('4');
  await page.getByTestId('universal-start').click();
  await expect(page.getByTestId('universal-job')).toHaveAttribute('data-state', 'finished', { timeout: 180_000 });
  await expect(page.getByTestId('universal-session')).toHaveValue(/audio-universal/);
  await expect(page.getByTestId('universal-row')).toHaveCount(2);
  await expect(page.getByTestId('universal-heldout').first()).toContainText(/\d\/3 \(\d+%\)/);
  await expect(page.getByTestId('universal-chart')).toBeVisible();

  // Both runs are sessions with the survival re-check in their summaries.
  const sessions = await api<{ kind: string; summary: Record<string, unknown> }[]>(host, 'sessions.list');
  const robust = sessions.find((s) => s.kind === 'audio-robust')!;
  const universal = sessions.find((s) => s.kind === 'audio-universal')!;
  expect(typeof robust.summary.survived).toBe('boolean');
  expect(robust.summary).toMatchObject({ heldOutTrials: 4, eotSamples: 2, target: 'nine' });
  expect(universal.summary).toMatchObject({ target: 'nine', trainClips: 4, testClips: 3, bounds: 2, survivalChecked: 3 });
  void consoleErrors;
});
