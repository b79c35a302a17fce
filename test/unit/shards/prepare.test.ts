/**
 * Preparing a job's model in the pool threads before its shards (ShardExecutor.prepare, issue 17: the
 * first job after the app started was slower than a warm one because each thread's first shard loaded
 * the model and compiled its code). In a thread, prepareClassifiers puts the model in the classifier
 * cache (the shards then use it: with its files gone afterwards, a prepared thread still runs the
 * shard, an unprepared one cannot) and leaves no other tensor; on the pool, every thread prepares the
 * model once, reports it, and gives the same seeded results as a pool that did not prepare; a model
 * that cannot be loaded leaves the thread working; and a job run by the runner prepares its model on
 * the pool's threads by itself (the job thread's jobEngine asks, through the relay, once it has chosen tfjs).
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { loadModel, saveModel } from '../../../src-main/engine/models/io';
import { classifierFor } from '../../../src-main/engine/models/defended';
import type { AttackBatchTask } from '../../../src-main/engine/attacks/base';
import type { ClassifierSpec } from '../../../src-main/engine/shards/types';
import { cachedClassifiers, clearClassifierCache } from '../../../src-main/engine/shards/classifiers';
import { prepareClassifiers } from '../../../src-main/engine/shards/warmup';
import { runAttackBatch } from '../../../src-main/engine/shards/attack-batch';
import { silentContext } from '../../../src-main/engine/context';
import { ShardPool } from '../../../src-main/jobs/pool';
import { JobRunner } from '../../../src-main/jobs/runner';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import { LocalContext } from '../../../src-main/engine/context';
import { mnist, trainDense } from '../attacks/helpers';
import { DATA, WORKER } from '../helpers';

const SHARD_WORKER = join(WORKER, '../shard-worker.js');
let dir: string;
let modelDir: string;
let spec: ClassifierSpec;
const pools: ShardPool[] = [];
const pool = (size: number) => {
  const p = new ShardPool({ size, backend: 'wasm', workerPath: SHARD_WORKER });
  pools.push(p);
  return p;
};
const flag = () => new SharedArrayBuffer(4);
const pts = mnist(5000, 2);
const task = (s: ClassifierSpec): AttackBatchTask => ({
  classifier: s, attack: 'pgd', params: { eps: 0.1, steps: 4, randomStart: true, restarts: 1, seed: 0, loss: 'ce', kappa: 0 },
  images: pts.images.slice(), shape: [2, 28, 28, 1], labels: pts.labels.slice(), targets: null, batch: 0,
});
type Out = { adversarial: Float32Array; iterations: Int32Array };
const same = (a: Out, b: Out) => Buffer.from(a.adversarial.buffer).equals(Buffer.from(b.adversarial.buffer)) && [...a.iterations].join() === [...b.iterations].join();

/** A copy of the model in its own folder (so it can be removed) and its spec. */
async function copyOfModel(name: string): Promise<{ dir: string; spec: ClassifierSpec }> {
  const d = join(dir, name);
  cpSync(modelDir, d, { recursive: true });
  const loaded = await loadModel(d);
  const s = classifierFor(loaded).spec!;
  loaded.model.dispose();
  return { dir: d, spec: s };
}

const until = async (cond: () => boolean, ms = 60_000) => {
  const t = performance.now();
  while (!cond()) {
    if (performance.now() - t > ms) throw new Error('timed out');
    await new Promise((ok) => setTimeout(ok, 20));
  }
};

beforeAll(async () => {
  if (!existsSync(SHARD_WORKER)) throw new Error(`${SHARD_WORKER} is missing: run "npx electron-vite build" first`);
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'advlab-prepare-'));
  modelDir = join(dir, 'model');
  const { model } = await trainDense(mnist(0, 200), 16, 1, 3);
  await saveModel(model, modelDir);
  model.dispose();
  spec = (await copyOfModel('main')).spec;
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await clearClassifierCache();
  rmSync(dir, { recursive: true, force: true });
});

