/**
 * Crafted model folders (issue 14): weight paths that leave the folder (.., absolute, symlinks) are
 * refused; shapes/dtypes whose byte size does not match the shards (dtype "string" included) are
 * refused before any shard is read; reads are capped so /dev/zero, a FIFO or a huge sparse file
 * never grows memory or hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../../src-main/engine/backend';
import { AdvlabError } from '../../../src-main/engine/errors';
import { buildModel, loadModel, modelSha256, saveModel } from '../../../src-main/engine/models';
import { MAX_MODEL_JSON_BYTES, MAX_MODEL_WEIGHT_BYTES } from '../../../src-main/engine/models/io';
import { rejection } from '../helpers';

let tmp: string;
let good: { json: Record<string, unknown> & { weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[] }; bin: Buffer };
beforeAll(async () => {
  await initBackend('wasm');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'advlab-models-hard-'));
  const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 });
  await saveModel(model, path.join(tmp, 'good'));
  model.dispose();
  good = { json: JSON.parse(await fs.readFile(path.join(tmp, 'good', 'model.json'), 'utf8')), bin: await fs.readFile(path.join(tmp, 'good', 'weights.bin')) };
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});


/** A model folder `name` holding the good model.json with its manifest changed by `edit`. */
async function crafted(name: string, edit: (json: typeof good.json) => void, files: Record<string, Buffer> = { 'weights.bin': good.bin }): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  const json = structuredClone(good.json);
  edit(json);
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  for (const [f, data] of Object.entries(files)) await fs.writeFile(path.join(dir, f), data);
  return dir;
}

describe('model.json weight paths stay in the model folder', () => {
  it('"../" paths, absolute paths and symlinks out of the folder are refused (even when the target fits)', async () => {
    await fs.writeFile(path.join(tmp, 'outside.bin'), good.bin);
    const up = await crafted('up', (j) => { j.weightsManifest[0].paths = ['../outside.bin']; }, {});
    expect((await rejection(loadModel(up))).message).toMatch(/weight path "\.\.\/outside\.bin" leaves the model folder/);
    const sneaky = await crafted('sneaky', (j) => { j.weightsManifest[0].paths = ['sub/../../outside.bin']; }, {});
    expect((await rejection(loadModel(sneaky))).message).toMatch(/leaves the model folder/);
    const abs = await crafted('abs', (j) => { j.weightsManifest[0].paths = [path.join(tmp, 'outside.bin')]; }, {});
    expect((await rejection(modelSha256(abs))).message).toMatch(/must be relative to the model folder/);
    const link = await crafted('link', () => {}, {});
    await fs.symlink(path.join(tmp, 'outside.bin'), path.join(link, 'weights.bin'));
    const linked = await rejection(loadModel(link));
    expect(linked.code).toBe('BAD_FILE');
    expect(linked.message).toMatch(/weight path "weights\.bin" is a symlink that leads out of the model folder/);
    // A symlink that stays inside the folder is fine.
    const inside = await crafted('inside', (j) => { j.weightsManifest[0].paths = ['w.bin']; }, { 'real.bin': good.bin });
    await fs.symlink('real.bin', path.join(inside, 'w.bin'));
    const loaded = await loadModel(inside);
    expect(loaded.weightFiles).toEqual([path.join(inside, 'w.bin')]);
    loaded.model.dispose();
  });
});

describe('shapes and dtypes are checked against the shards before reading', () => {
  it('dtype "string" and unknown dtypes are refused, naming the weight', async () => {
    const str = await crafted('str', (j) => { j.weightsManifest[0].weights[0].dtype = 'string'; });
    expect((await rejection(loadModel(str))).message).toMatch(/weight ".+" has dtype "string": only fixed-size dtypes/);
    const odd = await crafted('odd', (j) => { j.weightsManifest[0].weights[1].dtype = 'int4'; });
    expect((await rejection(loadModel(odd))).message).toMatch(/dtype "int4"/);
  });

  it('a shard larger than the manifest says is refused without being read (a sparse 4 GiB file)', async () => {
    const dir = await crafted('huge-shard', () => {});
    await fs.truncate(path.join(dir, 'weights.bin'), 4 * 1024 ** 3);
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const e = await rejection(loadModel(dir));
    expect(e.message).toMatch(/size mismatch: 4294967296 bytes on disk but .* describes \d+ bytes/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it(`weights over MAX_MODEL_WEIGHT_BYTES are refused before reading, even when the sizes agree`, async () => {
    const n = MAX_MODEL_WEIGHT_BYTES / 4 + 1024;
    const dir = await crafted('too-big', (j) => {
      j.weightsManifest = [{ paths: ['big.bin'], weights: [{ name: 'big', shape: [n], dtype: 'float32' }] }];
    }, {});
    await fs.writeFile(path.join(dir, 'big.bin'), '');
    await fs.truncate(path.join(dir, 'big.bin'), n * 4);
    const before = process.memoryUsage().rss;
    const e = await rejection(loadModel(dir));
    expect(e.message).toMatch(new RegExp(`more than the ${MAX_MODEL_WEIGHT_BYTES}-byte limit \\(MAX_MODEL_WEIGHT_BYTES\\)`));
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('reads are capped: devices, FIFOs and huge files never grow memory or hang', () => {
  it('a model path of /dev/zero is refused at once', async () => {
    const before = process.memoryUsage().rss;
    const e = await rejection(loadModel('/dev/zero'));
    expect(e.message).toMatch(/\/dev\/zero: is not a regular file/);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('a FIFO as the model path or as model.json is refused, not waited on', async () => {
    const fifo = path.join(tmp, 'model-fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect((await rejection(loadModel(fifo))).message).toMatch(/model-fifo\.json: is not a regular file/);
    const dir = path.join(tmp, 'fifo-dir');
    await fs.mkdir(dir);
    execFileSync('mkfifo', [path.join(dir, 'model.json')]);
    expect((await rejection(loadModel(dir))).message).toMatch(/model\.json: is not a regular file/);
  });

  it('a FIFO listed as a weight shard is refused, not waited on', async () => {
    const dir = await crafted('fifo', () => {}, {});
    execFileSync('mkfifo', [path.join(dir, 'weights.bin')]);
    expect((await rejection(loadModel(dir))).message).toMatch(/weights\.bin: weight shard .* is not a regular file/);
  });

  it('a model.json over MAX_MODEL_JSON_BYTES is refused without being read', async () => {
    const dir = await crafted('fat-json', () => {});
    await fs.truncate(path.join(dir, 'model.json'), MAX_MODEL_JSON_BYTES + 1);
    const e = await rejection(loadModel(dir));
    expect(e.message).toMatch(new RegExp(`model\\.json: ${MAX_MODEL_JSON_BYTES + 1} bytes is over the ${MAX_MODEL_JSON_BYTES}-byte limit \\(MAX_MODEL_JSON_BYTES\\)`));
  });
});
