/**
 * Starts `advlab serve` (the built app, exactly as a user runs it) on a random port with a fresh
 * sessions folder, and hands tests its tokenised URL. Console errors in the page fail the test.
 * What a spec needs beyond an empty store it asks for here (a trained model: `trainedModel`), so that
 * every spec passes alone and in any order; worker-scoped and made on first use, so specs share it.
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

/** One API call to a host, as the page makes it (POST /api/<method> with the token); throws the API's error. */
export async function api<T = unknown>(host: Pick<HostFixture, 'origin' | 'token'>, method: string, params: unknown = {}): Promise<T> {
  const res = await fetch(`${host.origin}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-advlab-token': host.token }, body: JSON.stringify(params) });
  const body = (await res.json()) as { ok: boolean; result: T; error?: { code: string; message: string } };
  if (!body.ok) throw new Error(`${method}: ${body.error?.code}: ${body.error?.message}`);
  return body.result;
}

/** A model trained on the worker's host through the API, as the Models list shows it. */
export interface TrainedModel {
  name: string;
  /** Its session id (also its id in the Models list). */
  id: string;
  /** Its model.json. */
  path: string;
}

/** Starts a training job on `host` and waits for it: its model, or the job's error. */
export async function trainModel(host: HostFixture, name: string, params: Record<string, unknown>): Promise<TrainedModel> {
  const { jobId } = await api<{ jobId: string }>(host, 'jobs.start', { kind: 'train', params: { ...params, name } });
  for (;;) {
    const job = (await api<{ jobId: string; state: string; session?: string; error?: { message: string } }[]>(host, 'jobs.list')).find((j) => j.jobId === jobId);
    if (job && job.state !== 'running') {
      if (job.state !== 'finished') throw new Error(`training "${name}" ended ${job.state}: ${job.error?.message ?? ''}`);
      const model = (await api<TrainedModel[]>(host, 'models.list')).find((m) => m.id === job.session);
      if (!model) throw new Error(`training "${name}" finished, but its session ${job.session} is not in models.list`);
      return { name: model.name, id: model.id, path: model.path };
    }
    await new Promise((ok) => setTimeout(ok, 500));
  }
}

export const test = base.extend<{ consoleErrors: string[] }, { host: HostFixture; trainedModel: TrainedModel }>({
  host: [
    async ({}, use) => {
      const host = await startServe();
      await use(host);
      host.proc.kill('SIGTERM');
      rmSync(host.sessions, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  // A small CNN on 1,500 MNIST images (2 epochs, about a minute here): something to attack and to import.
  trainedModel: [
    async ({ host }, use) => {
      await use(await trainModel(host, 'e2e target model', { dataset: 'mnist', arch: 'small-cnn', epochs: 2, limit: 1500, testLimit: 200 }));
    },
    { scope: 'worker', timeout: 240_000 },
  ],
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    // The console's "Failed to load resource" does not say which: the failed response's URL does.
    page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname} ${(r.request().postData() ?? "").slice(0, 200)}`); });
    await use(errors);
    expect(errors, 'errors in the browser console').toEqual([]);
  },
});

export async function openView(page: Page, id: string): Promise<void> {
  await page.getByTestId(`nav-${id}`).click();
  await expect(page.getByTestId(`view-${id}`)).toBeVisible();
}

/**
 * Opens the host's page on a view that attacks or evaluates a model (Attack, Evaluate) and picks the
 * worker's trained model in its `<view>-model` select by name (the host is shared with other spec
 * files), then `dataset` in `<view>-dataset` if given. Returns the option's value (the model's id).
 */
export async function openOnTrainedModel(page: Page, host: HostFixture, view: 'attack' | 'evaluate', model: TrainedModel, dataset?: string): Promise<string> {
  await page.goto(host.url);
  await openView(page, view);
  const option = page.getByTestId(`${view}-model`).locator('option', { hasText: model.name });
  await expect(option).toHaveCount(1);
  const value = (await option.getAttribute('value'))!;
  await page.getByTestId(`${view}-model`).selectOption(value);
  if (dataset) await page.getByTestId(`${view}-dataset`).selectOption(dataset);
  return value;
}

/** An FSDD recording as the Audio view's input clip: speaker, spoken digit and take (0-49). */
export interface FsddClip {
  speaker: string;
  digit: number;
  index: number;
}

/**
 * Opens `url` (a host's page) on the Audio view, which opens on a speech model, chooses `model` in its
 * speech-model select (the view opens on the full-alphabet starter:speech; short attack budgets are sized for
 * starter:speech-base), and, if `clip` is given, that FSDD recording as the input clip.
 */
export async function openAudio(page: Page, url: string, model: string, clip?: FsddClip): Promise<void> {
  await page.goto(url);
  await openView(page, 'audio');
  await expect(page.getByTestId('audio-model')).toHaveValue(/speech/); // it opens on a speech model
  await page.getByTestId('audio-model').selectOption(model);
  await expect(page.getByTestId('audio-model')).toHaveValue(model);
  if (!clip) return;
  await page.getByTestId('audio-source').selectOption('fsdd');
  await page.getByTestId('audio-speaker').selectOption(clip.speaker);
  await page.getByTestId('audio-digit').selectOption(String(clip.digit));
  await page.getByTestId('audio-index').fill(String(clip.index));
}

export { expect };
