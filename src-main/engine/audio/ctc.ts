/**
 * Connectionist Temporal Classification loss (Graves et al. 2006), in tfjs ops so that tf.grad
 * gives its gradient w.r.t. the logits on every backend (wasm included: no gather, no FFT).
 *
 * For each example b with label sequence l (length U) and input length T_b, the loss is
 * -log p(l | x) = -log sum over all alignments pi (length T_b, over labels + blank) with
 * B(pi) = l of prod_t y_t(pi_t), where B collapses repeats and then drops blanks. It is computed
 * with the forward (alpha) recursion over the extended label l' = (blank, l_1, blank, ..., l_U,
 * blank) in the log domain:
 *   alpha_0(s)  = log y_0(l'_s) for s in {0, 1}, else -inf
 *   alpha_t(s)  = log y_t(l'_s) + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1),
 *                                           alpha_{t-1}(s-2) if l'_s != blank and l'_s != l'_{s-2})
 *   loss        = -logsumexp(alpha_{T_b-1}(2U), alpha_{T_b-1}(2U-1)).
 * Vectorised over the batch and the extended-label positions; one step per time frame.
 * The gradient w.r.t. the logits is the classic one (Graves et al. 2006, eq. 16): the beta
 * (backward) recursion is run the same way and d loss / d u_t(k) = y_t(k) - sum over s with
 * l'_s = k of exp(alpha_t(s) + beta_t(s) + loss), registered with tf.customGrad; tfjs's own
 * differentiation of the alpha recursion is kept as an option (gradient: 'autodiff') and the
 * tests check that both agree. Emission scores are picked from the log-softmax by a batched matmul with a one-hot matrix
 * rather than a gather (wasm lacks the gather gradient). -inf is represented by -1e30 so that
 * gradients stay finite.
 */
import * as tf from '@tensorflow/tfjs';
import { badInput } from '../errors';

/** Stand-in for log(0): finite, so that no NaN appears in forward or backward passes. */
const NEG = -1e30;

export interface CtcOptions {
  /** Index of the blank class. Default: the last class (C - 1). */
  blank?: number;
  /** Valid frames per example (<= T). Default: T for every example. */
  inputLengths?: number[];
  /** 'none' (default): loss per example [B]; 'sum' or 'mean' over the batch (a scalar). */
  reduction?: 'none' | 'sum' | 'mean';
  /**
   * 'analytic' (default): the gradient from the beta recursion; 'autodiff': tfjs differentiates
   * the alpha recursion itself (a cross-check; on wasm 338 ms instead of 47 ms for value and
   * gradient of 1 x 125 frames x 29 classes).
   */
  gradient?: 'analytic' | 'autodiff';
}

/** Frames CTC needs at least to emit `labels`: one per label plus one blank between repeats. */
export function ctcMinFrames(labels: readonly number[]): number {
  let repeats = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] === labels[i - 1]) repeats++;
  return labels.length + repeats;
}

/** Checks labels and input lengths against logits [B, T, C] (badInput naming the problem); returns the input lengths. */
function checkCtcInputs(B: number, T: number, C: number, blank: number, labels: readonly (readonly number[])[], lengths: readonly number[] | undefined): number[] {
  if (labels.length !== B) throw badInput(`ctcLoss: ${labels.length} label sequences for a batch of ${B}`);
  const inputLengths = lengths ? [...lengths] : new Array<number>(B).fill(T);
  if (inputLengths.length !== B) throw badInput(`ctcLoss: ${inputLengths.length} input lengths for a batch of ${B}`);
  labels.forEach((l, b) => {
    const Tb = inputLengths[b];
    if (!Number.isInteger(Tb) || Tb < 1 || Tb > T) throw badInput(`ctcLoss: input length ${Tb} of example ${b} is outside [1, ${T}]`);
    l.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c >= C) throw badInput(`ctcLoss: label ${c} at position ${i} of example ${b} is outside [0, ${C - 1}]`);
      if (c === blank) throw badInput(`ctcLoss: label at position ${i} of example ${b} is the blank (${blank})`);
    });
    const need = ctcMinFrames(l);
    if (need > Tb) throw badInput(`ctcLoss: example ${b} has ${Tb} frames but its ${l.length}-label target needs at least ${need}`, { example: b });
  });
  return inputLengths;
}

