/**
 * Parameters of every job kind. The GUI, the CLI and recipe files all build one of these and hand it
 * to the job runner, so the three produce the same session.
 */
import { z } from 'zod';

const seed = z.number().int().min(0).max(2 ** 31 - 1);

export const diagnosticsParams = z
  .object({
    /** Batch size of the timing runs. */
    batch: z.number().int().min(1).max(1000).default(16),
    repeats: z.number().int().min(1).max(100).default(3),
  })
  .strict();

export const trainParams = z
  .object({
    dataset: z.string().min(1).max(100),
    arch: z.string().min(1).max(50),
    epochs: z.number().int().min(1).max(1000).default(1),
    batchSize: z.number().int().min(1).max(4096).default(64),
    learningRate: z.number().positive().max(10).default(0.001),
    optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam'),
    /** Use at most this many training images (a deterministic, seeded subset). */
    limit: z.number().int().min(10).optional(),
    /** Evaluate on at most this many test images. */
    testLimit: z.number().int().min(10).optional(),
    validationSplit: z.number().min(0).max(0.5).default(0.1),
    earlyStopPatience: z.number().int().min(0).max(100).default(0),
    seed: seed.default(1),
    /** For sets without a training file (our MNIST): how the test file is split, e.g. "first:8000". */
    split: z.string().max(40).optional(),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const jobStartSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('diagnostics'), params: diagnosticsParams.default({ batch: 16, repeats: 3 }) }).strict(),
  z.object({ kind: z.literal('train'), params: trainParams }).strict(),
]);

export type JobStart = z.output<typeof jobStartSchema>;
export type JobKind = JobStart['kind'];
export type DiagnosticsParams = z.output<typeof diagnosticsParams>;
export type TrainParams = z.output<typeof trainParams>;
