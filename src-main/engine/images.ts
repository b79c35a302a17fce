/**
 * Images as PNG for sessions and reports: clean and adversarial examples, and perturbations drawn
 * with a diverging colour map (blue = darker, white = unchanged, red = brighter) scaled to the largest
 * change, so the scale travels with the picture.
 */
import { PNG } from 'pngjs';

/** Encodes h x w x c pixels in [0, 1] (c = 1 or 3) as an RGB PNG, each pixel drawn scale x scale. */
export function encodePng(pixels: ArrayLike<number>, h: number, w: number, c: number, scale = 1): Buffer {
  if (c !== 1 && c !== 3) throw new Error(`encodePng: images need 1 or 3 channels, got ${c}`);
  if (pixels.length < h * w * c) throw new Error(`encodePng: ${pixels.length} values for a ${h}x${w}x${c} image`);
  const png = new PNG({ width: w * scale, height: h * scale, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const out = Buffer.alloc(w * scale * h * scale * 4);
  for (let y = 0; y < h * scale; y++) {
    for (let x = 0; x < w * scale; x++) {
      const src = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
      const o = (y * w * scale + x) * 4;
      for (let ch = 0; ch < 3; ch++) out[o + ch] = Math.round(255 * Math.min(1, Math.max(0, pixels[src + (c === 1 ? 0 : ch)])));
      out[o + 3] = 255;
    }
  }
  png.data = out;
  return PNG.sync.write(png, { colorType: 2 });
}

/** Blue-white-red for t in [-1, 1]. */
export function diverging(t: number): [number, number, number] {
  const v = Math.max(-1, Math.min(1, t));
  return v >= 0 ? [1, 1 - v, 1 - v] : [1 + v, 1 + v, 1];
}

/**
 * The perturbation adv - clean as a diverging-colour PNG. Channels are averaged for RGB images.
 * Returns the PNG and `maxAbs`, the change that the full red/blue stands for.
 */
export function perturbationPng(clean: ArrayLike<number>, adv: ArrayLike<number>, h: number, w: number, c: number, scale = 1): { png: Buffer; maxAbs: number } {
  const d = new Float32Array(h * w);
  let maxAbs = 0;
  for (let i = 0; i < h * w; i++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += adv[i * c + ch] - clean[i * c + ch];
    d[i] = s / c;
    maxAbs = Math.max(maxAbs, Math.abs(d[i]));
  }
  const rgb = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = diverging(maxAbs > 0 ? d[i] / maxAbs : 0);
    rgb[i * 3] = r;
    rgb[i * 3 + 1] = g;
    rgb[i * 3 + 2] = b;
  }
  return { png: encodePng(rgb, h, w, 3, scale), maxAbs };
}
