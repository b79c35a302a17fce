/**
 * The 'all' target (one result per image and each other class) and its best / average / worst case
 * summary, the way Carlini & Wagner 2017 (Table IV) report it.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAttack } from '../../../src-main/engine/attacks';
import { expandAllTargets, targetCases } from '../../../src-main/engine/attacks/all-targets';
import { goalSchema } from '../../../src-main/engine/attacks/types';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { mnist, trainDense } from './helpers';

describe('targeted all', () => {
  it('expands each image into its other classes and summarises best, average and worst case', () => {
    const e = expandAllTargets([2, 0], 3);
    expect(Array.from(e.source)).toEqual([0, 0, 1, 1]);
    expect(e.targets).toEqual([0, 1, 1, 2]);
    const row = (index: number, success: boolean, l2: number, cleanCorrect = true) => ({ index, cleanCorrect, success, l2 });
    const c = targetCases([
      row(0, true, 1), row(0, true, 3), // image 0: both targets reached: best 1, worst 3
      row(1, true, 2), row(1, false, 0), // image 1: one reached: best 2, no worst case
      row(2, false, 0, false), row(2, false, 0, false), // image 2: misclassified before the attack: not counted
    ]);
    expect(c).toEqual({
      images: 2, targetsPerImage: 2,
      best: { successRate: 1, meanL2: 1.5 },
      average: { successRate: 0.75, meanL2: 2 },
      worst: { successRate: 0.5, meanL2: 3 },
    });
    expect(goalSchema.parse({ kind: 'targeted', target: 'all' })).toEqual({ kind: 'targeted', target: 'all' });
  });

  let clf: Classifier;
  beforeAll(async () => {
    clf = (await trainDense(mnist(1000, 500), 32, 4, 3)).classifier;
  });

  it('runAttack gives one row per (image, other class), keeps each image\'s index, and does not leak tensors', async () => {
    const s = mnist(0, 3);
    const before = tf.memory().numTensors;
    const r = await runAttack('ddn', clf, s.images, s.labels, { kind: 'targeted', target: 'all' }, { steps: 30 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.perExample).toHaveLength(27);
    expect(r.adversarial.length).toBe(27 * 784);
    for (let i = 0; i < 3; i++) {
      const rows = r.perExample.filter((e) => e.index === i);
      expect(rows.map((e) => e.target).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((t) => t !== s.labels[i]));
      expect(rows.every((e) => e.label === s.labels[i])).toBe(true);
    }
    expect(r.goal).toEqual({ kind: 'targeted', target: 'all' });
    const c = r.targetCases!;
    expect(c).toEqual(targetCases(r.perExample));
    expect(c.targetsPerImage).toBe(9);
    expect(c.images).toBe(r.perExample.filter((e) => e.cleanCorrect).length / 9);
    if (c.best.meanL2 !== null && c.average.meanL2 !== null) expect(c.best.meanL2).toBeLessThanOrEqual(c.average.meanL2);
    if (c.worst.meanL2 !== null && c.average.meanL2 !== null) expect(c.worst.meanL2).toBeGreaterThanOrEqual(c.average.meanL2);
  });
});
