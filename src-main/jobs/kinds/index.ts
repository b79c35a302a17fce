/** Every job kind the worker can run. Add a kind here and its params schema in api/jobs.ts. */
import type { JobKind } from '../../api/jobs';
import { initBackend, type BackendInfo } from '../../engine/backend';
import type { JobContext } from '../../engine/context';
import { PROBE, type JobEnv, type JobHandler } from '../types';
import { diagnostics } from './diagnostics';
import { train } from './train';
import { attack, lossSurfaceJob, sweep } from './attack';
import { recipe } from './recipe';
import { gradientCheck } from './gradient-check';
import { audioAttackJob, audioTrain, audioTranscribe } from './audio';
import { audioRobust, audioUniversal } from './audio-robust';
import { audioCorpus } from './audio-corpus';
import { importModel } from './import-model';
import { dataGet } from './data';
import { evaluate } from './evaluate';
import { minnorm } from './minnorm';

export const jobHandlers = {
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
  'audio-robust': audioRobust,
  'audio-universal': audioUniversal,
  'audio-corpus': audioCorpus,
  'import-model': importModel,
  'data-get': dataGet,
  evaluate,
  minnorm,
} satisfies { [K in JobKind]: JobHandler<K> };

/** What a finished job of each kind reports (job.finished's result), inferred from its handler. */
type InferredResults = { [K in JobKind]: Awaited<ReturnType<(typeof jobHandlers)[K]>> };
declare module '../../api/jobs' {
  // Fills the contract's JobResults slot: api/jobs.ts declares it, the handlers define it.
  interface JobResults extends InferredResults {}
}
export type { JobResultOf } from '../../api/jobs';

const probe = async (_params: unknown, _ctx: JobContext, env: JobEnv): Promise<BackendInfo> => env.backend ?? (await initBackend());

type WorkerEntry = (params: unknown, ctx: JobContext, env: JobEnv) => Promise<unknown>;

/**
 * The worker's lookup by name. The runner hands the worker only params that jobs.start parsed with
 * the kind's schema (ParsedJobParamsOf<K>), so the worker trusts them as such.
 */
export function handlerFor(kind: string): WorkerEntry | undefined {
  if (kind === PROBE) return probe;
  return Object.hasOwn(jobHandlers, kind) ? (jobHandlers[kind as JobKind] as WorkerEntry) : undefined;
}
