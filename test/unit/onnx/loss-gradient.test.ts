/**
 * The fused attack-loss call (Classifier.lossGradient: logits, loss values and the input gradient of a weighted
 * loss in one ONNX Runtime run) against tfjs autodiff of the same loss (attacks/ops.ts's lossGradient on the tfjs
 * classifier, the reference, cpu backend): on every architecture we ship, for each loss the attacks use,
 * max abs diff <= 1e-4 and sign agreement of the input gradient >= 99.9%.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURE_NAMES, buildModel } from '../../../src-main/engine/models/architectures';
import { fromLayersModel, type LogitLoss } from '../../../src-main/engine/models/classifier';
import { onnxClassifier } from '../../../src-main/engine/onnx/classifier';
import { OrtSession } from '../../../src-main/engine/onnx/runtime';
import { lossGradient } from '../../../src-main/engine/attacks/ops';
import { runAttack } from '../../../src-main/engine/attacks';

const TOL = 1e-4;

function compare(a: tf.Tensor, b: tf.Tensor): { maxAbs: number; signAgreement: number; scale: number } {
  const x = a.dataSync(), y = b.dataSync();
  expect(y.length).toBe(x.length);
  let maxAbs = 0, same = 0, scale = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(x[i]));
    if (Math.sign(x[i]) === Math.sign(y[i])) same++;
  }
  return { maxAbs, signAgreement: same / x.length, scale };
}

/** The losses as the attacks pose them: CE with mixed-sign weights (PGD targeted / untargeted), C&W's margin with c, the margin ascended with a kappa clamp. */
function losses(predicted: Int32Array, k: number, seed: number): { name: string; loss: LogitLoss }[] {
  const n = predicted.length;
  // Half the rows about the predicted class (the margin away from it is not yet clamped), half about another.
  const classes = Int32Array.from({ length: n }, (_, i) => (i % 2 ? predicted[i] : (predicted[i] + 1 + ((i * 7 + seed) % (k - 1))) % k));
  const weights = Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (0.5 + i));
  return [
    { name: 'cross-entropy', loss: { kind: 'ce', classes, weights } },
    { name: "C&W's margin (targeted, weights -c)", loss: { kind: 'margin', classes, weights: Float32Array.from(weights, (w) => -Math.abs(w)), kappa: 0, toward: true } },
    { name: 'margin away from the label, kappa 0 (clamps the rows already past it)', loss: { kind: 'margin', classes, weights, kappa: 0, toward: false } },
    { name: 'margin toward, kappa 0.05', loss: { kind: 'margin', classes, weights, kappa: 0.05, toward: true } },
  ];
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the fused CE gradient on confident examples', () => {
  it('is as small as tfjs autodiff gives it, never 0 where the reference is not (FGSM and PGD take its sign)', async () => {
    // Scaling the last layer makes the logits' margins tens of units wide: the CE gradient is then ~1e-17, and
    // ORT's own Sigmoid returned exactly 0 there (FGSM on the starter cw-mnist: 24% on ONNX vs 93% on tfjs).
    const model = buildModel('cw-mnist', { seed: 3 });
    const last = model.layers[model.layers.length - 1];
    const scaled = last.getWeights().map((t) => tf.mul(t, 8000));
    last.setWeights(scaled);
    tf.dispose(scaled);
    const ref = fromLayersModel(model);
    const onnx = await onnxClassifier(model, { threads: 1 });
    try {
      const n = 6;
      const x = tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
      const classes = tf.tidy(() => tf.argMax(ref.logits(x), 1).dataSync() as Int32Array);
      const loss: LogitLoss = { kind: 'ce', classes: Int32Array.from(classes), weights: new Float32Array(n).fill(1) };
      const a = lossGradient(ref, x, loss), b = onnx.lossGradient(x, loss);
      let tiny = 0;
      for (let i = 0; i < n; i++) {
        const [ga, gb] = tf.tidy(() => [a.grad, b.grad].map((g) => g.slice([i], [1]).abs().max().dataSync()[0]));
        if (ga > 0 && ga < 1e-10) tiny++;
        if (ga > 0) expect(Math.abs(gb - ga) / ga, `example ${i}: max |grad| ${gb} vs the reference ${ga}`).toBeLessThan(1e-2);
      }
      expect(tiny, 'some example has a CE gradient below 1e-10 that is not 0').toBeGreaterThan(0);
      // direction: only each example's direction is asked for. ONNX Runtime leaves out the factor sigmoid(d), so even
      // the examples whose gradient is below float32's range (exactly 0 in both engines) keep a direction, and where
      // the reference has one it is the same (a positive multiple: cosine 1). The values stay the exact ones.
      const dRef = lossGradient(ref, x, { ...loss, direction: true }), dOrt = onnx.lossGradient(x, { ...loss, direction: true });
      let underflowed = 0;
      for (let i = 0; i < n; i++) {
        const [r, o] = [dRef.grad, dOrt.grad].map((g) => g.slice([i], [1]).dataSync());
        let dot = 0, rr = 0, oo = 0;
        for (let j = 0; j < r.length; j++) { dot += r[j] * o[j]; rr += r[j] * r[j]; oo += o[j] * o[j]; }
        expect(oo, `example ${i}: a direction on ONNX Runtime`).toBeGreaterThan(0);
        if (rr === 0) underflowed++;
        else expect(dot / Math.sqrt(rr * oo), `example ${i}: the reference's direction`).toBeGreaterThan(0.999);
      }
      expect(underflowed, 'some example whose exact CE gradient underflows to 0').toBeGreaterThan(0);
      expect(compare(dRef.values, dOrt.values).maxAbs).toBeLessThanOrEqual(TOL);
      tf.dispose([x, a.logits, a.values, a.grad, b.logits, b.values, b.grad, dRef.logits, dRef.values, dRef.grad, dOrt.logits, dOrt.values, dOrt.grad]);
    } finally {
      onnx.dispose();
    }
  });
});

