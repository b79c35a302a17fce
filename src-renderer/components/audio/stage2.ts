/**
 * The imperceptible second stage (Qin et al. 2019) in the Audio view: its options' schema (the object
 * branch of the audio-attack job's nullable `stage2`, so fields, bounds and defaults come from the
 * job's schema), and masking.json as the job writes it (jobs/kinds/audio.ts).
 */
import type { JsonProp, ParamsDescription } from '../params-form';

export function stage2Schema(schema: ParamsDescription): ParamsDescription | null {
  const p = schema.properties?.stage2 as (JsonProp & { anyOf?: (JsonProp & ParamsDescription)[] }) | undefined;
  return (p?.anyOf?.find((x) => x.type === 'object') as ParamsDescription | undefined) ?? null;
}

export const stage2Form = {
  labels: { iterations: 'stage-2 iterations', alpha: 'α₀ (initial weight of the masking loss)', learningRate: 'stage-2 Adam step' },
  testids: { iterations: 'audio-stage2-iterations', alpha: 'audio-stage2-alpha', learningRate: 'audio-stage2-lr' },
} as const;

/** masking.json: per analysis frame, dB on the clip's 96 dB per-frame scale (threshold null: no hearing there). */
export interface MaskingData {
  sampleRate: number;
  windowSize: number;
  hop: number;
  freqs: number[];
  frames: { frame: number; start: number; threshold: (number | null)[]; clip: number[]; stage1: number[]; stage2: number[] }[];
}

/** Mean dB by which a perturbation's PSD rises above the threshold in one frame (as maskingViolation's meanExcessDb). */
export function frameExcessDb(threshold: (number | null)[], psd: number[]): number {
  let s = 0;
  for (let k = 0; k < psd.length; k++) {
    const t = threshold[k];
    if (t !== null && psd[k] > t) s += psd[k] - t;
  }
  return psd.length ? s / psd.length : 0;
}
