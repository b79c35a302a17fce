/**
 * Saving and loading models as folders in the tfjs LayersModel format (model.json + binary weight
 * shards), readable by tfjs, tfjs-node and the tensorflowjs converter. Plain tfjs in Node has no
 * file:// handler, so this module is one: it writes model.json and weights.bin atomically (temp
 * file + rename, weights first) and reads model.json with every shard its manifest lists.
 *
 * Our own description of the model (architecture, dataset, class names, preprocessing, the session
 * that trained it) lives in model.json's `userDefinedMetadata`, which other tools ignore.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AdvlabError, badFile, badInput, formatIssues } from '../errors';
import { writeFileAtomic } from '../core/fs-atomic';
import { jsonSyntaxProblem } from '../core/json-depth';
import { silentContext, type JobContext } from '../context';
import type { Classifier } from './classifier';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** What we record about a model in userDefinedMetadata. Unknown extra keys are kept. */
export const ModelMetaSchema = z.looseObject({
  /** An architecture name from architectures.ts, or a free name for foreign models. */
  arch: z.string().optional(),
  /** Dataset name the model was trained on ('mnist', 'cifar10', ...). */
  dataset: z.string().optional(),
  classNames: z.array(z.string()).optional(),
  /** [h, w, c] of the images the model classifies (before any preprocessing below). */
  inputShape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]).optional(),
  /** Id of the session that trained the model. */
  trainedBy: z.string().optional(),
  /** The split spec of a single-file dataset it was trained with (e.g. 'last:8000'); attacks default to it. */
  splitSpec: z.string().optional(),
  /**
   * How inputs must be prepared and how the model was trained. Conventional keys:
   * thermometerLevels (thermometer encoding with that many levels applied before the network),
   * distillationTemperature (the T of defensive distillation; the model is evaluated at T = 1).
   */
  preprocessing: z.looseObject({
    thermometerLevels: z.number().int().min(2).optional(),
    distillationTemperature: z.number().positive().optional(),
  }).optional(),
  /** Whether training finished, was stopped early, or was cancelled; 'checkpoint': saved after an epoch while training still ran. */
  trainingStatus: z.enum(['complete', 'stopped-early', 'cancelled', 'checkpoint']).optional(),
  savedAt: z.string().optional(),
});
export type ModelMeta = z.infer<typeof ModelMetaSchema>;

export interface SavedModel {
  dir: string;
  /** Absolute path of model.json. */
  modelJson: string;
  weightFiles: string[];
  /** sha256 (hex) of model.json followed by the weight shards, for session references. */
  sha256: string;
  bytes: number;
}

export interface LoadedModel extends SavedModel {
  model: tf.LayersModel;
  /** Our metadata, {} for a model saved by another tool. */
  meta: ModelMeta;
  format: string;
  generatedBy?: string;
}

/** Where each saved or loaded model lives, for error messages (checkInputShape). */
const modelPaths = new WeakMap<object, string>();

/** The model.json path a model was loaded from or last saved to, if any. */
export function modelPathOf(model: tf.LayersModel | Classifier): string | undefined {
  return modelPaths.get(model);
}

/** Associates a Classifier built from a loaded model with its path (for checkInputShape messages). */
export function setModelPath(model: tf.LayersModel | Classifier, modelJson: string): void {
  modelPaths.set(model, modelJson);
}

/** One atomic write for the whole engine (temp file, fsync, rename, fsync of the folder). */
export { writeFileAtomic };

