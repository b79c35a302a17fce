/**
 * The 'audio-clip' shard: the audio adversarial example attack (engine/audio/attack.ts, Carlini &
 * Wagner 2018) on one clip, run on a pool thread or a cluster worker. The speech model travels as a
 * saved model's spec (model.json + the sha256 of its files: the cluster ships it through its Object
 * Store like an image classifier's); the worker loads it once (cached, sha256-checked) and runs
 * audioAttack with the job's options, so the result is the one the job would get in place (the
 * attack's randomness comes from its seed, never from where it runs). A cancel returns what the attack
 * had found (its partial result, marked cancelled) so the job keeps its best candidate as in place.
 */
import { audioAttack, type AudioAttackOptions, type AudioAttackResult } from '../audio/attack';
import { SpeechModel } from '../audio/model';
import type { JobContext } from '../context';
import { badFile, CancelledError } from '../errors';
import { modelSha256 } from '../models/io';
import type { SavedClassifierSpec } from './types';

export interface AudioClipTask {
  /** The speech model as a saved model's spec (gradient is unused: 'real'). */
  model: SavedClassifierSpec;
  /** The clip at its own rate (the attack quantises and resamples it as in place). */
  samples: Float32Array;
  sampleRate: number;
  options: AudioAttackOptions;
}

/** The attack's result; `cancelled` when the job was cancelled mid-attack (then it is the partial result). */
export type AudioClipResult = AudioAttackResult & { cancelled: boolean };

declare module './types' {
  interface ShardTypes {
    'audio-clip': { task: AudioClipTask; result: AudioClipResult };
  }
}

let cached: { key: string; model: Promise<SpeechModel> } | null = null;

/** The speech model of `spec`, loaded once per worker (the last one kept) and checked against its sha256. */
async function speechModelFor(spec: SavedClassifierSpec): Promise<SpeechModel> {
  const key = `${spec.modelJson}\n${spec.sha256}`;
  if (cached?.key !== key) {
    const old = cached;
    const model = (async () => {
      const sha = await modelSha256(spec.modelJson);
      if (sha !== spec.sha256) throw badFile(spec.modelJson, `changed since the job read it (sha256 ${sha.slice(0, 12)}..., the job's is ${spec.sha256.slice(0, 12)}...)`, { sha256: sha, expected: spec.sha256 });
      return SpeechModel.load(spec.modelJson);
    })();
    cached = { key, model };
    model.catch(() => { if (cached?.model === model) cached = null; });
    void old?.model.then((m) => m.dispose(), () => undefined);
  }
  return cached!.model;
}

/** Disposes the cached speech model (tests; a worker that shuts down). */
export async function clearSpeechModelCache(): Promise<void> {
  const old = cached;
  cached = null;
  await old?.model.then((m) => m.dispose(), () => undefined);
}

export async function runAudioClip(task: AudioClipTask, ctx: JobContext): Promise<AudioClipResult> {
  ctx.checkpoint();
  const model = await speechModelFor(task.model);
  try {
    return { ...(await audioAttack(model, { samples: task.samples, sampleRate: task.sampleRate }, task.options, ctx)), cancelled: false };
  } catch (e) {
    if (e instanceof CancelledError && e.partial !== undefined) return { ...(e.partial as AudioAttackResult), cancelled: true };
    throw e;
  }
}
