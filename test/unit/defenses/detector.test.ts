/**
 * The detector case study on tiny settings: the unaware PGD attack is mostly detected, the adaptive
 * attack (classifier + detector in the loss) bypasses both far more often; plus the pieces: the
 * detector reads an inner layer, the threshold keeps the false-positive rate, no tensors leak.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { getCaseStudy } from '../../../src-main/engine/defenses';
import '../../../src-main/engine/defenses/all';
import { buildDetector, thresholdAtFpr } from '../../../src-main/engine/defenses/detector-model';
import { buildModel } from '../../../src-main/engine/models';
import { SessionStore } from '../../../src-main/engine/sessions';
import { backwardProgress } from '../helpers';

const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'test' };

beforeAll(async () => {
  await initBackend('wasm');
});

describe('detector pieces', () => {
  it('reads the input or an inner layer and refuses unknown layers', () => {
    const clf = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    const before = tf.memory().numTensors;
    for (const at of ['input', 'conv1', 'dense1']) {
      const d = buildDetector(clf, at, 1);
      const r = tf.tidy(() => {
        const { logits, score } = d.joint(tf.zeros([3, 28, 28, 1]));
        return [logits.shape, score.shape, d.score(tf.zeros([3, 28, 28, 1])).shape];
      });
      expect(r).toEqual([[3, 10], [3], [3]]);
      d.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => buildDetector(clf, 'nope')).toThrow(/input, conv1, conv2, flatten, dense1/);
    clf.dispose();
  });

  it('sets the threshold for the requested false-positive rate', () => {
    const s = Float32Array.from({ length: 200 }, (_, i) => i / 10);
    const { threshold, fpr } = thresholdAtFpr(s, 0.05);
    expect(fpr).toBeLessThanOrEqual(0.05);
    expect(fpr).toBeGreaterThan(0.04);
    expect(s.filter((v) => v > threshold).length).toBe(10);
    expect(() => thresholdAtFpr(s, 0)).toThrow(/false-positive/);
  });
});

describe('detector case study (quick settings)', () => {
  it('the adaptive attack bypasses classifier + detector far more often than the unaware attack', async () => {
    const store = new SessionStore(mkdtempSync(join(tmpdir(), 'advlab-detector-')));
    const writer = await store.create({ kind: 'recipe', params: {}, environment: ENV });
    const ctx = new LocalContext();
    const before = tf.memory().numTensors;
    const study = getCaseStudy('detector')!;
    const out = await study.run({
      trainLimit: 1500, epochs: 2, detectorTrainImages: 800, detectorEpochs: 3, pgdSteps: 6, calibrationImages: 200, n: 16,
      cwSearchSteps: 4, cwIterations: 100, cwLearningRate: 0.05, cwInitialConst: 1, saveExamples: 2, successThreshold: 0.8,
    }, { dataDirs: ['/usr/share/datasets'], writer, ctx, quick: true });
    expect(tf.memory().numTensors).toBe(before);
    expect(backwardProgress(ctx.events)).toEqual([]); // the bar only moves forward
    const e = out.evidence as Record<string, number>;
    expect(e.unawarePgdDetection).toBeGreaterThan(0.7);
    expect(e.adaptiveBypass).toBeGreaterThanOrEqual(0.8);
    expect(e.adaptiveBypass).toBeGreaterThan(e.unawarePgdBypass);
    expect(e.measuredFpr).toBeLessThan(0.25);
    expect(out.table.length).toBeGreaterThan(5);
    const m = writer.manifest;
    expect(m.artifacts.some((a) => a.path === 'classifier/model.json')).toBe(true);
    expect(m.artifacts.filter((a) => a.kind === 'image').length).toBeGreaterThan(0);
    expect(m.summary.model).toBe('classifier/model.json');
    const rows = JSON.parse(readFileSync(join(writer.dir, 'artifacts', 'detector-examples.json'), 'utf8')).rows;
    expect(rows.length).toBe(e.attacked);
    await writer.finish({});
  }, 300_000);

  it('refuses unknown parameters', async () => {
    const store = new SessionStore(mkdtempSync(join(tmpdir(), 'advlab-detector-')));
    const writer = await store.create({ kind: 'recipe', params: {}, environment: ENV });
    await expect(getCaseStudy('detector')!.run({ nonsense: 1 }, { dataDirs: ['/usr/share/datasets'], writer, ctx: new LocalContext(), quick: true })).rejects.toThrow(/nonsense/);
  });
});
