/**
 * The training row of `advlab bench --suite parallel` (issue 17): one epoch of cw-mnist on
 * Fashion-MNIST on wasm, trained by a job with a pool of 1 thread (the job trains in its own thread)
 * and with the pool (data-parallel: each step's gradient on one shard per pool thread, averaged; the
 * optimizer in the job's thread), in this run. The speedup is the training's own time (the train
 * job's `seconds`); the CPU time of both runs (all threads) says what the pool costs in work, so
 * a speedup held down by other load on the cores can be told from overhead. The two loss curves agree
 * at the first step within float noise; training amplifies that rounding difference from step to step
 * (measured: about x5 per step with adam on cw-mnist early on), so the whole epoch's largest
 * difference and the first 10 steps' are reported, with both test accuracies.
 */
import type { BenchRow } from './bench-row';
import type { CliContext } from './context';
import type { JobInfo } from '../api/contract';

/** A parallel-suite row. */
export type ParallelTrainingRow = BenchRow & { suite: 'parallel' };

interface Run {
  workers: number;
  seconds: number;
  /** CPU seconds of this process (every thread: runner, job, pool) during the job. */
  cpu: number;
  imagesPerSecond: number;
  testAccuracy: number;
  losses: number[];
  backend: string;
}

/** `pool`: the pool's size for the second run; `load`: the machine's load averages, as text. */
export async function parallelTrainingRow(c: CliContext, quick: boolean, pool: number, load: () => string): Promise<{ row: ParallelTrainingRow; backend: string }> {
  const { createApp, resolveAppOptions } = await import('../host/app');
  const images = quick ? 2000 : 60000;
  const params = {
    dataset: 'fashion-mnist', arch: 'cw-mnist', epochs: 1, batchSize: 100, validationSplit: 0, seed: 0, testLimit: 1000, engine: 'tfjs' as const,
    ...(quick ? { limit: images } : {}), tags: ['bench'],
  };
  const runs: Run[] = [];
  for (const workers of [1, pool]) {
    const app = createApp({ ...resolveAppOptions(c.argv), workers, transport: 'http' });
    try {
      const cpu0 = process.cpuUsage();
      const info: JobInfo = await app.runner.start('train', { ...params, name: `bench parallel: cw-mnist 1 epoch, ${workers} worker(s)` }).done;
      const cpu = process.cpuUsage(cpu0);
      if (info.state !== 'finished') throw new Error(`train job ${info.state}: ${info.error?.message ?? ''}`);
      const r = info.result as Record<string, unknown>;
      const series = await app.store.readMetrics(String(r.session), 'train');
      runs.push({
        workers, seconds: Number(r.seconds), cpu: (cpu.user + cpu.system) / 1e6, imagesPerSecond: Number(r.imagesPerSecond), testAccuracy: Number(r.testAccuracy),
        losses: series.rows.map((row) => Number(row.loss)), backend: String(r.backend),
      });
    } finally {
      await app.runner.shutdown();
    }
    const last = runs.at(-1)!;
    c.out.info(`  cw-mnist 1 epoch: ${workers} worker(s): ${last.seconds.toFixed(1)} s, ${last.imagesPerSecond.toFixed(0)} images/s, ${last.cpu.toFixed(1)} CPU s, test accuracy ${(100 * last.testAccuracy).toFixed(1)}%`);
  }
  const [one, many] = runs;
  if (one.losses.length !== many.losses.length) throw new Error(`the loss curves have ${one.losses.length} and ${many.losses.length} steps`);
  const diff = (upTo: number) => Math.max(0, ...one.losses.slice(0, upTo).map((l, i) => Math.abs(l - many.losses[i])));
  const speedup = one.seconds / many.seconds;
  c.out.info(`  cw-mnist 1 epoch: speedup ${speedup.toFixed(2)}x on ${pool} workers; max |loss difference| ${diff(Infinity).toExponential(1)} (first 10 steps ${diff(10).toExponential(1)})`);
  return {
    backend: one.backend,
    row: {
      suite: 'parallel',
      benchmark: `cw-mnist training, 1 epoch of ${images.toLocaleString('en-US')} Fashion-MNIST images (batch 100, adam, dropout 0.5), data-parallel; 1 worker vs pool of ${pool} (${load()})`,
      metric: 'training seconds 1 / pool, speedup; CPU seconds of the job 1 / pool; loss curves: max |difference| (first 10 steps); test accuracy 1 / pool',
      value: `${one.seconds.toFixed(1)} / ${many.seconds.toFixed(1)} s, ${speedup.toFixed(2)}x; CPU ${one.cpu.toFixed(0)} / ${many.cpu.toFixed(0)} s; ${diff(Infinity).toExponential(1)} (${diff(10).toExponential(1)}); ${(100 * one.testAccuracy).toFixed(1)}% / ${(100 * many.testAccuracy).toFixed(1)}%`,
      ...(pool >= 2 ? { target: '>= 1.5x on 2 cores', met: speedup >= 1.5 } : {}),
    },
  };
}
