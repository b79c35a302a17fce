/**
 * Fuzzing model loading (issue 14): a small model saved by the engine, then its model.json mutated
 * structurally (values replaced, keys dropped, numbers scaled: units, shapes, dtypes) and byte by
 * byte, its weight file truncated, grown and flipped, and its weight paths pointed out of the
 * folder (relative, absolute, through a symlink, at a device). Every input loads (a model whose
 * weights are the file's) or is refused with an AdvlabError that names model.json or the shard;
 * no input is slow, grows memory or leaks tensors, and nothing outside the model folder changes.
 */
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src-main/engine/backend';
import { buildModel, loadModel, saveModel } from '../../src-main/engine/models';
import { count, fuzz, listing, mutateBytesN, mutateJson, type Rng } from './harness';

const parent = mkdtempSync(path.join(tmpdir(), 'advlab-fuzz-model-'));
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => rmSync(parent, { recursive: true, force: true }));

interface Input {
  how: string;
  json: string;
  weights: Buffer;
  /** Extra files: name -> symlink target. */
  links?: Record<string, string>;
}

describe('fuzz: model.json and weights', () => {
  it('mutated model folders load or are refused naming the file; no leak, no growth, nothing outside', async () => {
    const seedDir = path.join(parent, 'seed');
    await saveModel(buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 }), seedDir, { classNames: ['a', 'b', 'c', 'd'], inputShape: [8, 8, 1] });
    const seedJson = readFileSync(path.join(seedDir, 'model.json'), 'utf8');
    const seedWeights = readFileSync(path.join(seedDir, 'weights.bin'));
    const seedObj = JSON.parse(seedJson);
    // A file outside the model folder with exactly the weights' size: a path that leaves must not reach it.
    writeFileSync(path.join(parent, 'outside.bin'), seedWeights);
    const dir = path.join(parent, 'm');
    const before = listing(parent, ['m']);
    const tensors = tf.memory().numTensors;
    const leaks: string[] = [];

    const ESCAPES = ['../outside.bin', '../seed/weights.bin', path.join(parent, 'outside.bin'), 'sub/../../outside.bin', 'file:///etc/passwd', '/dev/zero', 'link.bin', 'zero.bin', '.', 'sub', 'weights.bin\u0000x'];
    const out = await fuzz('model', count(2000), {
      maxMs: 5000,
      make: (rng: Rng): Input => {
        const mode = rng.int(10);
        if (mode < 5) {
          let obj: unknown = seedObj;
          for (let k = 1 + rng.int(2); k > 0; k--) obj = mutateJson(rng, obj);
          return { how: 'json', json: JSON.stringify(obj) ?? 'undefined', weights: seedWeights };
        }
        if (mode === 5) { // a topology asking for huge layers, the weights as they were
          const obj = structuredClone(seedObj);
          const layers = obj.modelTopology.config.layers as { config: Record<string, unknown> }[];
          const l = rng.pick(layers.filter((x) => 'units' in x.config || 'filters' in x.config));
          const key = 'units' in l.config ? 'units' : 'filters';
          const v = rng.pick([1e4, 1e5, 1e6, 1e7, 2 ** 31 - 1, 0, -1]);
          l.config[key] = v;
          return { how: `${key}=${v}`, json: JSON.stringify(obj), weights: seedWeights };
        }
        if (mode < 7) return { how: 'text', json: mutateBytesN(rng, Buffer.from(seedJson)).toString('utf8'), weights: seedWeights };
        if (mode < 9) return { how: 'weights', json: seedJson, weights: mutateBytesN(rng, seedWeights) };
        const obj = structuredClone(seedObj);
        const p = rng.pick(ESCAPES);
        obj.weightsManifest[0].paths = rng.chance(0.5) ? [p] : ['weights.bin', p];
        return { how: `path ${JSON.stringify(p)}`, json: JSON.stringify(obj), weights: seedWeights, links: { 'link.bin': path.join(parent, 'outside.bin'), 'zero.bin': '/dev/zero' } };
      },
      run: async (input) => {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(path.join(dir, 'sub'), { recursive: true });
        writeFileSync(path.join(dir, 'model.json'), input.json);
        writeFileSync(path.join(dir, 'weights.bin'), input.weights);
        for (const [name, target] of Object.entries(input.links ?? {})) symlinkSync(target, path.join(dir, name));
        const t0 = tf.memory().numTensors;
        let m;
        try {
          m = await loadModel(dir);
        } finally {
          // A refused model leaves no tensor behind (the layers it built before failing are disposed).
          const left = tf.memory().numTensors - t0 - (m ? m.model.weights.length : 0);
          if (left !== 0) leaks.push(`${input.how}: ${left} tensors (${m ? 'loaded' : 'refused'})`);
        }
        try {
          // What loaded is the folder's own weights file, nothing else.
          if (m.weightFiles.some((f) => path.dirname(f) !== dir && !f.startsWith(dir + path.sep))) throw new Error(`read a shard outside the folder: ${m.weightFiles}`);
          if (m.weightFiles.some((f) => /link\.bin|zero\.bin/.test(f))) throw new Error(`followed a symlink out: ${m.weightFiles}`);
        } finally {
          m.model.dispose();
        }
      },
      check: (e) => {
        if (e.code === 'INTERNAL') return `INTERNAL: ${e.message}`;
        if (!e.message.includes(dir)) return `message names neither model.json nor a shard: ${e.message.slice(0, 200)}`;
        return null;
      },
      describe: (i) => `${i.how}: ${i.json.length} bytes of JSON, ${i.weights.length} of weights`,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(out.failures).toEqual([]);
    expect(leaks).toEqual([]);
    expect(out.refused).toBeGreaterThan(out.tried / 3);
    expect(out.accepted).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(listing(parent)).toEqual(before);
  });
});
