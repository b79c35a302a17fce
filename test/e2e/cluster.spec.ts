/**
 * Settings → Cluster in the browser, with a real nats-server: wrong credentials are refused with the
 * server's reason and nothing is saved; the right token is saved (the app connects first), shown in
 * effect without its secret, kept in the app data folder's settings.json; "Use this machine only"
 * clears it.
 */
import { test, expect, openView, startServe, api } from './fixtures';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalNatsServer } from '../../src-main/jobs/cluster/local-server';

test('Settings: a cluster is tried before it is saved, shown without its secret, and cleared', async ({ page }) => {
  const server = await startLocalNatsServer();
  const home = mkdtempSync(join(tmpdir(), 'advlab-e2e-cluster-'));
  const own = await startServe({ ADVLAB_HOME: home });
  try {
    await page.goto(own.url);
    await openView(page, 'settings');
    await expect(page.getByTestId('cluster-effective')).toContainText('None');
    await page.getByTestId('cluster-url').fill(server.url);
    await page.getByTestId('cluster-token').fill('not-the-token');
    await page.getByTestId('cluster-save').click();
    await expect(page.getByTestId('cluster-error')).toContainText('Authorization');
    await expect(page.getByTestId('cluster-effective')).toContainText('None');

    await page.getByTestId('cluster-token').fill(server.token);
    await page.getByTestId('cluster-save').click();
    await expect(page.getByTestId('cluster-saved')).toHaveText('saved');
    await expect(page.getByTestId('cluster-effective')).toContainText(`In effect: ${server.url} (token), from this setting`);
    await expect(page.getByTestId('cluster-token')).toHaveValue('');
    expect(JSON.stringify(await api(own, 'settings.get'))).not.toContain(server.token);
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')).cluster).toEqual({ url: server.url, token: server.token });

    await page.getByTestId('cluster-clear').click();
    await expect(page.getByTestId('cluster-effective')).toContainText('None');
    expect(JSON.parse(readFileSync(join(home, 'settings.json'), 'utf8')).cluster).toBeUndefined();
  } finally {
    own.proc.kill('SIGTERM');
    await server.dispose();
    rmSync(home, { recursive: true, force: true });
  }
});
