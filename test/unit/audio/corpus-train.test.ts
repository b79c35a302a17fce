/** The full-alphabet architecture and training on a synthesized corpus together with FSDD. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { SpeechModel, stackSignals, trainSpeechModel, type SpeechBatchRow } from '../../../src-main/engine/audio';
import { generateCorpus } from '../../../src-main/engine/audio/corpus';
import { DATA } from '../helpers';

const FSDD = join(DATA, 'fsdd', 'recordings');
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'advlab-corpus-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('speech-large', () => {
  it('has ~1M parameters, 30 ms output frames, and the same logits alone as in a padded batch', async () => {
    const m = SpeechModel.create('speech-large', { seed: 3 });
    try {
      expect(m.timeStride).toBe(3);
      expect(m.paramCount()).toBeGreaterThan(900_000);
      expect(m.paramCount()).toBeLessThan(1_100_000);
      // Frame counts of every residue mod 3, so the stride-3 padding is exercised.
      const sigs = [8000, 8000 - 80, 8000 - 160, 5000].map((n, i) => Float32Array.from({ length: n }, (_, k) => Math.sin(k * (0.05 + 0.01 * i)) * 0.3));
      const { batch, lengths } = stackSignals(sigs, 200);
      const together = m.logits(batch, lengths);
      const outLengths = m.outputLengths(lengths);
      expect(outLengths).toEqual(lengths.map((n) => Math.ceil(m.frameCount(n) / 3)));
      const all = (await together.array()) as number[][][];
      for (let b = 0; b < sigs.length; b++) {
        const x = tf.tensor2d(sigs[b], [1, sigs[b].length]);
        const alone = m.logits(x);
        expect(alone.shape[1]).toBe(outLengths[b]);
        const a = (await alone.array()) as number[][][];
        let maxDiff = 0;
        for (let t = 0; t < outLengths[b]; t++) for (let k = 0; k < 29; k++) maxDiff = Math.max(maxDiff, Math.abs(a[0][t][k] - all[b][t][k]));
        expect(maxDiff).toBeLessThan(1e-4);
        tf.dispose([x, alone]);
      }
      tf.dispose([batch, together]);
    } finally {
      m.dispose();
    }
  });
});

describe('training on a corpus', () => {
  it('trains on the corpus and FSDD together and tests on the held-out voices', async () => {
    const corpus = join(dir, 'corpus');
    const manifest = await generateCorpus({ out: corpus, hours: 30 / 3600, seed: 11, fsddDir: FSDD });
    const train = manifest.clips.filter((c) => c.split === 'train');
    const test = manifest.clips.filter((c) => c.split === 'test');
    expect(train.length).toBeGreaterThan(0);
    const batches: SpeechBatchRow[] = [];
    const before = tf.memory().numTensors;
    const r = await trainSpeechModel({
      arch: 'speech-small', corpus, fsddDir: FSDD, epochs: 1, fsddUtterances: 8, valUtterances: 4, testUtterances: 4, batchSize: 8, seed: 2,
    }, { onBatch: (b) => void batches.push(b) });
    try {
      expect(r.data.corpus?.train.length).toBe(train.length);
      expect(r.data.heldOutSpeaker).toBe(manifest.fsdd?.heldOutSpeaker);
      // Every synthesized training clip and the FSDD utterances, once per epoch.
      expect(batches.length).toBe(Math.ceil((train.length + 8) / 8));
      expect(r.testVoices?.rows.length).toBe(Math.min(4, test.length));
      expect(r.testVoices?.rows.map((x) => x.transcript)).toEqual(test.slice(0, 4).map((c) => c.transcript));
      expect(r.testUnseen).not.toBeNull();
      // The corpus brings letters FSDD's digit words lack.
      const symbols = r.model.extraMeta.trainedSymbols as string[];
      const fromCorpus = new Set(train.flatMap((c) => [...c.transcript]));
      for (const ch of fromCorpus) expect(symbols).toContain(ch);
    } finally {
      r.model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});

describe('starter:speech', () => {
  it('loads, has heard every letter, and its card gives the weights\' sha256 and its CERs', async () => {
    const { createHash } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const dirM = join(import.meta.dirname, '../../../resources/starter/models/speech');
    const m = await SpeechModel.load(dirM);
    try {
      expect(m.arch).toBe('speech-large');
      expect(m.extraMeta.trainedSymbols).toEqual([' ', ...'abcdefghijklmnopqrstuvwxyz']);
      const card = readFileSync(join(dirM, 'MODEL_CARD.md'), 'utf8');
      expect(card).toContain(`sha256 ${createHash('sha256').update(readFileSync(join(dirM, 'weights.bin'))).digest('hex')}`);
      expect(card).toMatch(/held-out synthesized voices \(\d+ clips\): CER [\d.]+%/);
      const t = await m.transcribe(new Float32Array(8000).map((_, i) => 0.1 * Math.sin(i / 7)), 8000);
      expect(typeof t.text).toBe('string');
    } finally {
      m.dispose();
    }
  });
});
