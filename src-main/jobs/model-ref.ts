/**
 * Resolves a model reference from a job's params: the id of a session holding a model (a training
 * run, a defense recipe, an audio-train run) or a path to a tfjs model.json or its folder. For image
 * models: the loaded model, the Classifier attacks use (with the model's recorded preprocessing
 * applied) and a reference for the session manifest; for speech models the SpeechModel and its reference.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { confinedFile } from './confine';
import { AdvlabError, badInput } from '../engine/errors';
import { SpeechModel } from '../engine/audio';
import { loadModel, modelSha256, type LoadedModel } from '../engine/models';
import { starterModels, starterName } from '../engine/data';
import { classifierFor } from '../engine/models/defended';
import type { Classifier } from '../engine/models/classifier';
import { engineFor, engineSummary, releaseClassifier, type EngineRequest } from '../engine/onnx/select';
import type { ModelRef, SessionStore } from '../engine/sessions';
import type { JobContext } from '../engine/context';
import { isSessionId } from '../engine/sessions';

export interface ResolvedModel {
  loaded: LoadedModel;
  classifier: Classifier;
  ref: ModelRef;
  /** A short name for listings: the session name or the folder. */
  label: string;
}

/**
 * The split spec to draw images from: the one given, else the one the model was trained with when it
 * is the same dataset (so a model trained with `--split last:8000` is attacked on its own held-out
 * images, never on images it was trained on). The model's spec goes as modelSplitSpec: loadDataset
 * still honours it once the set has its own train and test files, where a given spec is refused.
 */
export function splitSpecFor(model: ResolvedModel, dataset: string, given?: string): { splitSpec?: string; modelSplitSpec?: string } {
  if (given) return { splitSpec: given };
  const meta = model.loaded.meta;
  return meta.splitSpec && meta.dataset === dataset ? { modelSplitSpec: meta.splitSpec } : {};
}

/** Where a model reference points: the model.json path or folder, the session id (if any) and a label. */
export interface ModelLocation {
  path: string;
  id?: string;
  label: string;
}

/**
 * Finds a model reference: the id of a session holding a model (its summary's 'model' entry under
 * artifacts/) or a path to a model.json or its folder. `kindHint` ends the error for a session without
 * a model (e.g. '; use an audio-train session').
 */
export async function locateModel(ref: string, store: SessionStore, kindHint = ''): Promise<ModelLocation> {
  const starter = starterName(ref);
  if (starter !== undefined) {
    // A starter model shipped with the app (resources/starter/models/<name>): read from there, never written.
    const all = starterModels();
    const m = all.find((x) => x.name === starter);
    if (!m) throw new AdvlabError('NOT_FOUND', `No starter model "${starter}"${all.length ? `: the starter models are ${all.map((x) => `starter:${x.name}`).join(', ')}` : ' (this installation has no starter pack)'}`, { model: ref });
    return { path: m.modelJson, id: ref, label: `${m.title} (starter)` };
  }
  if (isSessionId(ref) && existsSync(store.dir(ref))) {
    const m = await store.manifest(ref);
    const rel = m.summary.model;
    if (typeof rel !== 'string') throw new AdvlabError('NOT_FOUND', `Session ${ref} holds no model (its summary has no "model" entry)${kindHint}`, { session: ref });
    return { path: join(store.dir(ref), 'artifacts', rel), id: ref, label: m.name };
  }
  if (!existsSync(ref)) {
    throw new AdvlabError('NOT_FOUND', `Model "${ref}" is neither a session id in ${store.root} nor an existing model.json or folder`, { model: ref });
  }
  return { path: ref, label: ref };
}

/** An image classifier from a session id or a model path, with its preprocessing applied; `ctx` can cancel the read of its files. */
export async function resolveModel(ref: string, store: SessionStore, ctx?: JobContext): Promise<ResolvedModel> {
  const { path, id, label } = await locateModel(ref, store);
  await confinedFile(path, 'model'); // checked again where it is opened (jobs/confine.ts)
  const loaded = await loadModel(path, { ctx });
  if (loaded.meta.task === 'speech-to-text') {
    throw badInput(`${label} is a speech-to-text model, not an image classifier: attack it with the audio attack (the Audio view, \`advlab audio attack\`)`, { model: ref });
  }
  const classifier = classifierFor(loaded);
  // Not prepared on the pool here: the engine is not chosen yet (jobEngine; prepareShards for classifiers that stay on tfjs).
  return {
    loaded,
    classifier,
    ref: { ...(id ? { id } : {}), path: loaded.modelJson, arch: loaded.meta.arch ?? 'unknown', sha256: loaded.sha256 },
    label,
  };
}

/**
 * The classifier a job runs on (engineFor: ONNX Runtime where the request and the model allow, else tfjs),
 * logged. Only a tfjs classifier travels to the job's shards (an ONNX Runtime one has no spec and runs in
 * the job's own thread), so only then are the pool's threads asked to load and warm it (prepareShards). Call
 * it before loading the job's data, so that they do it meanwhile, and release it (releaseClassifier) if the
 * job fails before it runs (releaseOnError).
 */
export async function jobEngine(model: ResolvedModel, request: EngineRequest, ctx: JobContext): Promise<Classifier> {
  const clf = await engineFor(model.loaded, model.classifier, request, ctx.shards ? { shardsTo: ctx.shards.where } : {});
  ctx.log(`engine: ${engineSummary(clf).engineReason}`);
  prepareShards(ctx, clf);
  return clf;
}

/**
 * A hint to the job's shard executor (ShardExecutor.prepare): its shards will rebuild these tfjs classifiers
 * (those with a spec), so the pool's threads load and warm them while the job loads its data. No effect on results.
 */
export function prepareShards(ctx: JobContext, ...classifiers: (Classifier | null | undefined)[]): void {
  const specs = classifiers.flatMap((c) => (c?.spec ? [c.spec] : []));
  if (specs.length > 0) ctx.shards?.prepare?.(specs);
}

/** `setUp`'s value; when it throws, the job's classifier is released first (its native sessions, if any). */
export async function releaseOnError<T>(clf: Classifier, setUp: () => Promise<T>): Promise<T> {
  try {
    return await setUp();
  } catch (e) {
    releaseClassifier(clf);
    throw e;
  }
}

export interface ResolvedSpeechModel {
  model: SpeechModel;
  ref: ModelRef;
  label: string;
}

/** A speech-to-text model from a session id (an audio-train run) or a model path; `ctx` can cancel the reads of its files. */
export async function resolveSpeechModel(ref: string, store: SessionStore, ctx?: JobContext): Promise<ResolvedSpeechModel> {
  const { path, id, label } = await locateModel(ref, store, '; use an audio-train session');
  await confinedFile(path, 'model'); // checked again where it is opened (jobs/confine.ts)
  const model = await SpeechModel.load(path, { ctx });
  const sha256 = await modelSha256(model.modelJson!, ctx);
  return { model, ref: { ...(id ? { id } : {}), path: model.modelJson!, arch: model.arch, sha256 }, label };
}
