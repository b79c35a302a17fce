/**
 * The Audio view's speech-training form (components/audio/train-form.ts): its fields are the 'audio-train'
 * job's, it starts from that schema's defaults, a form left as it opens sends what the job reads as `{}`, and
 * architecture / corpus / the model to continue are sent as the job expects them.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { jobParamsSchemas } from '../../../src-main/api/jobs';
import { jobSchemas } from '../../../src-main/api/handlers';
import { checkValues, initialValues } from '../../../src-renderer/components/params-form';
import { formFields } from '../../../src-renderer/components/job-forms';
import { audioTrainForm, corpusFolders, speechTrainParams, type CorpusJobLike } from '../../../src-renderer/components/audio/train-form';

const schema = jobSchemas()['audio-train'];
const parse = (p: unknown) => jobParamsSchemas['audio-train'].parse(p);
const none = { arch: '', corpus: '', init: '' };
const fresh = () => initialValues(schema, formFields(audioTrainForm));

describe('speech-training form', () => {
  it('shows only fields of the audio-train schema and starts at the defaults zod applies', () => {
    const shape = (jobParamsSchemas['audio-train'] as unknown as z.ZodObject).shape;
    const values = fresh();
    expect(Object.keys(values)).toEqual(formFields(audioTrainForm));
    for (const f of formFields(audioTrainForm)) expect(values[f], f).toEqual(shape[f].safeParse(undefined).data);
    expect(values).toMatchObject({ quick: false, seed: 1, engine: 'auto', epochs: undefined, utterances: undefined });
    expect(checkValues(schema, values, formFields(audioTrainForm))).toEqual({});
  });

  it('a form left as it opens sends what the job reads as {} (no default written twice)', () => {
    const sent = speechTrainParams(schema, fresh(), none);
    expect(Object.keys(sent).sort()).toEqual(['engine', 'quick', 'seed']);
    expect(parse(sent)).toEqual(parse({}));
  });

  it('sends what was filled in, empty text fields left out, and the job accepts it unchanged', () => {
    const values = { ...fresh(), quick: true, epochs: 1, utterances: 32, name: '', augment: '' };
    const sent = speechTrainParams(schema, values, { ...none, arch: 'speech-small' });
    expect(sent).toEqual({ quick: true, epochs: 1, utterances: 32, seed: 1, engine: 'auto', arch: 'speech-small' });
    expect(parse(sent)).toMatchObject(sent);
    const augmented = speechTrainParams(schema, { ...values, augment: 'speed=0.9-1.1', name: 'run 2' }, none);
    expect(augmented).toMatchObject({ augment: 'speed=0.9-1.1', name: 'run 2' });
    expect(augmented).not.toHaveProperty('arch');
    expect(() => parse(speechTrainParams(schema, { ...values, augment: 'speed=nonsense' }, none))).toThrow();
  });

  it('continuing a model sends init and not arch (the run takes the model\'s own); fsddUtterances goes only with a corpus', () => {
    const values = { ...fresh(), fsddUtterances: 300 };
    const cont = speechTrainParams(schema, values, { arch: 'speech-large', corpus: '', init: 'starter:speech' });
    expect(cont.init).toBe('starter:speech');
    expect(cont).not.toHaveProperty('arch');
    expect(cont).not.toHaveProperty('fsddUtterances');
    const withCorpus = speechTrainParams(schema, values, { arch: 'speech-large', corpus: '/data/speech-corpus', init: '' });
    expect(withCorpus).toMatchObject({ arch: 'speech-large', corpus: '/data/speech-corpus', fsddUtterances: 300 });
    expect(parse(withCorpus)).toMatchObject(withCorpus);
  });

  it('bounds come from the schema', () => {
    const values = { ...fresh(), epochs: 0, utterances: 8, batchSize: 1.5, learningRate: 0 };
    expect(checkValues(schema, values, formFields(audioTrainForm))).toEqual({ epochs: 'at least 1', utterances: 'at least 16', batchSize: 'a whole number', learningRate: 'greater than 0' });
  });

  it('offers the folders of finished audio-corpus jobs, newest first, once each', () => {
    const corpusJob = (jobId: string, state: string, manifest?: string) =>
      ({ jobId, kind: 'audio-corpus', state, progress: null, ...(manifest ? { result: { manifest } } : {}) }) as CorpusJobLike;
    const jobs = [
      corpusJob('a', 'finished', '/data/speech-corpus/corpus.json'),
      corpusJob('b', 'failed'),
      corpusJob('c', 'finished', '/tmp/c2/corpus.json'),
      corpusJob('d', 'finished', '/data/speech-corpus/corpus.json'),
      { jobId: 'e', kind: 'train', state: 'finished', progress: null, result: {} } as CorpusJobLike,
    ];
    expect(corpusFolders(jobs)).toEqual(['/data/speech-corpus', '/tmp/c2']);
  });
});
