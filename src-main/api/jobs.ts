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

const goal = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('untargeted') }).strict(),
  z.object({
    kind: z.literal('targeted'),
    target: z.union([z.number().int().min(0).max(999), z.array(z.number().int().min(0).max(999)), z.enum(['next', 'random', 'least-likely'])]),
    seed: z.number().int().min(0).optional(),
  }).strict(),
]);

/** A model: the id of a session that holds one (a training run) or a path to a tfjs model.json / its folder. */
const modelRef = z.string().min(1).max(4096);

const imageSelection = {
  dataset: z.string().min(1).max(4096),
  split: z.enum(['train', 'test']).default('test'),
  /** How many images (a seeded subset of the split). */
  n: z.number().int().min(1).max(10000).default(100),
  seed: seed.default(0),
  /** How a set with a single file is split into train/test, e.g. "first:8000". */
  splitSpec: z.string().max(40).optional(),
};

export const attackParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    attack: z.string().min(1).max(40),
    goal: goal.default({ kind: 'untargeted' }),
    /** The attack's own parameters; checked by the attack (unknown ones are refused). */
    params: z.record(z.string(), z.unknown()).default({}),
    /** Evaluate the adversarial examples on this second model too (transfer). */
    transferTo: modelRef.optional(),
    /** How many examples to save as PNG (original, adversarial, perturbation). */
    saveExamples: z.number().int().min(0).max(200).default(24),
    batchSize: z.number().int().min(1).max(4096).default(100),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const sweepParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    attack: z.string().min(1).max(40).default('pgd'),
    epsilons: z.array(z.number().min(0).max(100)).min(1).max(50),
    params: z.record(z.string(), z.unknown()).default({}),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const lossSurfaceParams = z
  .object({
    model: modelRef,
    dataset: z.string().min(1).max(4096),
    split: z.enum(['train', 'test']).default('test'),
    /** Which image of the split (its index in the split). */
    index: z.number().int().min(0).default(0),
    splitSpec: z.string().max(40).optional(),
    directions: z.array(z.enum(['gradient-random', 'random-random'])).min(1).default(['gradient-random', 'random-random']),
    range: z.number().positive().max(1).default(0.3),
    resolution: z.number().int().min(3).max(101).default(21),
    objective: z.enum(['ce', 'margin']).default('ce'),
    seed: seed.default(0),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const recipeParams = z
  .object({
    /** A recipe id from resources/recipes, or a path to a recipe file. */
    recipe: z.string().min(1).max(4096),
    /** Small subsets and few iterations (tests, CI, a first look); the full run is what the recipe file says. */
    quick: z.boolean().default(false),
    /** Overrides of the recipe's parameters. */
    overrides: z.record(z.string(), z.unknown()).default({}),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const importModelParams = z
  .object({
    /** A tfjs LayersModel: model.json or the folder holding it (weight shards beside it). */
    path: z.string().min(1).max(4096),
    /** Check the input shape against this dataset and measure test accuracy on it. */
    dataset: z.string().min(1).max(4096).optional(),
    testLimit: z.number().int().min(1).max(100000).optional(),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(100)).max(50).default([]),
  })
  .strict();

export const jobStartSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('diagnostics'), params: diagnosticsParams.default({ batch: 16, repeats: 3 }) }).strict(),
  z.object({ kind: z.literal('train'), params: trainParams }).strict(),
  z.object({ kind: z.literal('attack'), params: attackParams }).strict(),
  z.object({ kind: z.literal('sweep'), params: sweepParams }).strict(),
  z.object({ kind: z.literal('loss-surface'), params: lossSurfaceParams }).strict(),
  z.object({ kind: z.literal('recipe'), params: recipeParams }).strict(),
  z.object({ kind: z.literal('import-model'), params: importModelParams }).strict(),
]);

export type JobStart = z.output<typeof jobStartSchema>;
export type JobKind = JobStart['kind'];
export type DiagnosticsParams = z.output<typeof diagnosticsParams>;
export type TrainParams = z.output<typeof trainParams>;
export type AttackParams = z.output<typeof attackParams>;
export type SweepParams = z.output<typeof sweepParams>;
export type LossSurfaceParams = z.output<typeof lossSurfaceParams>;
export type RecipeParams = z.output<typeof recipeParams>;
