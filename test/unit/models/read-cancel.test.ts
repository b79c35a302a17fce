/**
 * Issue 14: a model's files are read in chunks (MODEL_READ_CHUNK_BYTES) with a cancellation check
 * before each, so a Cancel during the read of a large weights file (up to MAX_MODEL_WEIGHT_BYTES)
 * ends it within one chunk instead of after the whole file. The weights here are sparse files (no
 * real gigabyte is written); the model.json's topology is never reached when the read is cancelled.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../../src-main/engine/errors';
import { LocalContext } from '../../../src-main/engine/context';
import { loadModel, MAX_MODEL_WEIGHT_BYTES } from '../../../src-main/engine/models/io';
import { MODEL_READ_CHUNK_BYTES } from '../../../src-main/engine/models/io';
import { JobRunner } from '../../../src-main/jobs/runner';
import { DATA, WORKER } from '../helpers';

let tmp: string;

/** A model folder whose one weight is a sparse file of `bytes` (float32 values, all zero). */
function sparseModel(name: string, bytes: number): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const json = {
    format: 'layers-model',
    modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [] } },
    weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'w', shape: [bytes / 4], dtype: 'float32' }] }],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'weights.bin'), '');
  truncateSync(join(dir, 'weights.bin'), bytes);
  return dir;
}

beforeAll(() => {
  tmp = mkdtempSync(join(os.tmpdir(), 'advlab-read-cancel-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A context that cancels itself at its n-th checkpoint, counting them. */
class CancelAt extends LocalContext {
  checks = 0;
  constructor(private readonly n: number) {
    super();
  }
  override checkpoint(): void {
    if (++this.checks >= this.n) this.cancel();
    super.checkpoint();
  }
}

describe('model reads are cancellable between chunks', () => {
  it('checks for a cancel before every chunk: cancelled at the 3rd check, it stops there', async () => {
    const bytes = 32 * MODEL_READ_CHUNK_BYTES; // 512 MiB, sparse
    const dir = sparseModel('chunks', bytes);
    const ctx = new CancelAt(3);
    await expect(loadModel(dir, { ctx })).rejects.toBeInstanceOf(CancelledError);
    // model.json is one check (one chunk), then the weights: cancelled at their 2nd chunk, of 32.
    expect(ctx.checks).toBe(3);
  });

  it('a Cancel during the read of a 1 GiB weights file ends it within a bounded time', async () => {
    const dir = sparseModel('gib', MAX_MODEL_WEIGHT_BYTES);
    const ctx = new LocalContext();
    const t0 = performance.now();
    const load = loadModel(dir, { ctx }).then(
      () => 'loaded',
      (e: unknown) => e,
    );
    // Cancel as soon as the read has begun (the first chunks are in flight).
    await new Promise((ok) => setTimeout(ok, 5));
    const cancelledAt = performance.now();
    ctx.cancel();
    const outcome = await load;
    const stoppedAfter = performance.now() - cancelledAt;
    expect(outcome).toBeInstanceOf(CancelledError);
    // One chunk (16 MiB) from the page cache takes a few ms; the whole GiB would be hundreds.
    expect(stoppedAfter).toBeLessThan(1000);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('without a cancel the same sparse file reads to the end (the check costs nothing)', async () => {
    const dir = sparseModel('whole', 4 * MODEL_READ_CHUNK_BYTES);
    const ctx = new CancelAt(Infinity);
    // It reads every chunk, then tfjs refuses the (empty) topology for the weight it was given.
    await expect(loadModel(dir, { ctx })).rejects.toMatchObject({ code: 'BAD_FILE' });
    expect(ctx.checks).toBe(1 + 4);
  });

  it('an import-model job cancelled during its read ends cancelled (not failed), well within the grace period', async () => {
    if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: build first`);
    const dir = sparseModel('job', MAX_MODEL_WEIGHT_BYTES);
    const runner = new JobRunner({ workerPath: WORKER, env: { dataDirs: [DATA], sessionsRoot: join(tmp, 'sessions') }, cancelGraceMs: 60_000 });
    try {
      const started = new Promise<string>((ok) => runner.on('event', (e) => { if (e.type === 'job.started') ok(e.jobId); }));
      const { jobId, done } = runner.start('import-model', { path: dir });
      expect(await started).toBe(jobId);
      const t0 = performance.now();
      expect(runner.cancel(jobId)).toBe(true);
      const info = await done;
      expect(info.state, JSON.stringify(info.error)).toBe('cancelled');
      // Stopped by its own check, not by the runner terminating the worker after cancelGraceMs.
      expect(performance.now() - t0).toBeLessThan(10_000);
    } finally {
      await runner.shutdown(1000);
    }
  }, 60_000);
});
