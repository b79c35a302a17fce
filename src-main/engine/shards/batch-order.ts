/**
 * The order a job hands its attack batches to the shard executor (engine/attacks/base.ts
 * runBatchesAsShards): the order only, never the batches' composition, so every batch is attacked
 * exactly as before and the per-example results are the same whatever the order and the number of
 * workers.
 *
 * Why: the pool's last shard sets the job's end (the tail, while the other threads idle), and a
 * minimum-norm attack's batches are very uneven. C&W's abort-early stops an example whose loss has
 * stopped falling and drops it from the batch, so a batch costs about what its slowest example
 * costs. The slow examples are the ones the attack succeeds on: it keeps shrinking their
 * perturbation for its whole budget. Measured on the parallel bench's C&W 3x100 (thermometer
 * cw-mnist, 256 images in 32 batches of 8, 5 Dec): 253 examples stopped after 33 steps, 3 ran all
 * 300, and those 3 were exactly the 3 whose clean prediction was already the target. Their batches
 * (3, 8 and 27) cost 1.2-1.6 s of CPU against a median of 0.34-0.47 s, and batch 27, sent late,
 * was the tail. So the batches holding an example whose clean prediction already meets the goal
 * go first (the longest shards first, the rule that makes the last shards short), the rest
 * after them, each group in index order.
 */

/**
 * Batch indices, heavy ones first: a batch is heavy when one of its examples already meets the goal
 * on the clean logits (targeted: the clean prediction is the target; untargeted: it is neither the
 * label nor the classifier's reject class). Stable: each group keeps index order.
 */
export function heavyBatchesFirst(opts: {
  n: number;
  batchSize: number;
  /** Clean logits, n x k, row-major. */
  cleanLogits: Float32Array;
  k: number;
  labels: Int32Array;
  /** One target per example (targeted), or null (untargeted). */
  targets: Int32Array | null;
  rejectClass?: number;
}): number[] {
  const { n, batchSize, cleanLogits, k, labels, targets, rejectClass } = opts;
  const batches = Math.ceil(n / batchSize);
  const atGoal = (i: number) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (cleanLogits[i * k + j] > cleanLogits[i * k + best]) best = j;
    return targets ? best === targets[i] : best !== labels[i] && best !== rejectClass;
  };
  const heavy: number[] = [], rest: number[] = [];
  for (let b = 0; b < batches; b++) {
    let any = false;
    for (let i = b * batchSize; i < Math.min(n, (b + 1) * batchSize) && !any; i++) any = atGoal(i);
    (any ? heavy : rest).push(b);
  }
  return [...heavy, ...rest];
}