/**
 * CTC negative log-likelihood of `labels` (one array of class indices per example, lengths may
 * differ, may be empty) given unnormalised `logits` [B, T, C] (a log-softmax is applied, so
 * log-probabilities work too). Throws badInput for labels out of range, labels equal to the blank,
 * or input lengths too short to emit their label.
 */
export function ctcLoss(logits: tf.Tensor3D, labels: readonly (readonly number[])[], options: CtcOptions = {}): tf.Tensor {
  if (logits.rank !== 3) throw badInput(`ctcLoss: logits must be [batch, time, classes], got shape [${logits.shape.join(', ')}]`);
  const [B, T, C] = logits.shape;
  const blank = options.blank ?? C - 1;
  const reduction = options.reduction ?? 'none';
  if (!Number.isInteger(blank) || blank < 0 || blank >= C) throw badInput(`ctcLoss: blank index ${blank} is outside [0, ${C - 1}]`);
  if (!['none', 'sum', 'mean'].includes(reduction)) throw badInput(`ctcLoss: reduction must be none, sum or mean, got ${reduction}`);
  if (options.gradient !== undefined && !['analytic', 'autodiff'].includes(options.gradient)) throw badInput(`ctcLoss: gradient must be analytic or autodiff, got ${options.gradient}`);
  const inputLengths = checkCtcInputs(B, T, C, blank, labels, options.inputLengths);

  const U = Math.max(0, ...labels.map((l) => l.length));
  const S = 2 * U + 1;
  const onehot = new Float32Array(B * C * S); // [B, C, S]
  const onehotT = new Float32Array(B * S * C); // [B, S, C]: a plain matmul is much faster on wasm than a transposed one
  const skip = new Float32Array(B * S).fill(NEG); // additive mask for the s-2 transition
  const init = new Float32Array(B * S).fill(NEG); // additive mask for alpha_0
  const end = new Float32Array(B * S).fill(NEG); // additive mask for the final states
  labels.forEach((l, b) => {
    const ext = (s: number) => (s % 2 === 1 && (s - 1) / 2 < l.length ? l[(s - 1) / 2] : blank);
    for (let s = 0; s < S; s++) {
      onehot[b * C * S + ext(s) * S + s] = 1;
      onehotT[b * S * C + s * C + ext(s)] = 1;
      if (s >= 2 && s < 2 * l.length + 1 && ext(s) !== blank && ext(s) !== ext(s - 2)) skip[b * S + s] = 0;
    }
    init[b * S] = 0;
    end[b * S + 2 * l.length] = 0;
    if (l.length > 0) {
      init[b * S + 1] = 0;
      end[b * S + 2 * l.length - 1] = 0;
    }
  });
  const maxT = Math.max(...inputLengths);
  const consts = { B, T, C, S, maxT, onehot, onehotT, skip, init, end, inputLengths };

  // The loss per example is a custom-gradient op: the forward pass runs the alpha recursion,
  // the backward pass the beta recursion, and the gradient w.r.t. the logits is
  // softmax(logits) - (state occupancies alpha*beta/p summed per class) on valid frames.
  const analytic = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const logp = tf.logSoftmax(x as tf.Tensor3D);
    const { loss, alphas } = forward(logp, consts);
    save([logp, alphas, loss]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [lp, al, ls] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor1D];
        return tf.mul(backward(lp, al, ls, consts), tf.reshape(dy, [B, 1, 1]));
      },
    };
  }) as Parameters<typeof tf.customGrad<tf.Tensor1D>>[0]);

  return tf.tidy(() => {
    const loss = options.gradient === 'autodiff' ? forward(tf.logSoftmax(logits), consts).loss : analytic(logits);
    if (reduction === 'sum') return tf.sum(loss);
    if (reduction === 'mean') return tf.mean(loss);
    return loss;
  });
}

