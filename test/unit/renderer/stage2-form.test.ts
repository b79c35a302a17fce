/**
 * The Audio view's stage-2 fields come from the audio-attack job's schema (the object branch of its
 * nullable `stage2`): defaults from IMPERCEPTIBLE_DEFAULTS, nothing of the form's own; and the masking
 * chart's per-frame excess is the engine's measure.
 */
import { describe, expect, it } from 'vitest';
import { audioAttackParams } from '../../../src-main/api/jobs';
import { jobSchemas } from '../../../src-main/api/handlers';
import { IMPERCEPTIBLE_DEFAULTS } from '../../../src-main/engine/audio/imperceptible';
import { maskingFrames, maskingThreshold, maskingViolation, psychoConfig } from '../../../src-main/engine/audio/psycho';
import { initialValues, paramsToSend } from '../../../src-renderer/components/params-form';
import { frameExcessDb, stage2Schema } from '../../../src-renderer/components/audio/stage2';

describe('the stage-2 form and chart', () => {
  it('takes its fields and defaults from the job schema and sends what the job accepts', () => {
    const s = stage2Schema(jobSchemas()['audio-attack']);
    expect(s).not.toBeNull();
    expect(Object.keys(s!.properties!).sort()).toEqual(['alpha', 'iterations', 'learningRate']);
    const values = initialValues(s!);
    expect(values).toEqual({ ...IMPERCEPTIBLE_DEFAULTS });
    expect(audioAttackParams.parse({ model: 'm', wav: 'x.wav', stage2: paramsToSend(s!, values) }).stage2).toEqual({ ...IMPERCEPTIBLE_DEFAULTS });
    expect(stage2Schema({ properties: {} })).toBeNull();
  });

  it('the per-frame excess over the threshold averages to the engine\'s mean excess', () => {
    const n = 3000;
    const x = Float32Array.from({ length: n }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    const d = Float32Array.from({ length: n }, (_, i) => 0.002 * Math.sin((2 * Math.PI * 3100 * i) / 8000 + 0.3));
    const mt = maskingThreshold(x, psychoConfig(8000));
    const frames = maskingFrames(d, mt);
    const mean = frames.reduce((s, f) => s + frameExcessDb(f.threshold, f.perturbation), 0) / frames.length;
    const v = maskingViolation(d, mt);
    expect(v.meanExcessDb).toBeGreaterThan(0.05);
    expect(Math.abs(mean - v.meanExcessDb)).toBeLessThan(0.01); // the frames are rounded to 0.01 dB
  });
});
