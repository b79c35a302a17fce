/**
 * Parameters of every job kind. The GUI, the CLI and recipe files all build one of these and hand it
 * to the job runner, so the three produce the same session.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { DOWNLOADABLE } from '../engine/data/sources';
import { goalSchema } from '../engine/attacks/types';
import { ENGINE_REQUESTS } from '../engine/onnx/engines';
import { OPTIMIZER_OPTION_FIELDS } from '../engine/models/train';
import { AUGMENT_FIELD } from '../engine/models/augment';
import { AUDIO_ATTACK_DEFAULTS } from '../engine/audio/attack';
import { EOT_DEFAULTS } from '../engine/audio/eot';
import { UNIVERSAL_DEFAULTS } from '../engine/audio/universal';
import { IMPERCEPTIBLE_DEFAULTS } from '../engine/audio/imperceptible';
import { parseAugmentSpec } from '../engine/audio/augment';
import { CORPUS_DEFAULT_HOURS, CORPUS_MAX_HOURS } from '../engine/audio/corpus';
import { MAX_SURFACE_DIRECTIONS, MAX_SWEEP_EPSILONS, MAX_TAGS, MAX_TAG_CHARS, atMost } from '../engine/limits';

const seed = z.number().int().min(0).max(2 ** 31 - 1);

export const diagnosticsParams = z
  .object({
    /** Batch size of the timing runs. */
    batch: z.number().int().min(1).max(1000).default(16),
    repeats: z.number().int().min(1).max(100).default(3),
  })
  .strict();

/**
 * What computes a training run's steps (image and speech training alike): 'onnx' (ONNX Runtime: the training graphs
 * and the optimizer in JS), 'tfjs' (the reference), or 'auto': ONNX Runtime when every layer is exported for
 * training, else tfjs. The one default of the jobs, the CLI and the UI.
 */
const trainingEngine = z.enum(ENGINE_REQUESTS).default('auto');

