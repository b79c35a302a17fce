/**
 * The forms of robust mode ('audio-robust') and the universal perturbation ('audio-universal') in the
 * Audio view: which fields show, in which row, under which label. Values, bounds and defaults come from
 * the jobs' schemas (src-main/api/jobs.ts, through jobs.schemas).
 */
import type { JobForm } from '../job-forms';

/** Robust mode's transformation settings (the attack's own numbers come from audioAttackForm). */
export const robustForm = {
  kind: 'audio-robust',
  rows: [['samples', 'snrDb', 'heldOut', 'compare'], ['rooms', 'reverbProbability', 'maxShiftMs', 'resampleProbability', 'rirMaxSeconds', 'checkTransforms', 'acceptFraction']],
  labels: {
    samples: 'transformations per step', snrDb: 'noise SNR (dB)', heldOut: 'held-out transformations', compare: 'compare with the plain attack',
    rooms: 'rooms in the attack\'s pool', reverbProbability: 'P(room)', maxShiftMs: 'max shift (ms)', resampleProbability: 'P(8k↔16k)',
    rirMaxSeconds: 'longest room response (s)', checkTransforms: 'check set size', acceptFraction: 'success needs this fraction of the check set',
  },
  testids: { samples: 'robust-samples', snrDb: 'robust-snr', heldOut: 'robust-heldout', compare: 'robust-compare', rooms: 'robust-rooms' },
} as const satisfies JobForm;

/** The universal perturbation's settings (model, target phrase and the bounds have their own inputs). */
export const universalForm = {
  kind: 'audio-universal',
  rows: [['trainClips', 'testClips', 'iterations'], ['batchSize', 'learningRate', 'seconds', 'seed']],
  labels: {
    trainClips: 'training clips', testClips: 'held-out clips', iterations: 'steps per bound', batchSize: 'batch size',
    learningRate: 'Adam step (fraction of the bound)', seconds: 'length (s)', seed: 'seed',
  },
  testids: { trainClips: 'universal-train', testClips: 'universal-test', iterations: 'universal-iterations' },
} as const satisfies JobForm;
