/**
 * Which engine computes a job's logits and input gradients.
 *
 * - 'tfjs': the tfjs classifier (the reference), always.
 * - 'onnx': ONNX Runtime, or an UNSUPPORTED error saying why it cannot.
 * - 'auto' (the default): ONNX Runtime wherever the model allows, else tfjs, with the reason recorded.
 *   It does not allow it when the classifier is a defended wrapper (thermometer encoding and its BPDA
 *   gradient, a detector's reject class: their preprocessing and gradients live in tfjs), when a layer
 *   is one the exporter does not know, or when the native library does not load on this platform.
 *
 * The chosen classifier carries the choice as `engine` (EngineInfo), which jobs record in the session
 * and the status bar shows. An ONNX classifier holds native sessions: the job disposes it when it ends
 * (`releaseClassifier`).
 */
import type * as tf from '@tensorflow/tfjs';
import { AdvlabError } from '../errors';
import type { Classifier, EngineInfo } from '../models/classifier';
import { setModelPath, type LoadedModel } from '../models/io';
import type { EngineRequest } from './engines';
import { onnxClassifier, onnxSequenceNetwork } from './classifier';
import { exportSequenceModel } from './export-seq';
import { UnsupportedLayerError, unsupportedReason } from './export';
import { ortStatus } from './runtime';

export { ENGINE_REQUESTS, type EngineRequest } from './engines';

export interface EngineSource {
  /** The network itself. */
  model: tf.LayersModel;
  /** The classifier built on it (plain, or a defended wrapper). */
  classifier: Classifier;
  /** What wraps the network, when the classifier is more than the network (e.g. 'thermometer encoding'). */
  wrapper?: string;
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /** Where the job's shards go (ctx.shards.where), if anywhere: with 'cluster', auto picks tfjs. */
  shardsTo?: 'pool' | 'cluster';
}

/** Why ONNX Runtime cannot run this classifier, or null when it can. */
export function onnxBlocker(src: EngineSource): string | null {
  if (src.wrapper) return `defended wrapper (${src.wrapper}) runs on tfjs`;
  if (src.classifier.rejectClass !== undefined) return 'detector (reject class) runs on tfjs';
  const status = ortStatus();
  if (!status.available) return status.reason;
  const reason = unsupportedReason(src.model);
  return reason === null ? null : `exporter: ${reason}`;
}

/** The classifier to run on, with its EngineInfo set. */
export async function selectEngine(src: EngineSource, request: EngineRequest = 'auto'): Promise<Classifier> {
  if (request === 'tfjs') return withInfo(src.classifier, { engine: 'tfjs', reason: 'requested (--engine tfjs)' });
  // A job whose shards go to a cluster: its workers rebuild the classifier from its spec on tfjs, so auto stays on
  // tfjs (an ONNX Runtime classifier has no spec and would keep every shard here, leaving the cluster idle).
  if (request === 'auto' && src.shardsTo === 'cluster') return withInfo(src.classifier, { engine: 'tfjs', reason: "auto: the job's shards go to a cluster, whose workers run tfjs" });
  const blocker = onnxBlocker(src);
  if (blocker !== null) {
    if (request === 'onnx') throw new AdvlabError('UNSUPPORTED', `--engine onnx: ${blocker}`, { engine: 'onnx' });
    return withInfo(src.classifier, { engine: 'tfjs', reason: blocker });
  }
  const reason = request === 'onnx' ? 'requested (--engine onnx)' : 'auto: every layer is exported';
  return onnxClassifier(src.model, { threads: src.threads, reason });
}

/** The same classifier with `engine` set (a new object: the original may be shared). */
function withInfo(c: Classifier, engine: EngineInfo): Classifier {
  return Object.assign(Object.create(Object.getPrototypeOf(c)) as object, c, { engine }) as Classifier;
}

/**
 * The classifier a job runs on for a loaded model and the classifier classifierFor built on it (plain or
 * wrapped by the preprocessing its metadata declares).
 */
export async function engineFor(loaded: LoadedModel, classifier: Classifier, request: EngineRequest = 'auto', where: { threads?: number; shardsTo?: 'pool' | 'cluster' } = {}): Promise<Classifier> {
  const levels = loaded.meta.preprocessing?.thermometerLevels;
  const wrapper = levels === undefined ? undefined : `thermometer encoding, ${levels} levels`;
  const { threads, shardsTo } = where;
  const chosen = await selectEngine({ model: loaded.model, classifier, ...(wrapper ? { wrapper } : {}), ...(threads ? { threads } : {}), ...(shardsTo ? { shardsTo } : {}) }, request);
  setModelPath(chosen, loaded.modelJson);
  return chosen;
}

/** Releases a classifier's native sessions, if it has any. */
export function releaseClassifier(c: Classifier): void {
  c.dispose?.();
}

/** The fields a job's session summary and result record: which engine ran and why. */
export function engineSummary(c: Classifier): { engine: string; engineReason: string } {
  const info = c.engine ?? { engine: 'tfjs', reason: 'tfjs classifier' };
  return { engine: info.engine, engineReason: describeEngine(info) };
}

/** A one-line description for logs and the status bar, e.g. "onnx (4 threads): auto: every layer is exported". */
export function describeEngine(info: EngineInfo | undefined): string {
  if (!info) return 'tfjs';
  return `${info.engine}${info.threads ? ` (${info.threads} threads)` : ''}: ${info.reason}`;
}

/** What the speech model needs of the sequence engine (SpeechModel's `network` and `native` slot). */
export interface SequenceHost {
  readonly network: tf.LayersModel;
  native: { apply(x: tf.Tensor3D): tf.Tensor3D; dispose(): void } | null;
}

/**
 * Puts a speech model's network on ONNX Runtime (request 'onnx' or 'auto'), or leaves it on tfjs, and says
 * which engine runs it and why. Its log-mel front end stays in tfjs (see README, Engines). With 'onnx' a
 * network the sequence exporter refuses, or no native library, is an UNSUPPORTED error.
 */
export async function useSequenceEngine(host: SequenceHost, request: EngineRequest = 'auto', threads?: number): Promise<EngineInfo> {
  host.native?.dispose();
  host.native = null;
  if (request === 'tfjs') return { engine: 'tfjs', reason: 'requested (--engine tfjs)' };
  const status = ortStatus();
  let blocker: string | null = status.available ? null : status.reason;
  if (blocker === null) {
    try {
      exportSequenceModel(host.network);
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError)) throw e;
      blocker = `exporter: ${e.message}`;
    }
  }
  if (blocker !== null) {
    if (request === 'onnx') throw new AdvlabError('UNSUPPORTED', `--engine onnx: ${blocker}`, { engine: 'onnx' });
    return { engine: 'tfjs', reason: blocker };
  }
  const net = await onnxSequenceNetwork(host.network, { ...(threads ? { threads } : {}), reason: request === 'onnx' ? 'requested (--engine onnx)' : 'auto: every layer is exported' });
  host.native = net;
  return net.engine;
}
