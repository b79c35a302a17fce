/**
 * FGSM, the Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015), Linf.
 *
 *   untargeted: x' = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
 *   targeted:   x' = clip(x - eps * sign(grad_x CE(f(x), t)), 0, 1)   (descend the target's CE)
 *
 * One gradient, one step of exactly eps in every pixel that has a gradient: fast, and the baseline every
 * other attack is compared with. Distance: Linf <= eps. Shapes: x [n, h, w, c] in [0, 1].
 * Example: runAttack('fgsm', clf, x, y, { kind: 'untargeted' }, { eps: 0.1 }).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { ascentGradient, sign } from './ops';
import type { AttackDefinition } from './types';

const paramsSchema = z.strictObject({
  eps: z.number().positive().max(1).default(0.3).describe('Linf budget: every pixel moves by at most eps (pixels in [0, 1]). 0.3 is the usual MNIST budget; about 8/255 for CIFAR-10.'),
});
export type FgsmParams = z.output<typeof paramsSchema>;

export const fgsm: AttackDefinition<FgsmParams> = {
  id: 'fgsm',
  name: 'FGSM',
  norm: 'linf',
  description:
    'Fast Gradient Sign Method: one step of size eps along the sign of the cross-entropy gradient ' +
    '(up the label\'s loss, or down the target\'s). Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.',
  paper: {
    authors: 'Ian J. Goodfellow, Jonathon Shlens, Christian Szegedy',
    title: 'Explaining and Harnessing Adversarial Examples',
    venue: 'ICLR',
    year: 2015,
    url: 'https://arxiv.org/abs/1412.6572',
  },
  paramsSchema,
  defaults: paramsSchema.parse({}),
  epsilonBall: (p) => ({ norm: 'linf', eps: p.eps }),
  async run(problem, p, ctx) {
    ctx.checkpoint();
    const { classifier, x } = problem;
    const targeted = problem.targets !== null;
    const adversarial = tf.tidy(() => {
      const r = ascentGradient(classifier, x, 'ce', problem.targets ?? problem.labels, targeted, 0, true);
      r.logits.dispose();
      r.values.dispose();
      return tf.clipByValue(tf.add(x, tf.mul(sign(r.grad), p.eps)), 0, 1) as tf.Tensor4D;
    });
    problem.progress(1, 1, 'fgsm');
    return { adversarial, iterations: new Int32Array(problem.labels.length).fill(1) };
  },
};
