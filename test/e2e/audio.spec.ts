/**
 * The Audio and Listening views in Chromium, against `advlab serve` with a fixture store: audio-attack
 * sessions built from real FSDD recordings plus a synthetic quiet perturbation (test/unit/listening/fixtures.ts).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '@playwright/test';
import { test as base, expect, openView, startServe, DATA, type HostFixture } from './fixtures';
import { SessionStore } from '../../src-main/engine/sessions';
import { binomialTest } from '../../src-main/engine/audio/dbx';
import { encodeWav } from '../../src-main/engine/audio/wav';
import { makeAudioAttackSession } from '../unit/listening/fixtures';

interface AudioHost extends HostFixture {
  dir: string;
  ids: string[];
}

const test = base.extend<object, { audioHost: AudioHost }>({
  audioHost: [
    async ({}, use) => {
      const dir = mkdtempSync(join(tmpdir(), 'advlab-e2e-audio-'));
      const sessions = join(dir, 'sessions');
      const store = new SessionStore(sessions);
      const a = await makeAudioAttackSession(store, { clip: '7_jackson_0.wav', seed: 1, target: 'open the door', transcriptBefore: 'seven', dbx: -32 });
      const b = await makeAudioAttackSession(store, { clip: '2_theo_3.wav', seed: 2, target: 'nine nine nine', transcriptBefore: 'two', dbx: -38 });
      const host = await startServe({}, sessions);
      await use({ ...host, dir, ids: [a.id, b.id] });
      host.proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
});

/** A WAV header declaring mu-law (format code 7), which the engine does not read. */
function muLawWav(): Buffer {
  const b = encodeWav(new Float32Array(100).fill(0.2), 8000, { bitsPerSample: 8 });
  b.writeUInt16LE(7, 20);
  return b;
}

const num = async (loc: import('@playwright/test').Locator, attr: string) => Number(await loc.getAttribute(attr));

test('the Audio view shows original, adversarial and perturbation with spectrograms and transcripts, plays them, and the gain changes the perturbation', async ({ page, audioHost, consoleErrors }) => {
  const [first] = audioHost.ids;
  await page.goto(audioHost.url);
  await openView(page, 'audio');
  await page.getByTestId('audio-session').selectOption(first);
  for (const w of ['wave-original', 'wave-adversarial', 'wave-perturbation']) {
    await expect(page.getByTestId(w)).toHaveAttribute('data-state', 'ready');
    // The spectrogram canvas is drawn under the waveform.
    await expect(page.getByTestId(w).locator('.spec canvas').first()).toBeAttached();
  }
  // Aligned: the three clips have the same duration (0.5 s and more) and the same width. Wait until the selected
  // session's clips are the ones shown (the view may still show the clip it opened with, 'ready' too).
  await expect.poll(() => num(page.getByTestId('wave-original'), 'data-duration')).toBeGreaterThan(0.2);
  const durations = await Promise.all(['wave-original', 'wave-adversarial', 'wave-perturbation'].map((w) => num(page.getByTestId(w), 'data-duration')));
  expect(durations[0]).toBeGreaterThan(0.2);
  expect(new Set(durations).size).toBe(1);
  const widths = await Promise.all(['wave-original', 'wave-adversarial', 'wave-perturbation'].map(async (w) => (await page.getByTestId(w).locator('.wave').boundingBox())!.width));
  expect(new Set(widths).size).toBe(1);
  await expect(page.getByTestId('audio-before')).toHaveText('“seven”');
  await expect(page.getByTestId('audio-after')).toHaveText('“open the door”');
  await expect(page.getByTestId('audio-summary-target')).toHaveText('“open the door”');
  await expect(page.getByTestId('audio-dbx')).toContainText(/-3\d\.\d dB/);
  await expect(page.getByTestId('audio-result-level')).toHaveAttribute('data-points', /^[1-9]\d*$/);

  // Playback runs in headless Chromium (no speakers needed): the play event fires and time advances.
  const adv = page.getByTestId('wave-adversarial');
  await page.getByTestId('wave-adversarial-play').click();
  await expect(adv).toHaveAttribute('data-plays', '1');
  await expect.poll(async () => num(adv, 'data-time'), { timeout: 10_000 }).toBeGreaterThan(0.05);
  await page.getByTestId('wave-original-play').click();
  await expect(page.getByTestId('wave-original')).toHaveAttribute('data-plays', '1');

  // The stored perturbation peaks at 0.9 of full scale; at 0 dB it is at its true level, 32 dB below the clip's peak.
  const pert = page.getByTestId('wave-perturbation');
  const loud = await num(pert, 'data-peak');
  expect(loud).toBeGreaterThan(0.8);
  await page.getByTestId('audio-gain').fill('0');
  await expect(page.getByTestId('audio-gain-value')).toHaveText('+0.0 dB');
  await expect.poll(async () => num(pert, 'data-peak')).toBeLessThan(loud / 10);
  await expect(pert).toHaveAttribute('data-state', 'ready');
  const quiet = await num(pert, 'data-peak');
  const origPeak = await num(page.getByTestId('wave-original'), 'data-peak');
  expect(20 * Math.log10(quiet / origPeak)).toBeCloseTo(-32, 0);
  await page.setViewportSize({ width: 1400, height: 2200 }); // the view scrolls inside <main>: make room for all of it
  await page.screenshot({ path: 'test-results/views/audio-result.png' });
  void consoleErrors;
});

