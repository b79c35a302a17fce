/**
 * The speech-training rows of `advlab bench --suite engine --part speech-training` (issue 18: "a larger model, trained
 * fast"): one epoch of speech-large (1.03M parameters, 8 kHz) on the same FSDD connected-digit utterances (seed 1;
 * default 480, quick 64; batch 16, Adam lr 0.002 with the warm-up and cosine schedule, clipping at 50) on each engine:
 *  - tfjs-wasm as the CLI runs it by default for engine tfjs: an audio-train job, data-parallel on the worker pool
 *    when it has several workers (speech-grad shards);
 *  - ONNX Runtime on 2 threads and on 1 thread: the same training loop (engine/audio/train.ts) in this process, with
 *    the intra-op threads set per run (a job's ONNX Runtime takes ADVLAB_ORT_THREADS or every core).
 * The time is the training's own (steps only: no data preparation, validation or test), as utterances per second,
 * with the process's CPU time over the same steps (every thread; the pool's workers are threads of this process).
 * On a machine shared with other work, wall time favours the run with more threads (the pool's two workers and the
 * job's thread against ONNX Runtime's one): CPU time per utterance is the fairer comparison there. The machine's
 * load is recorded by the caller.
 */
import type { CliContext } from './context';
import type { JobInfo } from '../api/contract';
import { trainSpeechModel } from '../engine/audio/train';
import { fsddDir } from '../engine/audio/fsdd';
import { initBackend } from '../engine/backend';
import type { EngineTrainingRow } from './bench-engine-train';

/** The engine suite's row (bench-engine-train.ts declares it once). */
export type SpeechTrainingRow = EngineTrainingRow;

export async function speechTrainingRows(c: CliContext, quick: boolean): Promise<SpeechTrainingRow[]> {
  const common = { arch: 'speech-large', epochs: 1, utterances: quick ? 64 : 480, batchSize: 16, learningRate: 0.002, seed: 1 } as const;
  const what = `speech-large, 1 epoch of ${common.utterances} FSDD connected-digit utterances (seed ${common.seed}), batch ${common.batchSize}, Adam lr ${common.learningRate}`;
  const rows: SpeechTrainingRow[] = [];
  const info: JobInfo = await c.runJob('audio-train', { ...common, quick: true, engine: 'tfjs', name: 'bench: speech-large 1 epoch on tfjs', tags: ['bench', 'bench-engine'] });
  if (info.state !== 'finished') throw new Error(`audio-train job on tfjs ${info.state}: ${info.error?.message ?? ''}`);
  const t = info.result as Record<string, unknown>;
  const tfjsRate = Number(t.utterancesPerSecond);
  rows.push({
    suite: 'engine', benchmark: `${what}, engine tfjs-${String(t.backend)} (${info.shards ? `data-parallel on the pool: ${info.shards.total} shards` : "in the job's thread"}; an audio-train job)`,
    metric: METRIC, value: `${Number(t.seconds).toFixed(1)} / ${tfjsRate.toFixed(2)} / ${cpuPer(Number(t.cpuSeconds), common.utterances)} / ${lossOf(t)}`,
  });
  // The front end (and the clipping) run in tfjs in this process: on the jobs' backend (wasm), not tfjs's pure-JS default.
  await initBackend();
  for (const threads of [2, 1]) {
    const r = await trainSpeechModel({ ...common, engine: 'onnx', threads, valUtterances: 4, testUtterances: 4, fsddDir: fsddDir() });
    try {
      rows.push({
        suite: 'engine', benchmark: `${what}, engine onnx (${threads} thread${threads > 1 ? 's' : ''}; the same training loop in the CLI's process)`,
        metric: METRIC, value: `${r.seconds.toFixed(1)} / ${r.utterancesPerSecond.toFixed(2)} / ${cpuPer(r.cpuSeconds, common.utterances)} / ${r.epochs[0].loss.toFixed(3)}`,
      });
      const speedup = r.utterancesPerSecond / tfjsRate;
      const cpuRatio = Number(t.cpuSeconds) / r.cpuSeconds;
      rows.push({ suite: 'engine', benchmark: `speech-large, 1 epoch of training: onnx (${threads} thread${threads > 1 ? 's' : ''}) vs tfjs-${String(t.backend)}`, metric: 'speed-up: utterances per s (wall) / CPU time per utterance', value: `${speedup.toFixed(2)}x / ${cpuRatio.toFixed(2)}x` });
    } finally {
      r.model.dispose();
    }
  }
  return rows;
}

const METRIC = 'training seconds / utterances per s / CPU ms per utterance / epoch loss';

function cpuPer(cpuSeconds: number, utterances: number): string {
  return Number.isFinite(cpuSeconds) ? ((1000 * cpuSeconds) / utterances).toFixed(0) : 'n/a';
}

function lossOf(r: Record<string, unknown>): string {
  return typeof r.trainLoss === 'number' ? r.trainLoss.toFixed(3) : 'n/a';
}
