/**
 * Data augmentation of image training batches: random integer translations with zero fill, the
 * classic MNIST augmentation (LeCun et al. 1998 and Simard et al. 2003 train on displaced copies;
 * "shift:2" moves each image by dx, dy drawn uniformly from {-2, ..., 2}). It works on the pixels of a
 * batch, before any engine sees it, so tfjs and ONNX Runtime train on the same augmented batches.
 *
 * The draws come from one seeded stream (the training seed): the same seed gives the same shifts for
 * the same examples at the same steps, on either engine. Labels, batch size and image shape never change.
 * Validation and test images are never augmented.
 *
 * The options' one written form is the spec string ("shift:K"); AUGMENT_FIELD is its zod field (the
 * job schema, the CLI's --augment and the Train form all read it) and parseAugment its one parser.
 */
import { z } from 'zod';
import { badInput } from '../errors';

/** The largest shift accepted, in pixels (MNIST's digits sit in a 20x20 box inside 28x28: 4 px of margin). */
export const MAX_SHIFT = 8;

/** Augmentation of training batches. */
export interface AugmentOptions {
  /** Each training image moves by dx, dy uniform in {-shift, ..., shift} pixels (independent), zero fill. 0 = off. */
  shift: number;
}

const SPEC = /^shift:(\d{1,2})$/;
const SPEC_HELP = `"shift:K" (random translations of up to K pixels, 0 <= K <= ${MAX_SHIFT}, zero fill)`;

/**
 * Augmentation of the training images as a spec string (the job param, `--augment`). Absent: none.
 * Its bounds are checked by parseAugment, the one parser.
 */
export const AUGMENT_FIELD = z.string().max(20)
  .regex(SPEC, `augment must be ${SPEC_HELP}`)
  .refine((s) => Number(SPEC.exec(s)?.[1]) <= MAX_SHIFT, `augment: the shift is at most ${MAX_SHIFT} pixels`)
  .optional()
  .describe(`Augmentation of the training images: ${SPEC_HELP}; absent = none`);

/** "shift:K" -> { shift: K }; anything else is a BAD_INPUT naming the accepted form. */
export function parseAugment(spec: string): AugmentOptions {
  const m = SPEC.exec(spec.trim());
  if (!m) throw badInput(`augment must be ${SPEC_HELP}; got "${spec}"`);
  return checkAugment({ shift: Number(m[1]) });
}

/** Checks the options object of the training API (TrainOptions.augment); returns it normalized. */
export function checkAugment(a: AugmentOptions): AugmentOptions {
  if (typeof a !== 'object' || a === null) throw badInput(`augment must be an object { shift }; got ${String(a)}`);
  const keys = Object.keys(a).filter((k) => k !== 'shift');
  if (keys.length) throw badInput(`Unknown augment option(s): ${keys.join(', ')} (known: shift)`);
  if (!Number.isInteger(a.shift) || a.shift < 0 || a.shift > MAX_SHIFT) {
    throw badInput(`augment.shift must be an integer in [0, ${MAX_SHIFT}]; got ${a.shift}`);
  }
  return { shift: a.shift };
}

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

/**
 * Augments a batch of n images in place (n x h x w x c values): each image draws dx, then dy, from `rng`
 * (uniform in {-shift, ..., shift}) and is shifted by them. Returns the shifts drawn, [dx0, dy0, dx1, ...].
 * With shift 0 nothing is drawn and the batch is unchanged.
 */
export function augmentBatch(
  x: Float32Array, n: number, shape: readonly [number, number, number], a: AugmentOptions, rng: () => number,
): Int32Array {
  const [h, w, c] = shape;
  const d = h * w * c;
  if (x.length !== n * d) throw badInput(`augmentBatch: ${x.length} values for ${n} images of ${h}x${w}x${c}`);
  const shifts = new Int32Array(2 * n);
  if (a.shift === 0) return shifts;
  const span = 2 * a.shift + 1;
  const tmp = new Float32Array(d);
  for (let i = 0; i < n; i++) {
    const dx = Math.floor(rng() * span) - a.shift;
    const dy = Math.floor(rng() * span) - a.shift;
    shifts[2 * i] = dx; shifts[2 * i + 1] = dy;
    if (dx === 0 && dy === 0) continue;
    const img = x.subarray(i * d, (i + 1) * d);
    shiftImage(img, tmp, h, w, c, dx, dy);
    img.set(tmp);
  }
  return shifts;
}