test('importing a WAV uploads it; a non-WAV, a bad target and a missing microphone give clear messages', async ({ page, audioHost, consoleErrors }) => {
  await page.goto(audioHost.url);
  await openView(page, 'audio');
  await page.getByTestId('audio-source').selectOption('file');
  await page.getByTestId('audio-file').setInputFiles(join(DATA, 'fsdd/recordings/4_lucas_10.wav'));
  await expect(page.getByTestId('audio-input-info')).toContainText('4_lucas_10.wav: 8000 Hz, 1 channel, 16-bit pcm');
  await expect(page.getByTestId('audio-input-wave')).toHaveAttribute('data-state', 'ready');
  const uploads = join(audioHost.dir, 'uploads');
  expect(existsSync(uploads) && readdirSync(uploads).some((f) => f.endsWith('4_lucas_10.wav'))).toBe(true);

  await page.getByTestId('audio-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('these are notes, not audio') });
  await expect(page.getByTestId('audio-upload-error')).toContainText('notes.txt: not a WAV file');
  await expect(page.getByTestId('audio-input-info')).toHaveCount(0);
  // The main side checks again with the engine's WAV reader (asked directly: a failed request in the page logs a console error).
  const refused = await page.request.post(`${audioHost.origin}/api/audio.upload`, {
    headers: { 'x-advlab-token': audioHost.token },
    data: { name: 'phone.wav', base64: muLawWav().toString('base64') },
  });
  expect((await refused.json()).error).toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(/^phone\.wav: unsupported encoding mu-law/) });
  const notWav = await page.request.post(`${audioHost.origin}/api/audio.upload`, { headers: { 'x-advlab-token': audioHost.token }, data: { name: 'notes.txt', base64: Buffer.from('plain text').toString('base64') } });
  expect((await notWav.json()).error.message).toMatch(/^notes\.txt: not a WAV file/);

  await page.getByTestId('audio-target').fill('Nine 9 nine!');
  await expect(page.getByTestId('audio-target-error')).toContainText('“9” “!”');
  await expect(page.getByTestId('audio-target-error')).toContainText('write numbers as words');
  await page.getByTestId('audio-target').fill("Don't stop");
  await expect(page.getByTestId('audio-target-error')).toHaveCount(0);
  // The universal perturbation's target: the same rule, the same message (src-shared/speech-phrase.ts).
  await page.getByTestId('universal-target').fill('Nine 9 nine!');
  await expect(page.getByTestId('universal-error')).toContainText('“9” “!”');
  await expect(page.getByTestId('universal-error')).toContainText('write numbers as words');
  await expect(page.getByTestId('universal-start')).toBeDisabled();
  await page.getByTestId('universal-target').fill("Don't stop");
  await expect(page.getByTestId('universal-error')).toHaveCount(0);
  // Its bounds are checked against the job schema's range for each one (the panel once restated it).
  await page.getByTestId('universal-eps').fill('0.05, 2');
  await expect(page.getByTestId('universal-error')).toHaveText('each bound must be at most 1 (a fraction of full scale)');
  await page.getByTestId('universal-eps').fill('0.05, 0');
  await expect(page.getByTestId('universal-error')).toHaveText('each bound must be greater than 0 (a fraction of full scale)');
  await expect(page.getByTestId('universal-start')).toBeDisabled();
  await page.getByTestId('universal-eps').fill('0.05, 0.2');
  await expect(page.getByTestId('universal-error')).toHaveCount(0);

  // No microphone in headless Chromium (and no permission): a clear message instead of a hang.
  await page.getByTestId('audio-source').selectOption('record');
  await page.getByTestId('audio-record').click();
  await expect(page.getByTestId('audio-record-error')).toContainText(/microphone/i);
  // The earlier upload is offered again.
  await page.getByTestId('audio-source').selectOption('earlier');
  await expect(page.getByTestId('audio-earlier').locator('option', { hasText: '4_lucas_10.wav' })).toHaveCount(1);
  void consoleErrors;
});