interface CtcConstants {
  B: number;
  T: number;
  C: number;
  S: number;
  maxT: number;
  /** [B, C, S] one-hot of the extended labels, and its transpose [B, S, C]. */
  onehot: Float32Array;
  onehotT: Float32Array;
  /** [B, S] additive masks (0 or NEG): s-2 transition allowed, initial states, final states. */
  skip: Float32Array;
  init: Float32Array;
  end: Float32Array;
  inputLengths: number[];
}

/** Element-wise log(exp(a) + exp(b) + exp(c)), stable. */
function logSumExp3(a: tf.Tensor2D, b: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  const m = tf.maximum(tf.maximum(a, b), c);
  return tf.add(m, tf.log(tf.addN([tf.exp(tf.sub(a, m)), tf.exp(tf.sub(b, m)), tf.exp(tf.sub(c, m))])));
}

/** Emission log-probabilities of the extended labels, one [B, S] tensor per frame < maxT. */
function emissions(logp: tf.Tensor3D, k: CtcConstants): tf.Tensor2D[] {
  const emit = tf.matMul(logp, tf.tensor3d(k.onehot, [k.B, k.C, k.S]));
  return tf.unstack(tf.slice(emit, [0, 0, 0], [k.B, k.maxT, k.S]), 1) as tf.Tensor2D[];
}

/** [B, 1] with 1 where the example's last frame is t. */
function lastFrame(t: number, k: CtcConstants): tf.Tensor2D {
  return tf.tensor2d(k.inputLengths.map((Tb) => (Tb - 1 === t ? 1 : 0)), [k.B, 1]);
}

/** Alpha recursion: per-example loss [B] and every alpha_t stacked as [B, maxT, S]. */
function forward(logp: tf.Tensor3D, k: CtcConstants): { loss: tf.Tensor1D; alphas: tf.Tensor3D } {
  const { B, S, maxT } = k;
  const steps = emissions(logp, k);
  const skip = tf.tensor2d(k.skip, [B, S]);
  // s-1 and s-2 predecessors: the state vector shifted right, NEG shifted in.
  const shiftRight = (a: tf.Tensor2D, n: number): tf.Tensor2D =>
    n >= S ? (tf.fill([B, S], NEG) as tf.Tensor2D) : tf.concat([tf.fill([B, n], NEG), tf.slice(a, [0, 0], [B, S - n])], 1);
  const alphas: tf.Tensor2D[] = [tf.add(steps[0], tf.tensor2d(k.init, [B, S]))];
  let last: tf.Tensor2D = tf.mul(alphas[0], lastFrame(0, k));
  for (let t = 1; t < maxT; t++) {
    const prev = alphas[t - 1];
    const alpha: tf.Tensor2D = tf.add(logSumExp3(prev, shiftRight(prev, 1), tf.add(shiftRight(prev, 2), skip)), steps[t]);
    alphas.push(alpha);
    if (k.inputLengths.includes(t + 1)) last = tf.add(last, tf.mul(alpha, lastFrame(t, k)));
  }
  const loss = tf.neg(tf.logSumExp(tf.add(last, tf.tensor2d(k.end, [B, S])), 1)) as tf.Tensor1D;
  return { loss, alphas: tf.stack(alphas, 1) as tf.Tensor3D };
}

/**
 * Beta recursion and the gradient w.r.t. the logits, [B, T, C]. beta_t(s) is the log-probability
 * of finishing the label from state s at frame t (emissions after t only), so that
 * alpha_t(s) + beta_t(s) + loss = log P(state s at frame t | label, x).
 */
