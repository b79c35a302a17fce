/** `advlab audio ...` as a user runs it (the built CLI; `npm test` builds first). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATA } from '../helpers';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/advlab.mjs');

function advlab(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ADVLAB_DATA: DATA } });
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    json = null;
  }
  return { status: r.status, stderr: r.stderr, json };
}

describe('advlab audio', () => {
  it('explains its subcommands and refuses incomplete or bad requests clearly', () => {
    const none = advlab(['audio', '--json']);
    expect(none.status).toBe(2);
    expect(none.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/train, attack or transcribe/) } });

    const noTarget = advlab(['audio', 'attack', '--model', 'm', '--wav', 'x.wav', '--json']);
    expect(noTarget.status).toBe(2);
    expect(noTarget.json).toMatchObject({ error: { message: expect.stringMatching(/--target "TEXT" is required \(or --untargeted\)/) } });

    const badIterations = advlab(['audio', 'attack', '--model', 'm', '--wav', 'x.wav', '--target', 'one', '--iterations', 'many', '--json']);
    expect(badIterations.json).toMatchObject({ error: { message: expect.stringMatching(/--iterations must be an integer/) } });

    const dir = mkdtempSync(join(tmpdir(), 'advlab-audio-cli-'));
    const notWav = join(dir, 'speech.wav');
    writeFileSync(notWav, 'ID3 not really audio');
    const bad = advlab(['audio', 'attack', '--model', 'm', '--wav', notWav, '--target', 'one', '--sessions', join(dir, 'sessions'), '--json']);
    expect(bad.status).not.toBe(0);
    expect(bad.json).toMatchObject({ error: { code: 'BAD_FILE', message: expect.stringContaining(`${notWav}: not a WAV file`) } });
  });
});
