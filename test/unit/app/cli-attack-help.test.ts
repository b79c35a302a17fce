/**
 * `advlab attack`'s help, the command list and the error for a missing --attack name every image
 * attack of the registry (the help once listed only fgsm through ddn, hand-written, while the
 * registry had grown to APGD, FAB, Square and FMN).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ATTACK_IDS } from '../../../src-main/engine/attacks/registry';
import { main } from '../../../src-main/cli/index';

/** Runs the CLI in-process; what it wrote to stdout and stderr, and its exit code. */
async function advlab(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const code = await main(args);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

/** The attack ids in a text's parenthesised list "(a, b, c)". */
const listed = (text: string) => new Set(/\(([a-z0-9-]+(?:, [a-z0-9-]+)+)\)/.exec(text)?.[1].split(', ') ?? []);

afterEach(() => vi.restoreAllMocks());

describe('advlab attack lists every attack of the registry', () => {
  it('in its --help and in the command list', async () => {
    expect(ATTACK_IDS.length).toBeGreaterThan(7);
    const help = await advlab(['attack', '--help']);
    expect(help.code).toBe(0);
    expect(listed(help.stdout.split('\n')[0])).toEqual(new Set(ATTACK_IDS));
    const all = await advlab(['--help']);
    const row = all.stdout.split('\n').find((l) => /^ {2}attack /.test(l));
    expect(row).toBeDefined();
    expect(listed(row!)).toEqual(new Set(ATTACK_IDS));
  });

  it('when --attack is missing', async () => {
    const r = await advlab(['attack', '--model', 'm', '--dataset', 'mnist']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--attack is required/);
    expect(listed(r.stderr)).toEqual(new Set(ATTACK_IDS));
  });
});