function backward(logp: tf.Tensor3D, alphas: tf.Tensor3D, loss: tf.Tensor1D, k: CtcConstants): tf.Tensor3D {
  const { B, T, C, S, maxT } = k;
  const steps = emissions(logp, k);
  const end = tf.tensor2d(k.end, [B, S]);
  const skip = tf.tensor2d(k.skip, [B, S]);
  // s+1 and s+2 successors: the vector shifted left, NEG shifted in.
  const shiftLeft = (a: tf.Tensor2D, n: number): tf.Tensor2D =>
    n >= S ? (tf.fill([B, S], NEG) as tf.Tensor2D) : tf.concat([tf.slice(a, [0, n], [B, S - n]), tf.fill([B, n], NEG)], 1);
  const betas: tf.Tensor2D[] = new Array(maxT);
  let beta: tf.Tensor2D = end;
  for (let t = maxT - 1; t >= 0; t--) {
    if (t < maxT - 1) {
      const g: tf.Tensor2D = tf.add(betas[t + 1], steps[t + 1]);
      beta = logSumExp3(g, shiftLeft(g, 1), shiftLeft(tf.add(g, skip), 2));
    }
    // An example whose last frame is t starts its recursion here (later frames are masked out).
    const sel = lastFrame(t, k);
    if (k.inputLengths.includes(t + 1)) beta = tf.add(tf.mul(sel, end), tf.mul(tf.sub(1, sel), beta));
    betas[t] = beta;
  }
  const valid = new Float32Array(B * maxT);
  k.inputLengths.forEach((Tb, b) => valid.fill(1, b * maxT, b * maxT + Tb));
  // Frames past an example's input length carry meaningless alpha + beta (the recursions run on
  // through the padding), which can exceed -loss by more than exp's range: mask them to NEG before
  // the exp, or inf * 0 = NaN appears in the gradient.
  const invalid = Float32Array.from(valid, (v) => (v ? 0 : NEG));
  const logPosterior = tf.add(tf.add(tf.add(alphas, tf.stack(betas, 1)), tf.reshape(loss, [B, 1, 1])), tf.tensor3d(invalid, [B, maxT, 1]));
  const posterior = tf.exp(logPosterior);
  const occupancy = tf.matMul(posterior, tf.tensor3d(k.onehotT, [B, S, C])); // [B, maxT, C]
  const g = tf.mul(tf.sub(tf.exp(tf.slice(logp, [0, 0, 0], [B, maxT, C])), occupancy), tf.tensor3d(valid, [B, maxT, 1]));
  return (maxT < T ? tf.pad(g, [[0, 0], [0, T - maxT], [0, 0]]) : g) as tf.Tensor3D;
}