function sha256Of(parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * Saves a LayersModel to `dir` (created if needed) as model.json + weights.bin. `meta` is merged
 * over any userDefinedMetadata the model already carries (e.g. from loadModel); `savedAt` is set.
 * weights.bin is written first, model.json last, each atomically: a folder never holds a
 * model.json whose weights are not complete.
 */
export async function saveModel(model: tf.LayersModel, dir: string, meta: ModelMeta = {}): Promise<SavedModel> {
  const parsed = ModelMetaSchema.safeParse(meta);
  if (!parsed.success) throw badInput(`Invalid model metadata: ${formatIssues(parsed.error.issues, { root: '' }).join('; ')}`);
  const absDir = path.resolve(dir);
  await fs.mkdir(absDir, { recursive: true });
  const modelJson = path.join(absDir, MODEL_JSON);
  const weightsFile = path.join(absDir, WEIGHTS_BIN);
  let saved: SavedModel | null = null;
  await model.save({
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('Expected a JSON model topology');
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const weights = new Uint8Array(weightData);
      const manifest: tf.io.WeightsManifestConfig = [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }];
      const userDefinedMetadata = { ...(artifacts.userDefinedMetadata ?? {}), ...stripUndefined(parsed.data), savedAt: new Date().toISOString() };
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: manifest,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        userDefinedMetadata,
      };
      const text = new TextEncoder().encode(JSON.stringify(json));
      await writeFileAtomic(weightsFile, weights);
      await writeFileAtomic(modelJson, text);
      saved = { dir: absDir, modelJson, weightFiles: [weightsFile], sha256: sha256Of([text, weights]), bytes: text.byteLength + weights.byteLength };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  });
  if (!saved) throw new Error('tfjs did not call the save handler');
  model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), ...stripUndefined(parsed.data) });
  modelPaths.set(model, modelJson);
  return saved;
}

function stripUndefined<T extends Record<string, unknown>>(o: T): Record<string, {}> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, {}>;
}

/** Accepts a folder holding model.json or the path of a model.json file. */
export async function resolveModelJson(dirOrFile: string): Promise<string> {
  const p = path.resolve(dirOrFile);
  let stat;
  try {
    stat = await fs.stat(p);
  } catch {
    throw new AdvlabError('NOT_FOUND', `${p}: no such model file or folder`, { file: p });
  }
  if (!stat.isDirectory()) return p;
  const json = path.join(p, MODEL_JSON);
  try {
    await fs.access(json);
  } catch {
    throw new AdvlabError('NOT_FOUND', `${json}: no model.json in the model folder`, { file: json });
  }
  return json;
}

/** Largest model.json read, in bytes: a topology plus metadata is kilobytes; this refuses /dev/zero and the like. */
export const MAX_MODEL_JSON_BYTES = 32 * 1024 * 1024;
/** Largest total of a model's weight shards read, in bytes (1 GiB: far above any model a lab trains here). */
export const MAX_MODEL_WEIGHT_BYTES = 1024 * 1024 * 1024;

/**
 * Bytes a weight entry occupies in the binary shards (quantized weights take their storage dtype).
 * Every entry must have a fixed size, so that the shards can be checked before they are read:
 * variable-length "string" weights (which no layers model has) and unknown dtypes are refused.
 */
function entryBytes(e: tf.io.WeightsManifestEntry, modelJson: string): number {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const dtype = e.quantization?.dtype ?? e.dtype;
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) {
    const known = Object.keys(DTYPE_BYTES).join(', ');
    throw badFile(modelJson, `weight "${e.name}" has dtype "${dtype}": only fixed-size dtypes (${known}) are read, so that shard sizes can be checked before reading`, { weight: e.name, dtype });
  }
  return n * size;
}
/** Bytes per value, as tfjs's DTYPE_VALUE_SIZE_MAP (not exported). */
const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, int32: 4, uint16: 2, uint8: 1, bool: 1, complex64: 8 };

const ManifestEntrySchema = z.looseObject({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.string(),
});
const ModelJsonSchema = z.looseObject({
  modelTopology: z.record(z.string(), z.unknown()),
  format: z.string().optional(),
  weightsManifest: z.array(z.looseObject({ paths: z.array(z.string()), weights: z.array(ManifestEntrySchema) })),
});

/**
 * Bytes read between two cancellation checks: a model file is read in chunks of this size, and a
 * cancelled job stops after the chunk in flight (a 1 GiB read is 64 checks, each a few ms apart).
 */
