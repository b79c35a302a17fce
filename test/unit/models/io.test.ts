import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { AdvlabError } from '../../../src-main/engine/errors';
import {
  buildModel, checkInputShape, fromLayersModel, loadModel, modelSha256, saveModel,
} from '../../../src-main/engine/models';
import { rejection } from '../helpers';

let tmp: string;
beforeAll(async () => {
  await initBackend('wasm');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'advlab-models-io-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const input = () => tf.randomUniform([6, 8, 8, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
function predict(model: tf.LayersModel): number[] {
  return tf.tidy(() => Array.from((model.predict(input()) as tf.Tensor).dataSync()));
}

describe('save / load', () => {
  it('round-trips a model: identical predictions, tfjs model.json format, metadata, sha256', async () => {
    const model = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 9, dropout: 0.5 });
    const dir = path.join(tmp, 'roundtrip');
    const saved = await saveModel(model, dir, {
      arch: 'small-cnn', dataset: 'quadrants', classNames: ['a', 'b', 'c', 'd'], inputShape: [8, 8, 1],
      trainedBy: 'session-123', preprocessing: { distillationTemperature: 100 },
    });
    expect((await fs.readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']); // no temp files left
    const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.generatedBy).toMatch(/^TensorFlow\.js tfjs-layers v4\./);
    expect(json.convertedBy).toBeNull();
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(json.modelTopology.class_name).toBe('Sequential');
    expect(json.userDefinedMetadata.trainedBy).toBe('session-123');
    expect((await fs.stat(path.join(dir, 'weights.bin'))).size).toBe(model.countParams() * 4);

    const loaded = await loadModel(dir);
    expect(predict(loaded.model)).toEqual(predict(model));
    expect(loaded.meta).toMatchObject({ arch: 'small-cnn', dataset: 'quadrants', classNames: ['a', 'b', 'c', 'd'], inputShape: [8, 8, 1], preprocessing: { distillationTemperature: 100 } });
    expect(loaded.sha256).toBe(saved.sha256);
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await modelSha256(path.join(dir, 'model.json'))).toBe(saved.sha256);
    // The dropout layer comes back as tfjs's own Dropout.
    expect(loaded.model.layers.map((l) => l.getClassName())).toContain('Dropout');
    model.dispose(); loaded.model.dispose();
  });

  it('loads a hand-written model.json with several weight groups and shards', async () => {
    const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 4 });
    const src = path.join(tmp, 'src');
    await saveModel(model, src);
    const json = JSON.parse(await fs.readFile(path.join(src, 'model.json'), 'utf8'));
    const bin = await fs.readFile(path.join(src, 'weights.bin'));
    const specs = json.weightsManifest[0].weights as { name: string; shape: number[] }[];
    const bytes = (s: { shape: number[] }) => s.shape.reduce((a, b) => a * b, 1) * 4;
    // Group 1: the first dense layer's kernel + bias split across 3 shards at arbitrary byte offsets.
    const g1 = specs.slice(0, 2), g2 = specs.slice(2);
    const g1Bytes = g1.reduce((a, s) => a + bytes(s), 0);
    const dir = path.join(tmp, 'sharded');
    await fs.mkdir(dir);
    const cuts = [0, 1001, 9000, g1Bytes];
    const g1Paths = ['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin'];
    for (let i = 0; i < 3; i++) await fs.writeFile(path.join(dir, g1Paths[i]), bin.subarray(cuts[i], cuts[i + 1]));
    await fs.writeFile(path.join(dir, 'group2-shard1of1.bin'), bin.subarray(g1Bytes));
    json.weightsManifest = [{ paths: g1Paths, weights: g1 }, { paths: ['group2-shard1of1.bin'], weights: g2 }];
    delete json.userDefinedMetadata;
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));

    const loaded = await loadModel(path.join(dir, 'model.json'));
    expect(predict(loaded.model)).toEqual(predict(model));
    expect(loaded.weightFiles.map((f) => path.basename(f))).toEqual([...g1Paths, 'group2-shard1of1.bin']);
    expect(loaded.meta).toEqual({});
    model.dispose(); loaded.model.dispose();
  });

  it('reports missing files, bad JSON, missing and truncated shards, naming the file', async () => {
    const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4 });
    const dir = path.join(tmp, 'broken');
    await saveModel(model, dir);
    model.dispose();

    const none = await rejection(loadModel(path.join(tmp, 'nope')));
    expect(none.code).toBe('NOT_FOUND');
    expect(none.message).toContain(path.join(tmp, 'nope'));
    const empty = path.join(tmp, 'empty');
    await fs.mkdir(empty);
    expect((await rejection(loadModel(empty))).message).toContain(path.join(empty, 'model.json'));

    const good = await fs.readFile(path.join(dir, 'model.json'), 'utf8');
    const weights = await fs.readFile(path.join(dir, 'weights.bin'));

    await fs.writeFile(path.join(dir, 'model.json'), good.slice(0, 50));
    const badJson = await rejection(loadModel(dir));
    expect(badJson.code).toBe('BAD_FILE');
    expect(badJson.message).toContain(path.join(dir, 'model.json'));
    expect(badJson.message).toMatch(/not valid JSON/);

    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify({ hello: 1 }));
    expect((await rejection(loadModel(dir))).message).toMatch(/not a tfjs model\.json: modelTopology/);

    await fs.writeFile(path.join(dir, 'model.json'), good);
    await fs.rm(path.join(dir, 'weights.bin'));
    const missing = await rejection(loadModel(dir));
    expect(missing.code).toBe('BAD_FILE');
    expect(missing.message).toContain(path.join(dir, 'weights.bin'));
    expect(missing.message).toMatch(/missing/);

    await fs.writeFile(path.join(dir, 'weights.bin'), weights.subarray(0, weights.length - 8));
    const short = await rejection(loadModel(dir));
    expect(short.message).toContain(path.join(dir, 'weights.bin'));
    expect(short.message).toMatch(/size mismatch: \d+ bytes on disk but .* describes \d+ bytes/);

    const meta = JSON.parse(good);
    meta.userDefinedMetadata = { inputShape: 'big' };
    await fs.writeFile(path.join(dir, 'weights.bin'), weights);
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(meta));
    expect((await rejection(loadModel(dir))).message).toMatch(/userDefinedMetadata\.inputShape/);
  });

  it('checkInputShape names the model path and both shapes', async () => {
    const model = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4 });
    const dir = path.join(tmp, 'shape');
    await saveModel(model, dir);
    model.dispose();
    const { model: loaded } = await loadModel(dir);
    expect(() => checkInputShape(loaded, [8, 8, 1], 'quadrants')).not.toThrow();
    let err: AdvlabError | null = null;
    try { checkInputShape(loaded, [32, 32, 3], 'cifar10'); } catch (e) { err = e as AdvlabError; }
    expect(err?.code).toBe('BAD_INPUT');
    expect(err?.message).toContain(path.join(dir, 'model.json'));
    expect(err?.message).toContain('[8, 8, 1]');
    expect(err?.message).toContain('[32, 32, 3]');
    expect(err?.message).toContain('cifar10');
    expect(() => checkInputShape(fromLayersModel(loaded), [28, 28, 1])).toThrow(/expects inputs of shape \[8, 8, 1\]/);
    loaded.dispose();
  });
});
