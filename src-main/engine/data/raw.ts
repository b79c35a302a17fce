/**
 * Parsed files keep 8-bit pixels (a quarter of the memory of floats); only the examples a caller
 * asks for are converted to float [0, 1].
 */

/** Images of one parsed file (or batch): 8-bit pixels in NHWC order with one label each. */
export interface RawPart {
  count: number;
  /** count * h * w * c bytes, NHWC. */
  pixels: Uint8Array;
  labels: Uint8Array;
}

/**
 * Copies the examples at `indices` (global indices over the concatenation of `parts`) into float
 * pixels in [0, 1] (value / 255) and their labels.
 */
export function gatherFloat(
  parts: RawPart[],
  shape: [number, number, number],
  indices: ArrayLike<number>,
): { images: Float32Array; labels: Uint8Array } {
  const size = shape[0] * shape[1] * shape[2];
  const starts: number[] = [];
  let total = 0;
  for (const p of parts) {
    starts.push(total);
    total += p.count;
  }
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  let part = 0;
  for (let k = 0; k < indices.length; k++) {
    const g = indices[k];
    if (!Number.isInteger(g) || g < 0 || g >= total) throw new RangeError(`example index ${g} is outside 0..${total - 1}`);
    // Indices usually come sorted: move the part pointer rather than searching each time.
    if (g < starts[part] || g >= starts[part] + parts[part].count) {
      part = 0;
      while (g >= starts[part] + parts[part].count) part++;
    }
    const p = parts[part];
    const local = g - starts[part];
    const src = p.pixels.subarray(local * size, (local + 1) * size);
    const off = k * size;
    for (let i = 0; i < size; i++) images[off + i] = src[i] / 255;
    labels[k] = p.labels[local];
  }
  return { images, labels };
}

/** Checks every label is below `numClasses`; returns the first offending index or -1. */
export function firstBadLabel(labels: Uint8Array, numClasses: number): number {
  for (let i = 0; i < labels.length; i++) if (labels[i] >= numClasses) return i;
  return -1;
}