test('an A/B listening test runs to the end, shows accuracy and p-value, and is saved as a session', async ({ page, audioHost, consoleErrors }) => {
  await page.goto(audioHost.url);
  await openView(page, 'listening');
  for (const id of audioHost.ids) await page.locator(`[data-testid="listening-source"][data-session="${id}"]`).check();
  await page.getByTestId('listening-mode').selectOption('ab');
  await page.getByTestId('listening-repeats').fill('3');
  await page.getByTestId('listening-seed').fill('7');
  await page.screenshot({ path: 'test-results/views/listening-setup.png' });
  await page.getByTestId('listening-start').click();
  const answers = ['original', 'adversarial', 'adversarial', 'original', 'original', 'adversarial'];
  for (let i = 0; i < 6; i++) {
    await expect(page.getByTestId('listening-trial')).toHaveAttribute('data-trial', String(i));
    // Answers unlock once the clip has been played.
    await expect(page.getByTestId(`listening-answer-${answers[i]}`)).toBeDisabled();
    await page.getByTestId('listening-play-x').click();
    if (i === 0) {
      await page.screenshot({ path: 'test-results/views/listening-trial.png' });
      await expect.poll(() => page.getByTestId('listening-player').evaluate((a) => (a as unknown as { currentTime: number }).currentTime), { timeout: 10_000 }).toBeGreaterThan(0.05);
    }
    await page.getByTestId(`listening-answer-${answers[i]}`).click();
  }
  const result = page.getByTestId('listening-result');
  await expect(result).toBeVisible();
  await expect(page.getByTestId('listening-accuracy')).toHaveText(/^\d+\.\d%$/);
  await expect(page.getByTestId('listening-pvalue')).toHaveText(/^\d\.\d{4}$/);
  await page.setViewportSize({ width: 1400, height: 1400 });
  await page.screenshot({ path: 'test-results/views/listening-result.png' });

  const id = (await result.getAttribute('data-session'))!;
  const res = await page.request.post(`${audioHost.origin}/api/sessions.show`, { headers: { 'x-advlab-token': audioHost.token }, data: { id } });
  const shown = (await res.json()).result;
  expect(shown.manifest.kind).toBe('listening');
  expect(shown.status).toBe('finished');
  const s = shown.manifest.summary;
  expect(s).toMatchObject({ trials: 6, mode: 'ab' });
  expect(s.pValue).toBeCloseTo(binomialTest(s.correct, 6), 10);
  expect(s.accuracy).toBeCloseTo(s.correct / 6, 10);
  await expect(page.getByTestId('listening-correct')).toHaveText(`${s.correct} of 6`);
  expect(shown.series).toContain('answers');
  expect(shown.artifacts.filter((a: { path: string }) => a.path.startsWith('clips/'))).toHaveLength(4);
  const metrics = await page.request.post(`${audioHost.origin}/api/sessions.metrics`, { headers: { 'x-advlab-token': audioHost.token }, data: { id, series: 'answers' } });
  expect((await metrics.json()).result.rows.map((r: { answer: string }) => r.answer)).toEqual(answers);

  // Reviewable later: the test is listed with its score, and its answers can be opened.
  await page.getByTestId('listening-new').click();
  const row = page.locator(`[data-testid="listening-history-row"][data-session="${id}"]`);
  await expect(row).toContainText('finished');
  await expect(page.getByTestId('listening-review').locator('tbody tr')).toHaveCount(6);
  void consoleErrors;
});

