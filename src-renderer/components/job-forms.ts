/**
 * The job forms of the Train and Audio views: which fields of the job's params each shows, in which
 * row, under which label. Values, bounds and defaults are not here: they come from the job's schema
 * (`jobs.schemas`, described from src-main/api/jobs.ts), see params-form.ts.
 */
import type { JobKind, JobParamsOf } from '../../src-main/api/jobs';
import { paramsToSend, type ParamsDescription } from './params-form';

export interface JobForm {
  kind: JobKind;
  /** Rows of field names, each drawn as one ParamsForm. */
  rows: readonly (readonly string[])[];
  labels: Readonly<Record<string, string>>;
  /** data-testid of a field's input, where the e2e specs or the view name one. */
  testids: Readonly<Record<string, string>>;
}

export const trainForm = {
  kind: 'train',
  rows: [
    ['optimizer', 'learningRate', 'momentum', 'nesterov', 'decay', 'epochs', 'batchSize', 'engine'],
    ['limit', 'testLimit', 'validationSplit', 'augment', 'earlyStopPatience', 'seed', 'name'],
  ],
  labels: {
    optimizer: 'optimizer', learningRate: 'learning rate', momentum: 'momentum', nesterov: 'Nesterov',
    decay: 'lr decay per step', epochs: 'epochs', batchSize: 'batch size', engine: 'engine',
    limit: 'training images (empty = all)', testLimit: 'test images (empty = all)', validationSplit: 'validation split',
    augment: 'augmentation (e.g. shift:2: random shifts of up to 2 px)',
    earlyStopPatience: 'early stop patience (0 = off)', seed: 'seed', name: 'name',
  },
  testids: { optimizer: 'train-optimizer', momentum: 'train-momentum', nesterov: 'train-nesterov', epochs: 'train-epochs', limit: 'train-limit', testLimit: 'train-test-limit', engine: 'train-engine', augment: 'train-augment' },
} as const satisfies JobForm;

/**
 * The audio attack's numbers (model, clip and target phrase have their own inputs). The last row is the
 * targeted attack's alone (C&W 2018 Section 4.2's alignment loss; robust mode refuses it): the view shows and
 * sends it only for a targeted plain attack.
 */
export const audioAttackForm = {
  kind: 'audio-attack',
  rows: [['iterations'], ['c', 'learningRate', 'tau0', 'seed'], ['alignmentMargin']],
  labels: {
    iterations: 'iterations', c: 'c (weight of the CTC term)', learningRate: 'Adam step at τ0',
    tau0: 'τ0 (initial L∞ bound, fraction of full scale)', seed: 'seed',
    alignmentMargin: 'alignment margin κ (C&W 2018 §4.2, logits; empty: CTC alone)',
  },
  testids: { iterations: 'audio-iterations', c: 'audio-c', learningRate: 'audio-lr', tau0: 'audio-tau0', seed: 'audio-seed', alignmentMargin: 'audio-alignment-margin' },
} as const satisfies JobForm;

/** The Evaluate view's settings (model and dataset have their own selects). */
export const evaluateForm = {
  kind: 'evaluate',
  rows: [['norm', 'eps', 'n', 'version'], ['pick', 'offset', 'attackSeed', 'chunkSize', 'checkpointSeconds', 'name']],
  labels: {
    norm: 'norm', eps: 'ε (empty = the dataset\'s usual)', n: 'images', version: 'version',
    pick: 'which images', offset: 'offset', attackSeed: 'attack seed', chunkSize: 'chunk size', checkpointSeconds: 'save state every (s)', name: 'name',
  },
  testids: { norm: 'evaluate-norm', eps: 'evaluate-eps', n: 'evaluate-n', version: 'evaluate-version' },
} as const satisfies JobForm;

export const JOB_FORMS: readonly JobForm[] = [trainForm, audioAttackForm, evaluateForm];

export const formFields = (form: JobForm): string[] => form.rows.flat();

/**
 * A form's values as its job's params (empty optional fields left out). The fields were drawn and
 * checked from the job's own schema, so they are its params; jobs.start parses them again at the door.
 */
export function formParams<K extends JobKind>(form: JobForm & { kind: K }, schema: ParamsDescription, values: Record<string, unknown>): Partial<JobParamsOf<K>> {
  return paramsToSend(schema, values) as Partial<JobParamsOf<K>>;
}
