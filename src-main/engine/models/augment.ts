/**
 * Data augmentation of image training batches, the classic MNIST ones. It works on the pixels of a batch,
 * before any engine sees it, so tfjs and ONNX Runtime train on the same augmented batches.
 *
 * - shift:K: random integer translations, dx and dy drawn uniformly from {-K, ..., K}, zero fill (LeCun et
 *   al. 1998 and Simard et al. 2003 train on displaced copies).
 * - rotate:D and scale:S: a random rotation by an angle uniform in [-D, D] degrees and an isotropic scaling
 *   by a factor uniform in [1 - S, 1 + S], both about the image centre (Simard et al. 2003's affine
 *   distortions; Ciresan et al. 2010 rotate and scale MNIST the same way).
 * - elastic:A or elastic:A:SIGMA: Simard et al. 2003's elastic distortion. Each pixel draws a displacement
 *   dx, dy uniform in [-1, 1]; both fields are smoothed with a Gaussian of standard deviation SIGMA pixels
 *   (zero outside the image) and multiplied by A; the output pixel (x, y) reads the input at
 *   (x + dx, y + dy). The paper's MNIST setting is A = 34, SIGMA = 4 (the default SIGMA).
 * Shifts alone move whole pixels (an exact copy). With a rotation, scaling or elastic field the output
 * pixel's source point (the inverse of shift o rotate o scale, then the elastic displacement) is read
 * with bilinear interpolation; points outside the image read 0.
 *
 * The draws come from one seeded stream (the training seed), per image in this order: dx, dy (shift),
 * the angle (rotate), the scale (scale), then the two elastic fields (h x w values each, row by row). The
 * same seed gives the same distortions for the same examples at the same steps, on either engine, and a
 * spec of shifts alone draws exactly what it always did. Labels, batch size and image shape never change.
 * Validation and test images are never augmented.
 *
 * The options' one written form is the spec string (comma-separated parts, each at most once, in any
 * order: "shift:2,rotate:10,scale:0.1"); AUGMENT_FIELD is its zod field (the job schema, the CLI's
 * --augment and the Train form all read it) and parseAugment its one parser. A part of 0 is no part.
 */
import { z } from 'zod';
import { badInput } from '../errors';

/** The largest shift accepted, in pixels (MNIST's digits sit in a 20x20 box inside 28x28: 4 px of margin). */
export const MAX_SHIFT = 8;
/** The largest rotation accepted, in degrees. */
export const MAX_ROTATE = 45;
/** The largest scale range accepted: factors in [1 - S, 1 + S], so the image never collapses. */
export const MAX_SCALE = 0.5;
/** The largest elastic intensity A accepted (Simard et al. 2003 use 34 on MNIST). */
export const MAX_ELASTIC_ALPHA = 100;
/** The elastic smoothing SIGMA, in pixels: its default (Simard et al. 2003's MNIST setting) and bounds. */
export const ELASTIC_SIGMA = { default: 4, min: 1, max: 10 } as const;

/** Augmentation of training batches. */
export interface AugmentOptions {
  /** Each training image moves by dx, dy uniform in {-shift, ..., shift} pixels (independent), zero fill. 0 = off. */
  shift: number;
  /** Rotation by an angle uniform in [-rotate, rotate] degrees about the centre. Absent = none. */
  rotate?: number;
  /** Isotropic scaling by a factor uniform in [1 - scale, 1 + scale] about the centre. Absent = none. */
  scale?: number;
  /** Simard et al.'s elastic distortion: intensity alpha, Gaussian smoothing sigma (pixels). Absent = none. */
  elastic?: { alpha: number; sigma: number };
}

const PART_KEYS = ['shift', 'rotate', 'scale', 'elastic'] as const;
const NUM = '\\d{1,3}(?:\\.\\d{1,6})?';
const PART = new RegExp(`^(shift|rotate|scale|elastic):(${NUM})(?::(${NUM}))?$`);
const SPEC_HELP = 'comma-separated parts, each at most once: "shift:K" (random translations of up to K pixels, '
  + `integer 0 <= K <= ${MAX_SHIFT}), "rotate:D" (random rotations of up to D degrees, 0 <= D <= ${MAX_ROTATE}), `
  + `"scale:S" (random scalings by 1 +- S, 0 <= S <= ${MAX_SCALE}), "elastic:A" or "elastic:A:SIGMA" (Simard's elastic `
  + `distortion, 0 <= A <= ${MAX_ELASTIC_ALPHA}, ${ELASTIC_SIGMA.min} <= SIGMA <= ${ELASTIC_SIGMA.max}, default SIGMA ${ELASTIC_SIGMA.default}); `
  + 'e.g. "shift:2,rotate:10,scale:0.1"';

