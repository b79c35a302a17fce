/**
 * Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
 * adversarial attack via random search", ECCV 2020), Linf and L2, following the authors' code as
 * AutoAttack ships it (fra31/auto-attack, square.py).
 *
 * Score-based random search: it only reads the model's logits, never a gradient, so masked, shattered
 * or zero gradients do not stop it; that makes it the check on gradient attacks. The loss is the
 * margin z_y - max_{i!=y} z_i (targeted: max_{i!=t} z_i - z_t), minimised; a point is done when the
 * goal is met. Each iteration changes one random square window of side s per image:
 * - Linf: start from vertical stripes x + eps * (+-1 per column and channel); a step sets the window,
 *   per channel, to x +- eps (a random vertex of the ball there).
 * - L2: start from a grid of "pseudo-Gaussian" blocks (nested rectangles of weight 1/(r+1)^2, one half
 *   positive, one negative) with random signs, rescaled to norm eps; a step moves the mass of a second
 *   window into the first, redrawn as a pseudo-Gaussian block plus the old content, so the norm stays eps.
 * The change is kept only if it lowers the loss (or meets the goal). The window's area is a fraction p
 * of the image, p = pInit halved at queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a
 * 10,000-query schedule rescaled to the budget (AutoAttack's resc_schedule).
 *
 * Queries are counted per example: one for the starting point and one per iteration until the goal is
 * met (reported as `iterations`); the budget `queries` includes the starting point.
 *
 * Deviations from the reference code, each small:
 * - Windows are drawn per image (as the authors' original per-image loop does), where AutoAttack's
 *   batched version shares one window position across the batch; and any position 0..h-s is drawn
 *   (the reference's randint(0, h - s) never puts the window at the last row or column).
 * - One seeded generator per example, seeded by the seed and a hash of the image itself, so a point's
 *   search does not depend on which other points share its batch (a resumed evaluation repeats it).
 * Defaults: AutoAttack's (5,000 queries, pInit 0.8, margin loss).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { JobContext } from '../context';
import { mulberry32 } from '../core/random';
import { imageSeed } from './per-example';
import type { AttackDefinition, AttackOutput, AttackProblem, Paper } from './types';

const PAPER: Paper = {
  authors: 'Maksym Andriushchenko, Francesco Croce, Nicolas Flammarion, Matthias Hein',
  title: 'Square Attack: a query-efficient black-box adversarial attack via random search',
  venue: 'ECCV',
  year: 2020,
  url: 'https://arxiv.org/abs/1912.00049',
};

/** Fraction of the image a window covers at iteration `it` of a budget of `total` (AutoAttack's p_selection with resc_schedule). */
export function squareFraction(pInit: number, it: number, total: number): number {
  const i = Math.floor((it / total) * 10000);
  const cuts = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let p = pInit;
  for (const c of cuts) if (i > c) p /= 2;
  return p;
}

/** The rectangles of eta(x, y): nested rectangles around the centre with weight 1/(r+1)^2, unit L2 norm. */
function etaRectangles(x: number, y: number): Float64Array {
  const d = new Float64Array(x * y);
  const xc = Math.floor(x / 2) + 1, yc = Math.floor(y / 2) + 1;
  let c0 = xc - 1, c1 = yc - 1;
  for (let r = 0; r < Math.max(xc, yc); r++) {
    for (let i = Math.max(c0, 0); i < Math.min(c0 + 2 * r + 1, x); i++) {
      for (let j = Math.max(c1, 0); j < Math.min(c1 + 2 * r + 1, y); j++) d[i * y + j] += 1 / ((r + 1) * (r + 1));
    }
    c0--; c1--;
  }
  return unit(d);
}

function unit(d: Float64Array): Float64Array {
  let s = 0;
  for (const v of d) s += v * v;
  const n = Math.sqrt(s) || 1;
  for (let i = 0; i < d.length; i++) d[i] /= n;
  return d;
}

/** The pseudo-Gaussian s x s block: eta on the top half, -eta on the bottom, unit norm, randomly transposed. */
export function pseudoGaussianBlock(s: number, rng: () => number): Float64Array {
  const d = new Float64Array(s * s);
  const top = etaRectangles(Math.floor(s / 2), s), bottom = etaRectangles(s - Math.floor(s / 2), s);
  d.set(top, 0);
  for (let i = 0; i < bottom.length; i++) d[top.length + i] = -bottom[i];
  unit(d);
  if (rng() > 0.5) {
    const t = new Float64Array(s * s);
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = d[i * s + j];
    return t;
  }
  return d;
}

