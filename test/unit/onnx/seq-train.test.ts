/**
 * Speech training on ONNX Runtime (onnx/export-seq-train.ts, onnx/seq-trainer.ts, audio/train.ts's engine branch)
 * against tfjs (the reference; the wasm backend the jobs run, whose Conv1D has no ties to break): one step on the same weights and the same padded batch gives the same
 * loss, gradients and updated weights within 1e-4 for speech-small (the tiny over-fitted fixture) and speech-large;
 * a few steps reduce the loss; a training run on ONNX Runtime keeps numTensors flat, reports progress that never
 * goes back, stops within a step when cancelled, and leaves a normal speech model that loads in tfjs and
 * transcribes as the trained network does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { LocalContext } from '../../../src-main/engine/context';
import { initBackend } from '../../../src-main/engine/backend';
import { CancelledError } from '../../../src-main/engine/errors';
import {
  SpeechModel, evaluateSpeech, readWavFile, stackSignals, trainSpeechModel, type ClipCache, type SpeechBatchRow, type SpeechTrainResult,
} from '../../../src-main/engine/audio';
import { clipByGlobalNorm, speechStepEngine, type SpeechBatch, type SpeechStepEngine } from '../../../src-main/engine/audio/train';
import { exportSequenceTraining } from '../../../src-main/engine/onnx/export-seq-train';
import { UnsupportedLayerError } from '../../../src-main/engine/onnx/export';
import { tinySpeechModel, TINY_WORDS } from '../audio/tiny-speech';
import { DATA } from '../helpers';

const TOL = 1e-4;
const FSDD = join(DATA, 'fsdd', 'recordings');

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The same network, weights copied. */
function twin(m: SpeechModel): SpeechModel {
  const t = SpeechModel.create(m.arch);
  t.network.setWeights(m.network.getWeights());
  return t;
}

/** A padded batch of clips of different lengths, as the training loop builds it. */
function batchOf(m: SpeechModel, clips: Float32Array[], words: string[]): SpeechBatch & { dispose(): void } {
  const { batch, lengths } = stackSignals(clips, m.frontend.config.frameLength);
  const feats = m.frontend.features(batch, lengths);
  batch.dispose();
  return {
    feats, frames: lengths.map((n) => m.frameCount(n)), outLengths: m.outputLengths(lengths), labels: words.map((w) => m.alphabet.encode(w)),
    dispose: () => feats.dispose(),
  };
}

let clips: Float32Array[];
let tiny: SpeechModel;

beforeAll(async () => {
  await initBackend('wasm');
  ({ model: tiny, clips } = await tinySpeechModel());
  // A fourth, longer clip: four lengths in the batch, so the frame masks cut at different places.
  clips.push((await readWavFile(join(FSDD, '7_jackson_12.wav'))).samples);
}, 240_000);

afterAll(() => tiny?.dispose());

/** One step on each engine from the same weights: loss, gradients, and the weights after clipping and Adam. */
async function oneStep(a: SpeechModel, words: string[]) {
  const b = twin(a);
  const before = tf.memory().numTensors;
  const opts = { learningRate: 1e-3 };
  const tfEngine: SpeechStepEngine = await speechStepEngine(a, { ...opts, engine: 'tfjs' });
  const ortEngine: SpeechStepEngine = await speechStepEngine(b, { ...opts, engine: 'onnx' }, undefined, 1);
  const batch = batchOf(a, clips.slice(0, words.length), words);
  try {
    expect(ortEngine.info.engine).toBe('onnx');
    const rt = await tfEngine.gradients(batch, 1);
    const ro = await ortEngine.gradients(batch, 1);
    // The twins' variables have their own names: gradients are compared in trainableWeights order.
    const nameOf = (v: tf.LayerVariable) => (v.read() as tf.Variable).name;
    const namesA = a.network.trainableWeights.map(nameOf), namesB = b.network.trainableWeights.map(nameOf);
    expect(Object.keys(rt.grads).sort()).toEqual([...namesA].sort());
    expect(Object.keys(ro.grads).sort()).toEqual([...namesB].sort());
    // Per tensor: max |diff| relative to max(1, the tensor's largest |gradient|) (float32 sums over every frame of the batch).
    let gradDiff = 0, gradScale = 0;
    const ga = namesA.map((n) => rt.grads[n].dataSync() as Float32Array), gb = namesB.map((n) => ro.grads[n].dataSync() as Float32Array);
    ga.forEach((g, i) => {
      const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      gradScale = Math.max(gradScale, scale);
      gradDiff = Math.max(gradDiff, maxAbs(g, gb[i]) / Math.max(1, scale));
    });
    for (const [e, r] of [[tfEngine, rt], [ortEngine, ro]] as const) {
      const clipped = clipByGlobalNorm(r.grads, 1e6);
      e.apply(clipped, 1e-3);
      tf.dispose([...Object.values(r.grads), ...Object.values(clipped)]);
    }
    ortEngine.sync();
    // Adam's first update is lr g / (|g| + eps): about lr sign(g), so a gradient within float noise of 0 may take
    // either sign on the two engines. The weights are compared where the two gradients are well apart from 0
    // (|g| > 100 |g_tfjs - g_onnx|, or both equal), and those others must be rare.
    const wa = a.network.getWeights(), wb = b.network.getWeights();
    let weightDiff = 0, excluded = 0, total = 0;
    wa.forEach((w, i) => {
      const x = w.dataSync(), y = wb[i].dataSync(), g = ga[i], h = gb[i];
      for (let j = 0; j < x.length; j++) {
        total++;
        if (g[j] !== h[j] && Math.abs(g[j]) <= 100 * Math.abs(g[j] - h[j])) excluded++;
        else weightDiff = Math.max(weightDiff, Math.abs(x[j] - y[j]));
      }
    });
    if (process.env.DIAG) console.log({ gradDiff, gradScale, weightDiff, excluded, total });
    return { lossTf: rt.loss, lossOrt: ro.loss, gradDiff, gradScale, weightDiff, excludedFraction: excluded / total };
  } finally {
    batch.dispose();
    tfEngine.dispose();
    ortEngine.dispose();
    // Nothing left behind by either engine's step (tfjs's Adam slots go with its optimizer).
    expect(tf.memory().numTensors).toBe(before);
    b.dispose();
  }
}

