/**
 * `--engine` on the CLI: the flag reaches the job's schema, which refuses an unknown engine with the
 * accepted values before any session exists (the built CLI, as a user runs it). `bench --suite engine` with
 * no model runs on the starter pack's cw-mnist in a store without a benchmark model, and trains nothing; its audio
 * rows run the starter speech-base with its network on ONNX Runtime.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATA } from '../helpers';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('advlab --engine', () => {
  for (const cmd of [['attack', '--attack', 'fgsm'], ['sweep', '--epsilons', '0,0.1'], ['gradient-check']]) {
    it(`${cmd[0]} --engine gpu is refused with auto, onnx, tfjs`, () => {
      const sessions = mkdtempSync(join(tmpdir(), 'advlab-engine-cli-'));
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/advlab.mjs'), ...cmd, '--model', 'no-such-model', '--dataset', 'mnist', '--engine', 'gpu', '--sessions', sessions, '--json'],
        { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ADVLAB_DATA: DATA } });
      expect(r.status, r.stderr).toBe(2);
      const json = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { error?: { code: string; message: string } };
      expect(json.error?.code).toBe('BAD_INPUT');
      expect(json.error?.message).toMatch(/params\.engine: .*"auto"\|"onnx"\|"tfjs"/);
      expect(readdirSync(sessions).filter((f) => !f.startsWith('.'))).toEqual([]);
    }, 60_000);
  }
});

describe('advlab bench --suite engine', () => {
  it('defaults to the starter cw-mnist when the store has no benchmark model (never trains one)', () => {
    const sessions = mkdtempSync(join(tmpdir(), 'advlab-engine-bench-'));
    const file = join(sessions, 'BENCH.md');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/advlab.mjs'), 'bench', '--suite', 'engine', '--quick', '--engines', 'onnx', '--cw', '1x3', '--ddn', '3', '--sessions', sessions, '--file', file],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000, env: { ...process.env, ADVLAB_DATA: DATA, ADVLAB_ORT_THREADS: '1' } });
    expect(r.status, r.stderr).toBe(0);
    const md = readFileSync(file, 'utf8');
    expect(md).toMatch(/\| engine \| starter:cw-mnist clean accuracy .*\| 98\.5% \|/);
    expect(md).toMatch(/\| engine \| forward pass, batch 10, starter:cw-mnist, first 10 MNIST test images \|/);
    expect(md).toMatch(/\| engine \| C&W L2 targeted \(next\), 1x3, abort early, starter:cw-mnist, first 10 MNIST test images, engine onnx/);
    expect(md).toMatch(/\| engine \| targeted audio attack, starter:speech-base, 1 clip\(s\) x \(digit phrase, non-digit phrase\), 20 iterations, engine onnx \(1 threads; front end in tfjs\) \| success \/ mean dB_x \/ seconds \|/);
    expect(r.stderr + r.stdout).toMatch(/audio attack on onnx \(1 threads\): auto: every layer is exported|audio attack on onnx \(1 threads\): requested/);
    const kinds = readdirSync(sessions).filter((f) => /^\d{8}-/.test(f)).map((f) => f.split('-')[2]);
    expect(kinds).not.toContain('train');
    expect(kinds.filter((k) => k === 'attack').length).toBe(4);
  }, 240_000);

  it('--attacks runs only the named attacks (the C&W-only rerun), and refuses an unknown one', () => {
    const sessions = mkdtempSync(join(tmpdir(), 'advlab-engine-bench-'));
    const file = join(sessions, 'BENCH.md');
    const run = (attacks: string) => spawnSync(process.execPath, [join(ROOT, 'bin/advlab.mjs'), 'bench', '--suite', 'engine', '--quick', '--engines', 'onnx', '--attacks', attacks, '--cw', '1x3', '--speech-model', 'none', '--sessions', sessions, '--file', file],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000, env: { ...process.env, ADVLAB_DATA: DATA, ADVLAB_ORT_THREADS: '1' } });
    const r = run('cw');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/C&W L2 targeted \(next\), 1x3, abort early on onnx: \d+\.\d s, success/);
    const md = readFileSync(file, 'utf8');
    expect(md).toMatch(/\| engine \| C&W L2 targeted \(next\), 1x3, abort early, starter:cw-mnist, first 10 MNIST test images, engine onnx/);
    expect(md).not.toMatch(/FGSM|PGD-40|DDN-|targeted audio attack/);
    const kinds = readdirSync(sessions).filter((f) => /^\d{8}-/.test(f)).map((f) => f.split('-')[2]);
    expect(kinds).toEqual(['attack']);
    const bad = run('cw,jsma');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr + bad.stdout).toMatch(/--attacks: unknown attack "jsma" \(fgsm, pgd, cw, ddn\)/);
  }, 240_000);
});
