/**
 * Models travel through the Object Store, content-addressed: on submit every ClassifierSpec in a
 * shard's task has its modelJson (a path on the submitting machine) replaced by the object key of
 * its files, `model/<sha256>`, uploaded once (a key already there is not sent again); a worker puts
 * the files in its cache folder, checks their sha256 (modelSha256, the spec's own identity) and
 * rewrites the spec to the cached model.json. A worker never reads a path a task names.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { ObjectStore } from '@nats-io/obj';
import { AdvlabError, badFile, badInput } from '../../engine/errors';
import { modelSha256, resolveModelJson, MODEL_JSON } from '../../engine/models/io';
import type { SavedClassifierSpec } from '../../engine/shards/types';
import { decodePayload, encodePayload } from './codec';
import { classifierSpecSchema } from '../protocol';

/** A ClassifierSpec as it travels: modelJson is the object key of its files. */
export const MODEL_KEY_PREFIX = 'advlab-object:';
export const modelObjectName = (sha256: string) => `model/${sha256}`;

/** What counts as a ClassifierSpec inside a task (the contract's SavedClassifierSpec; jobs/protocol.ts declares it once). */
const specSchema = classifierSpecSchema;

function looksLikeSpec(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && (v as { kind?: unknown }).kind === 'saved' && 'modelJson' in v;
}

/** Replaces every ClassifierSpec in `value` with f(spec) (a deep copy; typed arrays are shared, not copied). */
export async function mapSpecs(value: unknown, f: (spec: SavedClassifierSpec) => Promise<SavedClassifierSpec>): Promise<unknown> {
  if (looksLikeSpec(value)) {
    const parsed = specSchema.safeParse(value);
    if (!parsed.success) throw badInput(`A shard's ClassifierSpec is malformed: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
    return f(parsed.data);
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return Promise.all(value.map((x) => mapSpecs(x, f)));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) out[k] = await mapSpecs(x, f);
  return out;
}

/** How a request to the Object Store is made: as is, or retried while the server restarts (online.ts's untilOnline, bound by the caller). */
export type Requester = <R>(what: string, op: () => Promise<R>) => Promise<R>;
const once: Requester = (_what, op) => op();

function safeRel(rel: string, modelJson: string): string {
  const norm = path.posix.normalize(rel);
  if (path.isAbsolute(rel) || norm.startsWith('..') || norm.includes('\0')) throw badFile(modelJson, `weight path "${rel}" leaves the model folder`);
  return norm;
}

/** The submitting side: uploads the model's files once (by sha256) and rewrites modelJson to its key. */
export class ModelUploader {
  private readonly done = new Map<string, Promise<void>>();
  constructor(private readonly os: ObjectStore, private readonly request: Requester = once) {}

  async toObjectKey(spec: SavedClassifierSpec): Promise<SavedClassifierSpec> {
    if (spec.modelJson.startsWith(MODEL_KEY_PREFIX)) return spec;
    let pending = this.done.get(spec.modelJson);
    if (!pending) {
      pending = this.upload(spec);
      this.done.set(spec.modelJson, pending);
      pending.catch(() => this.done.delete(spec.modelJson));
    }
    await pending;
    return { ...spec, modelJson: MODEL_KEY_PREFIX + modelObjectName(spec.sha256) };
  }

  private async upload(spec: SavedClassifierSpec): Promise<void> {
    const modelJson = await resolveModelJson(spec.modelJson);
    const actual = await modelSha256(modelJson);
    if (actual !== spec.sha256) throw badInput(`${modelJson} changed since its spec was made (sha256 ${actual.slice(0, 12)}..., the spec says ${spec.sha256.slice(0, 12)}...)`);
    const name = modelObjectName(spec.sha256);
    const what = `uploading the model ${spec.sha256.slice(0, 12)}`;
    if (await this.request(what, () => this.os.info(name))) return; // content-addressed: already there
    const dir = path.dirname(modelJson);
    const text = await fs.readFile(modelJson);
    const json = JSON.parse(text.toString('utf8')) as { weightsManifest?: { paths: string[] }[] };
    const files: Record<string, Uint8Array> = { [MODEL_JSON]: new Uint8Array(text) };
    for (const group of json.weightsManifest ?? []) {
      for (const rel of group.paths) files[safeRel(rel, modelJson)] = new Uint8Array(await fs.readFile(path.join(dir, rel)));
    }
    const blob = encodePayload({ files });
    // A put cut short by a restart leaves no object (its meta goes last): putting again is safe.
    await this.request(what, () => this.os.putBlob({ name, description: `model ${spec.sha256}` }, blob));
  }
}

/** The worker's side: a cache folder of models by sha256, filled from the Object Store and checked. */
export class ModelCache {
  private readonly ready = new Map<string, Promise<string>>();
  constructor(private readonly os: ObjectStore, private readonly root: string, private readonly request: Requester = once) {}

  async toLocalPath(spec: SavedClassifierSpec): Promise<SavedClassifierSpec> {
    const expected = MODEL_KEY_PREFIX + modelObjectName(spec.sha256);
    if (spec.modelJson !== expected) throw badInput(`A shard's model must travel by its object key (${expected}), not "${spec.modelJson}": a worker never reads a path a task names`);
    let p = this.ready.get(spec.sha256);
    if (!p) {
      p = this.fetch(spec.sha256);
      this.ready.set(spec.sha256, p);
      p.catch(() => this.ready.delete(spec.sha256));
    }
    return { ...spec, modelJson: await p };
  }

  private async fetch(sha256: string): Promise<string> {
    const dir = path.join(this.root, sha256);
    const modelJson = path.join(dir, MODEL_JSON);
    try {
      if ((await modelSha256(modelJson)) === sha256) return modelJson;
    } catch {
      // not cached (or damaged): fetch it
    }
    const blob = await this.request(`fetching the model ${sha256.slice(0, 12)}`, () => this.os.getBlob(modelObjectName(sha256)));
    if (!blob) throw new AdvlabError('NOT_FOUND', `The model ${sha256} is not in the cluster's Object Store`, { sha256 });
    const { files } = decodePayload<{ files: Record<string, Uint8Array> }>(blob);
    const tmp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      for (const [rel, data] of Object.entries(files)) {
        const file = path.join(tmp, safeRel(rel, sha256));
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, data);
      }
      const got = await modelSha256(path.join(tmp, MODEL_JSON));
      if (got !== sha256) throw badFile(modelObjectName(sha256), `sha256 mismatch: the files hash to ${got}`);
      await fs.mkdir(path.dirname(dir), { recursive: true });
      try {
        await fs.rename(tmp, dir);
      } catch {
        // Another worker on this machine put it there first (or a damaged copy is in the way).
        if ((await modelSha256(modelJson).catch(() => null)) === sha256) return modelJson;
        await fs.rm(dir, { recursive: true, force: true });
        await fs.rename(tmp, dir);
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
    return modelJson;
  }
}