export const MODEL_READ_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Reads a regular file of at most `cap` bytes: the size is checked on the open handle before
 * reading and no more than that is read, so a device (/dev/zero), a FIFO or a file that grows
 * cannot grow memory. It reads MODEL_READ_CHUNK_BYTES at a time and calls `ctx.checkpoint()`
 * before each chunk, so a cancelled job stops mid-file (CancelledError). Errors name the file, the
 * problem and the limit.
 */
async function readCapped(file: string, cap: number, capName: string, expected?: number, ctx: JobContext = silentContext): Promise<Uint8Array> {
  if (!(await fs.stat(file)).isFile()) throw badFile(file, 'is not a regular file (a device, FIFO or socket is never read)');
  // O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not wait for a writer.
  const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw badFile(file, 'is not a regular file (a device, FIFO or socket is never read)');
    if (st.size > cap) throw badFile(file, `${st.size} bytes is over the ${cap}-byte limit (${capName})`, { bytes: st.size, limit: cap });
    if (expected !== undefined && st.size !== expected) throw new SizeChanged(st.size);
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.byteLength) {
      ctx.checkpoint();
      const { bytesRead } = await handle.read(out, at, Math.min(MODEL_READ_CHUNK_BYTES, out.byteLength - at), at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== st.size) throw new SizeChanged(at);
    return out;
  } finally {
    await handle.close();
  }
}

/** A shard whose size changed between the check and the read. */
class SizeChanged extends Error {
  constructor(readonly bytes: number) {
    super(`size changed to ${bytes} bytes while reading`);
  }
}

/**
 * Resolves a weight path of model.json inside the model folder: absolute paths, URLs, paths that
 * leave the folder ("../x") and symlinks that point out of it are refused.
 */
async function weightPath(dir: string, rel: string, modelJson: string): Promise<string> {
  if (path.isAbsolute(rel) || /^[a-z]+:\/\//i.test(rel) || rel.includes('\0')) {
    throw badFile(modelJson, `weight path "${rel}" must be relative to the model folder`);
  }
  const file = path.resolve(dir, rel);
  const outside = (root: string, p: string) => { const r = path.relative(root, p); return r === '' || r.startsWith('..') || path.isAbsolute(r); };
  if (outside(dir, file)) throw badFile(modelJson, `weight path "${rel}" leaves the model folder`);
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw badFile(file, missing ? `weight shard listed in ${modelJson} is missing` : `cannot be read (${(e as Error).message})`, { modelJson });
  }
  if (outside(await fs.realpath(dir), real)) throw badFile(modelJson, `weight path "${rel}" is a symlink that leads out of the model folder`);
  return file;
}

