/** `advlab audio ...` as a user runs it (the built CLI; `npm test` builds first). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { advlab } from '../helpers';



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

    const badEngine = advlab(['audio', 'train', '--quick', '--engine', 'gpu', '--sessions', join(dir, 'sessions'), '--json']);
    expect(badEngine.status).toBe(2);
    expect(badEngine.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/engine.*auto.*onnx.*tfjs/s) } });

    // --augment: the job's schema parses it (bad syntax), the engine bounds it by the model's 40 mel bands (so the job passed it on).
    const badAugment = advlab(['audio', 'train', '--quick', '--augment', 'default,warp', '--sessions', join(dir, 'sessions'), '--json']);
    expect(badAugment.status).toBe(2);
    expect(badAugment.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/unknown item "warp"/) } });
    const badSpeed = advlab(['audio', 'train', '--quick', '--augment', 'speed=1.1-0.9', '--sessions', join(dir, 'sessions'), '--json']);
    expect(badSpeed.status).toBe(2);
    expect(badSpeed.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/augment "speed=1.1-0.9": speed needs LO-HI with LO <= HI/) } });
    const allBands = advlab(['audio', 'train', '--quick', '--augment', 'freq=4x10', '--sessions', join(dir, 'sessions'), '--json']);
    expect(allBands.status).not.toBe(0);
    expect(allBands.json).toMatchObject({ error: { message: expect.stringMatching(/4 frequency masks of up to 10 bands could cover all 40/) } });
  });

  it('audio train --engine onnx trains on ONNX Runtime and says so', () => {
    const dir = mkdtempSync(join(tmpdir(), 'advlab-audio-cli-'));
    const r = advlab(['audio', 'train', '--quick', '--epochs', '1', '--utterances', '16', '--batch-size', '8', '--engine', 'onnx', '--sessions', join(dir, 'sessions'), '--json'], { env: { ADVLAB_ORT_THREADS: '1' }, timeoutMs: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ arch: 'speech-small', engine: 'onnx', engineReason: 'onnx (1 threads): requested (engine onnx)' });
    expect(typeof r.json!.utterancesPerSecond).toBe('number');
  }, 300_000);
});
