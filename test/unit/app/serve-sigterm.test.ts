/**
 * SIGTERM to `advlab serve` during a job (issue 14, Jobs): the job is cancelled as a Cancel would
 * be, its session ends 'cancelled' with what it had (here the model trained so far), never left
 * 'running', and the process exits. The built CLI, a training job started over HTTP.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATA } from '../helpers';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/advlab.mjs');

describe('advlab serve and SIGTERM', () => {
  it('a training job started over HTTP ends cancelled with its partial model, and serve exits', async () => {
    const sessions = mkdtempSync(join(tmpdir(), 'advlab-sigterm-'));
    const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json', '--sessions', sessions], {
      cwd: ROOT, env: { ...process.env, ADVLAB_DATA: DATA }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((ok) => proc.on('exit', (code) => ok(code)));
    try {
      const line = await new Promise<string>((ok, fail) => {
        let out = '';
        const timer = setTimeout(() => fail(new Error(`no URL in 60 s: ${stderr}`)), 60_000);
        proc.stdout!.on('data', (d) => {
          out += String(d);
          if (out.includes('\n')) { clearTimeout(timer); ok(out.slice(0, out.indexOf('\n'))); }
        });
      });
      const u = new URL((JSON.parse(line) as { url: string }).url);
      const call = async <T>(method: string, params: unknown): Promise<T> => {
        const res = await fetch(`${u.origin}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-advlab-token': u.searchParams.get('token')! }, body: JSON.stringify(params) });
        const body = (await res.json()) as { ok: boolean; result: T; error?: { message: string } };
        if (!body.ok) throw new Error(`${method}: ${body.error?.message}`);
        return body.result;
      };
      const { jobId } = await call<{ jobId: string }>('jobs.start', { kind: 'train', params: { dataset: 'mnist', arch: 'mlp', epochs: 200, limit: 2000, testLimit: 100, validationSplit: 0 } });
      // Wait until it has trained at least one epoch (its session has an epochs row).
      let job: { state: string; session?: string; last?: { metrics?: Record<string, number>; step: number } } | undefined;
      const t0 = Date.now();
      for (;;) {
        job = (await call<{ jobId: string; state: string; session?: string; last?: { step: number } }[]>('jobs.list', {})).find((j) => j.jobId === jobId);
        if (job?.session && existsSync(join(sessions, job.session, 'metrics', 'epochs.jsonl'))) break;
        expect(job?.state, stderr).toBe('running');
        expect(Date.now() - t0, 'no progress within 60 s').toBeLessThan(60_000);
        await new Promise((ok) => setTimeout(ok, 100));
      }
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/SIGTERM: cancelling 1 job\(s\); each keeps what it has/);
      const dir = join(sessions, job.session!);
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { status: string; summary: Record<string, unknown>; artifacts: { path: string }[] };
      expect(manifest.status).toBe('cancelled');
      expect(manifest.summary.epochsRun).toBeGreaterThanOrEqual(1);
      expect(manifest.summary.epochsRun).toBeLessThan(200);
      expect(manifest.artifacts.map((a) => a.path)).toContain('model/model.json');
      expect(existsSync(join(dir, 'artifacts', 'model', 'model.json'))).toBe(true);
      expect(readFileSync(join(dir, 'metrics', 'train.jsonl'), 'utf8').trim().split('\n').length).toBeGreaterThan(0);
    } finally {
      proc.kill('SIGKILL');
    }
  }, 120_000);
});
