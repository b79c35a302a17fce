/**
 * The optimizers of ONNX Runtime training, applied in JS to the weights as Float32Arrays, written as tfjs's
 * (tfjs-core 4.22 optimizers/*.ts) so both engines take the same steps:
 *
 *   sgd:       w <- w - lr g
 *   momentum:  a <- m a + g;  w <- w - lr a              (Nesterov: w <- w - lr (g + m a))
 *   adam:      m1 <- b1 m1 + (1 - b1) g;  m2 <- b2 m2 + (1 - b2) g^2;
 *              w <- w - lr (m1 / (1 - b1^t)) / (sqrt(m2 / (1 - b2^t)) + eps)   (b1 0.9, b2 0.999, eps 1e-7)
 *
 * with the learning rate of step t (t = 0, 1, ...) decayed as Keras's `decay` (C&W's training code):
 * lr_t = lr / (1 + decay t); `learningRateAt` is the one formula, which the tfjs engine uses too.
 */
export interface OptimizerSpec {
  optimizer: 'adam' | 'sgd' | 'momentum';
  learningRate: number;
  momentum: number;
  nesterov: boolean;
  decay: number;
}

/** tfjs's Adam defaults (tf.train.adam) and its float32 epsilon (backend.epsilon()). */
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/** The learning rate of step `t` (0-based), Keras's time-based decay. */
export function learningRateAt(o: Pick<OptimizerSpec, 'learningRate' | 'decay'>, t: number): number {
  return o.decay > 0 ? o.learningRate / (1 + o.decay * t) : o.learningRate;
}

export class JsOptimizer {
  private readonly slots1: Float32Array[];
  private readonly slots2: Float32Array[];
  /** Steps taken. */
  iterations = 0;
  private accBeta1 = ADAM.beta1;
  private accBeta2 = ADAM.beta2;

  constructor(readonly spec: OptimizerSpec, sizes: number[]) {
    this.slots1 = spec.optimizer === 'sgd' ? [] : sizes.map((n) => new Float32Array(n));
    this.slots2 = spec.optimizer === 'adam' ? sizes.map((n) => new Float32Array(n)) : [];
  }

  /** One update of every weight in place from its gradient, at the spec's learning rate of this step or at `lr` (a caller's own schedule). */
  apply(weights: Float32Array[], grads: Float32Array[], lr: number = learningRateAt(this.spec, this.iterations)): void {
    const s = this.spec;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i], g = grads[i];
      if (g.length !== w.length) throw new Error(`optimizer: gradient ${i} has ${g.length} values for ${w.length} weights`);
      switch (s.optimizer) {
        case 'sgd':
          for (let j = 0; j < w.length; j++) w[j] -= lr * g[j];
          break;
        case 'momentum': {
          const a = this.slots1[i], m = s.momentum;
          if (s.nesterov) for (let j = 0; j < w.length; j++) { a[j] = m * a[j] + g[j]; w[j] -= lr * (g[j] + m * a[j]); }
          else for (let j = 0; j < w.length; j++) { a[j] = m * a[j] + g[j]; w[j] -= lr * a[j]; }
          break;
        }
        case 'adam': {
          const m1 = this.slots1[i], m2 = this.slots2[i];
          const { beta1, beta2, epsilon } = ADAM;
          const c1 = 1 - this.accBeta1, c2 = 1 - this.accBeta2;
          for (let j = 0; j < w.length; j++) {
            m1[j] = beta1 * m1[j] + (1 - beta1) * g[j];
            m2[j] = beta2 * m2[j] + (1 - beta2) * g[j] * g[j];
            w[j] -= lr * (m1[j] / c1) / (Math.sqrt(m2[j] / c2) + epsilon);
          }
          break;
        }
      }
    }
    if (s.optimizer === 'adam') { this.accBeta1 *= ADAM.beta1; this.accBeta2 *= ADAM.beta2; }
    this.iterations++;
  }
}
