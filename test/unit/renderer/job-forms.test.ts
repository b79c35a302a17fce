/**
 * The renderer's job forms start from their job schema's defaults: the forms hold no default or bound
 * of their own (issue 12: the Audio view once started every attack at learningRate 0.002 while the job
 * and the engine default to 0.005).
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { jobParamsSchemas, type JobKind } from '../../../src-main/api/jobs';
import { jobSchemas } from '../../../src-main/api/handlers';
import { attackCatalog } from '../../../src-main/engine/attacks/registry';
import { OPTIMIZER_OPTION_DEFAULTS } from '../../../src-main/engine/models/train';
import { absentText, checkValues, initialValues, paramsToSend } from '../../../src-renderer/components/params-form';
import { audioAttackForm, formFields, JOB_FORMS, trainForm } from '../../../src-renderer/components/job-forms';

/** A job's params object schema (diagnostics wraps it in a default). */
function shapeOf(kind: JobKind): Record<string, z.ZodType> {
  const s = jobParamsSchemas[kind] as unknown as z.ZodObject | z.ZodDefault<z.ZodObject>;
  return 'shape' in s ? s.shape : s.unwrap().shape;
}

/** What zod itself fills in for a field left out: its default, or undefined for an optional field. */
function zodDefault(kind: JobKind, field: string): unknown {
  const shape = shapeOf(kind);
  const r = shape[field].safeParse(undefined);
  if (!r.success) throw new Error(`${kind}.${field} is required: a form must not show it as a schema field`);
  return r.data;
}

const described = jobSchemas();

