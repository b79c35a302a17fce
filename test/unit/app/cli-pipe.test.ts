/**
 * `--json` output reaches a pipe in full: the CLI used to call process.exit right after writing,
 * which dropped whatever the pipe (64 KiB) had not taken yet, so `advlab sessions list --json | wc -c`
 * stopped at 65,536 bytes. The reader here waits a second before reading, as a slow consumer does.
 */
import { spawnSync } from 'node:child_process';
import { resolve, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATA } from '../helpers';
import { fakeManifest, tempRoot, writeFakeSession } from '../sessions/helpers';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/advlab.mjs');
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the built CLI with stdout into a pipe whose reader starts a second late. */
function advlabIntoSlowPipe(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const cmd = `${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')} | (sleep 1; cat)`;
  const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ADVLAB_DATA: DATA } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI output into a pipe', () => {
  it('sessions list --json with > 200 KB of output arrives whole and parses', async () => {
    const root = tempRoot('advlab-pipe-');
    const n = 800;
    for (let i = 0; i < n; i++) {
      const id = `20260101-${String(100000 + i).slice(1)}0-train-${String(i).padStart(4, '0')}`;
      await writeFakeSession(root, fakeManifest(id, { name: `pipe fixture session number ${i} with a longish name`, tags: ['pipe', `t${i}`] }));
    }
    const r = advlabIntoSlowPipe(['sessions', 'list', '--json', '--sessions', root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(200 * 1024);
    const lines = r.stdout.trim().split('\n');
    const json = JSON.parse(lines.at(-1)!) as { count: number; sessions: { id: string }[] };
    expect(json.count).toBe(n);
    expect(json.sessions).toHaveLength(n);
  });

  it('human output of the same size also arrives whole', async () => {
    const root = tempRoot('advlab-pipe-');
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const id = `20260101-${String(100000 + i).slice(1)}0-train-${String(i).padStart(4, '0')}`;
      await writeFakeSession(root, fakeManifest(id, { name: `human ${i} ${'x'.repeat(40)}` }));
    }
    const r = advlabIntoSlowPipe(['sessions', 'list', '--sessions', root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(200 * 1024);
    expect(r.stdout.trim().split('\n')).toHaveLength(n);
  });
});
