/**
 * The shard handlers: what an engine worker (a pool thread, an `advlab worker` process, or the job's
 * own thread through InlineShardExecutor) runs for each shard type. Each shard type's module declares
 * its task/result (augmenting ShardTypes in ./types) and exports its handler; register it here.
 */
import type { JobContext } from '../context';
import { badInput } from '../errors';
import type { Shard, ShardResultOf, ShardTaskOf, ShardType } from './types';
import { runAttackBatch } from './attack-batch';
import { runSurfaceRows } from './surface-rows';
import { runAudioClip } from './audio-clip';
import { runSpeechGrad } from './speech-grad';
import { trainGradShard, type TrainGradTask } from '../models/train-shard';
import { pgdFromStart } from '../defenses/advtrain-pgd';

export type ShardHandler<T extends ShardType> = (task: ShardTaskOf<T>, ctx: JobContext) => Promise<ShardResultOf<T>>;

/** Every shard type's handler (add each new type here: the satisfies clause makes a missing one a type error). */
export const shardHandlers = {
  'attack-batch': runAttackBatch,
  'surface-rows': runSurfaceRows,
  'audio-clip': runAudioClip,
  'speech-grad': runSpeechGrad,
  // Adversarial training's shards make their rows' PGD examples with the defense's own steps.
  'train-grad': (task: TrainGradTask, ctx: JobContext) => trainGradShard(task, ctx, pgdFromStart),
} satisfies { [T in ShardType]: ShardHandler<T> };

export function isShardType(type: unknown): type is ShardType {
  return typeof type === 'string' && Object.hasOwn(shardHandlers, type);
}

/** Runs one shard here with its type's handler. */
export async function executeShard<T extends ShardType>(shard: Shard<T>, ctx: JobContext): Promise<ShardResultOf<T>> {
  if (!isShardType(shard.type)) throw badInput(`Unknown shard type "${String(shard.type)}"`, { shard: shard.id });
  const handler = (shardHandlers as unknown as Record<string, ShardHandler<T>>)[shard.type];
  return handler(shard.task, ctx);
}
