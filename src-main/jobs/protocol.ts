/** Messages between the job runner and its worker; the runner validates every one it receives. */
import { z } from 'zod';
import type { ClusterAuth } from './cluster/connection';

export const progressSchema = z.object({
  step: z.number(),
  total: z.number(),
  phase: z.string().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
  message: z.string().optional(),
});

const errorSchema = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) });

export const workerMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('backend'), info: z.record(z.string(), z.unknown()) }),
  z.object({ t: z.literal('progress'), p: progressSchema }),
  z.object({ t: z.literal('log'), message: z.string() }),
  z.object({ t: z.literal('session'), id: z.string() }),
  z.object({ t: z.literal('done'), result: z.unknown() }),
  z.object({ t: z.literal('cancelled'), result: z.unknown().optional() }),
  z.object({ t: z.literal('error'), error: errorSchema }),
]);

export type WorkerMessage = z.infer<typeof workerMessageSchema>;

export interface WorkerInput {
  jobId: string;
  kind: string;
  params: unknown;
  env: JobEnvInput;
  /** Int32Array over this: [0] becomes 1 when the job is cancelled. Read with Atomics, so a job in a
   * synchronous tensor loop sees it without returning to the event loop. */
  cancelFlag: SharedArrayBuffer;
}

export interface JobEnvInput {
  backend?: string;
  dataDirs: string[];
  sessionsRoot: string;
  /** Send the job's shards to this NATS JetStream cluster (`--queue`): ctx.shards is a NatsShardExecutor. */
  cluster?: ClusterAuth;
}
