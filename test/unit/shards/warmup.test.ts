/**
 * A pool thread's warm-up (engine/shards/warmup.ts): it runs the warm-up attacks through the shard
 * path's own function and leaves nothing behind (no tensor, no change to what a later batch gives);
 * an unknown warm-up attack is refused with the accepted list.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { attackOneBatch, parseAttackParams } from '../../../src-main/engine/attacks/base';
import { getAttack } from '../../../src-main/engine/attacks/registry';
import { silentContext } from '../../../src-main/engine/context';
import { fromLayersModel, type Classifier } from '../../../src-main/engine/models/classifier';
import { DEFAULT_WARM_UP, WARM_UP_ATTACKS, warmUpEngine } from '../../../src-main/engine/shards/warmup';
import { mnist, trainDense } from '../attacks/helpers';

let clf: Classifier;
const pts = mnist(5000, 4);

beforeAll(async () => {
  await initBackend('wasm');
  const { model } = await trainDense(mnist(0, 200), 16, 1, 3);
  clf = fromLayersModel(model);
});

/** A PGD batch with a random start and a C&W batch on the test model: what a shard would return. */
async function batches(): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [id, params, targets] of [
    ['pgd', { eps: 0.1, steps: 5, randomStart: true, seed: 3 }, null],
    ['cw-l2', { binarySearchSteps: 2, maxIterations: 10 }, Int32Array.from(pts.labels, (l) => (l + 1) % 10)],
  ] as const) {
    const def = getAttack(id);
    const r = await attackOneBatch(def, parseAttackParams(def, params, clf), clf, pts.images.slice(), pts.labels.slice(), targets, silentContext, () => {});
    out.push(r.adversarial);
  }
  return out;
}

describe('warmUpEngine', () => {
  it('runs every default warm-up attack, leaves no tensor, and a batch after it gives the same adversarials as before it', async () => {
    const before = await batches();
    const tensors = tf.memory().numTensors;
    const r = await warmUpEngine();
    expect(r.attacks).toEqual([...DEFAULT_WARM_UP]);
    expect(r.attacks).toEqual(Object.keys(WARM_UP_ATTACKS));
    expect(r.ms).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(tensors);
    const after = await batches();
    for (const [i, a] of after.entries()) expect(Buffer.from(a.buffer).equals(Buffer.from(before[i].buffer))).toBe(true);
  }, 60_000);

  it('refuses an attack it has no warm-up for, naming the ones it has, before running anything', async () => {
    const tensors = tf.memory().numTensors;
    await expect(warmUpEngine(['pgd', 'no-such-attack'])).rejects.toThrow(/No warm-up for attack "no-such-attack" \(warm-up attacks: pgd, cw-l2\)/);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
