import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { buildModel, saveModel } from '../../../src-main/engine/models';
import {
  SpeechModel, ctcLoss, listFsdd, readWavFile, resolveSpeechTrainOptions, stackSignals, textToLabels, trainSpeechModel,
  type ClipCache, type SpeechBatchRow, type SpeechEpochRow, type SpeechTrainResult,
} from '../../../src-main/engine/audio';
import { DATA } from '../helpers';

const FSDD = join(DATA, 'fsdd', 'recordings');
const cache: ClipCache = new Map();
let dir: string;
let trained: SpeechTrainResult | null = null;

/** A handful of utterances, tiny validation/test sets: seconds, not minutes. */
const TINY = { arch: 'speech-small', epochs: 3, utterances: 48, valUtterances: 4, testUtterances: 4, batchSize: 8, learningRate: 0.003, seed: 1, fsddDir: FSDD, clipCache: cache };

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'advlab-speech-'));
});

afterAll(async () => {
  trained?.model.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('SpeechModel', () => {
  it('gives an utterance the same logits alone as in a padded batch', async () => {
    const m = SpeechModel.create('speech-small', { seed: 2 });
    try {
      const clips = (await listFsdd(FSDD)).filter((c) => c.speaker === 'george' && c.index === 3).slice(0, 3);
      const sigs = await Promise.all(clips.map(async (c) => (await readWavFile(c.path)).samples));
      // Lengths of both parities of frame counts, so the stride-2 alignment is exercised.
      sigs[1] = sigs[1].subarray(0, sigs[1].length - 123);
      const { batch, lengths } = stackSignals(sigs, 200);
      const together = m.logits(batch, lengths);
      const outLengths = m.outputLengths(lengths);
      expect(together.shape[1]).toBe(Math.max(...outLengths));
      expect(outLengths).toEqual(lengths.map((n) => Math.ceil(m.frameCount(n) / 2)));
      const all = (await together.array()) as number[][][];
      for (let b = 0; b < sigs.length; b++) {
        const alone = m.logits(tf.tensor2d(sigs[b], [1, sigs[b].length]));
        expect(alone.shape[1]).toBe(outLengths[b]);
        const a = (await alone.array()) as number[][][];
        let maxDiff = 0;
        for (let t = 0; t < outLengths[b]; t++) for (let k = 0; k < 29; k++) maxDiff = Math.max(maxDiff, Math.abs(a[0][t][k] - all[b][t][k]));
        expect(maxDiff).toBeLessThan(1e-4);
        alone.dispose();
      }
      tf.dispose([batch, together]);
      expect(m.paramCount()).toBeGreaterThan(100_000);
    } finally {
      m.dispose();
    }
  });

  it('has a CTC gradient that stays finite for padded batches of very different lengths', () => {
    // Regression: frames past an example's input length once gave exp(overflow) * 0 = NaN in the
    // gradient. Here the short example's valid frames are confident blanks (its 8-letter label costs
    // ~240 nats) while its padding frames are uniform, so alpha + beta + loss there is ~ +180.
    const T = 40;
    const C = 29;
    const data = new Float32Array(2 * T * C);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < T; t++) if (b === 0 || t < 20) data[(b * T + t) * C + C - 1] = 30;
    }
    const logits = tf.tensor3d(data, [2, T, C]);
    const labels = [textToLabels('ab'), textToLabels('abcdefgh')];
    const g = tf.grad((x: tf.Tensor) => ctcLoss(x as tf.Tensor3D, labels, { inputLengths: [T, 20], reduction: 'sum' }))(logits);
    const gd = g.dataSync();
    expect(Array.from(gd).every(Number.isFinite)).toBe(true);
    // No gradient on padding frames; on valid frames the blank is pushed down.
    for (let t = 20; t < T; t++) for (let k = 0; k < C; k++) expect(gd[(T + t) * C + k]).toBe(0);
    expect(gd[(T + 0) * C + C - 1]).toBeGreaterThan(0);
    tf.dispose([logits, g]);
  });

  it('refuses unknown architectures and bad training options clearly', () => {
    expect(() => SpeechModel.create('speech-huge')).toThrow(/Unknown speech architecture "speech-huge"/);
    expect(() => resolveSpeechTrainOptions({ arch: 'resnet' })).toThrow(/speech-base or speech-small/);
    expect(() => resolveSpeechTrainOptions({ epochs: 0 })).toThrow(/epochs must be an integer >= 1/);
  });
});

