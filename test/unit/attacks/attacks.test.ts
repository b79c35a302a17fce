import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import { fromLayersModel, type Classifier } from '../../../src-main/engine/models/classifier';
import {
  ATTACK_IDS,
  attackCatalog,
  getAttack,
  resolveTargets,
  runAttack,
  transferAttack,
  type AttackResult,
} from '../../../src-main/engine/attacks';
import { cancelAfterForwardPasses, mnist, trainDense, type Subset } from './helpers';

let clf: Classifier;
let other: Classifier;
let pts: Subset;

/** Cheap settings per attack (defaults where they are already cheap). */
const CHEAP: Record<string, Record<string, unknown>> = {
  fgsm: {},
  bim: {},
  pgd: { steps: 20 },
  'pgd-l2': { steps: 20 },
  'pgd-margin': { steps: 20 },
  'cw-l2': { binarySearchSteps: 5, maxIterations: 100, initialConst: 0.1, learningRate: 0.05 },
  ddn: { steps: 50 },
};

/** Predictions of a classifier on a flat batch, computed independently of the attack code. */
function predict(c: Classifier, images: Float32Array): number[] {
  return tf.tidy(() => Array.from(tf.argMax(c.logits(tf.tensor4d(images, [images.length / 784, 28, 28, 1])), 1).dataSync()));
}

function expectBadInput(p: Promise<unknown>, pattern: RegExp) {
  return expect(p).rejects.toSatisfy((e: unknown) => e instanceof AdvlabError && e.code === 'BAD_INPUT' && pattern.test(e.message));
}

function meanOver(r: AttackResult, idx: number[]): number {
  return idx.reduce((s, i) => s + r.perExample[i].l2, 0) / idx.length;
}

beforeAll(async () => {
  await initBackend('wasm');
  const train = mnist(0, 1000);
  clf = (await trainDense(train, 64, 8, 1)).classifier;
  other = (await trainDense(train, 32, 8, 7)).classifier;
  pts = mnist(5000, 16);
});

describe('attack registry', () => {
  it('lists every attack with a working default and a JSON schema for its parameters', () => {
    const cat = attackCatalog();
    expect(cat.map((a) => a.id).sort()).toEqual(['apgd', 'apgd-l2', 'apgd-t', 'apgd-t-l2', 'bim', 'cw-l2', 'ddn', 'fab-t', 'fab-t-l2', 'fgsm', 'fmn', 'fmn-linf', 'pgd', 'pgd-l2', 'pgd-margin', 'square', 'square-l2']);
    for (const a of cat) {
      expect(a.description.length).toBeGreaterThan(40);
      expect(a.paper.year).toBeGreaterThan(2013);
      expect(JSON.parse(JSON.stringify(a.paramsJsonSchema))).toMatchObject({ type: 'object', additionalProperties: false });
      expect(getAttack(a.id).paramsSchema.parse({})).toEqual(a.defaults);
    }
  });
});

