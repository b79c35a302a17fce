/**
 * The classifiers a shard-running worker has rebuilt from their specs (engine/shards/types.ts), kept
 * for the next shards of the same model: a pool thread or an `advlab worker` loads a model once per
 * job, not once per batch. The key is the whole spec; a model whose files no longer hash to the
 * spec's sha256 is refused, never used. At most MAX_CACHED_CLASSIFIERS models are kept (least
 * recently used goes first, its weights disposed).
 */
import { badFile } from '../errors';
import type { Classifier } from '../models/classifier';
import { classifierFor } from '../models/defended';
import { loadModel, type LoadedModel } from '../models/io';
import type { ClassifierSpec } from './types';

/** Models a shard worker keeps loaded at once. */
import { MAX_CACHED_CLASSIFIERS } from './cache-size';
export { MAX_CACHED_CLASSIFIERS };

interface Entry {
  loaded: Promise<{ loaded: LoadedModel; classifier: Classifier }>;
}

const cache = new Map<string, Entry>();

const keyOf = (spec: ClassifierSpec) => JSON.stringify([spec.kind, spec.modelJson, spec.sha256, spec.gradient]);

async function build(spec: ClassifierSpec): Promise<{ loaded: LoadedModel; classifier: Classifier }> {
  const loaded = await loadModel(spec.modelJson);
  if (loaded.sha256 !== spec.sha256) {
    loaded.model.dispose();
    throw badFile(spec.modelJson, `changed since the job read it (sha256 ${loaded.sha256.slice(0, 12)}..., the job's is ${spec.sha256.slice(0, 12)}...)`, { sha256: loaded.sha256, expected: spec.sha256 });
  }
  return { loaded, classifier: classifierFor(loaded, { gradient: spec.gradient }) };
}

/** The classifier of `spec`, loaded once and cached (checked against its sha256 when loaded). */
export async function classifierFromSpec(spec: ClassifierSpec): Promise<Classifier> {
  const key = keyOf(spec);
  let entry = cache.get(key);
  if (entry) {
    cache.delete(key); // most recently used goes last
    cache.set(key, entry);
  } else {
    entry = { loaded: build(spec) };
    cache.set(key, entry);
    entry.loaded.catch(() => { if (cache.get(key) === entry) cache.delete(key); });
    while (cache.size > MAX_CACHED_CLASSIFIERS) {
      const [oldest, old] = cache.entries().next().value as [string, Entry];
      cache.delete(oldest);
      void old.loaded.then((o) => o.loaded.model.dispose(), () => {});
    }
  }
  return (await entry.loaded).classifier;
}

/** Disposes every cached model (tests that count tensors; a worker that is shutting down). */
export async function clearClassifierCache(): Promise<void> {
  const entries = [...cache.values()];
  cache.clear();
  await Promise.all(entries.map((e) => e.loaded.then((o) => o.loaded.model.dispose(), () => {})));
}

/** How many models are cached (tests). */
export function cachedClassifiers(): number {
  return cache.size;
}
