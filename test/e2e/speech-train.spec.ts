/**
 * Training a speech model from the Audio view's form (components/audio/SpeechTrainPanel.svelte), as a
 * researcher does: a tiny run (quick, speech-small, one epoch of 32 utterances), its live progress and result,
 * the new model in the view's speech-model list, then a second run continuing it (`init`).
 */
import { test, expect, api, openView } from './fixtures';

interface Details { status: string; manifest: { kind: string; params: Record<string, unknown>; summary: Record<string, unknown>; models?: { id?: string }[] } }

test('a speech model trained from the Audio view form finishes, shows its CERs and joins the model list; a second run continues it', async ({ page, host, consoleErrors }) => {
  void consoleErrors;
  test.setTimeout(240_000);
  await page.goto(host.url);
  await openView(page, 'audio');
  const panel = page.getByTestId('speech-train');
  await expect(panel.getByTestId('speech-train-start')).toBeEnabled();
  // The fields start at the job schema's defaults: quick off, seed 1, epochs empty (the job's own default).
  await expect(panel.getByTestId('speech-train-quick')).not.toBeChecked();
  await expect(panel.getByTestId('speech-train-seed')).toHaveValue('1');
  await expect(panel.getByTestId('speech-train-epochs')).toHaveValue('');
  // Bounds come from the schema: 8 utterances is refused before anything is sent.
  await panel.getByTestId('speech-train-utterances').fill('8');
  await expect(panel.getByTestId('param-error')).toContainText('at least 16');
  await expect(panel.getByTestId('speech-train-start')).toBeDisabled();

  await panel.getByTestId('speech-train-arch').selectOption('speech-small');
  await panel.getByTestId('speech-train-quick').check();
  await panel.getByTestId('speech-train-epochs').fill('1');
  await panel.getByTestId('speech-train-utterances').fill('32');
  await panel.getByTestId('speech-train-name').fill('form-trained speech model');
  const t0 = Date.now();
  await panel.getByTestId('speech-train-start').click();
  await expect(panel.getByTestId('speech-train-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  console.log(`speech training from the form (quick, speech-small, 1 epoch, 32 utterances), click to result: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const result = panel.getByTestId('speech-train-result');
  await expect(result).toContainText(/test CER \d+\.\d% seen speakers · \d+\.\d% unseen speaker/);
  await expect(result).toContainText('speech-small · 1 epoch(s)');
  // Live curves: the batches' loss and the epoch's validation CER, from the job's progress events.
  expect(Number(await panel.getByTestId('speech-train-loss-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
  expect(Number(await panel.getByTestId('speech-train-cer-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(1);

  const id = (await panel.getByTestId('speech-train-session').textContent())!.trim();
  const first = await api<Details>(host, 'sessions.show', { id });
  expect(first.manifest.kind).toBe('audio-train');
  expect(first.status).toBe('finished');
  expect(first.manifest.params).toMatchObject({ quick: true, epochs: 1, utterances: 32, arch: 'speech-small', seed: 1, name: 'form-trained speech model' });
  expect(first.manifest.params).not.toHaveProperty('init');
  // The new model is in the Audio view's speech-model list (and the form's "continue from").
  await expect(page.getByTestId('audio-model').locator(`option[value="${id}"]`)).toHaveCount(1);
  await expect(page.getByTestId('audio-model').locator('option', { hasText: 'form-trained speech model' })).toHaveCount(1);

  // Continue it: its architecture is the run's, so the architecture select is set aside.
  await panel.getByTestId('speech-train-init').selectOption(id);
  await expect(panel.getByTestId('speech-train-arch')).toBeDisabled();
  await panel.getByTestId('speech-train-name').fill('continued speech model');
  await panel.getByTestId('speech-train-start').click();
  await expect(panel.getByTestId('speech-train-job')).toHaveAttribute('data-state', /running|queued/);
  await expect(panel.getByTestId('speech-train-job')).toHaveAttribute('data-state', 'finished', { timeout: 120_000 });
  const id2 = (await panel.getByTestId('speech-train-session').textContent())!.trim();
  expect(id2).not.toBe(id);
  const second = await api<Details>(host, 'sessions.show', { id: id2 });
  expect(second.manifest.params).toMatchObject({ init: id, epochs: 1, utterances: 32 });
  expect(second.manifest.params).not.toHaveProperty('arch');
  expect(second.manifest.summary.arch).toBe('speech-small');
  expect((second.manifest.models ?? []).map((m) => m.id)).toContain(id);
  await expect(page.getByTestId('audio-model').locator('option', { hasText: 'continued speech model' })).toHaveCount(1);
});