describe('every attack against an undefended MLP', () => {
  it.each(ATTACK_IDS)('%s succeeds, stays in [0, 1] and in its budget, and leaks no tensors', async (id) => {
    const before = tf.memory().numTensors;
    const r = await runAttack(id, clf, pts.images, pts.labels, { kind: 'untargeted' }, CHEAP[id]);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.summary.counted).toBeGreaterThanOrEqual(12);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.9);
    let lo = Infinity, hi = -Infinity;
    for (const v of r.adversarial) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    // Success is judged on the returned images: re-check with an independent forward pass.
    const advPred = predict(clf, r.adversarial);
    r.perExample.forEach((e, i) => {
      expect(e.advPred).toBe(advPred[i]);
      expect(e.success).toBe(advPred[i] !== e.label);
    });
    const def = getAttack(id);
    const ball = def.epsilonBall?.(r.params);
    if (ball) {
      for (const e of r.perExample) expect(e[ball.norm as 'l2' | 'linf']).toBeLessThanOrEqual(ball.eps + 1e-5);
    }
    if (id === 'fgsm') {
      // FGSM moves every pixel with a non-zero gradient by exactly eps (unless clipped).
      expect(r.perExample.every((e) => Math.abs(e.linf - 0.3) < 1e-5)).toBe(true);
    }
  });

  it('defaults work: PGD, PGD-L2, BIM, FGSM and DDN with {} break nearly every point', async () => {
    for (const id of ['fgsm', 'bim', 'pgd', 'pgd-l2', 'ddn']) {
      const r = await runAttack(id, clf, pts.images, pts.labels);
      expect(r.summary.successRate, id).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('C&W L2 finds smaller perturbations than FGSM and PGD on the same points; DDN comes close to C&W', async () => {
    const cw = await runAttack('cw-l2', clf, pts.images, pts.labels, { kind: 'untargeted' }, CHEAP['cw-l2']);
    const fg = await runAttack('fgsm', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.2 });
    const pg = await runAttack('pgd-l2', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 2, steps: 20 });
    const dd = await runAttack('ddn', clf, pts.images, pts.labels, { kind: 'untargeted' }, { steps: 100 });
    const both = cw.perExample.map((e, i) => i).filter((i) => [cw, fg, pg, dd].every((r) => r.perExample[i].counted && r.perExample[i].success));
    expect(both.length).toBeGreaterThanOrEqual(10);
    const [mc, mf, mp, md] = [cw, fg, pg, dd].map((r) => meanOver(r, both));
    expect(mc).toBeLessThan(mp);
    expect(mc).toBeLessThan(mf);
    expect(md).toBeLessThan(1.25 * mc);
    expect(md).toBeLessThan(mp);
  });

  it('C&W: the margin objective survives saturated logits; the naive probability objective does not', async () => {
    // Logits x30 saturate the softmax, as defensive distillation does: probability gradients vanish.
    const hot: Classifier = { ...clf, logits: (x) => tf.tidy(() => tf.mul(clf.logits(x), 30) as tf.Tensor2D) };
    const sub = mnist(5000, 8);
    const cheap = CHEAP['cw-l2'];
    const margin = await runAttack('cw-l2', hot, sub.images, sub.labels, { kind: 'targeted', target: 'next' }, { ...cheap, objective: 'margin' });
    const naive = await runAttack('cw-l2', hot, sub.images, sub.labels, { kind: 'targeted', target: 'next' }, { ...cheap, objective: 'naive' });
    expect(margin.summary.successRate).toBeGreaterThanOrEqual(0.85);
    expect(naive.summary.successRate).toBeLessThanOrEqual(0.25);
  });

  it('C&W aborts early per example: a batch gives what each example gives alone, and easy examples stop sooner', async () => {
    const params = { binarySearchSteps: 3, maxIterations: 200, initialConst: 0.1, learningRate: 0.05 };
    const sub = { images: pts.images.subarray(0, 6 * 784), labels: pts.labels.subarray(0, 6) };
    const batch = await runAttack('cw-l2', clf, sub.images, sub.labels, { kind: 'untargeted' }, params);
    const iters = batch.perExample.map((e) => e.iterations);
    // Examples leave the batch at their own pace; none runs past the 3 x 200 budget.
    expect(new Set(iters).size).toBeGreaterThan(1);
    expect(Math.max(...iters)).toBeLessThanOrEqual(600);
    expect(Math.min(...iters)).toBeLessThan(600);
    for (let i = 0; i < 6; i++) {
      const alone = await runAttack('cw-l2', clf, sub.images.subarray(i * 784, (i + 1) * 784), sub.labels.subarray(i, i + 1), { kind: 'untargeted' }, params);
      expect(alone.perExample[0].iterations).toBe(iters[i]);
      expect(alone.perExample[0].success).toBe(batch.perExample[i].success);
      expect(alone.perExample[0].l2).toBeCloseTo(batch.perExample[i].l2, 3);
    }
  });

  it('C&W kappa buys confidence: the adversarial wins by at least kappa in the logits', async () => {
    const sub = mnist(5000, 6);
    const r = await runAttack('cw-l2', clf, sub.images, sub.labels, { kind: 'untargeted' }, { ...CHEAP['cw-l2'], kappa: 5 });
    const won = r.perExample.filter((e) => e.counted && e.success);
    expect(won.length).toBeGreaterThanOrEqual(4);
    for (const e of won) {
      const other = Math.max(...e.advLogits.filter((_, j) => j !== e.label));
      expect(other - e.advLogits[e.label]).toBeGreaterThanOrEqual(5 - 1e-3);
    }
  });
});

