/**
 * The 'attack-batch' shard: one batch of a registered image attack on a saved model (runAttack's
 * batches, engine/attacks/base.ts). The worker rebuilds the classifier from its spec (cached,
 * sha256-checked), checks the parameters with the attack's own schema, runs the attack's search and
 * the projection and clip (attackOneBatch, the same function runAttack runs in place) and returns the
 * clipped images with the steps spent; runAttack judges success once, on all of them.
 */
import { attackOneBatch, parseAttackParams, type AttackBatchTask, type BatchOutput } from '../attacks/base';
import { getAttack } from '../attacks/registry';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { classifierFromSpec } from './classifiers';

/** The shard's result (the type is declared with its task in engine/attacks/base.ts, which sends these shards). */
export type AttackBatchResult = BatchOutput;

export async function runAttackBatch(task: AttackBatchTask, ctx: JobContext): Promise<AttackBatchResult> {
  const def = getAttack(task.attack);
  const classifier = await classifierFromSpec(task.classifier);
  const [m, h, w, c] = task.shape;
  const [ch, cw, cc] = classifier.inputShape;
  if (h !== ch || w !== cw || c !== cc) throw badInput(`The batch's images are [${h}, ${w}, ${c}] but ${task.classifier.modelJson} takes [${ch}, ${cw}, ${cc}]`);
  if (task.labels.length !== m) throw badInput(`A batch of ${m} images got ${task.labels.length} labels`);
  const p = parseAttackParams(def, task.params, classifier);
  return attackOneBatch(def, p, classifier, task.images, task.labels, task.targets, ctx, (step, total, phase, metrics) => {
    ctx.progress({ step, total, ...(phase !== undefined ? { phase } : {}), ...(metrics ? { metrics } : {}) });
  });
}
