/**
 * The training rows of `advlab bench --suite engine` (issue 13): one epoch of cw-mnist on MNIST's training
 * file (its 10,000 images; quick: 1,000) with the paper's optimizer (SGD, Nesterov momentum 0.9, lr 0.01,
 * decay 1e-6, batch 128, dropout 0.5), trained by a train job on tfjs (the jobs' backend, wasm) and on ONNX
 * Runtime in this run (each as the CLI runs it by default: tfjs data-parallel on the worker pool when it has
 * several workers, ONNX Runtime on ADVLAB_ORT_THREADS or every core). The time is the training's own (the job's `seconds`: steps, no test evaluation);
 * target: ONNX Runtime >= 3x faster. Both test accuracies (on 1,000 test images) say the runs trained alike.
 *
 * Before the jobs, `onnxStepProfile` times the parts of one ONNX Runtime step in this process (on 1 thread and
 * on the default threads): the batch gathered from the images, the dropout masks, the graph run (wall and CPU
 * time of the process, ONNX Runtime's threads included) and the optimizer's update in JS; with the epoch that
 * many steps make (the job adds its progress and event-loop turns, which the job row shows).
 */
import type { CliContext } from './context';
import type { JobInfo } from '../api/contract';
import { buildModel } from '../engine/models/architectures';
import { mulberry32 } from '../engine/core/random';
import { OrtTrainer } from '../engine/onnx/trainer';
import { defaultSpinning, defaultThreads } from '../engine/onnx/runtime';

/** In bench.ts's Row shape. */
export interface EngineTrainingRow {
  suite: 'engine';
  benchmark: string;
  metric: string;
  value: string;
  target?: string;
  met?: boolean;
}

/** Median ms of each part of an ONNX Runtime training step (see the module comment). */
export interface StepProfile { threads: number; spinning: boolean; steps: number; batchMs: number; masksMs: number; graphMs: number; graphCpuMs: number; optimizerMs: number; stepMs: number }

/**
 * One ONNX Runtime training step of cw-mnist (dropout 0.5, the paper's optimizer) at `batch`, its parts timed over
 * `steps` steps after 3 warm-up steps, on random images in [0, 1] gathered from a pool of 10,000 as the training
 * loop gathers its batches.
 */
export async function onnxStepProfile(threads: number, batch = 128, steps = 20): Promise<StepProfile> {
  const model = buildModel('cw-mnist', { seed: 0 });
  const trainer = await OrtTrainer.create(model, { optimizer: 'momentum', learningRate: 0.01, momentum: 0.9, nesterov: true, decay: 1e-6 }, { threads, reason: 'bench' });
  const rng = mulberry32(1);
  const d = 28 * 28, k = 10, pool = 10_000;
  const images = Float32Array.from({ length: pool * d }, () => rng());
  const parts: Record<'batchMs' | 'masksMs' | 'graphMs' | 'graphCpuMs' | 'optimizerMs' | 'stepMs', number[]> = { batchMs: [], masksMs: [], graphMs: [], graphCpuMs: [], optimizerMs: [], stepMs: [] };
  try {
    for (let s = 0; s < steps + 3; s++) {
      const t0 = performance.now();
      const x = new Float32Array(batch * d), y = new Float32Array(batch * k);
      for (let i = 0; i < batch; i++) {
        const j = Math.floor(rng() * pool);
        x.set(images.subarray(j * d, (j + 1) * d), i * d);
        y[i * k + (j % k)] = 1;
      }
      const t1 = performance.now();
      const masks = trainer.masks(batch, rng);
      const t2 = performance.now(), cpu = process.cpuUsage();
      const r = trainer.gradients(x, y, batch, masks);
      const used = process.cpuUsage(cpu), t3 = performance.now();
      trainer.applyGradients(r.grads);
      const t4 = performance.now();
      if (s < 3) continue;
      parts.batchMs.push(t1 - t0); parts.masksMs.push(t2 - t1); parts.graphMs.push(t3 - t2);
      parts.graphCpuMs.push((used.user + used.system) / 1000); parts.optimizerMs.push(t4 - t3); parts.stepMs.push(t4 - t0);
    }
  } finally {
    trainer.dispose();
    model.dispose();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    threads, spinning: defaultSpinning(), steps, batchMs: median(parts.batchMs), masksMs: median(parts.masksMs), graphMs: median(parts.graphMs),
    graphCpuMs: median(parts.graphCpuMs), optimizerMs: median(parts.optimizerMs), stepMs: median(parts.stepMs),
  };
}

function profileRows(profiles: StepProfile[], batch: number, images: number): EngineTrainingRow[] {
  const steps = Math.ceil(images / batch);
  return profiles.flatMap((p) => [{
    suite: 'engine' as const,
    benchmark: `ONNX Runtime training step, cw-mnist at batch ${batch}, ${p.threads} thread${p.threads > 1 ? 's' : ''} (spinning ${p.spinning ? 'on' : 'off'}), in the CLI's process, median of ${p.steps} steps`,
    metric: 'ms: batch / masks / graph run (CPU) / optimizer / step', value: [p.batchMs, p.masksMs].map((v) => v.toFixed(1)).join(' / ') + ` / ${p.graphMs.toFixed(1)} (${p.graphCpuMs.toFixed(0)}) / ${p.optimizerMs.toFixed(1)} / ${p.stepMs.toFixed(1)}`,
  }, {
    suite: 'engine' as const,
    benchmark: `one epoch of ${images.toLocaleString('en-US')} images from that step, ${p.threads} thread${p.threads > 1 ? 's' : ''} (${steps} steps; the job's time adds the session's creation, progress and the loop's event-loop turns)`,
    metric: 'seconds (estimate)', value: (steps * p.stepMs / 1000).toFixed(1),
  }]);
}

export async function engineTrainingRows(c: CliContext, quick: boolean): Promise<EngineTrainingRow[]> {
  const images = quick ? '1,000 of MNIST\'s training images' : "MNIST's 10,000 training images (its training file)";
  const params = {
    dataset: 'mnist', arch: 'cw-mnist', epochs: 1, batchSize: 128, learningRate: 0.01, optimizer: 'momentum', momentum: 0.9, nesterov: true, decay: 1e-6,
    dropout: 0.5, validationSplit: 0, seed: 0, testLimit: 1000, ...(quick ? { limit: 1000 } : {}),
  } as const;
  const runs: Record<string, Record<string, unknown>> = {};
  const threads = [...new Set([1, defaultThreads()])];
  const profiles: StepProfile[] = [];
  for (const t of threads) profiles.push(await onnxStepProfile(t, params.batchSize, quick ? 5 : 20));
  const rows: EngineTrainingRow[] = profileRows(profiles, params.batchSize, quick ? 1000 : 10_000);
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