interface Geometry { h: number; w: number; c: number; per: number }

/** Margin (the loss, minimised) per row of logits: z_c - max others (untargeted), or max others - z_t. */
function margins(zs: Float32Array, rows: Int32Array, k: number, cls: Int32Array, targeted: boolean): Float64Array {
  const out = new Float64Array(rows.length);
  for (let a = 0; a < rows.length; a++) {
    const c = cls[rows[a]];
    let other = -Infinity;
    for (let j = 0; j < k; j++) if (j !== c && zs[a * k + j] > other) other = zs[a * k + j];
    const m = zs[a * k + c] - other;
    out[a] = targeted ? -m : m;
  }
  return out;
}

const randInt = (rng: () => number, hi: number) => Math.min(hi - 1, Math.floor(rng() * hi));

/** Linf start: vertical stripes, x + eps * (+-1 per column and channel), clipped to [0, 1]. */
function linfStart(x: Float32Array, g: Geometry, eps: number, rng: () => number, out: Float32Array, o: number): void {
  const { h, w, c } = g;
  const signs = Float64Array.from({ length: w * c }, () => (rng() < 0.5 ? -1 : 1));
  for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) for (let ch = 0; ch < c; ch++) {
    const i = (r * w + q) * c + ch;
    out[o + i] = Math.min(1, Math.max(0, x[o + i] + eps * signs[q * c + ch]));
  }
}

/** Linf step: a window of side s set to x +- eps per channel, clipped to the ball (automatically) and [0, 1]. */
function linfStep(x: Float32Array, best: Float32Array, o: number, g: Geometry, eps: number, s: number, rng: () => number, out: Float32Array, oo: number): void {
  const { h, w, c, per } = g;
  out.set(best.subarray(o, o + per), oo);
  const vh = randInt(rng, h - s + 1), vw = randInt(rng, w - s + 1);
  const signs = Array.from({ length: c }, () => (rng() < 0.5 ? -1 : 1));
  for (let r = vh; r < vh + s; r++) for (let q = vw; q < vw + s; q++) for (let ch = 0; ch < c; ch++) {
    const i = (r * w + q) * c + ch;
    // x_best + 2 eps * sign, projected onto [x - eps, x + eps] and [0, 1].
    const v = Math.min(x[o + i] + eps, Math.max(x[o + i] - eps, best[o + i] + 2 * eps * signs[ch]));
    out[oo + i] = Math.min(1, Math.max(0, v));
  }
}

/** L2 start: a grid of pseudo-Gaussian blocks of side floor(h/5) with random signs per channel, norm eps. */
function l2Start(x: Float32Array, g: Geometry, eps: number, rng: () => number, out: Float32Array, o: number): void {
  const { h, w, c, per } = g;
  const delta = new Float64Array(per);
  const s = Math.max(1, Math.floor(h / 5));
  const sp = Math.floor((h - s * 5) / 2);
  for (let bh = 0, vh = sp; bh < Math.floor(h / s); bh++, vh += s) {
    for (let bw = 0, vw = sp; bw < Math.floor(w / s); bw++, vw += s) {
      const block = pseudoGaussianBlock(s, rng);
      for (let ch = 0; ch < c; ch++) {
        const sign = rng() < 0.5 ? -1 : 1;
        for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
          const r = vh + i, q = vw + j;
          if (r < h && q < w) delta[(r * w + q) * c + ch] += sign * block[i * s + j];
        }
      }
    }
  }
  writeL2(x, o, delta, eps, out, o, per);
}

/** out = clip(x + delta / ||delta|| * eps, 0, 1). */
function writeL2(x: Float32Array, o: number, delta: Float64Array, eps: number, out: Float32Array, oo: number, per: number): void {
  let sq = 0;
  for (const v of delta) sq += v * v;
  const f = eps / (Math.sqrt(sq) + 1e-12);
  for (let i = 0; i < per; i++) out[oo + i] = Math.min(1, Math.max(0, x[o + i] + delta[i] * f));
}

