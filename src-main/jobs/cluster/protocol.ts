/**
 * What travels on the cluster's subjects, validated on receipt with zod (a worker refuses a shard
 * whose envelope, shard type or ClassifierSpecs are not what the contract says; the submitting app
 * ignores events it cannot read).
 */
import { z } from 'zod';
import { isShardType } from '../../engine/shards/handlers';
import type { ShardType } from '../../engine/shards/types';

/** A run is one ShardExecutor.run call: its id names its subjects and objects. */
export const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** The shard message (encodePayload'ed): the task inline, or its object name and sha256 when large. */
export const shardEnvelopeSchema = z.strictObject({
  v: z.literal(1),
  run: z.string().regex(RUN_ID),
  index: z.number().int().min(0),
  /** The submitting job, for logs and the workers' view of where their shards come from. */
  job: z.string().max(200),
  type: z.string().refine(isShardType, { message: 'not a shard type this worker knows' }),
  id: z.string().min(1).max(300),
  task: z.unknown().optional(),
  taskObject: z.string().max(300).optional(),
  taskSha256: sha256.optional(),
}).refine((e) => (e.task !== undefined) !== (e.taskObject !== undefined), { message: 'a shard carries its task inline or as an object, exactly one' })
  .refine((e) => e.taskObject === undefined || e.taskSha256 !== undefined, { message: 'a task object needs its sha256' });
export type ShardEnvelope = Omit<z.infer<typeof shardEnvelopeSchema>, 'type'> & { type: ShardType };

const errorSchema = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).default({}) });
export type WireError = z.infer<typeof errorSchema>;

const base = { index: z.number().int().min(0), id: z.string(), worker: z.string(), attempt: z.number().int().min(1) };
/** A run's durable events (the ADVLAB_EVENTS stream), JSON. */
export const clusterEventSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('started'), ...base }),
  z.object({ t: z.literal('result'), ...base, object: z.string(), sha256, bytes: z.number().int().min(0), ms: z.number() }),
  z.object({ t: z.literal('retry'), ...base, error: errorSchema }),
  z.object({ t: z.literal('failed'), ...base, error: errorSchema }),
  z.object({ t: z.literal('stopped'), ...base }),
]);
export type ClusterEvent = z.infer<typeof clusterEventSchema>;

/** Progress of one shard (core NATS, best effort). */
export const clusterProgressSchema = z.object({
  index: z.number().int().min(0),
  worker: z.string(),
  step: z.number(),
  total: z.number(),
  phase: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
});

/** A worker's answer to a ping. */
export const workerInfoSchema = z.object({ id: z.string(), capacity: z.number().int().min(1), host: z.string(), pid: z.number().int(), running: z.number().int().min(0) });
export type WorkerInfo = z.infer<typeof workerInfoSchema>;

export const resultObjectName = (run: string, index: number) => `result/${run}/${index}`;
export const taskObjectName = (run: string, index: number) => `task/${run}/${index}`;