/** "shift:2,rotate:10" -> { shift: 2, rotate: 10 }; anything else is a BAD_INPUT naming the accepted form. */
export function parseAugment(spec: string): AugmentOptions {
  const fail = (why: string): never => { throw badInput(`augment must be ${SPEC_HELP}; got "${spec}" (${why})`); };
  const parts = spec.trim().split(',').map((s) => s.trim());
  const o: { shift: number; rotate?: number; scale?: number; elastic?: { alpha: number; sigma: number } } = { shift: 0 };
  const seen = new Set<string>();
  for (const part of parts) {
    const m = PART.exec(part);
    if (!m) fail(part === '' ? 'an empty part' : `"${part}" is not a part`);
    const [, key, a, b] = m!;
    if (seen.has(key)) fail(`"${key}" given twice`);
    seen.add(key);
    if (b !== undefined && key !== 'elastic') fail(`"${key}" takes one value`);
    if (key === 'shift') o.shift = Number(a);
    else if (key === 'rotate') o.rotate = Number(a);
    else if (key === 'scale') o.scale = Number(a);
    else o.elastic = { alpha: Number(a), sigma: b !== undefined ? Number(b) : ELASTIC_SIGMA.default };
  }
  try {
    return checkAugment(o);
  } catch (e) {
    return fail((e as Error).message);
  }
}

/** Checks the options object of the training API (TrainOptions.augment); returns it normalized (parts of 0 dropped). */
export function checkAugment(a: AugmentOptions): AugmentOptions {
  if (typeof a !== 'object' || a === null) throw badInput(`augment must be an object { shift, rotate?, scale?, elastic? }; got ${String(a)}`);
  const keys = Object.keys(a).filter((k) => !(PART_KEYS as readonly string[]).includes(k));
  if (keys.length) throw badInput(`Unknown augment option(s): ${keys.join(', ')} (known: ${PART_KEYS.join(', ')})`);
  if (!Number.isInteger(a.shift) || a.shift < 0 || a.shift > MAX_SHIFT) {
    throw badInput(`augment.shift must be an integer in [0, ${MAX_SHIFT}]; got ${a.shift}`);
  }
  const inRange = (v: unknown, lo: number, hi: number, name: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw badInput(`${name} must be a number in [${lo}, ${hi}]; got ${String(v)}`);
    return v;
  };
  const out: AugmentOptions = { shift: a.shift };
  if (a.rotate !== undefined && inRange(a.rotate, 0, MAX_ROTATE, 'augment.rotate (degrees)') > 0) out.rotate = a.rotate;
  if (a.scale !== undefined && inRange(a.scale, 0, MAX_SCALE, 'augment.scale') > 0) out.scale = a.scale;
  if (a.elastic !== undefined) {
    const e = a.elastic as unknown;
    if (typeof e !== 'object' || e === null) throw badInput(`augment.elastic must be an object { alpha, sigma }; got ${String(e)}`);
    const extra = Object.keys(e).filter((k) => k !== 'alpha' && k !== 'sigma');
    if (extra.length) throw badInput(`Unknown augment.elastic option(s): ${extra.join(', ')} (known: alpha, sigma)`);
    const { alpha, sigma } = e as { alpha: unknown; sigma: unknown };
    inRange(alpha, 0, MAX_ELASTIC_ALPHA, 'augment.elastic.alpha');
    inRange(sigma, ELASTIC_SIGMA.min, ELASTIC_SIGMA.max, 'augment.elastic.sigma (pixels)');
    if ((alpha as number) > 0) out.elastic = { alpha: alpha as number, sigma: sigma as number };
  }
  return out;
}

/** True when the options change any image (a spec of zeros is no augmentation). */
export function augments(a: AugmentOptions): boolean {
  return a.shift > 0 || a.rotate !== undefined || a.scale !== undefined || a.elastic !== undefined;
}

/**
 * Augmentation of the training images as a spec string (the job param, `--augment`). Absent: none.
 * Checked by parseAugment, the one parser, whose error names the accepted form.
 */
export const AUGMENT_FIELD = z.string().max(80)
  .superRefine((s, ctx) => {
    try { parseAugment(s); } catch (e) { ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message }); }
  })
  .optional()
  .describe(`Augmentation of the training images: ${SPEC_HELP}; absent = none`);

/**
 * Writes `src` (one h x w x c image, channels last) moved right by dx and down by dy pixels into `out`
 * (same size): out[y][x] = src[y - dy][x - dx], 0 where that falls outside the image.
 */
export function shiftImage(src: Float32Array, out: Float32Array, h: number, w: number, c: number, dx: number, dy: number): void {
  out.fill(0);
  const row = w * c;
  const x0 = Math.max(0, dx), x1 = Math.min(w, w + dx); // destination columns that have a source
  if (x1 <= x0) return;
  for (let y = Math.max(0, dy); y < Math.min(h, h + dy); y++) {
    const from = (y - dy) * row + (x0 - dx) * c;
    out.set(src.subarray(from, from + (x1 - x0) * c), y * row + x0 * c);
  }
}