describe('targeted attacks', () => {
  it.each([
    ['pgd', { steps: 40 }, { kind: 'targeted', target: 'next' }],
    ['pgd-margin', { steps: 40 }, { kind: 'targeted', target: 'random', seed: 3 }],
    ['cw-l2', CHEAP['cw-l2'], { kind: 'targeted', target: [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6] }],
    ['ddn', { steps: 100 }, { kind: 'targeted', target: 'least-likely' }],
  ] as const)('%s reaches its target', async (id, params, goal) => {
    const r = await runAttack(id, clf, pts.images, pts.labels, goal as never, params);
    expect(r.summary.successRate).toBeGreaterThanOrEqual(0.85);
    const advPred = predict(clf, r.adversarial);
    for (const e of r.perExample) {
      // The resolved target: the given class for this example, else a class in 0..9 other than the label.
      if (Array.isArray(goal.target)) expect(e.target).toBe(goal.target[e.index]);
      else {
        expect(e.target).toSatisfy((t: unknown) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < 10);
        expect(e.target).not.toBe(e.label);
      }
      expect(e.success).toBe(advPred[e.index] === e.target);
    }
    if (goal.target === 'next') r.perExample.forEach((e) => expect(e.target).toBe((e.label + 1) % 10));
  });

  it('resolves next, least-likely, random (seeded, never the label) and explicit targets', () => {
    const labels = Int32Array.from([0, 3, 9, 9]);
    const logits = new Float32Array(40).map((_, i) => Math.sin(i * 1.7));
    expect(Array.from(resolveTargets({ kind: 'targeted', target: 'next' }, labels, logits, 10)!)).toEqual([1, 4, 0, 0]);
    const ll = resolveTargets({ kind: 'targeted', target: 'least-likely' }, labels, logits, 10)!;
    ll.forEach((t, i) => {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      const others = row.map((v, j) => (j === labels[i] ? Infinity : v));
      expect(t).toBe(others.indexOf(Math.min(...others)));
    });
    const many = Int32Array.from({ length: 200 }, (_, i) => i % 10);
    const r1 = resolveTargets({ kind: 'targeted', target: 'random', seed: 5 }, many, new Float32Array(2000), 10)!;
    const r2 = resolveTargets({ kind: 'targeted', target: 'random', seed: 5 }, many, new Float32Array(2000), 10)!;
    const r3 = resolveTargets({ kind: 'targeted', target: 'random', seed: 6 }, many, new Float32Array(2000), 10)!;
    expect(Array.from(r1)).toEqual(Array.from(r2));
    expect(Array.from(r1)).not.toEqual(Array.from(r3));
    r1.forEach((t, i) => expect(t).not.toBe(many[i]));
    expect(new Set(r1).size).toBe(10);
    expect(resolveTargets({ kind: 'untargeted' }, labels, logits, 10)).toBeNull();
    expect(Array.from(resolveTargets({ kind: 'targeted', target: 4 }, labels, logits, 10)!)).toEqual([4, 4, 4, 4]);
  });

  it('a fixed target equal to an example\'s label does not count towards the success rate', async () => {
    const r = await runAttack('fgsm', clf, pts.images, pts.labels, { kind: 'targeted', target: 7 }, {});
    for (const e of r.perExample) expect(e.counted).toBe(e.cleanCorrect && e.label !== 7);
    expect(r.summary.counted).toBe(r.perExample.filter((e) => e.cleanCorrect && e.label !== 7).length);
  });
});

