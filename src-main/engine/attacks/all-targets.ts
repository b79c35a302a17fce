/**
 * The 'all' target: every image attacked towards each of the other classes, one result per (image,
 * target), summarised as Carlini & Wagner (2017, Table IV) report it: for each image, the best case
 * is its easiest target (the smallest distortion among the targets reached), the average case the
 * mean over its targets, the worst case its hardest target (the largest distortion, reached only if
 * every target was). Over the images the classifier gets right before the attack.
 */
import type { PerExample, TargetCases } from './types';

/** One row per (image, other class): `source` is the image's index, `targets` the class. */
export function expandAllTargets(labels: ArrayLike<number>, k: number): { source: Int32Array; targets: number[] } {
  const source: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    for (let t = 0; t < k; t++) {
      if (t === labels[i]) continue;
      source.push(i);
      targets.push(t);
    }
  }
  return { source: Int32Array.from(source), targets };
}

export type { TargetCase, TargetCases } from './types';

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

/** Best, average and worst case over the rows of an 'all' attack (rows grouped by their image index). */
export function targetCases(rows: readonly Pick<PerExample, 'index' | 'cleanCorrect' | 'success' | 'l2'>[]): TargetCases {
  const byImage = new Map<number, typeof rows[number][]>();
  for (const r of rows) {
    if (!r.cleanCorrect) continue;
    const list = byImage.get(r.index) ?? [];
    list.push(r);
    byImage.set(r.index, list);
  }
  const images = [...byImage.values()];
  const best: number[] = [];
  const worst: number[] = [];
  const pairs: number[] = [];
  let bestOk = 0, worstOk = 0, pairOk = 0, pairN = 0;
  for (const list of images) {
    const ok = list.filter((r) => r.success).map((r) => r.l2);
    pairs.push(...ok);
    pairOk += ok.length;
    pairN += list.length;
    if (ok.length) {
      bestOk++;
      best.push(Math.min(...ok));
    }
    if (ok.length === list.length && list.length) {
      worstOk++;
      worst.push(Math.max(...ok));
    }
  }
  const n = images.length;
  return {
    images: n,
    targetsPerImage: n ? Math.max(...images.map((l) => l.length)) : 0,
    best: { successRate: n ? bestOk / n : null, meanL2: mean(best) },
    average: { successRate: pairN ? pairOk / pairN : null, meanL2: mean(pairs) },
    worst: { successRate: n ? worstOk / n : null, meanL2: mean(worst) },
  };
}
