/**
 * Defects test/fuzz found in loadModel (issue 14):
 * - a model.json whose topology does not match its weights left the layers tfjs had built (and the
 *   weights it had decoded) allocated: tensors leaked on every refusal;
 * - a topology asking for huge layers (units: 1e6) was allocated in full (over 1 GB of WASM memory,
 *   which never shrinks) before tfjs compared it with the manifest;
 * - a manifest listing every weight twice (over a shard listed twice, so the sizes add up) loaded,
 *   and tfjs leaked the second decoded copy of each weight.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { AdvlabError } from '../../../src-main/engine/errors';
import { buildModel, loadModel, saveModel } from '../../../src-main/engine/models';

let tmp: string;
let seed: { json: Record<string, any>; weights: Buffer };
beforeAll(async () => {
  await initBackend('wasm');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'advlab-models-fz-'));
  const dir = path.join(tmp, 'seed');
  const m = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 1 });
  await saveModel(m, dir);
  m.dispose();
  seed = { json: JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')), weights: await fs.readFile(path.join(dir, 'weights.bin')) };
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A copy of the seed model with the logits layer's units changed. */
async function withUnits(name: string, units: number): Promise<string> {
  const json = structuredClone(seed.json);
  const layers = json.modelTopology.config.layers as { config: Record<string, unknown> }[];
  layers.filter((l) => 'units' in l.config).at(-1)!.config.units = units;
  const dir = path.join(tmp, name);
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  await fs.writeFile(path.join(dir, 'weights.bin'), seed.weights);
  return dir;
}

async function refusal(dir: string): Promise<AdvlabError> {
  try {
    const m = await loadModel(dir);
    m.model.dispose();
  } catch (e) {
    expect(e).toBeInstanceOf(AdvlabError);
    return e as AdvlabError;
  }
  throw new Error('expected the model to be refused');
}

describe('loadModel defects found by fuzzing', () => {
  it('a topology that does not match its weights is refused without leaking a tensor', async () => {
    const dir = await withUnits('mismatch', 3); // the weights hold 4 logits
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const e = await refusal(dir);
      expect(e.code).toBe('BAD_FILE');
      expect(e.message).toContain(path.join(dir, 'model.json'));
    }
    expect(tf.memory().numTensors).toBe(before);
    // The seed still loads, and its weights are the ones kept alive.
    const ok = await loadModel(path.join(tmp, 'seed'));
    expect(tf.memory().numTensors).toBe(before + ok.model.weights.length);
    ok.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a topology declaring more weight values than the manifest holds is refused before it is allocated', async () => {
    const dir = await withUnits('huge', 1_000_000);
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    const e = await refusal(dir);
    expect(e.message).toMatch(/model\.json: cannot be loaded as a tfjs layers model: the topology declares more weight values than the \d+ its weightsManifest holds \(layer "logits", weight "kernel" of shape \[\d+,1000000\]\)/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
    expect(performance.now() - t0).toBeLessThan(5000);
    // Layers keep their own addWeight afterwards: a model still builds and loads.
    const again = await loadModel(path.join(tmp, 'seed'));
    expect(again.model.countParams()).toBe(seed.weights.length / 4);
    again.model.dispose();
  });

  it('a weight listed twice in weightsManifest is refused, naming it (no leaked copy)', async () => {
    const json = structuredClone(seed.json);
    const group = json.weightsManifest[0];
    group.weights = [...group.weights, ...group.weights];
    group.paths = [...group.paths, ...group.paths]; // the sizes add up: twice the shard for twice the weights
    const dir = path.join(tmp, 'twice');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    await fs.writeFile(path.join(dir, 'weights.bin'), seed.weights);
    const before = tf.memory().numTensors;
    const e = await refusal(dir);
    expect(e.message).toBe(`${path.join(dir, 'model.json')}: weight "${group.weights[0].name}" is listed twice in weightsManifest`);
    expect(tf.memory().numTensors).toBe(before);
  });
});