describe('job forms built from the job schemas', () => {
  it('every form names only fields of its job schema, and starts from that schema defaults', () => {
    expect(JOB_FORMS.map((f) => f.kind).sort()).toEqual(['audio-attack', 'evaluate', 'train']);
    for (const form of JOB_FORMS) {
      const fields = formFields(form);
      const values = initialValues(described[form.kind], fields);
      expect(Object.keys(values), form.kind).toEqual(fields);
      for (const f of fields) expect(values[f], `${form.kind}.${f}`).toEqual(zodDefault(form.kind, f));
    }
  });

  it('the audio attack form starts at the engine default learningRate 0.005 (not 0.002), iterations 1000, tau0 0.05', () => {
    const values = initialValues(described['audio-attack'], formFields(audioAttackForm));
    expect(values).toMatchObject({ learningRate: 0.005, iterations: 1000, tau0: 0.05, c: 1, seed: 0 });
  });

  it('every job kind (audio-train included) described for a form starts at the defaults zod applies', () => {
    for (const kind of Object.keys(jobParamsSchemas) as JobKind[]) {
      const d = described[kind];
      const shape = shapeOf(kind);
      expect(Object.keys(d.properties ?? {}).sort(), kind).toEqual(Object.keys(shape).sort());
      const values = initialValues(d);
      for (const f of Object.keys(shape)) {
        if ((d.required ?? []).includes(f)) continue;
        expect(values[f], `${kind}.${f}`).toEqual(zodDefault(kind, f));
      }
    }
    expect(initialValues(described['audio-train'])).toMatchObject({ quick: false, seed: 1, tags: [], epochs: undefined });
  });

  it('a form starting at the defaults is valid and its params are what the job schema accepts unchanged', () => {
    const train = initialValues(described.train, formFields(trainForm));
    expect(checkValues(described.train, train)).toEqual({});
    const sent = { dataset: 'mnist', arch: 'small-cnn', ...paramsToSend(described.train, train) };
    expect(sent).not.toHaveProperty('limit');
    expect(jobParamsSchemas.train.parse(sent)).toEqual(jobParamsSchemas.train.parse({ dataset: 'mnist', arch: 'small-cnn' }));
    const audio = initialValues(described['audio-attack'], formFields(audioAttackForm));
    expect(jobParamsSchemas['audio-attack'].parse({ model: 'm', wav: 'x.wav', ...paramsToSend(described['audio-attack'], audio) }))
      .toEqual(jobParamsSchemas['audio-attack'].parse({ model: 'm', wav: 'x.wav' }));
  });

  it('bounds come from the schema: out-of-range values are reported per field', () => {
    const audio = { ...initialValues(described['audio-attack'], formFields(audioAttackForm)), learningRate: 0, iterations: 100_001, tau0: 1.5 };
    expect(checkValues(described['audio-attack'], audio)).toEqual({ learningRate: 'greater than 0', iterations: 'at most 100000', tau0: 'at most 1' });
    const train = { ...initialValues(described.train, formFields(trainForm)), limit: 5, epochs: 1.5, validationSplit: 0.6 };
    expect(checkValues(described.train, train, formFields(trainForm))).toEqual({ limit: 'at least 10', epochs: 'a whole number', validationSplit: 'at most 0.5' });
  });

  it('a nullable field (the audio attack\'s alignmentMargin) starts at its schema default null, may be left empty (sent as null) and keeps its bounds', () => {
    const audio = initialValues(described['audio-attack'], formFields(audioAttackForm));
    expect(audio.alignmentMargin).toBeNull();
    expect(formFields(audioAttackForm)).toContain('alignmentMargin');
    expect(checkValues(described['audio-attack'], audio)).toEqual({});
    for (const empty of [null, Number.NaN, undefined]) {
      const sent = paramsToSend(described['audio-attack'], { ...audio, alignmentMargin: empty });
      expect(sent.alignmentMargin, String(empty)).toBeNull();
      expect(jobParamsSchemas['audio-attack'].parse({ model: 'm', wav: 'x.wav', ...sent }).alignmentMargin).toBeNull();
    }
    expect(paramsToSend(described['audio-attack'], { ...audio, alignmentMargin: 0.5 }).alignmentMargin).toBe(0.5);
    expect(checkValues(described['audio-attack'], { ...audio, alignmentMargin: -1 })).toEqual({ alignmentMargin: 'at least 0' });
    expect(checkValues(described['audio-attack'], { ...audio, alignmentMargin: 101 })).toEqual({ alignmentMargin: 'at most 100' });
  });

  it('every attack form starts valid: an optional parameter without a default (PGD stepSize) may stay empty and is not sent', () => {
    for (const a of attackCatalog()) {
      expect(initialValues(a.paramsJsonSchema), a.id).toEqual({ ...Object.fromEntries(Object.keys(a.paramsJsonSchema.properties ?? {}).map((k) => [k, undefined])), ...a.defaults });
      expect(checkValues(a.paramsJsonSchema, a.defaults), a.id).toEqual({});
    }
    const pgd = attackCatalog().find((a) => a.id === 'pgd')!;
    expect(pgd.defaults).not.toHaveProperty('stepSize');
    expect(paramsToSend(pgd.paramsJsonSchema, { ...pgd.defaults, stepSize: Number.NaN })).toEqual(pgd.defaults);
    expect(checkValues(pgd.paramsJsonSchema, { ...pgd.defaults, stepSize: -1 })).toEqual({ stepSize: 'greater than 0' });
  });

  it('the Train form writes no engine default in its labels: what an empty optimizer option means comes from the schema (absentDefault)', () => {
    // A label once read 'momentum (empty = 0.9)': the engine's default written a second time.
    for (const form of JOB_FORMS) expect(Object.values(form.labels).filter((l) => /empty = [-\d.]/.test(l)), form.kind).toEqual([]);
    const props = described.train.properties!;
    expect({ momentum: props.momentum.absentDefault, nesterov: props.nesterov.absentDefault, decay: props.decay.absentDefault }).toEqual(OPTIMIZER_OPTION_DEFAULTS);
    expect(OPTIMIZER_OPTION_DEFAULTS).toEqual({ momentum: 0.9, nesterov: false, decay: 0 });
    expect(absentText(props.momentum)).toBe('0.9');
    expect(absentText(props.epochs)).toBeUndefined(); // a zod default is the field's starting value instead
    // The fields stay empty (not sent); zod leaves them out and the engine fills them in.
    const values = initialValues(described.train, formFields(trainForm));
    expect([values.momentum, values.nesterov, values.decay]).toEqual([undefined, undefined, undefined]);
    expect(paramsToSend(described.train, values)).not.toHaveProperty('momentum');
  });
});
