import { describe, expect, it } from 'vitest';
import { parseParams } from '../../../src-main/api/contract';
import { progressText } from '../../../src-shared/progress-label';

describe('API payload validation', () => {
  it('accepts a valid job start and fills defaults', () => {
    const p = parseParams('jobs.start', { kind: 'diagnostics' });
    expect(p).toEqual({ kind: 'diagnostics', params: { batch: 16, repeats: 3 } });
  });

  it('refuses malformed payloads with a message naming the field', () => {
    expect(() => parseParams('jobs.start', { kind: 'rm -rf' })).toThrow(/Invalid parameters for jobs.start/);
    expect(() => parseParams('jobs.start', { kind: 'train', params: { dataset: 'mnist', arch: 'small-cnn', epochs: -1 } })).toThrow(/params.epochs/);
    expect(() => parseParams('sessions.show', { id: '../../etc/passwd' })).toThrow(/id/);
    expect(() => parseParams('jobs.cancel', { jobId: 'job-1', extra: true })).toThrow(/Unrecognized key/i);
  });
});

describe('progress text (CLI and status bar)', () => {
  it('shows step/total, unless the phase label carries its own count', () => {
    expect(progressText({ phase: 'epoch 1/3', step: 40, total: 120 })).toBe('epoch 1/3 40/120');
    expect(progressText({ step: 5, total: 9 })).toBe('5/9');
    // A recipe's step/total are weighted units; its label's "(120/938)" is what was done of what.
    expect(progressText({ phase: 'adversarial training: epoch 1/10 (120/9380)', step: 5584, total: 60000 })).toBe('adversarial training: epoch 1/10 (120/9380)');
  });

  it('prints a job\'s message, or rounded numbers, when its step/total are not counts', () => {
    expect(progressText({ phase: 'synthesizing', step: 3629.883875, total: 5400, message: '812 clips, 60.5 of 90.0 min' })).toBe('synthesizing 812 clips, 60.5 of 90.0 min');
    expect(progressText({ phase: 'synthesizing', step: 3629.883875, total: 5400 })).toBe('synthesizing 3630/5400');
    expect(progressText({ phase: 'epoch 1/3', step: 40, total: 120, message: 'ignored for counts' })).toBe('epoch 1/3 40/120');
  });
});