describe('speech training on ONNX Runtime vs tfjs', () => {
  it.each([
    ['speech-small (the tiny fixture), 4 clips of different lengths: loss, gradients and updated weights within 1e-4', () => twin(tiny)],
    ['speech-large (untrained, 1.03M parameters), same batch: loss, gradients and updated weights within 1e-4', () => SpeechModel.create('speech-large', { seed: 5 })],
  ])('%s', async (_name, make) => {
    const a = make();
    try {
      const r = await oneStep(a, [...TINY_WORDS, 'seven']);
      expect(r.gradScale).toBeGreaterThan(1e-3);
      expect(Math.abs(r.lossTf - r.lossOrt)).toBeLessThanOrEqual(TOL * Math.max(1, r.lossTf));
      expect(r.gradDiff).toBeLessThanOrEqual(TOL);
      expect(r.weightDiff).toBeLessThanOrEqual(TOL);
      expect(r.excludedFraction).toBeLessThan(0.01);
    } finally {
      a.dispose();
    }
  }, 120_000);

  it('a few steps on ONNX Runtime reduce the loss', async () => {
    const m = SpeechModel.create('speech-small', { seed: 2 });
    const e = await speechStepEngine(m, { learningRate: 3e-3, engine: 'onnx' }, undefined, 1);
    const batch = batchOf(m, clips, [...TINY_WORDS, 'seven']);
    try {
      const losses: number[] = [];
      for (let s = 1; s <= 8; s++) {
        const r = await e.gradients(batch, s);
        losses.push(r.loss);
        const clipped = clipByGlobalNorm(r.grads, 50);
        e.apply(clipped, 3e-3);
        tf.dispose([...Object.values(r.grads), ...Object.values(clipped)]);
      }
      expect(losses.at(-1)!).toBeLessThan(0.7 * losses[0]);
    } finally {
      batch.dispose();
      e.dispose();
      m.dispose();
    }
  }, 120_000);

  it('the graph: frame masks per cumulative stride, no input gradient; refusals name the layer', () => {
    const m = SpeechModel.create('speech-small');
    try {
      const g = exportSequenceTraining(m.network);
      expect(g.masks).toEqual([2]);
      expect(g.stride).toBe(2);
      expect(g.weights).toHaveLength(m.network.trainableWeights.length);
      expect(g.backwardInputs.some((n) => n.startsWith('w'))).toBe(false); // the kernels are saved in ONNX's layout
    } finally {
      m.dispose();
    }
    const lstm = tf.sequential({ layers: [tf.layers.conv1d({ inputShape: [null, 8], filters: 4, kernelSize: 3, padding: 'same' }), tf.layers.dropout({ rate: 0.2 })] });
    // The exporter's refusal is an UnsupportedLayerError: what chooseTrainingEngine falls back on (auto) or refuses with (onnx).
    expect(() => exportSequenceTraining(lstm)).toThrow(UnsupportedLayerError);
    expect(() => exportSequenceTraining(lstm)).toThrow(/dropout is not exported for sequence training/);
    const dilated = tf.sequential({ layers: [tf.layers.conv1d({ inputShape: [null, 8], filters: 4, kernelSize: 3, padding: 'same', dilationRate: 2 })] });
    expect(() => exportSequenceTraining(dilated)).toThrow(UnsupportedLayerError);
    expect(() => exportSequenceTraining(dilated)).toThrow(/dilated/);
    tf.dispose([lstm, dilated].flatMap((x) => x.weights.map((w) => w.read())));
  });
});

