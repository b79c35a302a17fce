/**
 * `advlab evaluate` as a user runs it, killed without warning (SIGKILL) in the middle of the ensemble and
 * finished with `advlab evaluate --resume SESSION`: the same final robust accuracy, and the same attack
 * breaking each input, as an uninterrupted run with the same seed.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlab, BIN, DATA, ROOT } from '../helpers';



const evaluation = (sessions: string, id: string) => JSON.parse(readFileSync(join(sessions, id, 'artifacts', 'evaluate.json'), 'utf8'));

describe('advlab evaluate --resume', () => {
  it('finishes an evaluation killed with SIGKILL, with the result of an uninterrupted run', async () => {
    const sessions = mkdtempSync(join(tmpdir(), 'advlab-eval-'));
    const trained = advlab(['train', '--dataset', 'mnist', '--arch', 'mlp', '--epochs', '2', '--limit', '3000', '--test-limit', '100', '--sessions', sessions, '--json'], { timeoutMs: 300_000 });
    expect(trained.status).toBe(0);
    const model = trained.json!.session as string;
    const args = ['evaluate', '--model', model, '--dataset', 'mnist', '--eps', '0.1', '--n', '60', '--version', 'quick', '--chunk-size', '6', '--checkpoint-seconds', '0', '--attack-seed', '5', '--sessions', sessions];

    const whole = advlab([...args, '--json'], { timeoutMs: 300_000 });
    expect(whole.status).toBe(0);
    const wholeId = whole.json!.session as string;

    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ADVLAB_DATA: DATA }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.resume(); child.stdout!.resume();
    // Kill it once its saved state shows APGD-CE done and APGD-T part way (never before a save, never after the end).
    const killedId = await new Promise<string>((ok, fail) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        if (Date.now() - t0 > 120_000) { clearInterval(poll); fail(new Error('no saved state within 120 s')); }
        const id = readdirSync(sessions).find((d) => d.includes('-evaluate-') && d !== wholeId);
        const file = id && join(sessions, id, 'artifacts', 'evaluate-state.json');
        if (!file || !existsSync(file)) return;
        try {
          const s = JSON.parse(readFileSync(file, 'utf8'));
          if (s.done.includes('apgd-ce') && s.current?.attack === 'apgd-t' && s.current.chunksDone >= 1) {
            clearInterval(poll);
            child.kill('SIGKILL');
            ok(id!);
          }
        } catch { /* being replaced: the rename is atomic, the read may race the listing */ }
      }, 20);
    });
    await new Promise((ok) => child.on('exit', ok));
    const killed = JSON.parse(readFileSync(join(sessions, killedId, 'manifest.json'), 'utf8'));
    expect(killed.status).toBe('running'); // as last written: the process died
    const state = JSON.parse(readFileSync(join(sessions, killedId, 'artifacts', 'evaluate-state.json'), 'utf8'));
    expect(state.done).not.toContain('square');

    const resumed = advlab(['evaluate', '--resume', killedId, '--sessions', sessions, '--json'], { timeoutMs: 300_000 });
    expect(resumed.status).toBe(0);
    expect(resumed.json!.robustAccuracy).toBe(whole.json!.robustAccuracy);
    expect(resumed.json!.resumedFrom).toBe(killedId);
    const a = evaluation(sessions, wholeId), b = evaluation(sessions, resumed.json!.session as string);
    expect(b.resumed).toBe(1);
    expect(b.waterfall.map((w: { robust: number }) => w.robust)).toEqual(a.waterfall.map((w: { robust: number }) => w.robust));
    expect(b.perExample.map((e: { brokenBy: string | null }) => e.brokenBy)).toEqual(a.perExample.map((e: { brokenBy: string | null }) => e.brokenBy));
    expect(b.perExample.map((e: { iterations: number | null }) => e.iterations)).toEqual(a.perExample.map((e: { iterations: number | null }) => e.iterations));

    // A finished session, and settings beside --resume, are refused.
    const again = advlab(['evaluate', '--resume', resumed.json!.session as string, '--sessions', sessions, '--json'], { timeoutMs: 300_000 });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/finished: there is nothing to resume/);
    const mixed = advlab(['evaluate', '--resume', killedId, '--eps', '0.2', '--sessions', sessions, '--json'], { timeoutMs: 300_000 });
    expect(mixed.status).not.toBe(0);
    expect(mixed.stderr).toMatch(/give only resume .*not --eps/);
  }, 600_000);
});
