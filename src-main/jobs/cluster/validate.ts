/**
 * What a worker checks in a task before running it, beyond the envelope (protocol.ts) and the
 * ClassifierSpecs (models.ts): the checks the API applies to the job that made the shard, so that a
 * worker refuses (BAD_INPUT, never retried) a task that the API would have refused as a job.
 */
import { badInput } from '../../engine/errors';
import type { ShardTaskOf, ShardType } from '../../engine/shards/types';

type TaskCheck<T extends ShardType> = (task: ShardTaskOf<T>) => void;

/** Each shard type's check (types without one get the generic checks only). */
const checks: { [T in ShardType]?: TaskCheck<T> } = {};

export function validateTask(type: ShardType, task: unknown): void {
  if (task === null || typeof task !== 'object' || Array.isArray(task)) throw badInput(`A ${type} shard's task must be an object`);
  const check = checks[type] as TaskCheck<ShardType> | undefined;
  check?.(task as ShardTaskOf<ShardType>);
}