test('an ABX test can be ended early: scored on the answered trials and saved as cancelled', async ({ page, audioHost, consoleErrors }) => {
  await page.goto(audioHost.url);
  await openView(page, 'listening');
  await page.locator(`[data-testid="listening-source"][data-session="${audioHost.ids[1]}"]`).check();
  await page.getByTestId('listening-mode').selectOption('abx');
  await page.getByTestId('listening-repeats').fill('4');
  await page.getByTestId('listening-start').click();
  await expect(page.getByTestId('listening-trial')).toHaveAttribute('data-trial', '0');
  for (const r of ['a', 'b']) await page.getByTestId(`listening-play-${r}`).click();
  await expect(page.getByTestId('listening-answer-A')).toBeDisabled();
  await page.getByTestId('listening-play-x').click();
  await page.getByTestId('listening-answer-A').click();
  await expect(page.getByTestId('listening-trial')).toHaveAttribute('data-trial', '1');
  await page.getByTestId('listening-end').click();
  await expect(page.getByTestId('listening-correct')).toContainText('of 1 (ended early; 4 planned)');
  const id = (await page.getByTestId('listening-result').getAttribute('data-session'))!;
  const res = await page.request.post(`${audioHost.origin}/api/sessions.show`, { headers: { 'x-advlab-token': audioHost.token }, data: { id } });
  const shown = (await res.json()).result;
  expect(shown.status).toBe('cancelled');
  expect(shown.manifest.summary).toMatchObject({ trials: 1, plannedTrials: 4, mode: 'abx' });
  void consoleErrors;
  void startServe;
});