/** Edit distance (insertions, deletions, substitutions), written independently of the engine's metrics. */
function editDistance(a: readonly string[], b: readonly string[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

describe('trainSpeechModel', () => {
  it('trains on a handful of utterances: the loss falls, every batch is reported, tensors stay flat', async () => {
    const batches: SpeechBatchRow[] = [];
    const epochs: SpeechEpochRow[] = [];
    const tensorsAtEpochEnd: number[] = [];
    const ctx = new LocalContext();
    trained = await trainSpeechModel(TINY, {
      onBatch: (r) => void batches.push(r),
      onEpoch: (r) => {
        epochs.push(r);
        tensorsAtEpochEnd.push(tf.memory().numTensors);
      },
    }, ctx);
    expect(trained).not.toHaveProperty('cancelled'); // one cancellation rule: a cancel throws, results carry no flag
    expect(batches.map((b) => b.step)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    expect(batches.every((b) => Number.isFinite(b.loss) && b.loss > 0)).toBe(true);
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    // CTC loss per utterance starts in the hundreds (random net); a few steps bring it far down.
    expect(epochs[2].loss).toBeLessThan(0.6 * epochs[0].loss);
    expect(batches.at(-1)!.loss).toBeLessThan(0.5 * batches[0].loss);
    // Validation CER, recomputed here from the returned (last-epoch) model's greedy transcripts with a
    // Levenshtein distance of our own: total character edits / total reference characters.
    const val = trained.data.val;
    const hyps = await trained.model.transcribeBatch(val.map((u) => u.samples));
    const edits = val.reduce((n, u, i) => n + editDistance([...u.transcript], [...hyps[i]]), 0);
    const chars = val.reduce((n, u) => n + u.transcript.length, 0);
    expect(epochs[2].val_cer).toBeCloseTo(edits / chars, 10);
    // Three epochs on 48 utterances cannot get half of the validation characters right (this run
    // transcribes nothing yet: CER 1); a CER of 0, NaN or one divided by the hypothesis length fails here.
    for (const e of epochs) {
      expect(e.val_cer).toBeGreaterThan(0.5);
      expect(e.val_cer).toBeLessThanOrEqual(1.5);
    }
    expect(new Set(tensorsAtEpochEnd).size).toBe(1);
    expect(ctx.events.filter((e) => e.phase?.startsWith('epoch')).length).toBeGreaterThanOrEqual(18);
    expect(trained.testSeen!.rows).toHaveLength(4);
    expect(trained.testUnseen!.rows).toHaveLength(4);
    expect(trained.data.heldOutSpeaker).toBe('yweweler');
    // Splits never share a recording.
    const files = (clips: { file: string }[]) => new Set(clips.map((c) => c.file));
    const train = files(trained.data.trainClips);
    for (const part of [trained.data.valClips, trained.data.testSeenClips, trained.data.testUnseenClips]) {
      expect([...files(part)].some((f) => train.has(f))).toBe(false);
    }
  });

  it('saves and loads: same metadata, same logits, same transcripts', async () => {
    const m = trained!.model;
    const saved = await m.save(join(dir, 'speech'), { dataset: 'fsdd' });
    const back = await SpeechModel.load(join(dir, 'speech'));
    try {
      expect(back.arch).toBe('speech-small');
      expect(back.frontend.config).toEqual(m.frontend.config);
      expect(back.alphabet.symbols).toEqual(m.alphabet.symbols);
      expect(back.timeStride).toBe(2);
      expect(back.modelJson).toBe(saved.modelJson);
      expect(back.extraMeta.dataset).toBe('fsdd');
      const sigs = trained!.data.testSeen.map((u) => u.samples);
      expect(await back.transcribeBatch(sigs)).toEqual(await m.transcribeBatch(sigs));
      const x = tf.tensor2d(sigs[0], [1, sigs[0].length]);
      const a = m.logits(x);
      const b = back.logits(x);
      expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
      tf.dispose([x, a, b]);
      // A clip at another rate is resampled to the model rate first.
      const t8 = await back.transcribe(sigs[0], 8000);
      expect(t8.frames).toBe(back.outputFrames(sigs[0].length));
    } finally {
      back.dispose();
    }
  });

  it('stops at the next batch when cancelled and throws CancelledError carrying the model so far', async () => {
    const ctx = new LocalContext();
    const rows: SpeechBatchRow[] = [];
    const err = await trainSpeechModel({ ...TINY, epochs: 2 }, { onBatch: (row) => { rows.push(row); if (rows.length === 2) ctx.cancel(); } }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as SpeechTrainResult;
    try {
      expect(rows).toHaveLength(2);
      expect(r.testSeen).toBeNull();
      expect(r.epochsRun).toBe(0);
    } finally {
      r.model.dispose();
    }
  });

  it('refuses to load an image classifier as a speech model, naming the file', async () => {
    const mlp = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10 });
    await saveModel(mlp, join(dir, 'mlp'), { arch: 'mlp' });
    mlp.dispose();
    await expect(SpeechModel.load(join(dir, 'mlp'))).rejects.toThrow(/mlp[/\\]model\.json: is not a speech-to-text model/);
  });
});