describe('the shared contract', () => {
  it('accepts a Tensor4D, splits large inputs into batches, and gives the same result', async () => {
    const a = await runAttack('fgsm', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.1 });
    const t = tf.tensor4d(pts.images, [pts.n, 28, 28, 1]);
    const b = await runAttack('fgsm', clf, t, Array.from(pts.labels), { kind: 'untargeted' }, { eps: 0.1 }, undefined, { batchSize: 5 });
    t.dispose();
    let diff = 0;
    for (let i = 0; i < a.adversarial.length; i++) diff = Math.max(diff, Math.abs(a.adversarial[i] - b.adversarial[i]));
    expect(diff).toBeLessThan(1e-6);
    expect(b.perExample.map((e) => e.advPred)).toEqual(a.perExample.map((e) => e.advPred));
    expect(a.summary.successRateOver).toMatch(/clean-correct/);
    expect(a.summary.n).toBe(16);
    expect(a.summary.msPerExample).toBeCloseTo(a.summary.ms / 16, 6);
    expect(a.perExample[0].cleanLogits).toHaveLength(10);
    expect(a.perExample[0].advConfidence).toBeGreaterThan(0);
    expect(a.perExample[0].advConfidence).toBeLessThanOrEqual(1);
  });

  it('restarts only re-attack unbroken points and count their extra steps', async () => {
    const one = await runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.05, steps: 5 });
    const three = await runAttack('pgd', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.05, steps: 5, restarts: 3 });
    expect(three.summary.successes).toBeGreaterThanOrEqual(one.summary.successes);
    const unbroken = three.perExample.filter((e) => e.cleanCorrect && !e.success);
    expect(unbroken.length).toBeGreaterThan(0);
    for (const e of unbroken) expect(e.iterations).toBe(15);
    for (const e of three.perExample) expect(e.linf).toBeLessThanOrEqual(0.05 + 1e-6);
  });

  it('refuses unknown, impossible and mismatched inputs with clear errors', async () => {
    const { images, labels } = pts;
    await expectBadInput(runAttack('pgd', clf, images, labels, undefined, { eps: -0.1 }), /"eps".*>0.*-0\.1/);
    await expectBadInput(runAttack('pgd', clf, images, labels, undefined, { steps: 0 }), /"steps"/);
    await expectBadInput(runAttack('pgd', clf, images, labels, undefined, { epsilon: 0.1 }), /unknown parameter "epsilon".*accepted: eps, steps, stepSize/);
    await expectBadInput(runAttack('bim', clf, images, labels, undefined, { randomStart: true }), /unknown parameter "randomStart"/);
    await expectBadInput(runAttack('cw-l2', clf, images, labels, undefined, { objective: 'hinge' }), /"objective"/);
    await expectBadInput(runAttack('pgd', clf, images, labels, { kind: 'targeted', target: 10 }, {}), /Target class 10.*0\.\.9/);
    await expectBadInput(runAttack('pgd', clf, images, labels, { kind: 'targeted', target: [1, 2] }, {}), /2 target classes for 16 images/);
    await expectBadInput(runAttack('nope', clf, images, labels), /Unknown attack "nope".*pgd/);
    await expectBadInput(runAttack('fgsm', clf, images.subarray(0, 1000), labels), /1000 values.*28x28x1/);
    await expectBadInput(runAttack('fgsm', clf, images, labels.subarray(0, 3)), /3 labels for 16 images/);
    await expectBadInput(runAttack('fgsm', clf, images, Array.from(labels, () => 12)), /Label 12/);
    await expectBadInput(runAttack('fgsm', clf, images.map((v) => v * 255), labels), /\[0, 1\].*255/);
    const wrong = tf.zeros([2, 14, 14, 1]) as tf.Tensor4D;
    await expectBadInput(runAttack('fgsm', clf, wrong, [0, 1]), /\[14, 14, 1\].*\[28, 28, 1\]/);
    wrong.dispose();
  });

  it.each([
    ['pgd', { steps: 1000, eps: 0.01 }],
    ['cw-l2', { maxIterations: 1000, abortEarly: false }],
    ['ddn', { steps: 1000 }],
  ] as const)('%s stops within one step of a cancel, with CancelledError and no leaked tensors', async (id, params) => {
    const r = await cancelAfterForwardPasses(clf, 0, (counting, ctx) => runAttack(id, counting, pts.images, pts.labels, { kind: 'untargeted' }, params, ctx));
    expect(r.error).toBeInstanceOf(CancelledError);
    expect(r.callsAtCancel).toBeGreaterThan(0);
    expect(r.calls - r.callsAtCancel).toBeLessThanOrEqual(1);
    expect(r.tensorsAfter).toBe(r.tensorsBefore);
  });

  it('reports progress with the step count of the attack', async () => {
    const ctx = new LocalContext();
    await runAttack('bim', clf, pts.images, pts.labels, { kind: 'untargeted' }, { eps: 0.01, steps: 10 }, ctx);
    expect(ctx.events.length).toBeGreaterThan(1);
    const last = ctx.events[ctx.events.length - 1];
    expect(last.step).toBe(last.total);
    expect(ctx.events[0].metrics).toHaveProperty('successRate');
  });
});

