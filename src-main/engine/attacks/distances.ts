/**
 * Distortion statistics: per-example L0/L2/Linf distances between clean and adversarial images, and
 * mean/median/percentile summaries. Plain arrays, no tensors, so they serve attacks, sessions and UI.
 */

/** Changes smaller than this (float noise) do not count towards L0. */
export const L0_TOLERANCE = 1e-6;

export interface Distances {
  /** Pixels (h*w positions) where any channel changed by more than L0_TOLERANCE (C&W's pixel count). */
  l0: Float64Array;
  l2: Float64Array;
  linf: Float64Array;
}

/**
 * Distances per example between two NHWC batches of the same shape; `channels` groups components
 * into pixels for L0.
 */
export function distances(clean: Float32Array, adv: Float32Array, n: number, channels = 1): Distances {
  if (clean.length !== adv.length) throw new Error(`distances: clean has ${clean.length} values, adversarial ${adv.length}`);
  if (n <= 0 || clean.length % n !== 0) throw new Error(`distances: ${clean.length} values do not split into ${n} examples`);
  const d = clean.length / n;
  const out: Distances = { l0: new Float64Array(n), l2: new Float64Array(n), linf: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    let l0 = 0, sq = 0, mx = 0;
    for (let p = i * d; p < (i + 1) * d; p += channels) {
      let changed = false;
      for (let c = 0; c < channels; c++) {
        const diff = Math.abs(adv[p + c] - clean[p + c]);
        sq += diff * diff;
        if (diff > mx) mx = diff;
        if (diff > L0_TOLERANCE) changed = true;
      }
      if (changed) l0++;
    }
    out.l0[i] = l0;
    out.l2[i] = Math.sqrt(sq);
    out.linf[i] = mx;
  }
  return out;
}

/** Linear-interpolation percentile (numpy's default) of an ascending array; q in [0, 100]. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = ((n - 1) * q) / 100;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export interface Stats {
  n: number;
  mean: number | null;
  median: number | null;
  p10: number | null;
  p90: number | null;
  min: number | null;
  max: number | null;
}

/** Summary of a list of values; nulls (not NaN) when the list is empty, so it survives JSON. */
export function describeValues(values: ArrayLike<number>): Stats {
  const v = Float64Array.from(values).sort();
  const n = v.length;
  if (n === 0) return { n: 0, mean: null, median: null, p10: null, p90: null, min: null, max: null };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += v[i];
  return { n, mean: sum / n, median: percentileSorted(v, 50), p10: percentileSorted(v, 10), p90: percentileSorted(v, 90), min: v[0], max: v[n - 1] };
}

export interface DistortionStats {
  n: number;
  l0: Stats;
  l2: Stats;
  linf: Stats;
}

/**
 * Distortion statistics of adversarial examples; `include` (e.g. the successful ones) selects which
 * examples count. Pass per-example records (anything with l0/l2/linf) or a Distances object.
 */
export function distortionStats(
  records: ArrayLike<{ l0: number; l2: number; linf: number }> | Distances,
  include?: (i: number) => boolean,
): DistortionStats {
  const pick = (get: (i: number) => number, count: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < count; i++) if (!include || include(i)) out.push(get(i));
    return out;
  };
  if ('l2' in records && records.l2 instanceof Float64Array) {
    const d = records as Distances;
    const l2 = pick((i) => d.l2[i], d.l2.length);
    return { n: l2.length, l0: describeValues(pick((i) => d.l0[i], d.l0.length)), l2: describeValues(l2), linf: describeValues(pick((i) => d.linf[i], d.linf.length)) };
  }
  const r = records as ArrayLike<{ l0: number; l2: number; linf: number }>;
  const l2 = pick((i) => r[i].l2, r.length);
  return { n: l2.length, l0: describeValues(pick((i) => r[i].l0, r.length)), l2: describeValues(l2), linf: describeValues(pick((i) => r[i].linf, r.length)) };
}
