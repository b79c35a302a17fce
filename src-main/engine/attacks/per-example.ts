/**
 * Randomness drawn per example, so an attack's result for an image does not depend on which other
 * images share its batch (the same image in a batch of 1, 8 or 100 gets the same random start): the
 * generator of an example is seeded by the attack's seed and a hash of the image's own pixels.
 * Evaluate relies on it to split its chunks into pool-sized shards and still resume exactly.
 */
import { mulberry32 } from '../core/random';

/** A generator seed from `seed` and the image at `data[offset .. offset + per)` (FNV-1a over the float bits). */
export function imageSeed(seed: number, data: Float32Array, offset: number, per: number): number {
  const bits = new Uint32Array(data.buffer, data.byteOffset + offset * 4, per);
  let hsh = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < per; i++) hsh = Math.imul(hsh ^ bits[i], 0x01000193) >>> 0;
  return hsh;
}

/** One example's generator (mulberry32 seeded by imageSeed). */
export function imageRng(seed: number, data: Float32Array, offset: number, per: number): () => number {
  return mulberry32(imageSeed(seed, data, offset, per));
}

/** A standard normal draw (Box-Muller) from a uniform generator. */
export function gaussian(rng: () => number): number {
  const u = 1 - rng(), v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * A uniformly random point of the eps-ball around each image of the batch (flat NHWC, `per` values per
 * image), clipped to [0, 1], drawn per image: Linf uniform per coordinate in [-eps, eps]; L2 by Voelker
 * et al. (2017), the first d coordinates of a normalised (d+2)-dimensional Gaussian are uniform in the d-ball.
 */
export function ballStartPerExample(x: Float32Array, per: number, norm: 'l2' | 'linf', eps: number, seed: number): Float32Array {
  const n = x.length / per;
  const out = new Float32Array(x.length);
  const g = new Float64Array(per + 2);
  for (let i = 0; i < n; i++) {
    const o = i * per;
    const rng = imageRng(seed, x, o, per);
    if (norm === 'linf') {
      for (let j = 0; j < per; j++) out[o + j] = Math.min(1, Math.max(0, x[o + j] + eps * (2 * rng() - 1)));
      continue;
    }
    let s = 0;
    for (let j = 0; j < per + 2; j++) { g[j] = gaussian(rng); s += g[j] * g[j]; }
    const scale = eps / Math.sqrt(s);
    for (let j = 0; j < per; j++) out[o + j] = Math.min(1, Math.max(0, x[o + j] + g[j] * scale));
  }
  return out;
}
