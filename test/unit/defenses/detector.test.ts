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
import { guardedClassifier } from '../../../src-main/engine/defenses/detector-attack';
import { runAttack } from '../../../src-main/engine/attacks';
import type { Classifier } from '../../../src-main/engine/models/classifier';
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

describe('the adaptive attack: stock C&W on classifier + detector', () => {
  it('the guarded classifier adds a "detected" class that wins exactly when the score exceeds the threshold', () => {
    const clf = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
    const d = buildDetector(clf, 'conv1', 1);
    const x = tf.randomUniform([32, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const { logits, score } = d.joint(x);
    const scores = score.dataSync();
    const tau = Float32Array.from(scores).sort()[16]; // half flagged, half not
    const g = guardedClassifier(d, tau);
    expect([g.numClasses, g.rejectClass]).toEqual([11, 10]);
    const before = tf.memory().numTensors;
    const z = g.logits(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(z.shape).toEqual([32, 11]);
    const pred = tf.argMax(z, 1).dataSync(), plain = tf.argMax(logits, 1).dataSync();
    const zs = z.dataSync(), ls = logits.dataSync();
    for (let i = 0; i < 32; i++) {
      expect(pred[i]).toBe(scores[i] > tau ? 10 : plain[i]);
      expect(Array.from(zs.subarray(i * 11, i * 11 + 10))).toEqual(Array.from(ls.subarray(i * 10, i * 10 + 10)));
    }
    tf.dispose([x, logits, score, z]);
    d.dispose();
    clf.dispose();
  });

  it('C&W never counts the reject class as success: it goes around it to a real wrong class', async () => {
    // Two pixels, three logits: Z0 = 1 (the label), Z1 = 10 x1 - 7 (wins past x1 = 0.8),
    // Z2 = 10 x0 - 5 (wins past x0 = 0.6). From (0.5, 0.5) class 2 is 0.1 away, class 1 is 0.3 away.
    const w = tf.tensor2d([[0, 0, 10], [0, 10, 0]]), b = tf.tensor1d([1, -7, -5]);
    const logits = (x: tf.Tensor4D) => tf.add(tf.matMul(tf.reshape(x, [-1, 2]), w), b) as tf.Tensor2D;
    const plain: Classifier = { inputShape: [1, 1, 2], numClasses: 3, logits };
    const guarded: Classifier = { ...plain, rejectClass: 2 };
    const x = Float32Array.of(0.5, 0.5);
    const params = { binarySearchSteps: 6, maxIterations: 300, learningRate: 0.05, initialConst: 1 };
    const free = await runAttack('cw-l2', plain, x, [0], { kind: 'untargeted' }, params);
    expect(free.perExample[0].advPred).toBe(2);
    expect(free.perExample[0].l2).toBeLessThan(0.15);
    const before = tf.memory().numTensors;
    const r = await runAttack('cw-l2', guarded, x, [0], { kind: 'untargeted' }, params);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.perExample[0].advPred).toBe(1);
    expect(r.perExample[0].success).toBe(true);
    expect(r.perExample[0].l2).toBeGreaterThan(0.28);
    expect(r.perExample[0].l2).toBeLessThan(0.4);
    expect(r.adversarial[0]).toBeLessThanOrEqual(0.6);
    // The base judges the same way: landing on the reject class is no success.
    const stuck = await runAttack('cw-l2', guarded, Float32Array.of(0.7, 0.5), [0], { kind: 'untargeted' }, { binarySearchSteps: 1, maxIterations: 1 });
    expect([stuck.perExample[0].cleanPred, stuck.perExample[0].advPred, stuck.perExample[0].success]).toEqual([2, 2, false]);
    const stuckPlain = await runAttack('cw-l2', plain, Float32Array.of(0.7, 0.5), [0], { kind: 'untargeted' }, { binarySearchSteps: 1, maxIterations: 1 });
    expect([stuckPlain.perExample[0].advPred, stuckPlain.perExample[0].success]).toEqual([2, true]);
    tf.dispose([w, b]);
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
