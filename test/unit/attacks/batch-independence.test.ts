import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { runAttack } from '../../../src-main/engine/attacks';
import { mnist, trainDense, type Subset } from './helpers';

let clf: Classifier;
let pts: Subset;

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5400, 12);
});

/**
 * The attacks evaluate runs draw their randomness per image (seeded by the seed and the image's pixels),
 * so evaluate may split a chunk into any shards: an image's result must not depend on its batch.
 */
describe('per-example results do not depend on the batch size', () => {
  it.each([
    ['apgd', { eps: 0.05, steps: 15, restarts: 3 }],
    ['apgd-l2', { eps: 0.8, steps: 15, restarts: 2, loss: 'dlr' }],
    ['apgd-t', { eps: 0.05, steps: 10, targetClasses: 3, restarts: 2 }],
    ['fab-t', { eps: 0.05, steps: 10, targetClasses: 3, restarts: 2 }],
    ['square', { eps: 0.05, queries: 200 }],
  ] as const)('%s %j: the same adversarials and iterations in batches of 12, 5 and 1', async (id, params) => {
    const runs = [];
    for (const batchSize of [12, 5, 1]) runs.push(await runAttack(id, clf, pts.images, pts.labels, { kind: 'untargeted' }, params, undefined, { batchSize }));
    const [whole, ...others] = runs;
    // The setting leaves some images robust and breaks others, so restarts and random starts matter.
    expect(whole.summary.successes).toBeGreaterThan(0);
    expect(whole.summary.successes).toBeLessThan(whole.summary.counted);
    for (const r of others) {
      expect(r.perExample.map((e) => e.iterations)).toEqual(whole.perExample.map((e) => e.iterations));
      expect(r.perExample.map((e) => e.advPred)).toEqual(whole.perExample.map((e) => e.advPred));
      expect(Buffer.from(r.adversarial.buffer).equals(Buffer.from(whole.adversarial.buffer))).toBe(true);
    }
  });
});
