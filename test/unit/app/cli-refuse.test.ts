/**
 * Invalid job parameters are refused before a session exists (issue 14, Jobs): the built CLI, as a
 * user runs it, exits 2 with the reason and leaves the sessions folder as it was (no 'failed' session
 * per typo). The CLI starts its jobs through the API's jobs.start door, as the GUI does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { advlab } from '../helpers';

/** The built CLI with --json. */
const advlabJson = (args: string[]) => advlab([...args, '--json']);

const sessionsIn = (root: string) => readdirSync(root).filter((f) => !f.startsWith('.')).sort();

let sessions: string;
let model: string;

beforeAll(() => {
  sessions = mkdtempSync(join(tmpdir(), 'advlab-refuse-'));
  const trained = advlabJson(['train', '--dataset', 'mnist', '--arch', 'mlp', '--epochs', '1', '--limit', '200', '--test-limit', '20', '--validation-split', '0', '--sessions', sessions]);
  expect(trained.status, trained.stderr).toBe(0);
  model = trained.json?.session as string;
}, 120_000);

describe('advlab refuses invalid job parameters before a session exists', () => {
  const cases: { name: string; args: () => string[]; message: RegExp }[] = [
    { name: 'attack --eps=-1', args: () => ['attack', '--model', model, '--dataset', 'mnist', '--attack', 'pgd', '--eps=-1', '--n', '5'], message: /PGD.*"eps": Too small/ },
    { name: 'attack --c=-5 (cw-l2)', args: () => ['attack', '--model', model, '--dataset', 'mnist', '--attack', 'cw-l2', '--c=-5', '--n', '5'], message: /Carlini & Wagner L2.*"initialConst"/ },
    { name: 'attack --param bogus=1', args: () => ['attack', '--model', model, '--dataset', 'mnist', '--attack', 'fgsm', '--param', 'bogus=1', '--n', '5'], message: /unknown parameter "bogus" \(accepted: / },
    { name: 'sweep --param steps=0', args: () => ['sweep', '--model', model, '--dataset', 'mnist', '--epsilons', '0,0.1', '--param', 'steps=0', '--n', '5'], message: /"steps": Too small/ },
    { name: 'attack --targeted bogus', args: () => ['attack', '--model', model, '--dataset', 'mnist', '--attack', 'fgsm', '--targeted', 'bogus', '--n', '5'], message: /params\.goal\.target/ },
    { name: 'train --optimizer foo', args: () => ['train', '--dataset', 'mnist', '--arch', 'mlp', '--optimizer', 'foo', '--limit', '200'], message: /params\.optimizer: .*"adam"\|"sgd"\|"momentum"/ },
    { name: 'recipe distillation --set bogus=1', args: () => ['recipe', 'distillation', '--quick', '--set', 'bogus=1'], message: /Invalid parameters for the distillation case study: unknown parameter\(s\) "bogus"/ },
    { name: 'recipe adversarial-training --set epochs=-1', args: () => ['recipe', 'adversarial-training', '--quick', '--set', 'epochs=-1'], message: /adversarial-training/ },
    { name: 'train --arch resnet-9000', args: () => ['train', '--dataset', 'mnist', '--arch', 'resnet-9000', '--limit', '200'], message: /Unknown architecture "resnet-9000": choose one of/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const before = sessionsIn(sessions);
      const r = advlabJson([...c.args(), '--sessions', sessions]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.json?.error?.code).toBe('BAD_INPUT');
      expect(r.json?.error?.message).toMatch(c.message);
      expect(r.stderr).toMatch(c.message);
      expect(sessionsIn(sessions)).toEqual(before);
    }, 60_000);
  }

  it('a bad --max-jobs or ADVLAB_MAX_JOBS is refused with its bounds', () => {
    const r = advlabJson(['doctor', '--max-jobs', '0', '--sessions', sessions]);
    expect(r.status).toBe(2);
    expect(r.json?.error?.message).toMatch(/--max-jobs must be an integer from 1 to 64 \(MAX_JOBS_LIMIT\), got "0"/);
  });
});