describe('trainSpeechModel on ONNX Runtime', () => {
  const cache: ClipCache = new Map();
  const TINY = { arch: 'speech-small', epochs: 3, utterances: 48, valUtterances: 4, testUtterances: 4, batchSize: 8, learningRate: 0.003, seed: 1, fsddDir: FSDD, clipCache: cache, engine: 'onnx' as const, threads: 1 };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'advlab-seqtrain-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('trains: loss falls, progress never goes back, numTensors flat; the saved model loads in tfjs and transcribes as trained', async () => {
    const rows: SpeechBatchRow[] = [];
    const tensors: number[] = [];
    const steps: number[] = [];
    // (Data preparation reports its own counts before training starts: the training phases are checked.)
    const ctx = new LocalContext((p) => void (/^epoch|^testing/.test(p.phase ?? '') && steps.push(p.step)));
    const r: SpeechTrainResult = await trainSpeechModel(TINY, { onBatch: (row) => void rows.push(row), onEpoch: () => void tensors.push(tf.memory().numTensors) }, ctx);
    try {
      expect(r.engine).toMatchObject({ engine: 'onnx', threads: 1, reason: 'requested (engine onnx)' });
      expect(rows.map((x) => x.step)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
      const epochLoss = (e: number) => rows.filter((x) => x.epoch === e).reduce((s, x) => s + x.loss, 0) / 6;
      expect(epochLoss(3)).toBeLessThan(0.6 * epochLoss(1));
      expect(steps.length).toBeGreaterThanOrEqual(18);
      for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThanOrEqual(steps[i - 1]);
      expect(new Set(tensors).size).toBe(1);
      // The last epoch's validation ran on the network after the final sync; the saved model must give the same.
      await r.model.save(join(dir, 'm'));
      const loaded = await SpeechModel.load(join(dir, 'm'));
      try {
        const val = await evaluateSpeech(loaded, r.data.val);
        expect(val.cer).toBe(r.epochs.at(-1)!.val_cer);
        expect(await loaded.transcribeBatch(clips)).toEqual(await r.model.transcribeBatch(clips));
        const init = SpeechModel.create('speech-small', { seed: 1 });
        expect(maxAbs(init.network.getWeights()[0].dataSync(), loaded.network.getWeights()[0].dataSync())).toBeGreaterThan(1e-3);
        init.dispose();
      } finally {
        loaded.dispose();
      }
    } finally {
      r.model.dispose();
    }
  }, 300_000);

  it('the same loss curve as tfjs: one epoch (6 steps, dither, the lr warm-up), every step within 1e-4 of the loss', async () => {
    const curves: number[][] = [];
    for (const engine of ['tfjs', 'onnx'] as const) {
      const rows: SpeechBatchRow[] = [];
      const r = await trainSpeechModel({ ...TINY, epochs: 1, engine }, { onBatch: (row) => void rows.push(row) });
      r.model.dispose();
      curves.push(rows.map((x) => x.loss));
    }
    const [t, o] = curves;
    if (process.env.DIAG) console.log(t, o);
    expect(o).toHaveLength(6);
    o.forEach((l, i) => expect(Math.abs(l - t[i]), `step ${i + 1}`).toBeLessThanOrEqual(1e-4 * Math.max(1, t[i])));
  }, 300_000);

  it('cancel: stops after the step in progress, with the weights trained so far in the network', async () => {
    const ctx = new LocalContext();
    const rows: SpeechBatchRow[] = [];
    const init = SpeechModel.create('speech-small', { seed: 1 });
    const err = await trainSpeechModel({ ...TINY, epochs: 2 }, { onBatch: (row) => { rows.push(row); if (rows.length === 2) ctx.cancel(); } }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as SpeechTrainResult;
    try {
      expect(rows).toHaveLength(2);
      expect(r.epochsRun).toBe(0);
      expect(maxAbs(init.network.getWeights()[0].dataSync(), r.model.network.getWeights()[0].dataSync())).toBeGreaterThan(1e-4);
    } finally {
      r.model.dispose();
      init.dispose();
    }
  }, 120_000);

  it('auto takes ONNX Runtime; tfjs on request; an unknown engine is refused', async () => {
    const m = SpeechModel.create('speech-small');
    try {
      const auto = await speechStepEngine(m, { learningRate: 1e-3, engine: 'auto' }, undefined, 1);
      expect(auto.info).toMatchObject({ engine: 'onnx', reason: 'auto: every layer is exported for training' });
      auto.dispose();
      const t = await speechStepEngine(m, { learningRate: 1e-3, engine: 'tfjs' });
      expect(t.info).toMatchObject({ engine: 'tfjs' });
      t.dispose();
    } finally {
      m.dispose();
    }
    await expect(trainSpeechModel({ ...TINY, engine: 'gpu' as never })).rejects.toThrow(/unknown engine "gpu"/);
  });
});
