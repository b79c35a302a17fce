/**
 * Starts `advlab serve` (the built app, exactly as a user runs it) on a random port with a fresh
 * sessions folder, and hands tests its tokenised URL. Console errors in the page fail the test.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface HostFixture {
  url: string;
  origin: string;
  token: string;
  sessions: string;
  proc: ChildProcess;
  stderr: () => string;
}

const root = resolve(import.meta.dirname, '../..');
export const DATA = process.env.ADVLAB_DATA ?? resolve(root, '../shared/data');

export async function startServe(extraEnv: Record<string, string> = {}, sessions?: string): Promise<HostFixture> {
  const dir = sessions ?? mkdtempSync(join(tmpdir(), 'advlab-e2e-'));
  const proc = spawn(process.execPath, [join(root, 'bin/advlab.mjs'), 'serve', '--port', '0', '--json', '--sessions', dir], {
    cwd: root,
    env: { ...process.env, ADVLAB_DATA: DATA, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => (err += String(d)));
  const line = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`advlab serve did not print its URL in 60 s; stderr: ${err}`)), 60_000);
    proc.stdout!.on('data', (d) => {
      out += String(d);
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        ok(out.slice(0, nl));
      }
    });
    proc.on('exit', (code) => fail(new Error(`advlab serve exited with ${code}: ${err}`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  const u = new URL(url);
  return { url, origin: u.origin, token: u.searchParams.get('token')!, sessions: dir, proc, stderr: () => err };
}

export const test = base.extend<{ consoleErrors: string[] }, { host: HostFixture }>({
  host: [
    async ({}, use) => {
      const host = await startServe();
      await use(host);
      host.proc.kill('SIGTERM');
      rmSync(host.sessions, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await use(errors);
    expect(errors, 'errors in the browser console').toEqual([]);
  },
});

export async function openView(page: Page, id: string): Promise<void> {
  await page.getByTestId(`nav-${id}`).click();
  await expect(page.getByTestId(`view-${id}`)).toBeVisible();
}

export { expect };
