/**
 * The built CLI as a user runs it: one JSON object as the last stdout line, clear errors with
 * non-zero exit codes for bad input, a training job killed mid-run leaves an incomplete session
 * (never a corrupt one), and `npm start` without Electron's binary falls back to the browser host.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlab, BIN, DATA, ROOT } from '../helpers';
import { findElectronBinary } from '../../../src-main/electron/binary';



describe('advlab CLI', () => {
  it('doctor --json reports backend, tfjs version, Electron, data directories, datasets and the gradient check', () => {
    const r = advlab(['doctor', '--json']);
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({ backend: 'wasm', tfjsVersion: '4.22.0', conv2dGradientCheck: { ok: true } });
    // Present with its path, or absent with the reason, as this machine has it.
    expect(r.json!.electron).toEqual(findElectronBinary());
    expect(r.json!.dataDirs).toContain(DATA);
    expect((r.json!.datasets as { name: string }[]).map((d) => d.name)).toContain('mnist');
  });

  it('refuses bad input with a clear message and a non-zero exit code', () => {
    const backend = advlab(['doctor', '--backend', 'gpu-please', '--json']);
    expect(backend.status).not.toBe(0);
    expect(backend.stderr).toMatch(/Unknown backend "gpu-please"/);
    expect(backend.json).toMatchObject({ error: { code: 'BAD_INPUT' } });

    const data = advlab(['doctor', '--data', '/no/such/dir', '--json']);
    expect(data.status).not.toBe(0);
    expect(data.stderr).toMatch(/\/no\/such\/dir/);

    const unknown = advlab(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown command "frobnicate"/);

    const flags = advlab(['train', '--dataset', 'mnist', '--arch', 'small-cnn', '--epochs', 'two', '--json']);
    expect(flags.status).toBe(2);
    expect(flags.json).toMatchObject({ error: { message: expect.stringMatching(/--epochs must be an integer/) } });

    const sessions = mkdtempSync(join(tmpdir(), 'advlab-cli-'));
    const arch = advlab(['train', '--dataset', 'mnist', '--arch', 'resnet-9000', '--json', '--sessions', sessions]);
    expect(arch.status).not.toBe(0);
    expect(arch.stderr).toMatch(/resnet-9000/);
  });

  it('a training job killed mid-run is listed as incomplete, with its manifest and metrics intact', async () => {
    const sessions = mkdtempSync(join(tmpdir(), 'advlab-kill-'));
    const child = spawn(process.execPath, [BIN, 'train', '--dataset', 'mnist', '--arch', 'small-cnn', '--epochs', '50', '--limit', '2000', '--workers', '1', '--sessions', sessions], {
      cwd: ROOT, env: { ...process.env, ADVLAB_DATA: DATA }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The default engine (auto: ONNX Runtime where it loads, else tfjs). Wait until a progress line shows an epoch
    // after the first (epoch 1's metric rows are written by then), then kill it without warning. The progress line
    // comes once a second when stderr is not a terminal, and an ONNX Runtime epoch takes a fraction of that, so any
    // later epoch counts, not just "epoch 2/" (which such a run may never print), and lines split across chunks are
    // joined. A run that ends before that fails here, with its output, instead of after the 60 s.
    let err = '';
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no progress past epoch 1 within 60 s: ${err}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += String(d);
        if ([...err.matchAll(/epoch (\d+)\/50/g)].some((m) => Number(m[1]) >= 2 && Number(m[1]) < 50)) {
          clearTimeout(timer);
          ok();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`the training ended (exit ${code}) before it was killed: ${err}`));
      });
    });
    child.kill('SIGKILL');
    await new Promise((ok) => child.on('exit', ok));
    const [id] = readdirSync(sessions).filter((d) => !d.startsWith('.'));
    const manifest = JSON.parse(readFileSync(join(sessions, id, 'manifest.json'), 'utf8'));
    expect(manifest.status).toBe('running'); // as last written: never half a file
    const list = advlab(['sessions', 'list', '--json', '--sessions', sessions]);
    expect(list.status).toBe(0);
    const listed = (list.json!.sessions as { id: string; status: string }[]).find((s) => s.id === id);
    expect(listed?.status).toBe('incomplete');
    const shown = advlab(['sessions', 'show', id, '--json', '--sessions', sessions]);
    expect(shown.json!.series).toContain('train');
  });

  it("npm start without Electron's binary says so in one line and serves the UI instead", async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/start.mjs'), '--json', '--sessions', mkdtempSync(join(tmpdir(), 'advlab-start-'))], {
      cwd: ROOT, env: { ...process.env, ADVLAB_DATA: DATA, DISPLAY: '', WAYLAND_DISPLAY: '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const served = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no URL within 60 s: ${out}`)), 60_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += String(d);
        const m = out.match(/"url":"(http:\/\/127\.0\.0\.1:\d+\/\?token=[^"]+)"/);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
    });
    expect(out.split('\n')[0]).toMatch(/^Electron's binary is not installed .*starting the browser host instead\.$/);
    const page = await fetch(served);
    expect(page.status).toBe(200);
    child.kill('SIGTERM');
  });
});
