/** The Audio view's robust-mode and universal forms start from their jobs' schema defaults (engine/audio/eot.ts, universal.ts). */
import { describe, expect, it } from 'vitest';
import { jobSchemas } from '../../../src-main/api/handlers';
import { audioRobustParams, audioUniversalParams } from '../../../src-main/api/jobs';
import { EOT_DEFAULTS, UNIVERSAL_DEFAULTS } from '../../../src-main/engine/audio';
import { checkValues, initialValues, paramsToSend } from '../../../src-renderer/components/params-form';
import { formFields } from '../../../src-renderer/components/job-forms';
import { robustForm, universalForm } from '../../../src-renderer/components/audio/robust-forms';

const described = jobSchemas();

describe('robust-mode and universal forms', () => {
  it('name only fields of their schemas and start at the engine defaults, valid as they are', () => {
    const r = initialValues(described['audio-robust'], formFields(robustForm));
    expect(Object.keys(r)).toEqual(formFields(robustForm));
    expect(r).toMatchObject({ samples: EOT_DEFAULTS.samples, snrDb: EOT_DEFAULTS.snrDb, heldOut: EOT_DEFAULTS.heldOut, rooms: EOT_DEFAULTS.rooms, compare: true });
    expect(checkValues(described['audio-robust'], r, formFields(robustForm))).toEqual({});
    expect(() => audioRobustParams.parse({ model: 'm', wav: 'w.wav', target: 'nine', ...paramsToSend(described['audio-robust'], r) })).not.toThrow();
    const u = initialValues(described['audio-universal'], formFields(universalForm));
    expect(Object.keys(u)).toEqual(formFields(universalForm));
    expect(u).toMatchObject({ trainClips: UNIVERSAL_DEFAULTS.trainClips, iterations: UNIVERSAL_DEFAULTS.iterations, seconds: UNIVERSAL_DEFAULTS.seconds });
    expect(described['audio-universal'].properties?.eps?.default).toEqual([...UNIVERSAL_DEFAULTS.eps]);
    expect(() => audioUniversalParams.parse({ model: 'm', target: 'nine', ...paramsToSend(described['audio-universal'], u) })).not.toThrow();
  });
});
