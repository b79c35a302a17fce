/**
 * Resolves a model reference from a job's params: the id of a session holding a model (a training
 * run, a defense recipe) or a path to a tfjs model.json or its folder. Returns the loaded model, the
 * Classifier attacks use (with the model's recorded preprocessing applied) and a reference for the
 * session manifest.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AdvlabError } from '../engine/errors';
import { loadModel, type LoadedModel } from '../engine/models';
import { classifierFor } from '../engine/models/defended';
import type { Classifier } from '../engine/models/classifier';
import type { ModelRef, SessionStore } from '../engine/sessions';
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

export async function resolveModel(ref: string, store: SessionStore): Promise<ResolvedModel> {
  let path = ref;
  let id: string | undefined;
  let label = ref;
  if (isSessionId(ref) && existsSync(store.dir(ref))) {
    const m = await store.manifest(ref);
    const rel = m.summary.model;
    if (typeof rel !== 'string') throw new AdvlabError('NOT_FOUND', `Session ${ref} holds no model (its summary has no "model" entry)`, { session: ref });
    path = join(store.dir(ref), 'artifacts', rel);
    id = ref;
    label = m.name;
  } else if (!existsSync(ref)) {
    throw new AdvlabError('NOT_FOUND', `Model "${ref}" is neither a session id in ${store.root} nor an existing model.json or folder`, { model: ref });
  }
  const loaded = await loadModel(path);
  const classifier = classifierFor(loaded);
  return {
    loaded,
    classifier,
    ref: { ...(id ? { id } : {}), path: loaded.modelJson, arch: loaded.meta.arch ?? 'unknown', sha256: loaded.sha256 },
    label,
  };
}