/** A warp of the image plane: translation (dx, dy) o rotation (radians) o scaling, about the centre. */
export interface Warp { dx: number; dy: number; angle: number; scale: number }

/**
 * Writes the warped `src` into `out` (h x w x c, channels last): the output pixel (x, y) reads the input
 * at the inverse of the warp, centre (cx, cy) = ((w - 1) / 2, (h - 1) / 2):
 *     (sx, sy) = centre + R(-angle) ((x, y) - centre - (dx, dy)) / scale   [+ (ex, ey)[y][x] if `field`]
 * (the warp maps a point p to centre + scale R(angle) (p - centre) + (dx, dy); positive angles turn
 * clockwise on screen, y pointing down). Bilinear interpolation; neighbours outside the image read 0.
 * `field`: the elastic displacements (ex then ey, h x w each), added in output coordinates.
 */
export function warpImage(
  src: Float32Array, out: Float32Array, h: number, w: number, c: number, t: Warp, field?: Float32Array,
): void {
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  const cos = Math.cos(t.angle) / t.scale, sin = Math.sin(t.angle) / t.scale;
  const hw = h * w;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x - cx - t.dx, v = y - cy - t.dy;
      let sx = cx + cos * u + sin * v, sy = cy - sin * u + cos * v;
      if (field) { sx += field[y * w + x]; sy += field[hw + y * w + x]; }
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const o = (y * w + x) * c;
      for (let ch = 0; ch < c; ch++) {
        const at = (yy: number, xx: number) => (yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : src[(yy * w + xx) * c + ch]);
        out[o + ch] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
      }
    }
  }
}

/** The normalized 1-D Gaussian kernel of standard deviation sigma, radius ceil(3 sigma). */
export function gaussianKernel(sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += (k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma)));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/**
 * Simard et al. 2003's elastic displacement field for an h x w image: [ex (h x w), ey (h x w)], each
 * drawn uniform in [-1, 1] per pixel from `rng` (ex first, row by row), smoothed by a separable Gaussian
 * of `sigma` pixels (zero outside the image) and multiplied by `alpha`.
 */
export function elasticField(h: number, w: number, alpha: number, sigma: number, rng: () => number): Float32Array {
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const out = new Float32Array(2 * h * w);
  const raw = new Float64Array(h * w), tmp = new Float64Array(h * w);
  for (let f = 0; f < 2; f++) {
    for (let i = 0; i < h * w; i++) raw[i] = 2 * rng() - 1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let j = Math.max(-r, -x); j <= Math.min(r, w - 1 - x); j++) s += k[j + r] * raw[y * w + x + j];
        tmp[y * w + x] = s;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let j = Math.max(-r, -y); j <= Math.min(r, h - 1 - y); j++) s += k[j + r] * tmp[(y + j) * w + x];
        out[f * h * w + y * w + x] = alpha * s;
      }
    }
  }
  return out;
}

/**
 * Augments a batch of n images in place (n x h x w x c values). Each image draws, from `rng`: dx, then dy
 * (uniform in {-shift, ..., shift}) when shift > 0, then its angle, its scale and its elastic field when
 * the options have them (see the module comment). Returns the shifts drawn, [dx0, dy0, dx1, ...].
 * With no augmentation (all parts 0) nothing is drawn and the batch is unchanged.
 */
export function augmentBatch(
  x: Float32Array, n: number, shape: readonly [number, number, number], a: AugmentOptions, rng: () => number,
): Int32Array {
  const [h, w, c] = shape;
  const d = h * w * c;
  if (x.length !== n * d) throw badInput(`augmentBatch: ${x.length} values for ${n} images of ${h}x${w}x${c}`);
  const shifts = new Int32Array(2 * n);
  if (!augments(a)) return shifts;
  const span = 2 * a.shift + 1;
  const warps = a.rotate !== undefined || a.scale !== undefined || a.elastic !== undefined;
  const uniform = (r: number) => (2 * rng() - 1) * r;
  const tmp = new Float32Array(d);
  for (let i = 0; i < n; i++) {
    const dx = a.shift > 0 ? Math.floor(rng() * span) - a.shift : 0;
    const dy = a.shift > 0 ? Math.floor(rng() * span) - a.shift : 0;
    shifts[2 * i] = dx; shifts[2 * i + 1] = dy;
    const img = x.subarray(i * d, (i + 1) * d);
    if (!warps) {
      if (dx === 0 && dy === 0) continue;
      shiftImage(img, tmp, h, w, c, dx, dy);
    } else {
      const angle = a.rotate !== undefined ? uniform(a.rotate) * Math.PI / 180 : 0;
      const scale = a.scale !== undefined ? 1 + uniform(a.scale) : 1;
      const field = a.elastic ? elasticField(h, w, a.elastic.alpha, a.elastic.sigma, rng) : undefined;
      warpImage(img, tmp, h, w, c, { dx, dy, angle, scale }, field);
    }
    img.set(tmp);
  }
  return shifts;
}
