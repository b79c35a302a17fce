/**
 * The Speech corpus panel (Datasets & Models): starts the audio-corpus job with the real synthesizers,
 * shows its progress and then its result; the corpus lands in speech-corpus/ of the app's data folder.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, openView, startServe, type HostFixture } from './fixtures';

const test = base.extend<object, { corpusHost: HostFixture & { home: string } }>({
  corpusHost: [
    async ({}, use) => {
      const home = mkdtempSync(join(tmpdir(), 'advlab-e2e-corpus-'));
      const host = await startServe({ ADVLAB_HOME: home });
      await use({ ...host, home });
      host.proc.kill('SIGTERM');
      rmSync(host.sessions, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
});

test('the Speech corpus panel makes a small corpus with the installed synthesizers', async ({ page, corpusHost, consoleErrors }) => {
  test.setTimeout(180_000);
  await page.goto(corpusHost.url);
  await openView(page, 'datasets');
  // The form starts at the job schema's defaults.
  await expect(page.getByTestId('speech-corpus-hours')).toHaveValue('0.5');
  await expect(page.getByTestId('speech-corpus-seed')).toHaveValue('1');
  await page.getByTestId('speech-corpus-hours').fill('0.003');
  await page.getByTestId('speech-corpus-seed').fill('4');
  await page.getByTestId('speech-corpus-start').click();
  const result = page.getByTestId('speech-corpus-result');
  await expect(result).toBeVisible({ timeout: 150_000 });
  await expect(result).toContainText('espeak-ng');
  await expect(result).toContainText('3000 FSDD recordings listed');
  const manifest = join(corpusHost.home, 'speech-corpus', 'corpus.json');
  expect(existsSync(manifest)).toBe(true);
  const m = JSON.parse(readFileSync(manifest, 'utf8')) as { seed: number; clips: unknown[] };
  expect(m.seed).toBe(4);
  await expect(result).toContainText(`${m.clips.length} clips`);
  void consoleErrors;
});
