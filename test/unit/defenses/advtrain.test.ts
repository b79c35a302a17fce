/**
 * Adversarial training on tiny settings: the PGD inner maximisation stays in the ball and raises the
 * loss; the case study writes per-epoch clean/PGD accuracy, and the adversarially trained model keeps
 * more robust accuracy than the undefended one.
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
import { adversarialBatches, pgdTrainingExamples } from '../../../src-main/engine/defenses/advtrain-core';
import { loadDataset } from '../../../src-main/engine/data';
import { buildModel, crossEntropyLoss, trainClassifier } from '../../../src-main/engine/models';
import { fromLayersModel } from '../../../src-main/engine/models/classifier';
import { runAttack } from '../../../src-main/engine/attacks';
import { SessionStore } from '../../../src-main/engine/sessions';
import { backwardProgress } from '../helpers';

const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'test' };
const dataDirs = ['/usr/share/datasets'];

beforeAll(async () => {
  await initBackend('wasm');
});

describe('PGD training examples', () => {
  it('stay in the eps-ball and the box, raise the loss, and leak nothing', async () => {
    const set = await loadDataset('fashion-mnist', { dataDirs, split: 'test', limit: 32, seed: 2 });
    const model = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
    const x = tf.tensor4d(set.images, [32, 28, 28, 1]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(set.labels, 'int32'), 10).toFloat() as tf.Tensor2D);
    const before = tf.memory().numTensors;
    const logitsOf = (xi: tf.Tensor4D) => model.apply(xi) as tf.Tensor2D;
    const adv = pgdTrainingExamples(logitsOf, x, y, { eps: 0.1, steps: 5 }, 7);
    expect(tf.memory().numTensors).toBe(before + 1);
    const [dmax, lo, hi, lClean, lAdv] = tf.tidy(() => [
      tf.max(tf.abs(tf.sub(adv, x))), tf.min(adv), tf.max(adv), crossEntropyLoss(logitsOf(x), y), crossEntropyLoss(logitsOf(adv), y),
    ].map((t) => t.dataSync()[0]));
    expect(dmax).toBeLessThanOrEqual(0.1 + 1e-6);
    expect(dmax).toBeGreaterThan(0.09);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    expect(lAdv).toBeGreaterThan(lClean);
    // Half the batch adversarial: the second half is the clean images.
    const hook = adversarialBatches(model, { eps: 0.1, steps: 2, adversarialFraction: 0.5 });
    const b = await hook(x, y, { phase: 'train', epoch: 1, step: 1, index: 0, indices: new Int32Array(32), labels: Int32Array.from(set.labels) });
    const same = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(b.x, 16), tf.slice(x, 16)))).dataSync()[0]);
    const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(b.x, 0, 16), tf.slice(x, 0, 16)))).dataSync()[0]);
    expect(same).toBe(0);
    expect(moved).toBeGreaterThan(0);
    b.x.dispose(); b.y.dispose(); adv.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => pgdTrainingExamples(logitsOf, x, y, { eps: 0, steps: 5 }, 1)).toThrow(/eps/);
    x.dispose(); y.dispose(); model.dispose();
  });
  it('are the PGD attack\'s iterates: same seed and settings, same images wherever the attack did not stop early', async () => {
    const set = await loadDataset('fashion-mnist', { dataDirs, split: 'test', limit: 64, seed: 4 });
    const model = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
    await trainClassifier(model, await loadDataset('fashion-mnist', { dataDirs, split: 'train', limit: 2000, seed: 4 }), { epochs: 2, batchSize: 64, learningRate: 0.002, seed: 1 });
    const x = tf.tensor4d(set.images, [64, 28, 28, 1]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(set.labels, 'int32'), 10).toFloat() as tf.Tensor2D);
    const settings = { eps: 0.02, steps: 6, stepSize: 0.01 };
    const adv = pgdTrainingExamples((xi) => model.apply(xi, { training: false }) as tf.Tensor2D, x, y, settings, 11);
    const mine = adv.dataSync();
    // The attack keeps the first misclassified iterate; where it never gets there, it returns the last one, as training does.
    const attack = await runAttack('pgd', fromLayersModel(model), set.images, Array.from(set.labels), { kind: 'untargeted' }, { ...settings, seed: 11 });
    const per = 28 * 28;
    const unbroken = attack.perExample.filter((e) => e.advPred === e.label).map((e) => e.index);
    expect(unbroken.length).toBeGreaterThan(10);
    for (const i of unbroken) expect(Array.from(mine.subarray(i * per, (i + 1) * per))).toEqual(Array.from(attack.adversarial.subarray(i * per, (i + 1) * per)));
    tf.dispose([x, y, adv]);
    model.dispose();
  });
});

describe('adversarial-training case study (tiny settings)', () => {
  it('keeps robust accuracy far above the undefended model and charts every epoch', async () => {
    const store = new SessionStore(mkdtempSync(join(tmpdir(), 'advlab-advtrain-')));
    const writer = await store.create({ kind: 'recipe', params: {}, environment: ENV });
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const out = await getCaseStudy('adversarial-training')!.run({
      trainLimit: 1500, epochs: 2, trainSteps: 4, epsWarmupEpochs: 0.5, init: 'undefended', monitorImages: 30, monitorSteps: 4, n: 50,
      evalSteps: 10, evalRestarts: 2, gradientCheckImages: 16, gradientCheckSteps: 4, minGap: 0.1,
    }, { dataDirs, writer, ctx, quick: true });
    expect(tf.memory().numTensors).toBe(before);
    // Progress: the recipe's fraction only grows; each label carries its phase's own count, so
    // "epoch 1/2 (12/48)" is 12 of the phase's 48 batches, not 12 of the recipe's weighted units.
    expect(backwardProgress(ctx.events)).toEqual([]);
    const training = ctx.events.filter((p) => p.phase?.startsWith('adversarial training: epoch'));
    expect(training.length).toBeGreaterThan(0);
    const [, done, of] = /\((\d+)\/(\d+)\)$/.exec(training[training.length - 1].phase!)!;
    expect(Number(done)).toBe(Number(of));
    expect(Number(of)).toBe(2 * Math.ceil(1500 / 64));
    const e = out.evidence as Record<string, number>;
    expect(e.advRobust).toBeGreaterThan(e.undefendedRobust + 0.1);
    expect(e.advPgd).toBeGreaterThan(e.undefendedPgd);
    expect(e.undefendedClean).toBeGreaterThan(0.6);
    expect(typeof e.gradientCheckWarned).toBe('number');
    const rows = readFileSync(join(writer.dir, 'metrics', 'epochs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.epoch)).toEqual([1, 2]);
    for (const r of rows) { expect(r.clean_acc).toBeGreaterThan(0); expect(typeof r.pgd_acc).toBe('number'); }
    expect(readFileSync(join(writer.dir, 'metrics', 'undefended-epochs.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(writer.manifest.summary.model).toBe('model/model.json');
    expect(JSON.parse(readFileSync(join(writer.dir, 'artifacts', 'gradient-check.json'), 'utf8')).checks.length).toBeGreaterThan(5);
    await writer.finish({});
  }, 300_000);
});
