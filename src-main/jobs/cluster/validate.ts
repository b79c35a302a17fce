/**
 * What a worker checks in a task before running it, beyond the envelope (protocol.ts) and the
 * ClassifierSpecs (models.ts): the checks the API applies to the job that made the shard (the attack's
 * own parameter schema, the shapes), so that a worker refuses (BAD_INPUT, never retried) a task the
 * API would have refused as a job, before it loads a model or touches a tensor.
 */
import { z } from 'zod';
import { parseAttackParams } from '../../engine/attacks/base';
import { getAttack } from '../../engine/attacks/registry';
import { badInput } from '../../engine/errors';
import type { ShardTaskOf, ShardType } from '../../engine/shards/types';

type TaskCheck<T extends ShardType> = (task: ShardTaskOf<T>) => void;

const attackBatchSchema = z.strictObject({
  classifier: z.object({ kind: z.literal('saved') }).loose(),
  attack: z.string().min(1).max(60),
  params: z.record(z.string(), z.unknown()),
  images: z.instanceof(Float32Array),
  shape: z.tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)]),
  labels: z.instanceof(Int32Array),
  targets: z.instanceof(Int32Array).nullable(),
  batch: z.number().int().min(0),
});

/**
 * Each shard type's check. A type without one (a shard type added later) gets the generic checks
 * here and its handler's own: give it one when its task carries parameters the API checks.
 */
const checks = {
  'attack-batch': (task) => {
    const t = attackBatchSchema.safeParse(task);
    if (!t.success) throw badInput(`attack-batch task: ${t.error.issues[0]?.path.join('.')}: ${t.error.issues[0]?.message}`);
    const [m, h, w, c] = t.data.shape;
    if (t.data.images.length !== m * h * w * c) throw badInput(`attack-batch task: ${t.data.images.length} pixel values for a [${m}, ${h}, ${w}, ${c}] batch`);
    if (t.data.labels.length !== m || (t.data.targets && t.data.targets.length !== m)) throw badInput(`attack-batch task: a batch of ${m} images needs ${m} labels (and targets)`);
    parseAttackParams(getAttack(t.data.attack), t.data.params); // the attack's own schema, as jobs.start checks it
  },
} satisfies { [T in ShardType]?: TaskCheck<T> };

export function validateTask(type: ShardType, task: unknown): void {
  if (task === null || typeof task !== 'object' || Array.isArray(task)) throw badInput(`A ${type} shard's task must be an object`);
  const check = (checks as { [T in ShardType]?: TaskCheck<T> })[type] as TaskCheck<ShardType> | undefined;
  check?.(task as ShardTaskOf<ShardType>);
}
