/**
 * `--engine` on the CLI: the flag reaches the job's schema, which refuses an unknown engine with the
 * accepted values before any session exists (the built CLI, as a user runs it).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
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
