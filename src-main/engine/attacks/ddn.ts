/**
 * DDN, Decoupled Direction and Norm (Rony, Hafemann, Oliveira, Ben Ayed, Sabourin & Granger, CVPR 2019),
 * following the authors' code (jeromerony/fast_adversarial, attacks/ddn.py).
 *
 * A minimal-L2 attack that needs no constant search: the perturbation delta takes a gradient step of
 * length alpha (cosine-annealed from 1 to 0.01) along the normalised cross-entropy gradient, then is
 * rescaled to a norm eps that shrinks by (1 - gamma) while x + delta is adversarial and grows by
 * (1 + gamma) while it is not (capped at the largest possible distance). The image is quantised to
 * `levels` grey levels and clipped to [0, 1]. The smallest-L2 adversarial seen is kept per example.
 * A few hundred steps reach distances close to C&W L2 at a fraction of its cost.
 * Distance: L2, minimised. Shapes: x [n, h, w, c] in [0, 1].
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { ascentGradient, l2Norm, rowMask, rowWhere } from './ops';
import type { AttackDefinition, AttackOutput, AttackProblem } from './types';

const paramsSchema = z.strictObject({
  steps: z.number().int().min(1).max(100_000).default(100).describe('Gradient steps (the paper reports 100 and 1000).'),
  gamma: z.number().positive().lt(1).default(0.05).describe('Factor by which the norm shrinks (adversarial) or grows (not yet) each step.'),
  initNorm: z.number().positive().default(1).describe('Initial L2 norm eps of the perturbation.'),
  quantize: z.boolean().default(true).describe('Round to `levels` grey levels each step, so the result survives saving as an 8-bit image.'),
  levels: z.number().int().min(2).max(65536).default(256).describe('Grey levels for quantisation.'),
  seed: z.number().int().default(0).describe('Seed for the random direction used when a gradient is exactly zero.'),
});
export type DdnParams = z.output<typeof paramsSchema>;

export async function decoupledDirectionNorm(problem: AttackProblem, p: DdnParams, ctx: JobContext): Promise<AttackOutput> {
  const { classifier, x } = problem;
  const n = problem.labels.length;
  const targeted = problem.targets !== null;
  const goal = problem.targets ?? problem.labels;
  const worstNorm = tf.tidy(() => l2Norm(tf.maximum(x, tf.sub(1, x))).dataSync());
  const eps = Float32Array.from({ length: n }, (_, i) => Math.min(p.initNorm, worstNorm[i]));
  const bestL2 = Float64Array.from(worstNorm);
  const found = new Uint8Array(n);
  let delta = tf.zerosLike(x);
  let bestDelta = tf.zerosLike(x);
  try {
    for (let i = 0; i < p.steps; i++) {
      ctx.checkpoint();
      const alpha = 0.01 + (1 - 0.01) * (1 + Math.cos((Math.PI * i) / p.steps)) / 2;
      const g = tf.tidy(() => {
        const r = ascentGradient(classifier, tf.add(x, delta) as tf.Tensor4D, 'ce', goal, targeted);
        r.values.dispose();
        return { grad: r.grad, logits: r.logits, l2: l2Norm(delta), gn: l2Norm(r.grad) };
      });
      const isAdvT = problem.isAdversarial(g.logits);
      const isAdv = isAdvT.dataSync();
      const l2 = g.l2.dataSync();
      const gn = g.gn.dataSync();
      isAdvT.dispose(); g.logits.dispose(); g.l2.dispose();
      // Keep the smallest adversarial so far.
      const better = new Uint8Array(n);
      let anyBetter = false, anyZero = false;
      for (let j = 0; j < n; j++) {
        if (isAdv[j] && l2[j] < bestL2[j]) { bestL2[j] = l2[j]; found[j] = 1; better[j] = 1; anyBetter = true; }
        if (gn[j] === 0) anyZero = true;
        eps[j] = Math.min(eps[j] * (isAdv[j] ? 1 - p.gamma : 1 + p.gamma), worstNorm[j]);
      }
      if (anyBetter) {
        const nb = tf.tidy(() => rowWhere(tf.tensor1d(better, 'bool'), delta, bestDelta));
        bestDelta.dispose();
        bestDelta = nb;
      }
      const next = tf.tidy(() => {
        let dir = tf.div(g.grad, tf.add(rowMask(g.gn, 4), 1e-12)) as tf.Tensor4D;
        if (anyZero) dir = rowWhere(tf.equal(g.gn, 0) as tf.Tensor1D, tf.randomNormal(x.shape, 0, 1, 'float32', p.seed + i) as tf.Tensor4D, dir);
        const stepped = tf.add(delta, tf.mul(dir, alpha));
        const scaled = tf.mul(stepped, rowMask(tf.div(tf.tensor1d(eps), tf.add(l2Norm(stepped), 1e-12)) as tf.Tensor1D, 4));
        let img = tf.add(x, scaled);
        if (p.quantize) img = tf.div(tf.round(tf.mul(img, p.levels - 1)), p.levels - 1);
        return tf.sub(tf.clipByValue(img, 0, 1), x) as tf.Tensor4D;
      });
      g.grad.dispose(); g.gn.dispose();
      delta.dispose();
      delta = next;
      let count = 0, sum = 0;
      for (let j = 0; j < n; j++) if (found[j]) { count++; sum += bestL2[j]; }
      problem.progress(i + 1, p.steps, 'ddn', { found: count / n, meanL2: count ? sum / count : 0 });
    }
    const adversarial = tf.tidy(() => tf.add(x, bestDelta) as tf.Tensor4D);
    return { adversarial, iterations: new Int32Array(n).fill(p.steps) };
  } finally {
    delta.dispose();
    bestDelta.dispose();
  }
}

export const ddn: AttackDefinition<DdnParams> = {
  id: 'ddn',
  name: 'DDN (L2)',
  norm: 'l2',
  description:
    'Decoupled Direction and Norm: normalised cross-entropy gradient steps whose L2 norm is shrunk while ' +
    'adversarial and grown while not, keeping the smallest adversarial found; C&W-like L2 in a few hundred ' +
    'steps. Rony et al., "Decoupled Direction and Norm: A Gradient-Based L2 Adversarial Attack", CVPR 2019.',
  paper: {
    authors: 'Jérôme Rony, Luiz G. Hafemann, Luiz S. Oliveira, Ismail Ben Ayed, Robert Sabourin, Eric Granger',
    title: 'Decoupled Direction and Norm: A Gradient-Based L2 Adversarial Attack and Defense',
    venue: 'CVPR',
    year: 2019,
    url: 'https://arxiv.org/abs/1811.09600',
  },
  paramsSchema,
  defaults: paramsSchema.parse({}),
  run: decoupledDirectionNorm,
};
