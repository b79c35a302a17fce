/**
 * The Audio view's engine select: the choice reaches the 'audio-attack' job, and its session records (and the
 * result pane shows) which engine ran the speech network. Robust mode, a job without an engine choice, hides it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, openAudio, startServe, api, type HostFixture } from './fixtures';

interface EngineHost extends HostFixture {
  dir: string;
}

const test = base.extend<object, { engineHost: EngineHost }>({
  engineHost: [
    async ({}, use) => {
      const dir = mkdtempSync(join(tmpdir(), 'advlab-e2e-audio-engine-'));
      const host = await startServe({ ADVLAB_ORT_THREADS: '1' }, join(dir, 'sessions'));
      await use({ ...host, dir });
      host.proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
});

type Listed = { id: string; status: string; summary: Record<string, unknown> };

test('the engine chosen in the Audio view runs the attack and is recorded in its session', async ({ page, engineHost, consoleErrors }) => {
  test.setTimeout(240_000);
  await openAudio(page, engineHost.url, 'starter:speech-base', { speaker: 'george', digit: 0, index: 0 });
  await page.getByTestId('audio-target').fill('zero');
  await page.getByTestId('audio-iterations').fill('2');
  await expect(page.getByTestId('audio-engine')).toHaveValue('auto'); // the job schema's default

  const seen = new Set<string>();
  for (const engine of ['tfjs', 'onnx'] as const) {
    await page.getByTestId('audio-engine').selectOption(engine);
    await page.getByTestId('audio-start').click();
    // A new finished session (the job pane still says 'finished' for the previous run when this one starts).
    let ran: Listed | undefined;
    await expect.poll(async () => {
      const sessions = await api<Listed[]>(engineHost, 'sessions.list', { filter: { kind: 'audio-attack' } });
      ran = sessions.find((s) => !seen.has(s.id) && s.status === 'finished');
      return ran?.status;
    }, { timeout: 120_000 }).toBe('finished');
    if (!ran) throw new Error('no new session');
    seen.add(ran.id);
    const shown = await api<{ manifest: { params: Record<string, unknown>; summary: Record<string, unknown> } }>(engineHost, 'sessions.show', { id: ran.id });
    expect(shown.manifest.params.engine).toBe(engine);
    expect(shown.manifest.summary.engine).toBe(engine);
    await expect(page.getByTestId('audio-job')).toHaveAttribute('data-state', 'finished');
    await expect(page.getByTestId('audio-engine-used')).toContainText(engine === 'onnx' ? 'onnx' : 'tfjs');
  }

  await page.getByTestId('audio-robust').check();
  await expect(page.getByTestId('audio-engine')).toHaveCount(0);
  void consoleErrors;
});

test('the alignment margin set in the Audio view reaches the audio-attack job; robust and untargeted attacks hide it', async ({ page, engineHost, consoleErrors }) => {
  test.setTimeout(240_000);
  await openAudio(page, engineHost.url, 'starter:speech-base', { speaker: 'george', digit: 0, index: 0 });
  await page.getByTestId('audio-target').fill('zero');
  await page.getByTestId('audio-iterations').fill('2');
  await page.getByTestId('audio-setup').getByText('optimisation settings').click();
  const margin = page.getByTestId('audio-alignment-margin');
  // The schema's default (null: CTC alone) shows as an empty field.
  await expect(margin).toHaveValue('');
  await expect(margin).toHaveAttribute('placeholder', 'none');
  await margin.fill('-1');
  await expect(page.getByTestId('param-error')).toContainText('at least 0');
  await expect(page.getByTestId('audio-start')).toBeDisabled();
  await margin.fill('0.5');
  const before = new Set((await api<Listed[]>(engineHost, 'sessions.list', { filter: { kind: 'audio-attack' } })).map((s) => s.id));
  await page.getByTestId('audio-start').click();
  let ran: Listed | undefined;
  await expect.poll(async () => {
    ran = (await api<Listed[]>(engineHost, 'sessions.list', { filter: { kind: 'audio-attack' } })).find((s) => !before.has(s.id) && s.status === 'finished');
    return ran?.status;
  }, { timeout: 120_000 }).toBe('finished');
  const shown = await api<{ manifest: { params: Record<string, unknown>; summary: Record<string, unknown> } }>(engineHost, 'sessions.show', { id: ran!.id });
  expect(shown.manifest.params.alignmentMargin).toBe(0.5);
  expect(shown.manifest.summary.alignmentMargin).toBe(0.5);
  await expect(page.getByTestId('audio-job')).toHaveAttribute('data-state', 'finished');

  await page.getByTestId('audio-robust').check();
  await expect(margin).toHaveCount(0);
  await page.getByTestId('audio-robust').uncheck();
  await expect(margin).toHaveValue('0.5');
  await page.getByTestId('audio-goal').selectOption('untargeted');
  await expect(margin).toHaveCount(0);
  void consoleErrors;
});
