/**
 * The adaptive (perfect-knowledge) attack on a classifier guarded by a detector, from Carlini &
 * Wagner, "Adversarial Examples Are Not Easily Detected: Bypassing Ten Detection Methods" (AISec 2017):
 * the C&W L2 attack with both networks in its loss. Per example, Adam minimises over w
 *
 *     ||x' - x||_2^2 + c * ( g(x') + h(x') ),      x' = (tanh(w) + 1) / 2
 *     g(x') = max(Z_y(x') - max_{i != y} Z_i(x'), -kappa)   the C&W margin on the classifier (untargeted)
 *     h(x') = max(s(x') - tau, -kappa)                      s = detector log-odds of "adversarial",
 *                                                            tau = the detector's threshold
 *
 * so the adversarial must be misclassified AND fall on the "clean" side of the detector's threshold.
 * As in C&W's reference code, a binary search over c per example runs `binarySearchSteps` rounds of
 * `maxIterations` Adam steps, and the smallest-L2 iterate meeting both goals is kept.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { logitMargin } from '../attacks/losses';
import { oneHot, rowWhere } from '../attacks/ops';

export interface AdaptiveAttackParams {
  binarySearchSteps: number;
  maxIterations: number;
  learningRate: number;
  initialConst: number;
  kappa: number;
  abortEarly: boolean;
}

export const ADAPTIVE_DEFAULTS: AdaptiveAttackParams = {
  binarySearchSteps: 9, maxIterations: 1000, learningRate: 0.01, initialConst: 0.01, kappa: 0, abortEarly: true,
};

export interface AdaptiveAttackResult {
  /** Best adversarial per example (the clean image where none met both goals), NHWC flat. */
  adversarial: Float32Array;
  /** Misclassified and not detected (judged in the attack's own forward pass). */
  found: Uint8Array;
  /** L2 distance of the kept adversarial (0 where none was found). */
  l2: Float64Array;
}

/** Classifier logits and detector scores for a batch. */
export type JointForward = (x: tf.Tensor4D) => { logits: tf.Tensor2D; score: tf.Tensor1D };

const BIG = 1e10;

