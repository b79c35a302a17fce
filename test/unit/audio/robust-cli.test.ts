/** `advlab audio robust | universal` and the survival fields of `advlab audio attack`, as a user runs them (the built CLI). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { write16 } from '../../../src-main/engine/audio';
import { advlab } from '../helpers';
import { tinySpeechModel } from './tiny-speech';

let dir: string;
let modelDir: string;
let wav: string;


beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-robust-cli-'));
  const { model, clips } = await tinySpeechModel();
  modelDir = join(dir, 'model');
  await model.save(modelDir);
  model.dispose();
  wav = join(dir, 'one.wav');
  writeFileSync(wav, write16(clips[0], 8000));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('advlab audio robust / universal', () => {
  it('refuses bad requests clearly', () => {
    const both = advlab(['audio', 'robust', '--model', 'm', '--wav', 'x.wav', '--target', 'one', '--snr', '10', '--no-noise', '--json'], { timeoutMs: 180_000 });
    expect(both.status).toBe(2);
    expect(both.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/either --snr or --no-noise/) } });
    const eps = advlab(['audio', 'universal', '--model', 'm', '--target', 'one', '--eps', '0.1,x', '--json'], { timeoutMs: 180_000 });
    expect(eps.json).toMatchObject({ error: { message: expect.stringMatching(/--eps \(item 2\) must be a number/) } });
    const noTarget = advlab(['audio', 'universal', '--model', 'm', '--json'], { timeoutMs: 180_000 });
    expect(noTarget.json).toMatchObject({ error: { message: expect.stringMatching(/--target "TEXT" is required/) } });
  });

  it('attack, robust and universal print their JSON with the survival re-check', () => {
    const sessions = join(dir, 'sessions');
    const a = advlab(['audio', 'attack', '--model', modelDir, '--wav', wav, '--target', 'three', '--iterations', '40', '--sessions', sessions, '--json'], { timeoutMs: 180_000 });
    expect(a.status).toBe(0);
    expect(a.json).toMatchObject({ success: true, transcriptAfter: 'three', survived: true, secondCopyTranscript: 'three' });

    const r = advlab(['audio', 'robust', '--model', modelDir, '--wav', wav, '--target', 'three', '--iterations', '20', '--samples', '2', '--rooms', '3', '--held-out', '5', '--check', '2', '--no-noise', '--sessions', sessions, '--json'], { timeoutMs: 180_000 });
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({ heldOutTrials: 5, target: 'three' });
    for (const k of ['heldOutSuccess', 'plainHeldOutSuccess', 'dbx', 'plainDbx', 'survived', 'secondCopyTranscript']) expect(r.json).toHaveProperty(k);
    expect(typeof r.json!.heldOutSuccess).toBe('number');

    const u = advlab(['audio', 'universal', '--model', modelDir, '--target', 'three', '--eps', '0.05,0.2', '--train-clips', '4', '--test-clips', '3', '--iterations', '3', '--seconds', '0.6', '--sessions', sessions, '--json'], { timeoutMs: 180_000 });
    expect(u.status).toBe(0);
    expect(u.json).toMatchObject({ target: 'three', trainClips: 4, testClips: 3 });
    expect((u.json!.curve as { eps: number }[]).map((p) => p.eps)).toEqual([0.05, 0.2]);
    expect(typeof u.json!.survived).toBe('boolean');
  }, 300_000);
});
