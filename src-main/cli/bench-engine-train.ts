/**
 * The training rows of `advlab bench --suite engine` (issue 13): one epoch of cw-mnist on MNIST's training
 * file (its 10,000 images; quick: 1,000) with the paper's optimizer (SGD, Nesterov momentum 0.9, lr 0.01,
 * decay 1e-6, batch 128, dropout 0.5), trained by a train job on tfjs (the jobs' backend, wasm) and on ONNX
 * Runtime in this run (each as the CLI runs it by default: tfjs data-parallel on the worker pool when it has
 * several workers, ONNX Runtime on ADVLAB_ORT_THREADS or every core). The time is the training's own (the job's `seconds`: steps, no test evaluation);
 * target: ONNX Runtime >= 3x faster. Both test accuracies (on 1,000 test images) say the runs trained alike.
 */
import type { CliContext } from './context';
import type { JobInfo } from '../api/contract';

/** In bench.ts's Row shape. */
export interface EngineTrainingRow {
  suite: 'engine';
  benchmark: string;
  metric: string;
  value: string;
  target?: string;
  met?: boolean;
}

export async function engineTrainingRows(c: CliContext, quick: boolean): Promise<EngineTrainingRow[]> {
  const images = quick ? '1,000 of MNIST\'s training images' : "MNIST's 10,000 training images (its training file)";
  const params = {
    dataset: 'mnist', arch: 'cw-mnist', epochs: 1, batchSize: 128, learningRate: 0.01, optimizer: 'momentum', momentum: 0.9, nesterov: true, decay: 1e-6,
    dropout: 0.5, validationSplit: 0, seed: 0, testLimit: 1000, ...(quick ? { limit: 1000 } : {}),
  } as const;
  const runs: Record<string, Record<string, unknown>> = {};
  const rows: EngineTrainingRow[] = [];
  for (const engine of ['tfjs', 'onnx'] as const) {
    const info: JobInfo = await c.runJob('train', { ...params, engine, name: `bench: cw-mnist 1 epoch on ${engine}`, tags: ['bench', 'bench-engine'] });
    if (info.state !== 'finished') throw new Error(`train job on ${engine} ${info.state}: ${info.error?.message ?? ''}`);
    const r = info.result as Record<string, unknown>;
    runs[engine] = r;
    rows.push({
      suite: 'engine', benchmark: `cw-mnist, 1 epoch on ${images}, the paper's optimizer, engine ${engine === 'tfjs' ? `tfjs-${String(r.backend)} (${info.shards ? `data-parallel on the pool: ${info.shards.total} shards` : "in the job's thread"})` : String(r.engineReason)}`,
      metric: 'seconds / images per s / test accuracy (1,000 images)', value: `${Number(r.seconds).toFixed(1)} / ${Number(r.imagesPerSecond).toFixed(0)} / ${(100 * Number(r.testAccuracy)).toFixed(1)}%`,
    });
  }
  const speedup = Number(runs.tfjs.seconds) / Number(runs.onnx.seconds);
  rows.push({ suite: 'engine', benchmark: `cw-mnist, 1 epoch of training: onnx vs tfjs-${String(runs.tfjs.backend)}`, metric: 'speed-up', value: `${speedup.toFixed(1)}x`, target: '>= 3x', met: speedup >= 3 });
  return rows;
}