export const trainParams = z
  .object({
    dataset: z.string().min(1).max(100),
    arch: z.string().min(1).max(50),
    epochs: z.number().int().min(1).max(1000).default(1),
    batchSize: z.number().int().min(1).max(4096).default(64),
    learningRate: z.number().positive().max(10).default(0.001),
    optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam'),
    ...OPTIMIZER_OPTION_FIELDS,
    engine: trainingEngine,
    /** Dropout rate of the architecture's dropout layer(s); default: the architecture's own (cw-mnist 0.5). */
    dropout: z.number().min(0).max(0.95).optional(),
    /** Use at most this many training images (a deterministic, seeded subset). */
    limit: z.number().int().min(10).optional(),
    /** Evaluate on at most this many test images. */
    testLimit: z.number().int().min(10).optional(),
    validationSplit: z.number().min(0).max(0.5).default(0.1),
    /** Augmentation of the training images, e.g. "shift:2" (random translations of up to 2 px) or "shift:2,rotate:10,scale:0.1"; absent = none. */
    augment: AUGMENT_FIELD,
    earlyStopPatience: z.number().int().min(0).max(100).default(0),
    seed: seed.default(1),
    /** For a set with only one file (e.g. IDX files with only t10k): how it is split, e.g. "first:8000"; refused for a set with its own train and test files. */
    split: z.string().max(40).optional(),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();


/** A model: the id of a session that holds one (a training run) or a path to a tfjs model.json / its folder. */
const modelRef = z.string().min(1).max(4096);

const imageSelection = {
  dataset: z.string().min(1).max(4096),
  split: z.enum(['train', 'test']).default('test'),
  /** How many images of the split. */
  n: z.number().int().min(1).max(10000).default(100),
  /** Which n: the first n after `offset` (as papers report, the first n test images), or a seeded random n. */
  pick: z.enum(['first', 'random']).default('first'),
  /** Skip the split's first `offset` images (both picks); offset + n beyond the split is refused. */
  offset: z.number().int().min(0).default(0),
  /** Seed of pick 'random' (the same seed gives the same images); unused by pick 'first'. */
  seed: seed.default(0),
  /** How a set with a single file is split into train/test, e.g. "first:8000"; refused for a set with its own train and test files. Default: the model's. */
  splitSpec: z.string().max(40).optional(),
  /**
   * What computes the model's logits and input gradients: 'onnx' (ONNX Runtime), 'tfjs' (the reference),
   * or 'auto': ONNX Runtime when every layer exports and the model is not a defended wrapper, else tfjs.
   */
  engine: z.enum(ENGINE_REQUESTS).default('auto'),
};

export const attackParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    attack: z.string().min(1).max(40),
    goal: goalSchema.default({ kind: 'untargeted' }),
    /** The attack's own parameters; checked by the attack (unknown ones are refused). */
    params: z.record(z.string(), z.unknown()).default({}),
    /** Evaluate the adversarial examples on this second model too (transfer). */
    transferTo: modelRef.optional(),
    /** How many examples to save as PNG (original, adversarial, perturbation). */
    saveExamples: z.number().int().min(0).max(200).default(24),
    batchSize: z.number().int().min(1).max(4096).default(100),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

export const sweepParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    attack: z.string().min(1).max(40).default('pgd'),
    epsilons: z.array(z.number().min(0).max(100)).min(1).max(MAX_SWEEP_EPSILONS, atMost(MAX_SWEEP_EPSILONS, 'epsilons in one sweep')),
    params: z.record(z.string(), z.unknown()).default({}),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
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
    directions: z.array(z.enum(['gradient-random', 'random-random'])).min(1).max(MAX_SURFACE_DIRECTIONS, atMost(MAX_SURFACE_DIRECTIONS, 'direction pairs')).default(['gradient-random', 'random-random']),
    range: z.number().positive().max(1).default(0.3),
    resolution: z.number().int().min(3).max(101).default(21),
    objective: z.enum(['ce', 'margin']).default('ce'),
    seed: seed.default(0),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
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
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/** Gradient-masking checks on any model (engine/eval/masking.ts): Carlini et al. 2019, AutoAttack's checks. */
export const gradientCheckParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    /** Linf budget; default by dataset: 0.3 mnist, 0.1 fashion-mnist, 8/255 cifar10, else 0.1. */
    eps: z.number().positive().max(1).optional(),
    steps: z.number().int().min(1).max(1000).default(20),
    restarts: z.number().int().min(2).max(50).default(5),
    /** An undefended model for the transfer check; default: train a small-cnn on the dataset's training split. */
    surrogate: modelRef.optional(),
    surrogateTrainLimit: z.number().int().min(100).max(100000).default(5000),
    surrogateEpochs: z.number().int().min(1).max(100).default(2),
    surfaceImages: z.number().int().min(0).max(20).default(2),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/**
 * The standard robustness evaluation (engine/eval/ensemble.ts: APGD-CE, APGD-T, FAB-T (standard), Square on the inputs
 * still robust, then AutoAttack's and RobustBench's checks). `resume`: the id of an interrupted evaluate
 * session, whose model, images and settings are reused (give nothing else but name and tags).
 */
export const evaluateParams = z
  .object({
    resume: z.string().min(1).max(200).optional(),
    model: modelRef.optional(),
    ...imageSelection,
    dataset: imageSelection.dataset.optional(),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Budget; default by dataset: Linf 0.3 mnist, 0.1 fashion-mnist, 8/255 cifar10; L2 2 mnist/fashion-mnist, 0.5 cifar10. */
    eps: z.number().positive().max(100).optional(),
    version: z.enum(['standard', 'quick']).default('standard'),
    /** Seed of the attacks' random starts and searches. */
    attackSeed: seed.default(0),
    /** Inputs per attack call: the unit of progress that a resumed run does not repeat. */
    chunkSize: z.number().int().min(1).max(1000).default(100),
    /** Seconds between saves of the resumable state. */
    checkpointSeconds: z.number().min(0).max(3600).default(60),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/** Minimum-norm attacks compared at equal cost (engine/eval/minnorm.ts, AttackBench's optimality). */
export const minnormParams = z
  .object({
    model: modelRef,
    ...imageSelection,
    norm: z.enum(['l2', 'linf']).default('l2'),
    /**
     * l2: cw-l2, ddn, fmn, apgd, fab; linf: fmn-linf, apgd, fab. Default: cw-l2, ddn, fmn, apgd (l2); fmn-linf, apgd (linf).
     * Empty only with `references`: then the job runs nothing and compares the referenced sessions' attacks.
     */
    attacks: z.array(z.enum(['cw-l2', 'ddn', 'fmn', 'fmn-linf', 'apgd', 'fab'])).max(6).optional(),
    /** Forward+backward passes per example per attack. */
    budget: z.number().int().min(5).max(100_000).default(1000),
    /** Also run every attack at a tenth and a third of the budget for the distance-versus-budget curves. */
    curves: z.boolean().default(true),
    /** C&W at its own budget (binary-search steps x iterations, the paper's 9 x 1,000) as the reference; default: the common budget. */
    cw: z.object({ binarySearchSteps: z.number().int().min(1).max(20), maxIterations: z.number().int().min(1).max(100_000) }).strict().optional(),
    /**
     * Finished minnorm sessions on the same model, images, norm and goal whose attacks join this comparison
     * as they were run (e.g. C&W 9 x 1,000 in a session of its own, run alongside this one).
     */
    references: z.array(z.string().min(1).max(200)).min(1).max(5).optional(),
    goal: goalSchema.default({ kind: 'untargeted' }),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict()
  .refine((p) => p.attacks?.length !== 0 || p.references !== undefined, { path: ['attacks'], message: 'give at least one attack (none only with references)' });

export const importModelParams = z
  .object({
    /** A tfjs LayersModel: model.json or the folder holding it (weight shards beside it). */
    path: z.string().min(1).max(4096),
    /** Check the input shape against this dataset and measure test accuracy on it. */
    dataset: z.string().min(1).max(4096).optional(),
    testLimit: z.number().int().min(1).max(100000).optional(),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/** Speech-to-text training on FSDD (engine/audio/train.ts); quick: speech-small, fewer utterances and epochs. */
export const audioTrainParams = z
  .object({
    quick: z.boolean().default(false),
    /** Default 20 (quick: 14). */
    epochs: z.number().int().min(1).max(1000).optional(),
    /** Training utterances built per epoch. Default 2700 (quick: 600). */
    utterances: z.number().int().min(16).max(100000).optional(),
    seed: seed.default(1),
    /** speech-base (default), speech-small (default with quick) or speech-large (the full-alphabet model). */
    arch: z.enum(['speech-base', 'speech-small', 'speech-large']).optional(),
    batchSize: z.number().int().min(1).max(256).optional(),
    learningRate: z.number().positive().max(1).optional(),
    /** A corpus folder from `advlab audio corpus` (audio-corpus job): trains on it and FSDD together. */
    corpus: z.string().min(1).max(4096).optional(),
    /** With a corpus: FSDD utterances built per epoch (engine default 600). */
    fsddUtterances: z.number().int().min(0).max(100000).optional(),
    /**
     * Augmentation of the training batches (engine/audio/augment.ts): a spec such as "default" or
     * "speed=0.9-1.1,freq=2x7,time=2x20,time-frac=0.1,snr=10-30". Default: none. Checked by the engine's parser.
     */
    augment: z.string().max(500).superRefine((v, ctx) => {
      try {
        parseAugmentSpec(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }).optional(),
    /** As image training's (trainingEngine above): ONNX Runtime computes the network's steps, CTC runs in JS. */
    engine: trainingEngine,
    /**
     * A speech model to continue training (an audio-train session id, a model path, starter:NAME, or
     * a run's artifacts/checkpoint/ folder): fine-tuning, or resuming a stopped run from its last
     * finished epoch. Its architecture is used (arch, if given, must match); the optimizer starts afresh.
     */
    init: z.string().min(1).max(4096).optional(),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/** A synthesized speech corpus with every letter (engine/audio/corpus.ts); no session. */
export const audioCorpusParams = z
  .object({
    /** Output folder; default speech-corpus/ in the app's data folder. */
    out: z.string().min(1).max(4096).optional(),
    /** Hours of synthesized speech. */
    hours: z.number().positive().max(CORPUS_MAX_HOURS).default(CORPUS_DEFAULT_HOURS),
    seed: seed.default(1),
    sampleRate: z.union([z.literal(8000), z.literal(16000)]).default(8000),
    /** Synthesizer processes at once. */
    concurrency: z.number().int().min(1).max(16).default(2),
    /** Only these synthesizers (default every one installed). */
    synthesizers: z.array(z.enum(['espeak-ng', 'flite', 'festival'])).min(1).max(3).optional(),
    /** List FSDD's recordings in the corpus when a data folder has them. */
    fsdd: z.boolean().default(true),
  })
  .strict();

/** Targeted (or untargeted) audio adversarial example, Carlini & Wagner 2018 (engine/audio/attack.ts). */
export const audioAttackParams = z
  .object({
    /** An audio-train session id or a speech model.json / its folder. */
    model: modelRef,
    /** Path to a WAV file (any PCM/float encoding and rate; written back as 16-bit at its own rate). */
    wav: z.string().min(1).max(4096),
    /** A phrase over space, apostrophe and a-z; null for the untargeted attack. */
    target: z.string().max(500).nullable().default(null),
    iterations: z.number().int().min(1).max(100000).default(AUDIO_ATTACK_DEFAULTS.iterations),
    /** Weight of the CTC term in |delta|^2 + c * CTC. */
    c: z.number().positive().max(1e6).default(AUDIO_ATTACK_DEFAULTS.c),
    /** Adam step at the initial bound (full-scale units; scaled by tau / tau0 as tau shrinks). */
    learningRate: z.number().positive().max(1).default(AUDIO_ATTACK_DEFAULTS.learningRate),
    /** Initial Linf bound as a fraction of full scale. */
    tau0: z.number().positive().max(1).default(AUDIO_ATTACK_DEFAULTS.tau0),
    seed: seed.default(AUDIO_ATTACK_DEFAULTS.seed),
    /**
     * Targeted only: C&W 2018's per-frame alignment loss (their Section 4.2) added to the CTC term, with this
     * margin kappa in logit units, on the target's best alignment under the current candidate; null: CTC alone.
     */
    alignmentMargin: z.number().min(0).max(100).nullable().default(AUDIO_ATTACK_DEFAULTS.alignmentMargin),
    /**
     * What computes the speech network's logits and gradients: 'onnx' (ONNX Runtime; the log-mel front end and
     * CTC stay in tfjs), 'tfjs' (the reference), or 'auto': ONNX Runtime when every layer exports.
     */
    engine: z.enum(ENGINE_REQUESTS).default('auto'),
    /**
     * Qin et al.'s (2019) imperceptible second stage after a targeted success (null: off; {} : on with
     * the defaults): hide the perturbation under the clip's frequency-masking threshold.
     */
    stage2: z
      .object({
        iterations: z.number().int().min(1).max(100000).default(IMPERCEPTIBLE_DEFAULTS.iterations),
        /** Initial weight of the masking loss (adapted x1.2 / x0.8 during the stage). */
        alpha: z.number().positive().max(1e6).default(IMPERCEPTIBLE_DEFAULTS.alpha),
        /** Adam step in full-scale units. */
        learningRate: z.number().positive().max(1).default(IMPERCEPTIBLE_DEFAULTS.learningRate),
      })
      .strict()
      .nullable()
      .default(null),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/**
 * Robust mode (engine/audio/eot.ts): the audio attack with expectation over transformations (room
 * impulse responses by the image-source method, background noise, time shifts, 8k <-> 16k resampling),
 * then (compare) the plain attack with the same settings, both evaluated on held-out transformations.
 */
export const audioRobustParams = audioAttackParams
  // Robust mode runs stage 1 under transformations only, on tfjs (its transformed batches go through the tfjs
  // network, with the CTC term alone): it refuses stage2, engine and alignmentMargin (unknown keys) instead of ignoring them.
  .omit({ stage2: true, engine: true, alignmentMargin: true })
  .extend({
    /** Transformations drawn per step. */
    samples: z.number().int().min(1).max(32).default(EOT_DEFAULTS.samples),
    /** Rooms in the attack's pool (held-out rooms are never among them). */
    rooms: z.number().int().min(1).max(1024).default(EOT_DEFAULTS.rooms),
    reverbProbability: z.number().min(0).max(1).default(EOT_DEFAULTS.reverbProbability),
    /** Background noise, dB SNR; null: none. */
    snrDb: z.number().min(-20).max(120).nullable().default(EOT_DEFAULTS.snrDb),
    maxShiftMs: z.number().min(0).max(500).default(EOT_DEFAULTS.maxShiftMs),
    resampleProbability: z.number().min(0).max(1).default(EOT_DEFAULTS.resampleProbability),
    /** Longest room response, seconds. */
    rirMaxSeconds: z.number().positive().max(2).default(EOT_DEFAULTS.rirMaxSeconds),
    /** A success during the attack needs the target under acceptFraction of this many fixed draws. */
    checkTransforms: z.number().int().min(1).max(256).default(EOT_DEFAULTS.checkTransforms),
    acceptFraction: z.number().min(0).max(1).default(EOT_DEFAULTS.acceptFraction),
    /** Held-out transformations the results are evaluated on. */
    heldOut: z.number().int().min(1).max(1000).default(EOT_DEFAULTS.heldOut),
    /** Also run the plain attack and evaluate it on the same held-out transformations. */
    compare: z.boolean().default(true),
  })
  .strict();

/**
 * A universal perturbation for speech-to-text (engine/audio/universal.ts): one delta, trained on a set of
 * FSDD clips, that makes clips transcribe as one phrase; evaluated on held-out clips, for each Linf bound.
 */
export const audioUniversalParams = z
  .object({
    model: modelRef,
    target: z.string().min(1).max(200),
    /** Clips to train on and held-out clips to evaluate on (disjoint seeded picks from FSDD's recordings). */
    trainClips: z.number().int().min(1).max(2000).default(UNIVERSAL_DEFAULTS.trainClips),
    testClips: z.number().int().min(1).max(2000).default(UNIVERSAL_DEFAULTS.testClips),
    /** Linf bounds (fractions of full scale), one delta each: the curve's points. */
    eps: z.array(z.number().positive().max(1)).min(1).max(12).default([...UNIVERSAL_DEFAULTS.eps]),
    /** Adam steps per bound. */
    iterations: z.number().int().min(1).max(100000).default(UNIVERSAL_DEFAULTS.iterations),
    batchSize: z.number().int().min(1).max(256).default(UNIVERSAL_DEFAULTS.batchSize),
    /** Adam step as a fraction of the bound. */
    learningRate: z.number().positive().max(1).default(UNIVERSAL_DEFAULTS.learningRate),
    /** Length of the perturbation (and of the window every clip is cut or padded to), seconds. */
    seconds: z.number().min(0.1).max(10).default(UNIVERSAL_DEFAULTS.seconds),
    seed: seed.default(UNIVERSAL_DEFAULTS.seed),
    name: z.string().max(200).optional(),
    tags: z.array(z.string().max(MAX_TAG_CHARS)).max(MAX_TAGS, atMost(MAX_TAGS, 'tags')).default([]),
  })
  .strict();

/** Transcribe a WAV file with a speech model (no session). */
export const audioTranscribeParams = z
  .object({
    model: modelRef,
    wav: z.string().min(1).max(4096),
    method: z.enum(['greedy', 'beam']).default('greedy'),
  })
  .strict();

/**
 * Downloads a dataset from its canonical location (or a mirror) into a data folder, verified against
 * the digests pinned in engine/data/sources.ts, installed atomically (`advlab data get`, the Datasets
 * view's Get datasets panel). No session: the result says what was installed where.
 */
export const dataGetParams = z
  .object({
    dataset: z.enum(DOWNLOADABLE),
    /** A base URL serving the same file names (tests use a loopback server). */
    mirror: z.string().url().max(2000).optional(),
    /** The data folder to install into; default the app's own data folder (always searched). */
    dir: z.string().min(1).max(4096).refine((d) => isAbsolute(d), 'an absolute path').optional(),
    /** Replace an installed copy. */
    force: z.boolean().default(false),
  })
  .strict();

export const jobStartSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('diagnostics'), params: diagnosticsParams.default({ batch: 16, repeats: 3 }) }).strict(),
  z.object({ kind: z.literal('train'), params: trainParams }).strict(),
  z.object({ kind: z.literal('attack'), params: attackParams }).strict(),
  z.object({ kind: z.literal('sweep'), params: sweepParams }).strict(),
  z.object({ kind: z.literal('loss-surface'), params: lossSurfaceParams }).strict(),
  z.object({ kind: z.literal('recipe'), params: recipeParams }).strict(),
  z.object({ kind: z.literal('gradient-check'), params: gradientCheckParams }).strict(),
  z.object({ kind: z.literal('audio-train'), params: audioTrainParams }).strict(),
  z.object({ kind: z.literal('audio-attack'), params: audioAttackParams }).strict(),
  z.object({ kind: z.literal('audio-transcribe'), params: audioTranscribeParams }).strict(),
  z.object({ kind: z.literal('audio-robust'), params: audioRobustParams }).strict(),
  z.object({ kind: z.literal('audio-universal'), params: audioUniversalParams }).strict(),
  z.object({ kind: z.literal('audio-corpus'), params: audioCorpusParams }).strict(),
  z.object({ kind: z.literal('import-model'), params: importModelParams }).strict(),
  z.object({ kind: z.literal('data-get'), params: dataGetParams }).strict(),
  z.object({ kind: z.literal('evaluate'), params: evaluateParams }).strict(),
  z.object({ kind: z.literal('minnorm'), params: minnormParams }).strict(),
]);

export type JobStart = z.output<typeof jobStartSchema>;
export type JobStartInput = z.input<typeof jobStartSchema>;
export type JobKind = JobStart['kind'];
/** A job's params as a client writes them (defaults may be left out). */
export type JobParamsOf<K extends JobKind> = Extract<JobStartInput, { kind: K }>['params'];
/** A job's params after its schema parsed them (defaults filled in): what its handler receives. */
export type ParsedJobParamsOf<K extends JobKind> = Extract<JobStart, { kind: K }>['params'];

/**
 * What a finished job of each kind reports (job.finished's result). The contract declares the slot and
 * jobs/kinds/index.ts fills it from its handlers' inferred return types (module augmentation), so each
 * result has one definition, its handler, and the API layer never imports the jobs layer.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface JobResults {}
export type JobResultOf<K extends JobKind> = K extends keyof JobResults ? JobResults[K] : unknown;

/** Each job kind's params schema, read off jobStartSchema (the one place that pairs them). */
export const jobParamsSchemas = Object.fromEntries(jobStartSchema.options.map((o) => [o.shape.kind.value, o.shape.params])) as {
  [K in JobKind]: Extract<(typeof jobStartSchema.options)[number], { shape: { kind: z.ZodLiteral<K> } }>['shape']['params'];
};

export type DiagnosticsParams = z.output<typeof diagnosticsParams>;
export type TrainParams = z.output<typeof trainParams>;
export type AttackParams = z.output<typeof attackParams>;
export type SweepParams = z.output<typeof sweepParams>;
export type LossSurfaceParams = z.output<typeof lossSurfaceParams>;
export type RecipeParams = z.output<typeof recipeParams>;
export type GradientCheckParams = z.output<typeof gradientCheckParams>;
export type EvaluateParams = z.output<typeof evaluateParams>;
export type MinnormParams = z.output<typeof minnormParams>;
export type AudioTrainParams = z.output<typeof audioTrainParams>;
export type AudioAttackParams = z.output<typeof audioAttackParams>;
export type AudioTranscribeParams = z.output<typeof audioTranscribeParams>;
export type AudioRobustParams = z.output<typeof audioRobustParams>;
export type AudioUniversalParams = z.output<typeof audioUniversalParams>;
export type AudioCorpusParams = z.output<typeof audioCorpusParams>;
export type DataGetParams = z.output<typeof dataGetParams>;
