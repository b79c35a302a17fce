/** Every job kind the worker can run. Add a kind here and its params schema in api/jobs.ts. */
import { initBackend } from '../../engine/backend';
import type { JobHandler } from '../types';
import { diagnostics } from './diagnostics';
import { train } from './train';
import { attack, lossSurfaceJob, sweep } from './attack';
import { recipe } from './recipe';
import { gradientCheck } from './gradient-check';
import { audioAttackJob, audioTrain, audioTranscribe } from './audio';
import { importModel } from './import-model';

export const jobHandlers: Record<string, JobHandler> = {
  /** Internal: starts the backend and reports it (the status bar's first question). */
  probe: async (_params, _ctx, env) => env.backend ?? (await initBackend()),
  diagnostics,
  train,
  attack,
  sweep,
  'loss-surface': lossSurfaceJob,
  recipe,
  'gradient-check': gradientCheck,
  'audio-train': audioTrain,
  'audio-attack': audioAttackJob,
  'audio-transcribe': audioTranscribe,
  'import-model': importModel,
};