describe('convolutional classifiers', () => {
  it('FGSM raises the loss of every example on a small conv net (wasm Conv2D gradient path)', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
      ],
    });
    const conv = fromLayersModel(model);
    const sub = mnist(5000, 8);
    const ce = (images: Float32Array) => tf.tidy(() => Array.from(tf.losses.softmaxCrossEntropy(
      tf.oneHot(tf.tensor1d(sub.labels, 'int32'), 10), conv.logits(tf.tensor4d(images, [8, 28, 28, 1])), undefined, 0, tf.Reduction.NONE).dataSync()));
    const before = tf.memory().numTensors;
    const r = await runAttack('fgsm', conv, sub.images, sub.labels, { kind: 'untargeted' }, { eps: 0.1 });
    expect(tf.memory().numTensors).toBe(before);
    const [c0, c1] = [ce(sub.images), ce(r.adversarial)];
    c0.forEach((v, i) => expect(c1[i]).toBeGreaterThan(v + 0.05));
    model.dispose();
  });
});

describe('transfer', () => {
  it('judges adversarials crafted on A on classifier B', async () => {
    const before = tf.memory().numTensors;
    const r = await transferAttack('pgd', clf, other, pts.images, pts.labels, { kind: 'untargeted' }, { steps: 20 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.target.perExample).toHaveLength(16);
    expect(Object.keys(r.target.perExample[0]).sort()).toEqual(Object.keys(r.source.perExample[0]).sort());
    const onB = predict(other, r.source.adversarial);
    const cleanB = predict(other, pts.images);
    r.target.perExample.forEach((e, i) => {
      expect(e.advPred).toBe(onB[i]);
      expect(e.cleanPred).toBe(cleanB[i]);
      expect(e.success).toBe(onB[i] !== e.label);
      expect(e.l2).toBeCloseTo(r.source.perExample[i].l2, 5);
    });
    expect(r.source.summary.successRate).toBeGreaterThanOrEqual(0.9);
    // eps = 0.3 PGD on MNIST transfers between MLPs trained on the same data.
    expect(r.transferRate).toBeGreaterThan(0.3);
  });
});

describe('cross-entropy in float32', () => {
  it('keeps the -grad Z_c term when softmax(Z)_c rounds to 1, and vanishes only where distillation makes it vanish', async () => {
    const { crossEntropy } = await import('../../../src-main/engine/attacks/losses');
    const onehot = tf.oneHot(tf.tensor1d([0, 0, 0], 'int32'), 4).toFloat() as tf.Tensor2D;
    // margins 2, 20 and 300 over the runner-up
    const z = tf.tensor2d([[3, 1, 0, -1], [20, 0, -1, -2], [300, 0, -1, -2]]);
    const textbook = tf.sub(tf.logSumExp(z, 1), tf.sum(tf.mul(z, onehot), 1));
    const ce = crossEntropy(z, onehot);
    const v = ce.dataSync(), t = textbook.dataSync();
    expect(v[0]).toBeCloseTo(t[0], 5);
    expect(t[1]).toBe(0); // the textbook form has lost it
    expect(v[1]).toBeCloseTo(Math.log1p(Math.exp(-20) + Math.exp(-21) + Math.exp(-22)), 12);
    const g = tf.grad((x: tf.Tensor) => tf.sum(crossEntropy(x as tf.Tensor2D, onehot)))(z).arraySync() as number[][];
    const gt = tf.grad((x: tf.Tensor) => tf.sum(tf.sub(tf.logSumExp(x, 1), tf.sum(tf.mul(x, onehot), 1))))(z).arraySync() as number[][];
    // margin 20: dCE/dZ_0 = -(sum of the others), not 0 as in the textbook form
    expect(gt[1][0]).toBe(0);
    expect(g[1][0]).toBeLessThan(0);
    expect(g[1][0] / -(g[1][1] + g[1][2] + g[1][3])).toBeCloseTo(1, 5);
    expect(g[1][1] / Math.exp(-20)).toBeCloseTo(1, 3);
    // margin 300: the exact gradient underflows, as it does for a distilled network at T = 1
    expect(g[2].every((x) => x === 0)).toBe(true);
    tf.dispose([onehot, z, textbook, ce]);
  });
});
