import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { vjp, type Classifier } from '../../../src-main/engine/models/classifier';
import { fabSteps, minNormComparison } from '../../../src-main/engine/eval';
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

  it('FAB: a distance for every example, in L2 and Linf, next to the others', async () => {
    for (const [norm, attacks] of [['l2', ['ddn', 'fab']], ['linf', ['fmn-linf', 'fab']]] as const) {
      const before = tf.memory().numTensors;
      const r = await minNormComparison(clf, pts.images, pts.labels, { norm, attacks: [...attacks], budget: 60, curveFractions: [] });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.attacks.map((a) => a.attack)).toEqual(attacks);
      const fab = r.attacks.find((a) => a.attack === 'fab')!;
      expect(r.counted).toBeGreaterThan(10);
      for (const b of r.best) {
        const d = fab.distances[b.index];
        expect(d).not.toBeNull();
        expect(d!).toBeGreaterThan(0);
        expect(b.distance!).toBeLessThanOrEqual(d! + 1e-12);
      }
      expect(fab.successRate).toBe(1);
      // A minimum-norm search, not a fixed radius: it comes close to the best point (unlike the grid of a fixed-eps attack).
      expect(fab.optimality).toBeGreaterThan(0.7);
      if (norm === 'linf') for (const d of fab.distances) if (d !== null) expect(d).toBeLessThanOrEqual(1);
    }
  });

  it('FAB stays within the pass cap: at most 2B forward+backward passes per example, as a B-step attack', async () => {
    // Counts forward and backward passes (rows through the network) of whatever runs on it.
    const count = { forward: 0, backward: 0 };
    const counting: Classifier = {
      inputShape: clf.inputShape, numClasses: clf.numClasses,
      logits: (x) => { count.forward += x.shape[0]; return clf.logits(x); },
      vjp: (x, v) => { count.forward += x.shape[0]; count.backward += x.shape[0]; return vjp(clf, x, v); },
      linearize: (x) => {
        count.forward += x.shape[0];
        return { logits: clf.logits(x), vjp: (v) => { count.backward += x.shape[0]; return vjp(clf, x, v); } };
      },
    };
    const n = pts.labels.length;
    for (const goal of [{ kind: 'untargeted' as const }, { kind: 'targeted' as const, target: 'next' as const }]) {
      for (const budget of [30, 100]) {
        count.forward = count.backward = 0;
        const r = await minNormComparison(counting, pts.images, pts.labels, { norm: 'l2', attacks: ['fab'], budget, goal, curveFractions: [] });
        expect(r.attacks[0].successRate).toBeGreaterThan(0.5);
        // The harness (runAttack) spends 2 forward passes per example outside the attack: the clean and the final check.
        const passes = (count.forward + count.backward) / n - 2;
        expect(passes).toBeLessThanOrEqual(2 * budget);
        // ... and FAB uses the budget: its gradients are fabSteps(B) per example, within 3 passes of 2B in all.
        expect(count.backward / n).toBe(fabSteps(budget));
        expect(passes).toBeGreaterThanOrEqual(2 * budget - 3);
      }
    }
  });
});
