import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { resolveDataDirs } from '../../../src-main/engine/data';
import { AdvlabError } from '../../../src-main/engine/errors';
import { buildModel, loadModel, saveModel } from '../../../src-main/engine/models';
import { classifierFor } from '../../../src-main/engine/models/defended';
import { SessionStore } from '../../../src-main/engine/sessions';
import { getCaseStudy } from '../../../src-main/engine/defenses';
import '../../../src-main/engine/defenses/all';
import { loadRecipe } from '../../../src-main/engine/defenses/recipes';
import {
  encodedShape, quantize, thermometerBpda, thermometerClassifier, thermometerEncode, thermometerRelaxed,
} from '../../../src-main/engine/models/preprocessing';
import { thermometerParamsSchema } from '../../../src-main/engine/defenses/thermometer';
import { backwardProgress } from '../helpers';

let tmp: string;
beforeAll(async () => {
  await initBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'advlab-thermo-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The code by definition: bucket b = min(floor(L x), L - 1), bits k <= b set. */
function reference(x: number, L: number): number[] {
  const b = Math.min(Math.floor(Math.fround(Math.fround(x) * L)), L - 1);
  return Array.from({ length: L }, (_, k) => (k <= b ? 1 : 0));
}

describe('thermometer encoding', () => {
  it('encodes each pixel as 1..1 0..0 up to its bucket; channels multiply by L, channel-major', () => {
    const L = 16;
    const values = [0, 0.03, 0.0625, 0.0624, 0.5, 0.77, 0.9999, 1];
    const x = tf.tensor4d(values, [1, 2, 4, 1]);
    const code = thermometerEncode(x, L);
    expect(code.shape).toEqual([1, 2, 4, 16]);
    const got = Array.from(code.dataSync());
    values.forEach((v, i) => expect(got.slice(i * L, (i + 1) * L)).toEqual(reference(v, L)));
    // 0 -> only the first bit; 1 -> all bits; 0.0625 = 1/16 exactly -> two bits.
    expect(got.slice(0, L).reduce((a, b) => a + b)).toBe(1);
    expect(got.slice(7 * L, 8 * L).every((b) => b === 1)).toBe(true);
    expect(got.slice(2 * L, 3 * L).reduce((a, b) => a + b)).toBe(2);
    expect(Array.from(quantize(x, L).dataSync())).toEqual([0, 0, 1, 0, 8, 12, 15, 15]);

    // RGB: channel ch's bits sit at ch * L .. ch * L + L - 1.
    const rgb = tf.tensor4d([0.1, 0.6, 0.95], [1, 1, 1, 3]);
    const c3 = thermometerEncode(rgb, 4);
    expect(c3.shape).toEqual([1, 1, 1, 12]);
    expect(Array.from(c3.dataSync())).toEqual([...reference(0.1, 4), ...reference(0.6, 4), ...reference(0.95, 4)]);
    expect(encodedShape([28, 28, 3], 16)).toEqual([28, 28, 48]);
    expect(() => thermometerEncode(rgb, 1)).toThrow(/levels/);
    tf.dispose([x, code, rgb, c3]);
  });

  it('has an exactly zero input gradient; BPDA keeps the forward values and has the relaxation\'s gradient', () => {
    const L = 8;
    const x = tf.randomUniform([3, 5, 5, 2], 0, 1, 'float32', 4) as tf.Tensor4D;
    const w = tf.randomNormal([3, 5, 5, 2 * L], 0, 1, 'float32', 5);
    const objective = (enc: (t: tf.Tensor4D, l: number) => tf.Tensor4D) => (t: tf.Tensor) => tf.sum(tf.mul(enc(t as tf.Tensor4D, L), w));
    const gReal = tf.grad(objective(thermometerEncode))(x);
    expect(Array.from(gReal.dataSync()).every((v) => v === 0)).toBe(true);

    const bpda = thermometerBpda(x, L);
    expect(Array.from(bpda.dataSync())).toEqual(Array.from(thermometerEncode(x, L).dataSync()));
    const gBpda = tf.grad(objective(thermometerBpda))(x);
    const gRelaxed = tf.grad(objective(thermometerRelaxed))(x);
    const b = Array.from(gBpda.dataSync()), r = Array.from(gRelaxed.dataSync());
    // Non-zero except in the top bucket ((L-1)/L, 1], above the last threshold (1/L of uniform values).
    expect(b.filter((v) => v !== 0).length).toBeGreaterThan(b.length * 0.75);
    b.forEach((v, i) => expect(v).toBeCloseTo(r[i], 4));
    // The relaxation matches the real code wherever L x is a whole number.
    const grid = tf.tensor4d([0, 0.125, 0.5, 1], [1, 1, 4, 1]);
    expect(Array.from(thermometerRelaxed(grid, L).dataSync())).toEqual(Array.from(thermometerEncode(grid, L).dataSync()));
    tf.dispose([x, w, gReal, bpda, gBpda, gRelaxed, grid]);
  });

  it('wraps a network as a Classifier (images in, logits out) without leaking tensors', () => {
    const L = 4;
    const model = buildModel('mlp', { inputShape: [6, 6, L], numClasses: 3, seed: 2 });
    const real = thermometerClassifier(model, L, 'real');
    const bpda = thermometerClassifier(model, L, 'bpda');
    expect(real.inputShape).toEqual([6, 6, 1]);
    expect(real.numClasses).toBe(3);
    const x = tf.randomUniform([4, 6, 6, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        expect(Array.from(bpda.logits(x).dataSync())).toEqual(Array.from(real.logits(x).dataSync()));
        const loss = (c: typeof real) => (t: tf.Tensor) => tf.sum(c.logits(t as tf.Tensor4D));
        expect(tf.max(tf.abs(tf.grad(loss(real))(x))).dataSync()[0]).toBe(0);
        expect(tf.max(tf.abs(tf.grad(loss(bpda))(x))).dataSync()[0]).toBeGreaterThan(0);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => thermometerClassifier(model, 3)).toThrow(/not a multiple of 3/);
    x.dispose();
    model.dispose();
  });

  it('classifierFor rebuilds the pipeline from a saved model\'s meta.preprocessing.thermometerLevels', async () => {
    const L = 5;
    const model = buildModel('small-cnn', { inputShape: [8, 8, 2 * L], numClasses: 4, seed: 3 });
    const dir = join(tmp, 'thermo-model');
    await saveModel(model, dir, { arch: 'small-cnn', inputShape: [8, 8, 2], preprocessing: { thermometerLevels: L } });
    const loaded = await loadModel(dir);
    const clf = classifierFor(loaded);
    expect(clf.inputShape).toEqual([8, 8, 2]);
    const x = tf.randomUniform([3, 8, 8, 2], 0, 1, 'float32', 1) as tf.Tensor4D;
    const expected = tf.tidy(() => model.apply(thermometerEncode(x, L)) as tf.Tensor);
    const got = clf.logits(x);
    Array.from(got.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected.dataSync()[i], 5));
    const grad = (c: typeof clf) => tf.tidy(() => tf.max(tf.abs(tf.grad((t: tf.Tensor) => tf.sum(c.logits(t as tf.Tensor4D)))(x))).dataSync()[0]);
    expect(grad(clf)).toBe(0);
    expect(grad(classifierFor(loaded, { gradient: 'bpda' }))).toBeGreaterThan(0);

    // A plain model stays a plain network.
    const plainDir = join(tmp, 'plain-model');
    await saveModel(buildModel('mlp', { inputShape: [8, 8, 2], numClasses: 4 }), plainDir, { arch: 'mlp' });
    expect(classifierFor(await loadModel(plainDir)).inputShape).toEqual([8, 8, 2]);

    // Metadata that contradicts the network: a BAD_FILE error naming model.json.
    const badDir = join(tmp, 'bad-model');
    await saveModel(model, badDir, { inputShape: [8, 8, 3], preprocessing: { thermometerLevels: L } });
    const bad = await loadModel(badDir);
    expect(() => classifierFor(bad)).toThrow(AdvlabError);
    expect(() => classifierFor(bad)).toThrow(/bad-model\/model\.json.*inputShape \[8, 8, 3\]/);
    const badLevels = join(tmp, 'bad-levels');
    await saveModel(model, badLevels, { preprocessing: { thermometerLevels: 3 } });
    await expect(loadModel(badLevels).then((m) => classifierFor(m))).rejects.toThrow(/bad-levels\/model\.json.*thermometerLevels = 3/);
    tf.dispose([x, expected, got]);
    model.dispose();
  });
});

describe('thermometer recipe', () => {
  it('recipe file: full and quick parameters are valid', async () => {
    const r = loadRecipe('thermometer');
    expect(r.caseStudy).toBe('thermometer');
    const full = thermometerParamsSchema.parse(r.full);
    const quick = thermometerParamsSchema.parse({ ...r.full, ...r.quick });
    expect(full.levels).toBe(16);
    expect(quick.levels).toBe(full.levels);
    expect(quick.eps).toBe(full.eps);
    expect(quick.testN).toBeLessThanOrEqual(100);
    await expect(getCaseStudy('thermometer')!.run({ levls: 8 }, {} as never)).rejects.toThrow(/unknown parameter.*"levls"/);
  });

  it('quick run: PGD through the real encoding gets zero gradient and fails; PGD with BPDA at the same eps succeeds', async () => {
    const store = new SessionStore(join(tmp, 'sessions'));
    const writer = await store.create({
      kind: 'recipe', name: 'thermometer test', params: {},
      environment: { backend: 'wasm', tfjsVersion: tf.version.tfjs, advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'test' },
    });
    const ctx = new LocalContext();
    const tensorsBefore = tf.memory().numTensors;
    const out = await getCaseStudy('thermometer')!.run(
      { arch: 'small-cnn', trainN: 2000, epochs: 2, batchSize: 64, testN: 60, pgdSteps: 10, levels: 16, eps: 0.1, baseline: false, examples: 2 },
      { dataDirs: resolveDataDirs(), writer, ctx, quick: true },
    );
    expect(tf.memory().numTensors).toBe(tensorsBefore); // every model, optimizer and attack tensor released
    const e = out.evidence;
    expect(e.cleanAccThermometer as number).toBeGreaterThan(0.6);
    expect(e.zeroGradExamplesReal).toBe(1);
    expect(e.zeroGradExamplesBpda).toBe(0);
    // The key inequality: BPDA leaves far less accuracy than plain PGD at the same eps.
    expect(e.robustAccBpda as number).toBeLessThan((e.robustAccPlainPgd as number) - 0.25);
    expect(e.robustAccPlainPgd as number).toBeGreaterThan(0.5);
    expect(out.criterion).toMatch(/BPDA/);
    expect(out.table.length).toBeGreaterThan(5);
    // Progress went through every stage and ended at 100%.
    const last = ctx.events.at(-1)!;
    expect(last.step).toBe(last.total);
    expect(backwardProgress(ctx.events)).toEqual([]);
    expect(ctx.events.some((p) => p.phase?.includes('pgd with bpda'))).toBe(true);

    // The saved model rebuilds the whole pipeline and classifies as the recipe measured.
    const saved = join(writer.dir, 'artifacts', e.model as string);
    const meta = JSON.parse(readFileSync(saved, 'utf8')).userDefinedMetadata;
    expect(meta.preprocessing.thermometerLevels).toBe(16);
    expect(meta.inputShape).toEqual([28, 28, 1]);
    const clf = classifierFor(await loadModel(saved));
    expect(clf.inputShape).toEqual([28, 28, 1]);
    const m = writer.manifest;
    expect(m.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining(['models/thermometer/model.json', 'models/thermometer/weights.bin']));
    expect(m.artifacts.filter((a) => a.kind === 'image').length).toBeGreaterThanOrEqual(5);
    expect(m.datasets[0].name).toBe('fashion-mnist');
    expect(existsSync(join(writer.dir, 'metrics', 'train-thermometer.jsonl'))).toBe(true);
    await writer.finish();
  });
});
