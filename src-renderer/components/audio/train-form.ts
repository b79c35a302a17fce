/**
 * The speech-training form of the Audio view (SpeechTrainPanel.svelte): which fields of the 'audio-train' job
 * (api/jobs.ts audioTrainParams, engine/audio/train.ts) it shows and what it sends. As job-forms.ts: no value,
 * bound or default here; they come from the job's schema (`jobs.schemas`). Architecture, corpus and the model to
 * continue (`init`) have their own selects: the choices are the host's models and corpora, not the schema's.
 */
import type { JobParamsOf } from '../../../src-main/api/jobs';
import type { JobForm } from '../job-forms';
import { paramsToSend, type ParamsDescription } from '../params-form';

export const audioTrainForm = {
  kind: 'audio-train',
  rows: [
    ['quick', 'epochs', 'utterances', 'batchSize', 'learningRate', 'engine', 'seed'],
    ['augment', 'fsddUtterances', 'name'],
  ],
  labels: {
    quick: 'quick (speech-small, fewer utterances and epochs)', epochs: 'epochs', utterances: 'training utterances per epoch',
    batchSize: 'batch size', learningRate: 'peak learning rate', engine: 'engine', seed: 'seed',
    augment: 'augmentation (e.g. default, or speed=0.9-1.1,freq=2x7,time=2x20,snr=10-30)',
    fsddUtterances: 'FSDD utterances per epoch (with a corpus)', name: 'name',
  },
  testids: {
    quick: 'speech-train-quick', epochs: 'speech-train-epochs', utterances: 'speech-train-utterances', batchSize: 'speech-train-batch',
    learningRate: 'speech-train-lr', engine: 'speech-train-engine', seed: 'speech-train-seed', augment: 'speech-train-augment',
    fsddUtterances: 'speech-train-fsdd-utterances', name: 'speech-train-name',
  },
} as const satisfies JobForm;

/** The fields only a run on a corpus uses: shown and sent with one. */
export const CORPUS_ONLY: readonly string[] = ['fsddUtterances'];

/** The selects beside the schema's fields; '' is "not chosen" (the field is not sent). */
export interface SpeechTrainChoices {
  /** An architecture of the schema's arch enum. */
  arch: string;
  /** A corpus folder (an audio-corpus job's output) or a name in a data folder. */
  corpus: string;
  /** A speech model to continue training: a session id or starter:NAME. Its architecture is the run's. */
  init: string;
}

/**
 * The 'audio-train' params the form sends: the schema fields (empty optional ones left out) plus the chosen
 * architecture, corpus and model to continue. A continued model keeps its own architecture (the job refuses a
 * different one), so arch is not sent with init; fsddUtterances is a corpus run's alone.
 */
export function speechTrainParams(schema: ParamsDescription, values: Record<string, unknown>, choices: SpeechTrainChoices): JobParamsOf<'audio-train'> {
  const params = paramsToSend(schema, values);
  if (!choices.corpus) for (const f of CORPUS_ONLY) delete params[f];
  return {
    ...params,
    ...(choices.init ? { init: choices.init } : choices.arch ? { arch: choices.arch } : {}),
    ...(choices.corpus ? { corpus: choices.corpus } : {}),
  } as JobParamsOf<'audio-train'>;
}

/**
 * What corpusFolders reads of a job (lib/state.svelte's JobView has it). Written here as a shape, not imported: the
 * state module reaches the page's transport (window, location), and this file is also type-checked, through its
 * unit test, under the root tsconfig, which has no DOM library.
 */
export interface CorpusJobLike { kind: string; state: string; result?: unknown }

/** The corpus folders made by this host's finished audio-corpus jobs (their manifest's folder), newest first, once each. */
export function corpusFolders(jobs: readonly CorpusJobLike[]): string[] {
  const out: string[] = [];
  for (const j of [...jobs].reverse()) {
    if (j.kind !== 'audio-corpus' || j.state !== 'finished' || !j.result) continue;
    const manifest = (j.result as { manifest?: unknown }).manifest;
    if (typeof manifest !== 'string') continue;
    const dir = manifest.replace(/[\\/]corpus\.json$/, '');
    if (!out.includes(dir)) out.push(dir);
  }
  return out;
}