/** L2 step: moves the mass of window 2 into window 1, redrawn as a pseudo-Gaussian block plus its old content. */
function l2Step(x: Float32Array, best: Float32Array, o: number, g: Geometry, eps: number, s: number, rng: () => number, out: Float32Array, oo: number): void {
  const { h, w, c, per } = g;
  const delta = new Float64Array(per);
  let normImage = 0;
  for (let i = 0; i < per; i++) { delta[i] = best[o + i] - x[o + i]; normImage += delta[i] * delta[i]; }
  const vh = randInt(rng, h - s + 1), vw = randInt(rng, w - s + 1);
  const vh2 = randInt(rng, h - s + 1), vw2 = randInt(rng, w - s + 1);
  const in1 = (r: number, q: number) => r >= vh && r < vh + s && q >= vw && q < vw + s;
  const in2 = (r: number, q: number) => r >= vh2 && r < vh2 + s && q >= vw2 && q < vw2 + s;
  // ||delta|| over the union of both windows (the mass that may be redistributed).
  let normWindows = 0;
  for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) if (in1(r, q) || in2(r, q)) for (let ch = 0; ch < c; ch++) normWindows += delta[(r * w + q) * c + ch] ** 2;
  const budget = Math.sqrt(Math.max(eps * eps - normImage, 0) / c + normWindows);
  const block = pseudoGaussianBlock(s, rng);
  const fresh: Float64Array[] = [];
  for (let ch = 0; ch < c; ch++) {
    const sign = rng() < 0.5 ? -1 : 1;
    let n1 = 0;
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) n1 += delta[((vh + i) * w + vw + j) * c + ch] ** 2;
    n1 = Math.sqrt(n1);
    const nd = new Float64Array(s * s);
    let nn = 0;
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
      const v = sign * block[i * s + j] + delta[((vh + i) * w + vw + j) * c + ch] / (n1 + 1e-12);
      nd[i * s + j] = v;
      nn += v * v;
    }
    const f = budget / Math.sqrt(nn || 1);
    for (let i = 0; i < nd.length; i++) nd[i] *= f;
    fresh.push(nd);
  }
  for (let r = vh2; r < vh2 + s; r++) for (let q = vw2; q < vw2 + s; q++) for (let ch = 0; ch < c; ch++) delta[(r * w + q) * c + ch] = 0;
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) delta[((vh + i) * w + vw + j) * c + ch] = fresh[ch][i * s + j];
  writeL2(x, o, delta, eps, out, oo, per);
}

export interface SquareSettings {
  norm: 'l2' | 'linf';
  eps: number;
  queries: number;
  pInit: number;
  seed: number;
}