/** log(exp(a) + exp(b)) in doubles, -Infinity for log(0). */
function lse2(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/**
 * The same CTC loss and its gradient with respect to the logits, on plain arrays (no tfjs): what a training step
 * whose network runs elsewhere (ONNX Runtime, engine/onnx/seq-trainer.ts) needs between the forward and the
 * backward run. The math is ctcLoss's above, in doubles with -Infinity for log(0): per example the log-softmax
 * of its first T_b frames, the alpha and beta recursions over the extended label, and
 *   d loss_b / d u_t(k) = y_t(k) - sum over s with l'_s = k of exp(alpha_t(s) + beta_t(s) + loss_b)   (t < T_b; 0 after).
 * `logits` is [B, T, C] row-major. Returns every example's loss and the gradient of sum_b w_b loss_b (w_b = 1,
 * or 1 / B with reduction 'mean', whose loss is then the mean). Same checks (and errors) as ctcLoss.
 * It and ctcLoss (float32 tensors) differ by float32 rounding, also where a model in training is: along 20 steps of
 * speech-large the logit gradients differ by at most 2.8e-5 (relative L2) and the losses by 5e-7. That is enough for
 * two training runs, one on each, to part after a few steps, as any rounding difference makes them part (a 1e-7 nudge of
 * the initial weights on one engine parts them as far: BENCHMARKS.md, "The ONNX Runtime vs tfjs speech-training drift").
 */
export function ctcLossGradient(
  logits: Float32Array, dims: readonly [number, number, number], labels: readonly (readonly number[])[],
  options: { blank?: number; inputLengths?: readonly number[]; reduction?: 'sum' | 'mean' } = {},
): { losses: Float64Array; loss: number; grad: Float32Array } {
  const [B, T, C] = dims;
  if (logits.length !== B * T * C) throw badInput(`ctcLossGradient: ${logits.length} logits for [${B}, ${T}, ${C}]`);
  const blank = options.blank ?? C - 1;
  if (!Number.isInteger(blank) || blank < 0 || blank >= C) throw badInput(`ctcLoss: blank index ${blank} is outside [0, ${C - 1}]`);
  const inputLengths = checkCtcInputs(B, T, C, blank, labels, options.inputLengths);
  const weight = options.reduction === 'mean' ? 1 / B : 1;
  const losses = new Float64Array(B);
  const grad = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    const l = labels[b], Tb = inputLengths[b], S = 2 * l.length + 1;
    const ext = Int32Array.from({ length: S }, (_, s) => (s % 2 === 1 ? l[(s - 1) / 2] : blank));
    const skip = Uint8Array.from({ length: S }, (_, s) => (s >= 2 && ext[s] !== blank && ext[s] !== ext[s - 2] ? 1 : 0));
    const logp = new Float64Array(Tb * C);
    for (let t = 0; t < Tb; t++) {
      const o = (b * T + t) * C;
      let m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, logits[o + k]);
      let z = 0;
      for (let k = 0; k < C; k++) z += Math.exp(logits[o + k] - m);
      const lz = m + Math.log(z);
      for (let k = 0; k < C; k++) logp[t * C + k] = logits[o + k] - lz;
    }
    const alpha = new Float64Array(Tb * S).fill(-Infinity);
    alpha[0] = logp[blank];
    if (S > 1) alpha[1] = logp[ext[1]];
    for (let t = 1; t < Tb; t++) {
      for (let s = 0; s < S; s++) {
        const p = (t - 1) * S + s;
        let a = alpha[p];
        if (s >= 1) a = lse2(a, alpha[p - 1]);
        if (skip[s]) a = lse2(a, alpha[p - 2]);
        alpha[t * S + s] = a === -Infinity ? a : a + logp[t * C + ext[s]];
      }
    }
    const last = (Tb - 1) * S;
    const loss = -lse2(alpha[last + S - 1], S > 1 ? alpha[last + S - 2] : -Infinity);
    losses[b] = loss;
    // beta_t(s): finishing the label from state s at frame t, emissions after t only.
    const beta = new Float64Array(Tb * S).fill(-Infinity);
    beta[last + S - 1] = 0;
    if (S > 1) beta[last + S - 2] = 0;
    const g = new Float64Array(S);
    for (let t = Tb - 2; t >= 0; t--) {
      for (let s = 0; s < S; s++) g[s] = beta[(t + 1) * S + s] === -Infinity ? -Infinity : beta[(t + 1) * S + s] + logp[(t + 1) * C + ext[s]];
      for (let s = 0; s < S; s++) {
        let v = g[s];
        if (s + 1 < S) v = lse2(v, g[s + 1]);
        if (s + 2 < S && skip[s + 2]) v = lse2(v, g[s + 2]);
        beta[t * S + s] = v;
      }
    }
    const occ = new Float64Array(C);
    for (let t = 0; t < Tb; t++) {
      occ.fill(0);
      for (let s = 0; s < S; s++) {
        const v = alpha[t * S + s] + beta[t * S + s];
        if (v !== -Infinity) occ[ext[s]] += Math.exp(v + loss);
      }
      const o = (b * T + t) * C;
      for (let k = 0; k < C; k++) grad[o + k] = weight * (Math.exp(logp[t * C + k]) - occ[k]);
    }
  }
  let total = 0;
  for (const v of losses) total += v;
  return { losses, loss: total * weight, grad };
}