test('with a (fake) microphone, a recording is captured, encoded as WAV in the page, uploaded and offered as the input clip', async ({ audioHost }) => {
  // A second Chromium with its fake capture device (a beep), microphone permission granted without a prompt.
  const mic = await chromium.launch({
    executablePath: process.env.ADVLAB_CHROMIUM ?? '/usr/bin/chromium', // as in playwright.config.ts
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  try {
    const context = await mic.newContext({ permissions: ['microphone'], viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(audioHost.url);
    await openView(page, 'audio');
    await page.getByTestId('audio-source').selectOption('record');
    const clicked = Date.now();
    await page.getByTestId('audio-record').click();
    const stop = page.getByTestId('audio-record-stop');
    await expect(stop).toBeVisible();
    // Record until the view's own counter (the recorder's clock, "Stop (1.6 s)") has passed 1.5 s, however
    // long that takes on this machine, then stop.
    let counted = 0;
    await expect.poll(async () => (counted = Number(/\(([\d.]+) s\)/.exec((await stop.textContent()) ?? '')?.[1] ?? 0)), { timeout: 30_000, intervals: [100] }).toBeGreaterThanOrEqual(1.5);
    await stop.click();
    const held = (Date.now() - clicked) / 1000;
    const info = page.getByTestId('audio-input-info');
    await expect(info).toContainText(/recording-\d+\.wav: \d+ Hz, 1 channel, 16-bit pcm, \d+\.\d\d s/);
    // The WAV's duration (its sample count over its rate) is what was recorded: at least what the counter
    // showed (less the recorder's start-up, under 0.25 s), at most the time from the Record click to the Stop click.
    const seconds = Number(/, (\d+\.\d\d) s/.exec((await info.textContent())!)![1]);
    console.log(`recording: counter ${counted.toFixed(1)} s, Record to Stop click ${held.toFixed(2)} s, WAV ${seconds.toFixed(2)} s`);
    expect(seconds, `counter ${counted} s, held ${held} s`).toBeGreaterThanOrEqual(counted - 0.25);
    expect(seconds, `counter ${counted} s, held ${held} s`).toBeLessThanOrEqual(held + 0.1); // + a codec frame or two
    await expect(page.getByTestId('audio-input-wave')).toHaveAttribute('data-state', 'ready');
    // The beep is not silence.
    expect(Number(await page.getByTestId('audio-input-wave').getAttribute('data-peak'))).toBeGreaterThan(0.01);
    expect(readdirSync(join(audioHost.dir, 'uploads')).some((f) => /recording-\d+\.wav$/.test(f))).toBe(true);
    expect(errors, 'errors in the browser console').toEqual([]);
  } finally {
    await mic.close();
  }
});

test('a real audio attack started from the UI against a quickly trained tiny model streams its curves and shows its result', async ({ page, audioHost, consoleErrors }) => {
  test.setTimeout(240_000);
  const call = async (method: string, params: unknown) =>
    (await (await page.request.post(`${audioHost.origin}/api/${method}`, { headers: { 'x-advlab-token': audioHost.token }, data: params })).json()) as { ok: boolean; result: never };
  // A one-epoch speech-small model on 32 utterances (about 10 s): enough to exercise the whole path, not to be attacked successfully.
  expect((await call('jobs.start', { kind: 'audio-train', params: { quick: true, epochs: 1, utterances: 32, name: 'tiny e2e speech model' } })).ok).toBe(true);
  await expect
    .poll(async () => ((await call('sessions.list', { filter: { kind: 'audio-train' } })).result as { status: string }[]).map((s) => s.status), { timeout: 120_000 })
    .toEqual(['finished']);
  await page.goto(audioHost.url);
  // models.list marks the audio-train session's model as speech: the Attack view (image classifiers) does not offer it.
  await openView(page, 'attack');
  await expect(page.getByTestId('attack-model')).toHaveValue('starter:cw-mnist');
  await expect(page.getByTestId('attack-model').locator('option', { hasText: 'tiny e2e speech model' })).toHaveCount(0);
  await openView(page, 'audio');
  await expect(page.getByTestId('audio-model').locator('option', { hasText: 'tiny e2e speech model' })).toHaveCount(1);
  // The model's saved held-out utterances are offered first.
  await expect(page.getByTestId('audio-source')).toHaveValue('example');
  await expect(page.getByTestId('audio-example').locator('option').first()).toContainText(/test-seen u\d+: “[a-z ]+”/);
  // Letters the model never heard in training (FSDD's digit words have no p or d) draw a warning, not a refusal.
  await page.getByTestId('audio-target').fill('open the door');
  await expect(page.getByTestId('audio-target-warning')).toContainText('never heard “d” “p”');
  await page.getByTestId('audio-target').fill('nine one');
  await expect(page.getByTestId('audio-target-warning')).toHaveCount(0);
  await page.getByTestId('audio-target').fill('open');
  await expect(page.getByTestId('audio-target-warning')).toContainText('“p”');
  await page.getByTestId('audio-iterations').fill('40');
  const t0 = Date.now();
  await page.getByTestId('audio-start').click();
  await expect(page.getByTestId('audio-job')).toHaveAttribute('data-state', 'finished', { timeout: 180_000 });
  const seconds = (Date.now() - t0) / 1000;
  console.log(`audio attack, 40 iterations, from the click to the result: ${seconds.toFixed(1)} s`);
  // Live curves were drawn from the job's progress events (loss, CTC, dB_x, tau).
  expect(Number(await page.getByTestId('audio-live-loss').getAttribute('data-points'))).toBeGreaterThanOrEqual(4);
  expect(Number(await page.getByTestId('audio-live-level').getAttribute('data-points'))).toBeGreaterThanOrEqual(4);
  // The new session is shown: three waveforms, transcripts, dB_x.
  await expect(page.getByTestId('audio-session')).not.toHaveValue(new RegExp(audioHost.ids.join('|')));
  await expect(page.getByTestId('audio-session')).toHaveValue(/audio-attack/);
  for (const w of ['wave-original', 'wave-adversarial', 'wave-perturbation']) await expect(page.getByTestId(w)).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('audio-summary-target')).toHaveText('“open”');
  await expect(page.getByTestId('audio-before')).toHaveText(/^“.*”$/);
  await expect(page.getByTestId('audio-dbx')).toHaveText(/^-?\d+\.\d dB$/);
  await expect(page.getByTestId('audio-success')).toHaveText(/attack (succeeded|failed)/);
  void consoleErrors;
});
