import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import type { Classifier } from '../../../src-main/engine/models/classifier';
import { minNormComparison } from '../../../src-main/engine/eval';
import { runAttack, toImageData, toLabels } from '../../../src-main/engine/attacks/base';
import { mnist, trainDense, type Subset } from '../attacks/helpers';

let clf: Classifier;
let pts: Subset;

beforeAll(async () => {
  await initBackend('wasm');
  clf = (await trainDense(mnist(0, 1000), 64, 8, 1)).classifier;
  pts = mnist(5000, 16);
});

describe('minimum-norm comparison (AttackBench optimality)', () => {
  it('per example the best of all attacks; optimality = mean best / own distance; curves at 3 budgets', async () => {
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const r = await minNormComparison(clf, pts.images, pts.labels, { norm: 'l2', attacks: ['cw-l2', 'ddn', 'fmn', 'apgd'], budget: 100 }, ctx);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.attacks.map((a) => a.attack)).toEqual(['cw-l2', 'ddn', 'fmn', 'apgd']);
    for (const b of r.best) {
      expect(b.distance).not.toBeNull();
      for (const a of r.attacks) if (a.distances[b.index] !== null) expect(b.distance!).toBeLessThanOrEqual(a.distances[b.index]! + 1e-12);
      expect(r.attacks.find((a) => a.attack === b.attack)!.distances[b.index]).toBe(b.distance);
    }
    for (const a of r.attacks) {
      // Recomputed here from the distances: mean over examples of best / own (0 where it failed).
      const own = r.best.map((b) => (a.distances[b.index] === null ? 0 : b.distance! / a.distances[b.index]!));
      expect(a.optimality).toBeCloseTo(own.reduce((s, v) => s + v, 0) / own.length, 10);
      expect(a.optimality).toBeLessThanOrEqual(1);
      expect(a.curve.map((c) => c.budget)).toEqual([10, 33, 100]);
    }
    const byId = Object.fromEntries(r.attacks.map((a) => [a.attack, a]));
    expect(byId.fmn.optimality).toBeGreaterThan(0.85);
    expect(byId.ddn.optimality).toBeGreaterThan(0.85);
    // A fixed-epsilon attack on a 5-point radius grid lands further from the boundary.
    expect(byId.apgd.optimality).toBeLessThan(byId.fmn.optimality);
    // More budget, closer: FMN's and DDN's median distances (failures infinitely far) do not grow from 10 to 100 passes.
    for (const a of [byId.fmn, byId.ddn]) expect(a.curve[2].medianDistance!).toBeLessThanOrEqual(a.curve[0].medianDistance ?? Infinity);
    for (let i = 1; i < ctx.events.length; i++) expect(ctx.events[i].step / ctx.events[i].total).toBeGreaterThanOrEqual(ctx.events[i - 1].step / ctx.events[i - 1].total - 1e-12);
  });

  it('C&W at its own budget (search steps x iterations) is the reference: its distances are those of that C&W run; curves scale its iterations', async () => {
    const cw = { binarySearchSteps: 2, maxIterations: 30 };
    const r = await minNormComparison(clf, pts.images, pts.labels, { norm: 'l2', attacks: ['cw-l2', 'ddn'], budget: 20, cw });
    const byId = Object.fromEntries(r.attacks.map((a) => [a.attack, a]));
    expect(byId['cw-l2'].curve.map((c) => c.budget)).toEqual([6, 20, 60]);
    expect(byId.ddn.curve.map((c) => c.budget)).toEqual([2, 7, 20]);
    const { data, n } = toImageData(pts.images, clf);
    const direct = await runAttack('cw-l2', clf, data, toLabels(pts.labels, n, clf.numClasses), { kind: 'untargeted' }, cw);
    expect(byId['cw-l2'].distances).toEqual(direct.perExample.map((e) => (e.counted && e.success ? e.l2 : null)));
    await expect(minNormComparison(clf, pts.images, pts.labels, { norm: 'l2', attacks: ['cw-l2'], cw: { binarySearchSteps: 0, maxIterations: 10 } })).rejects.toThrow(/whole binary-search steps/);
  });

  it('refuses attacks that do not belong to the norm', async () => {
    await expect(minNormComparison(clf, pts.images, pts.labels, { norm: 'linf', attacks: ['ddn'] })).rejects.toThrow(/cannot be compared in linf; choose from fmn-linf, apgd/);
  });
});
