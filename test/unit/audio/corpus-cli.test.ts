/** `advlab audio corpus` and `advlab doctor`'s synthesizer line, as a user runs them (the built CLI). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { advlab as runAdvlab } from '../helpers';

const dir = mkdtempSync(join(tmpdir(), 'advlab-corpus-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The built CLI with its app folder in `dir` (ADVLAB_HOME) and `env` added; a corpus takes up to 4 minutes. */
const advlab = (args: string[], env: Record<string, string> = {}) => runAdvlab(args, { env: { ADVLAB_HOME: join(dir, 'home'), ...env }, timeoutMs: 240_000 });

describe('advlab audio corpus', () => {
  it('writes a seeded corpus with its manifest and lists FSDD', () => {
    const out = join(dir, 'c1');
    const r = advlab(['audio', 'corpus', '--out', out, '--hours', '0.004', '--seed', '3', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'corpus.json'), 'utf8'));
    expect(r.json).toMatchObject({ clips: m.clips.length, manifest: join(out, 'corpus.json'), fsddClips: 3000 });
    expect(m.seed).toBe(3);
    expect(m.clips.length).toBeGreaterThan(2);
    expect(m.synthesizers.map((s: { name: string }) => s.name).sort()).toEqual(['espeak-ng', 'festival', 'flite']);
  }, 240_000);

  it('fails clearly when no synthesizer is installed, and doctor says which are', () => {
    const r = advlab(['audio', 'corpus', '--out', join(dir, 'c2'), '--hours', '0.001', '--json'], { PATH: join(dir, 'empty-path') });
    expect(r.status).not.toBe(0);
    expect(r.json).toMatchObject({ error: { code: 'NOT_FOUND', message: expect.stringMatching(/No speech synthesizer found: install at least one of espeak-ng, flite or festival/) } });
    const d = advlab(['doctor', '--json']);
    const synths = (d.json as { synthesizers: { name: string; voices: number }[] }).synthesizers;
    expect(synths.map((s) => s.name).sort()).toEqual(['espeak-ng', 'festival', 'flite']);
    expect(synths.every((s) => s.voices > 0)).toBe(true);
    const none = advlab(['doctor'], { PATH: join(dir, 'empty-path') });
    expect(none.stdout).toMatch(/speech synthesizers: none installed/);
  }, 240_000);
});
