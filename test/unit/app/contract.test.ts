import { describe, expect, it } from 'vitest';
import { parseParams } from '../../../src-main/api/contract';

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