describe('prepareClassifiers (in a thread)', () => {
  it('loads the model into the classifier cache, where the shard finds it (its files gone), leaves only its weights, and changes no result', async () => {
    await clearClassifierCache();
    const { dir: d, spec: s } = await copyOfModel('in-thread');
    const cold = (await runAttackBatch(task(s), silentContext)) as Out;
    await clearClassifierCache();
    const tensors = tf.memory().numTensors;
    const r = await prepareClassifiers([s]);
    expect(r.models).toEqual([s.sha256]);
    expect(cachedClassifiers()).toBe(1);
    const weights = tf.memory().numTensors - tensors;
    expect(weights).toBeGreaterThan(0);
    expect(weights).toBeLessThanOrEqual(8); // the model's own weights (2 dense layers), nothing of the attacks
    rmSync(d, { recursive: true, force: true });
    const prepared = (await runAttackBatch(task(s), silentContext)) as Out;
    expect(same(prepared, cold)).toBe(true);
    await clearClassifierCache();
    await expect(runAttackBatch(task(s), silentContext)).rejects.toThrow(); // unprepared, the files are needed
  }, 120_000);
});

describe('ShardPool.prepare', () => {
  it('every thread prepares the model once and reports it; a prepared thread runs its shard without the files; results equal an unprepared pool\'s', async () => {
    const { dir: d, spec: s } = await copyOfModel('pool');
    const reference = (await pool(1).run('ref', { type: 'attack-batch', id: 'p/0', task: task(s) }, flag())) as Out;
    const p = pool(2);
    p.prepare([s]);
    expect(p.warmth()).toHaveLength(2); // prepare starts the threads the pool may have
    await until(() => p.warmth().every((w) => w.prepared !== undefined));
    for (const w of p.warmth()) {
      expect(w.prepared!.models).toEqual([s.sha256]);
      expect(w.prepared!.error).toBeUndefined();
      expect(w.prepared!.ms).toBeGreaterThan(0);
    }
    const first = p.warmth().map((w) => w.prepared);
    p.prepare([s]); // asked already: not asked again
    await new Promise((ok) => setTimeout(ok, 300));
    expect(p.warmth().map((w) => w.prepared)).toEqual(first);
    rmSync(d, { recursive: true, force: true });
    const outs = (await Promise.all([0, 1].map((i) => p.run('prepared', { type: 'attack-batch', id: `p/${i}`, task: task(s) }, flag())))) as Out[];
    expect(new Set(p.timings('prepared').map((t) => t.threadId)).size).toBe(2); // one on each prepared thread
    for (const o of outs) expect(same(o, reference)).toBe(true);
  }, 120_000);

  it('a model that cannot be prepared is reported on the thread, which still runs shards', async () => {
    const p = pool(1);
    p.prepare([{ ...spec, modelJson: join(dir, 'nowhere', 'model.json') }]);
    await until(() => p.warmth()[0]?.prepared !== undefined);
    expect(p.warmth()[0].prepared!.error).toBeTruthy();
    expect(p.warmth()[0].prepared!.models).toEqual([]);
    const out = (await p.run('after', { type: 'attack-batch', id: 'a/0', task: task(spec) }, flag())) as Out;
    expect(out.adversarial.length).toBe(2 * 784);
  }, 120_000);
});

describe('a job prepares its model on the pool by itself', () => {
  it('an attack job run by the runner: each pool thread reports the job\'s model prepared', async () => {
    const sessionsRoot = join(dir, 'sessions');
    const env = { backend: await initBackend('wasm'), dataDirs: [DATA], sessionsRoot, onSession: () => undefined };
    const model = ((await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 100, testLimit: 10, validationSplit: 0 }, new LocalContext(), env)) as { session: string }).session;
    const runner = new JobRunner({ env: { dataDirs: [DATA], sessionsRoot, backend: 'wasm' }, workerPath: WORKER, maxJobs: 1, workers: 2 });
    try {
      const { done } = runner.start('attack', { model, dataset: 'mnist', n: 8, batchSize: 4, attack: 'pgd', engine: 'tfjs', saveExamples: 0, goal: { kind: 'untargeted' }, tags: [], params: { steps: 2 } });
      const info = await done;
      expect(info.state, JSON.stringify(info.error)).toBe('finished');
      await until(() => (runner.pool?.warmth() ?? []).every((w) => w.prepared !== undefined));
      const warmth = runner.pool!.warmth();
      expect(warmth).toHaveLength(2);
      for (const w of warmth) {
        expect(w.prepared!.error).toBeUndefined();
        expect(w.prepared!.models).toHaveLength(1);
        expect(w.prepared!.models[0]).toMatch(/^[0-9a-f]{64}$/);
      }
    } finally {
      await runner.shutdown();
    }
  }, 180_000);
});