interface ReadModel {
  modelJson: string;
  json: tf.io.ModelJSON;
  text: Uint8Array;
  shards: { file: string; data: Uint8Array }[];
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** Reads and checks model.json and every weight shard it lists, without building the model; `ctx` can cancel the reads. */
async function readModelFiles(dirOrFile: string, ctx: JobContext = silentContext): Promise<ReadModel> {
  const modelJson = await resolveModelJson(dirOrFile);
  const dir = path.dirname(modelJson);
  let text: Uint8Array;
  try {
    text = await readCapped(modelJson, MAX_MODEL_JSON_BYTES, 'MAX_MODEL_JSON_BYTES', undefined, ctx);
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw badFile(modelJson, `cannot be read (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(text));
  } catch (e) {
    throw badFile(modelJson, `is not valid JSON (${jsonSyntaxProblem(e)})`);
  }
  const checked = ModelJsonSchema.safeParse(raw);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw badFile(modelJson, `is not a tfjs model.json: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const json = raw as tf.io.ModelJSON;
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw new AdvlabError('UNSUPPORTED', `${modelJson}: format "${json.format}" is not supported (only tfjs "layers-model")`, { file: modelJson });
  }
  // Check everything first (paths inside the folder, every shard's size against the manifest, the
  // total against the cap); read only then.
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const groups: { files: string[]; sizes: number[] }[] = [];
  let total = 0;
  const names = new Set<string>();
  for (const group of json.weightsManifest) {
    let expected = 0;
    for (const w of group.weights) {
      // tfjs keeps one tensor per name: a weight listed twice would be decoded twice, one copy leaked.
      if (names.has(w.name)) throw badFile(modelJson, `weight "${w.name}" is listed twice in weightsManifest`, { weight: w.name });
      names.add(w.name);
      expected += entryBytes(w, modelJson);
      weightSpecs.push(w);
    }
    const files: string[] = [];
    const sizes: number[] = [];
    for (const rel of group.paths) {
      const file = await weightPath(dir, rel, modelJson);
      const st = await fs.stat(file);
      if (!st.isFile()) throw badFile(file, `weight shard listed in ${modelJson} is not a regular file (a device, FIFO or socket is never read)`, { modelJson });
      files.push(file);
      sizes.push(st.size);
    }
    const actual = sizes.reduce((a, b) => a + b, 0);
    if (actual !== expected) {
      const which = files.length === 1 ? files[0] : files.join(', ');
      throw badFile(which, `weight shard size mismatch: ${actual} bytes on disk but ${modelJson} describes ${expected} bytes (truncated or wrong file?)`,
        { modelJson, actualBytes: actual, expectedBytes: expected });
    }
    total += actual;
    if (total > MAX_MODEL_WEIGHT_BYTES) {
      throw badFile(modelJson, `weights total more than the ${MAX_MODEL_WEIGHT_BYTES}-byte limit (MAX_MODEL_WEIGHT_BYTES)`, { limit: MAX_MODEL_WEIGHT_BYTES });
    }
    groups.push({ files, sizes });
  }
  const shards: ReadModel['shards'] = [];
  for (const { files, sizes } of groups) {
    for (let i = 0; i < files.length; i++) {
      let data: Uint8Array;
      try {
        data = await readCapped(files[i], MAX_MODEL_WEIGHT_BYTES, 'MAX_MODEL_WEIGHT_BYTES', sizes[i], ctx);
      } catch (e) {
        if (e instanceof AdvlabError) throw e;
        if (e instanceof SizeChanged) throw badFile(files[i], `weight shard changed while it was read (${e.bytes} bytes, ${sizes[i]} checked)`, { modelJson });
        throw badFile(files[i], `cannot be read (${(e as Error).message})`, { modelJson });
      }
      shards.push({ file: files[i], data });
    }
  }
  return { modelJson, json, text, shards, weightSpecs };
}

/** sha256 (hex) of model.json followed by its weight shards in manifest order; `ctx` can cancel the reads. */
export async function modelSha256(dirOrFile: string, ctx?: JobContext): Promise<string> {
  const r = await readModelFiles(dirOrFile, ctx);
  return sha256Of([r.text, ...r.shards.map((s) => s.data)]);
}

function parseMeta(raw: unknown, modelJson: string): ModelMeta {
  if (raw === undefined || raw === null) return {};
  const parsed = ModelMetaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badFile(modelJson, `userDefinedMetadata.${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Loads a LayersModel from a folder or a model.json path, with all weight shards its manifest
 * lists (several groups and several shards per group, as tfjs and its converter write them).
 * Errors name the file: missing model.json or shard, bad JSON, shard sizes that do not match the
 * manifest, a topology tfjs cannot build. With `ctx`, the reads are cancellable: a cancelled job
 * stops within one MODEL_READ_CHUNK_BYTES chunk of a large weight file (CancelledError).
 */
export async function loadModel(dirOrFile: string, opts: { ctx?: JobContext } = {}): Promise<LoadedModel> {
  const r = await readModelFiles(dirOrFile, opts.ctx);
  const meta = parseMeta(r.json.userDefinedMetadata, r.modelJson);
  const weightData = r.shards.map((s) => s.data.buffer.slice(s.data.byteOffset, s.data.byteOffset + s.data.byteLength) as ArrayBuffer);
  const artifacts = tf.io.getModelArtifactsForJSONSync(r.json, r.weightSpecs, weightData);
  let model: tf.LayersModel;
  // tfjs builds the layers (variables) and decodes the weights (tensors) before it checks them
  // against each other: when that fails, it leaves them behind. Track what it makes and dispose it
  // on failure; on success every tensor is handed on to the caller's scope as before.
  const engine = tf.engine();
  const variablesBefore = new Set(Object.keys(engine.registeredVariables));
  // tfjs also allocates every layer's weights (as the topology declares them) before it compares
  // them with the manifest: a topology asking for a million units would take gigabytes first. So
  // while it builds, a layer may add no more weight values than the manifest holds in all.
  const budget = r.weightSpecs.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
  let used = 0;
  const layerProto = tf.layers.Layer.prototype as unknown as { addWeight: (name: string, shape: number[], ...rest: unknown[]) => unknown };
  const addWeight = layerProto.addWeight;
  layerProto.addWeight = function (this: { name: string }, name: string, shape: number[], ...rest: unknown[]) {
    const n = Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0) ? shape.reduce((x, y) => x * y, 1) : Infinity;
    used += n;
    if (!(used <= budget)) {
      throw new Error(`the topology declares more weight values than the ${budget} its weightsManifest holds (layer "${this.name}", weight "${name}" of shape [${String(shape)}])`);
    }
    return addWeight.call(this, name, shape, ...rest);
  };
  engine.startScope('loadModel');
  try {
    model = await tf.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    engine.endScope();
    for (const [name, v] of Object.entries(engine.registeredVariables)) if (!variablesBefore.has(name)) v.dispose();
    throw badFile(r.modelJson, `cannot be loaded as a tfjs layers model: ${(e as Error).message}`);
  } finally {
    layerProto.addWeight = addWeight;
  }
  engine.endScope(engine.state.activeScope.track);
  modelPaths.set(model, r.modelJson);
  return {
    model,
    meta,
    dir: path.dirname(r.modelJson),
    modelJson: r.modelJson,
    weightFiles: r.shards.map((s) => s.file),
    sha256: sha256Of([r.text, ...r.shards.map((s) => s.data)]),
    bytes: r.text.byteLength + r.shards.reduce((a, s) => a + s.data.byteLength, 0),
    format: r.json.format ?? 'layers-model',
    ...(r.json.generatedBy ? { generatedBy: r.json.generatedBy } : {}),
  };
}

/** [h, w, c] a model takes, or null when its input is not an image batch. */
export function modelInputShape(model: tf.LayersModel | Classifier): number[] | null {
  if ('logits' in model && 'inputShape' in model) return [...model.inputShape];
  const shape = (model as tf.LayersModel).inputs[0]?.shape;
  if (!shape) return null;
  return shape.slice(1).map((d) => (d == null ? -1 : d));
}

/**
 * Throws badInput when a dataset's images do not fit a model's input, naming the model's path
 * (when known), the model's shape and the dataset's shape. Unknown (null) model dims match anything.
 */
export function checkInputShape(model: tf.LayersModel | Classifier, datasetShape: readonly number[], datasetName?: string): void {
  const modelShape = modelInputShape(model);
  const where = modelPaths.get(model);
  const label = where ? `Model ${where}` : 'The model';
  const ds = datasetName ? `dataset "${datasetName}"` : 'the dataset';
  const fits = modelShape !== null && modelShape.length === datasetShape.length
    && modelShape.every((d, i) => d === -1 || d === datasetShape[i]);
  if (!fits) {
    throw badInput(
      `${label} expects inputs of shape [${(modelShape ?? []).map((d) => (d === -1 ? '?' : d)).join(', ')}] but ${ds} has images of shape [${datasetShape.join(', ')}]`,
      { model: where, modelShape, datasetShape: [...datasetShape], dataset: datasetName },
    );
  }
}