/** The Square Attack on a whole batch: forward passes only (classifier.logits outside any gradient tape). */
export async function squareAttack(problem: AttackProblem, s: SquareSettings, ctx: JobContext): Promise<AttackOutput> {
  const { classifier } = problem;
  const n = problem.labels.length, k = problem.numClasses;
  const [, h, w, c] = problem.x.shape;
  const g: Geometry = { h, w, c, per: h * w * c };
  const x = problem.x.dataSync() as Float32Array;
  const targeted = problem.targets !== null;
  const cls = problem.targets ?? problem.labels;
  const rngs = Array.from({ length: n }, (_, i) => mulberry32(imageSeed(s.seed, x, i * g.per, g.per)));
  const best = new Float32Array(n * g.per);
  for (let i = 0; i < n; i++) (s.norm === 'linf' ? linfStart : l2Start)(x, g, s.eps, rngs[i], best, i * g.per);
  const queries = new Int32Array(n).fill(1);
  const bestLoss = new Float64Array(n);
  const done = new Uint8Array(n);
  /** Logits of the rows `rows` at the images `imgs` (one row each), the goal test, and the margin. */
  const query = (rows: Int32Array, imgs: Float32Array): { adv: Uint8Array; loss: Float64Array } => {
    const rowsT = tf.tensor1d(rows, 'int32');
    const logits = tf.tidy(() => classifier.logits(tf.tensor4d(imgs, [rows.length, h, w, c])));
    const isAdv = problem.isAdversarial(logits, rowsT);
    const zs = logits.dataSync() as Float32Array;
    const adv = Uint8Array.from(isAdv.dataSync());
    tf.dispose([rowsT, logits, isAdv]);
    return { adv, loss: margins(zs, rows, k, cls, targeted) };
  };
  const all = Int32Array.from({ length: n }, (_, i) => i);
  ctx.checkpoint();
  const first = query(all, best);
  for (let i = 0; i < n; i++) { bestLoss[i] = first.loss[i]; done[i] = first.adv[i]; }
  const step = s.norm === 'linf' ? linfStep : l2Step;
  const side = (p: number) => {
    const raw = Math.round(Math.sqrt(p * h * w));
    const sq = s.norm === 'linf' ? Math.max(raw, 1) : Math.max(raw, 3) + (Math.max(raw, 3) % 2 === 0 ? 1 : 0);
    return Math.min(sq, h, w);
  };
  const total = s.queries - 1;
  for (let it = 0; it < total; it++) {
    const active = all.filter((i) => !done[i]);
    if (active.length === 0) break;
    ctx.checkpoint();
    const sq = side(squareFraction(s.pInit, it, total));
    const cand = new Float32Array(active.length * g.per);
    active.forEach((i, a) => step(x, best, i * g.per, g, s.eps, sq, rngs[i], cand, a * g.per));
    const r = query(active, cand);
    let broken = 0;
    active.forEach((i, a) => {
      queries[i]++;
      if (r.adv[a] || r.loss[a] < bestLoss[i]) {
        bestLoss[i] = r.loss[a];
        best.set(cand.subarray(a * g.per, (a + 1) * g.per), i * g.per);
        if (r.adv[a]) done[i] = 1;
      }
    });
    for (let i = 0; i < n; i++) broken += done[i];
    problem.progress(it + 1, total, `square-${s.norm}`, { successRate: broken / n, side: sq });
    // Yield now and then, so a worker stays responsive to cancel messages during long searches.
    if (it % 50 === 49) await new Promise((res) => setImmediate(res));
  }
  problem.progress(total, total, `square-${s.norm}`);
  return { adversarial: tf.tensor4d(best, problem.x.shape), iterations: queries };
}

const queriesField = z.number().int().min(1).max(1_000_000).default(5000).describe('Query budget per example, the starting point included (AutoAttack: 5000).');
const pInitField = z.number().gt(0).max(1).default(0.8).describe('Initial fraction of the image a square covers (AutoAttack: 0.8); halved on a fixed schedule.');
const seedField = z.number().int().min(0).default(0).describe('Seed of the random search.');

const linfSchema = z.strictObject({
  eps: z.number().positive().max(1).default(0.3).describe('Linf budget (pixels in [0, 1]): 0.3 MNIST, 8/255 CIFAR-10.'),
  queries: queriesField, pInit: pInitField, seed: seedField,
});
const l2Schema = z.strictObject({
  eps: z.number().positive().default(2).describe('L2 budget of the whole perturbation (pixels in [0, 1]).'),
  queries: queriesField, pInit: pInitField, seed: seedField,
});

const DESCRIPTION =
  'Square Attack: score-based random search that changes one random square window per step and keeps the change if ' +
  'the logit margin drops; needs no gradient, so masked gradients do not stop it. Counts queries per example. ' +
  'Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial attack via random search", ECCV 2020.';

export const square: AttackDefinition<z.output<typeof linfSchema>> = {
  id: 'square', name: 'Square Attack (Linf)', norm: 'linf', description: DESCRIPTION, paper: PAPER,
  paramsSchema: linfSchema, defaults: linfSchema.parse({}),
  epsilonBall: (p) => ({ norm: 'linf', eps: p.eps }),
  run: (problem, p, ctx) => squareAttack(problem, { norm: 'linf', ...p }, ctx),
};

export const squareL2: AttackDefinition<z.output<typeof l2Schema>> = {
  id: 'square-l2', name: 'Square Attack (L2)', norm: 'l2', description: DESCRIPTION, paper: PAPER,
  paramsSchema: l2Schema, defaults: l2Schema.parse({}),
  epsilonBall: (p) => ({ norm: 'l2', eps: p.eps }),
  run: (problem, p, ctx) => squareAttack(problem, { norm: 'l2', ...p }, ctx),
};
