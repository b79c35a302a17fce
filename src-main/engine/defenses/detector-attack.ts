/**
 * The adaptive (perfect-knowledge) attack on a classifier guarded by a detector, from Carlini &
 * Wagner, "Adversarial Examples Are Not Easily Detected: Bypassing Ten Detection Methods" (AISec 2017),
 * section 4: combine classifier F (logits Z_1..Z_N) and detector D into one classifier G with N + 1
 * classes, the extra class meaning "detected", and run the ordinary C&W L2 attack (attacks/cw.ts) on G.
 *
 *     G_i(x)     = Z_i(x)                                   i = 1..N
 *     G_{N+1}(x) = max_j Z_j(x) + (s(x) - tau)             s = detector log-odds of "adversarial",
 *                                                          tau = the detector's threshold
 *
 * so argmax G = N + 1 exactly when the detector flags x (s > tau), and otherwise argmax G = argmax F.
 * (The paper writes G_{N+1} = (Z_D(x) + 1) * max_j Z_j(x), which has the same argmax only while
 * max_j Z_j > 0; the sum has it always.) G declares N + 1 as its reject class, so an untargeted goal is
 * met only at a class other than the label and other than "detected": C&W's margin on G becomes
 *
 *     f(x') = max( max(G_y, G_{N+1}) - max_{i != y, i <= N} G_i, -kappa )
 *
 * which is <= -kappa iff x' is misclassified with margin kappa AND s(x') < tau - kappa: the adversarial
 * must fool the classifier and fall on the "clean" side of the threshold. Everything else (tanh space,
 * Adam, the binary search over c, the per-example abort, keeping the smallest-L2 success) is the stock
 * C&W attack's, unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { runAttack, type AttackResult, type CwParams } from '../attacks';
import type { Classifier } from '../models/classifier';
import type { Detector } from './detector-model';

/** G above: the classifier's N logits and the detector's "detected" logit as class N + 1 (the reject class). */
export function guardedClassifier(detector: Detector, threshold: number): Classifier {
  const plain = detector.asClassifier();
  return {
    inputShape: plain.inputShape,
    numClasses: plain.numClasses + 1,
    rejectClass: plain.numClasses,
    logits: (x) => tf.tidy(() => {
      const { logits, score } = detector.joint(x);
      const detected = tf.add(tf.max(logits, 1), tf.sub(score, threshold));
      return tf.concat([logits, tf.expandDims(detected, 1)], 1) as tf.Tensor2D;
    }),
  };
}

/**
 * Untargeted C&W L2 on the guarded classifier (see the module comment), batch by batch (batchSize,
 * default 100). `result.adversarial` holds each example's smallest-L2 adversarial that met both goals,
 * or the clean image where none did.
 */
export function adaptiveDetectorAttack(
  detector: Detector, threshold: number, images: Float32Array, labels: ArrayLike<number>,
  params: Partial<CwParams>, ctx: JobContext, batchSize = 100,
): Promise<AttackResult> {
  return runAttack('cw-l2', guardedClassifier(detector, threshold), images, labels, { kind: 'untargeted' }, params, ctx, { batchSize });
}