/** Runs the attack on a batch (all rows at once); see the module comment. */
export async function adaptiveDetectorAttack(
  joint: JointForward, images: Float32Array, labels: Int32Array, shape: [number, number, number], numClasses: number,
  threshold: number, params: Partial<AdaptiveAttackParams>, ctx: JobContext,
): Promise<AdaptiveAttackResult> {
  const p = { ...ADAPTIVE_DEFAULTS, ...params };
  const n = labels.length;
  const x = tf.tensor4d(images, [n, ...shape]);
  const onehot = oneHot(labels, numClasses);
  const w0 = tf.tidy(() => tf.atanh(tf.mul(tf.sub(tf.mul(x, 2), 1), 0.999999)) as tf.Tensor4D);
  const x0 = tf.tidy(() => tf.add(tf.div(tf.tanh(w0), 2), 0.5) as tf.Tensor4D);
  let best = tf.clone(x);
  const bestL2 = new Float64Array(n).fill(BIG);
  const lower = new Float64Array(n).fill(0);
  const upper = new Float64Array(n).fill(BIG);
  const c = new Float64Array(n).fill(p.initialConst);
  const beta1 = 0.9, beta2 = 0.999, adamEps = 1e-8;
  const abortEvery = Math.max(1, Math.floor(p.maxIterations / 10));
  const total = p.binarySearchSteps * p.maxIterations;
  let modifier: tf.Tensor4D | null = null, m1: tf.Tensor4D | null = null, m2: tf.Tensor4D | null = null;
  try {
    for (let outer = 0; outer < p.binarySearchSteps; outer++) {
      const constT = tf.tensor1d(Float32Array.from(c));
      modifier = tf.zerosLike(x); m1 = tf.zerosLike(x); m2 = tf.zerosLike(x);
      const roundFound = new Uint8Array(n);
      let prev = Infinity;
      try {
        for (let it = 0; it < p.maxIterations; it++) {
          ctx.checkpoint();
          const step = it + 1;
          const mod = modifier!, a = m1!, b = m2!;
          const r = tf.tidy(() => {
            const kept: { z?: tf.Tensor2D; s?: tf.Tensor1D; l2?: tf.Tensor1D; img?: tf.Tensor4D } = {};
            const { value, grad } = tf.valueAndGrad((md: tf.Tensor) => {
              const img = tf.add(tf.div(tf.tanh(tf.add(md, w0)), 2), 0.5) as tf.Tensor4D;
              const l2 = tf.sum(tf.square(tf.sub(img, x0)), [1, 2, 3]) as tf.Tensor1D;
              const { logits, score } = joint(img);
              const g = tf.maximum(logitMargin(logits, onehot), -p.kappa);
              const h = tf.maximum(tf.sub(score, threshold), -p.kappa);
              kept.z = tf.keep(tf.clone(logits));
              kept.s = tf.keep(tf.clone(score));
              kept.l2 = tf.keep(tf.clone(l2));
              kept.img = tf.keep(tf.clone(img));
              return tf.add(tf.sum(l2), tf.sum(tf.mul(constT, tf.add(g, h))));
            })(mod);
            // Adam as in the C&W reference (TF1): lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t).
            const lrT = (p.learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step);
            const na = tf.add(tf.mul(a, beta1), tf.mul(grad, 1 - beta1)) as tf.Tensor4D;
            const nb = tf.add(tf.mul(b, beta2), tf.mul(tf.square(grad), 1 - beta2)) as tf.Tensor4D;
            const nm = tf.sub(mod, tf.mul(tf.div(na, tf.add(tf.sqrt(nb), adamEps)), lrT)) as tf.Tensor4D;
            return { value, nm, na, nb, z: kept.z!, s: kept.s!, l2: kept.l2!, img: kept.img! };
          });
          mod.dispose(); a.dispose(); b.dispose();
          modifier = r.nm; m1 = r.na; m2 = r.nb;
          const [lossV, l2s, zs, ss] = await Promise.all([r.value.data(), r.l2.data(), r.z.data(), r.s.data()]);
          r.value.dispose(); r.l2.dispose(); r.z.dispose(); r.s.dispose();
          const loss = lossV[0];
          if (!Number.isFinite(loss)) { r.img.dispose(); throw new Error(`Adaptive attack loss became ${loss}`); }
          const improved = new Uint8Array(n);
          let any = false;
          for (let i = 0; i < n; i++) {
            if (!meetsBoth(zs as Float32Array, i, numClasses, labels[i], ss[i], threshold, p.kappa)) continue;
            roundFound[i] = 1;
            if (l2s[i] < bestL2[i]) { bestL2[i] = l2s[i]; improved[i] = 1; any = true; }
          }
          if (any) {
            const nb = tf.tidy(() => rowWhere(tf.tensor1d(improved, 'bool'), r.img, best));
            best.dispose();
            best = nb;
          }
          r.img.dispose();
          let found = 0;
          for (let i = 0; i < n; i++) if (bestL2[i] < BIG) found++;
          ctx.progress({ step: outer * p.maxIterations + step, total, phase: `binary search ${outer + 1}/${p.binarySearchSteps}`, metrics: { loss, found: found / n } });
          if (p.abortEarly && step % abortEvery === 0) {
            if (loss > prev * 0.9999) break;
            prev = loss;
          }
          if (step % 10 === 0) await new Promise((res) => setImmediate(res));
        }
      } finally {
        constT.dispose();
        modifier?.dispose(); m1?.dispose(); m2?.dispose();
        modifier = m1 = m2 = null;
      }
      for (let i = 0; i < n; i++) {
        if (roundFound[i]) {
          upper[i] = Math.min(upper[i], c[i]);
          if (upper[i] < 1e9) c[i] = (lower[i] + upper[i]) / 2;
        } else {
          lower[i] = Math.max(lower[i], c[i]);
          c[i] = upper[i] < 1e9 ? (lower[i] + upper[i]) / 2 : c[i] * 10;
        }
      }
      ctx.log(`adaptive attack round ${outer + 1}: ${Array.from(roundFound).reduce((s, v) => s + v, 0)}/${n} misclassified and undetected`);
    }
    const adversarial = (await best.data()) as Float32Array;
    const found = Uint8Array.from(bestL2, (v) => (v < BIG ? 1 : 0));
    return { adversarial: Float32Array.from(adversarial), found, l2: Float64Array.from(bestL2, (v) => (v < BIG ? Math.sqrt(v) : 0)) };
  } finally {
    best.dispose(); x.dispose(); onehot.dispose(); w0.dispose(); x0.dispose();
  }
}

/** Misclassified with margin kappa and below the detector threshold with margin kappa. */
function meetsBoth(z: Float32Array, i: number, k: number, label: number, score: number, threshold: number, kappa: number): boolean {
  let other = -Infinity;
  for (let j = 0; j < k; j++) if (j !== label) other = Math.max(other, z[i * k + j]);
  return other > z[i * k + label] + kappa && score < threshold - kappa;
}