describe('the fused loss gradient on ONNX Runtime vs tfjs autodiff of the loss, shipped architectures', () => {
  for (const arch of ARCHITECTURE_NAMES) {
    it(arch, async () => {
      const model = buildModel(arch, { seed: 3 });
      const ref = fromLayersModel(model);
      const onnx = await onnxClassifier(model, { threads: 1 });
      try {
        const n = arch === 'cw-cifar' ? 3 : 6;
        const [h, w, c] = ref.inputShape;
        const x = tf.randomUniform([n, h, w, c], 0, 1, 'float32', 7) as tf.Tensor4D;
        const predicted = tf.tidy(() => tf.argMax(ref.logits(x), 1).dataSync() as Int32Array);
        let clamped = 0;
        for (const { name, loss } of losses(predicted, ref.numClasses, 1)) {
          const a = lossGradient(ref, x, loss);
          const b = onnx.lossGradient(x, loss);
          const logits = compare(a.logits, b.logits), values = compare(a.values, b.values), grad = compare(a.grad, b.grad);
          expect(grad.scale, `${name}: a gradient that is not trivially zero`).toBeGreaterThan(1e-4);
          expect(logits.maxAbs, `${name} logits`).toBeLessThanOrEqual(TOL);
          expect(values.maxAbs, `${name} values`).toBeLessThanOrEqual(TOL);
          expect(grad.maxAbs, `${name} grad`).toBeLessThanOrEqual(TOL);
          expect(grad.signAgreement, `${name} grad sign`).toBeGreaterThanOrEqual(0.999);
          if (loss.kind === 'margin') {
            const v = b.values.dataSync();
            for (let i = 0; i < n; i++) if (v[i] === loss.kappa) clamped++;
          }
          tf.dispose([a.logits, a.values, a.grad, b.logits, b.values, b.grad]);
        }
        x.dispose();
        expect(clamped, 'some margin rows are at the clamp (their gradient is zero)').toBeGreaterThan(0);
      } finally {
        onnx.dispose();
      }
    });
  }

  it('is one ONNX Runtime run, and refuses classes or weights of the wrong length', async () => {
    const model = buildModel('cw-mnist', { seed: 3 });
    const onnx = await onnxClassifier(model, { threads: 1 });
    const runs = vi.spyOn(OrtSession.prototype, 'runTyped');
    try {
      const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
      const r = lossGradient(onnx, x, { kind: 'margin', classes: Int32Array.of(1, 2), weights: Float32Array.of(1, 1), kappa: 0, toward: false });
      expect(runs).toHaveBeenCalledTimes(1);
      expect(runs.mock.calls[0][1]).toEqual(['logits', 'values', 'grad']);
      expect(r.grad.shape).toEqual([2, 28, 28, 1]);
      expect(() => onnx.lossGradient(x, { kind: 'ce', classes: Int32Array.of(1), weights: Float32Array.of(1, 1) })).toThrow(/1 classes and 2 weights for 2 inputs/);
      tf.dispose([r.logits, r.values, r.grad, x]);
    } finally {
      runs.mockRestore();
      onnx.dispose();
    }
  });

  it('C&W (margin), PGD (margin), FGSM and DDN (CE) take one ONNX Runtime run per gradient step', async () => {
    const model = buildModel('cw-mnist', { seed: 3 });
    const onnx = await onnxClassifier(model, { threads: 1 });
    const runs = vi.spyOn(OrtSession.prototype, 'runTyped');
    const images = new Float32Array(2 * 784).map((_, i) => (i % 7) / 7);
    const labels = Int32Array.of(3, 5);
    try {
      for (const [attack, params, steps] of [
        ['cw-l2', { binarySearchSteps: 1, maxIterations: 4, abortEarly: false }, 4],
        ['pgd', { steps: 3, loss: 'margin' }, 3],
        ['fgsm', {}, 1],
        ['ddn', { steps: 3 }, 3],
      ] as const) {
        runs.mockClear();
        await runAttack(attack, onnx, images, labels, { kind: 'targeted', target: 'next' }, params);
        const outputs = runs.mock.calls.map((call) => call[1].join(','));
        // Everything else is a plain forward run (clean logits, judging the result).
        expect(outputs.filter((o) => o !== 'logits'), attack).toEqual(new Array(steps).fill('logits,values,grad'));
      }
    } finally {
      runs.mockRestore();
      onnx.dispose();
    }
  });
});
