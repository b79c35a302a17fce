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
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AdvlabError, badFile, badInput, formatIssues } from '../errors';
import { writeFileAtomic } from '../sessions/fs-atomic';
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
  /** Whether training finished, was stopped early, or was cancelled. */
  trainingStatus: z.enum(['complete', 'stopped-early', 'cancelled']).optional(),
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

/** Bytes a weight entry occupies in the binary shards (quantized weights take their storage dtype). */
function entryBytes(e: tf.io.WeightsManifestEntry): number | null {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const dtype = e.quantization?.dtype ?? e.dtype;
  if (dtype === 'string') return null; // variable length: cannot be checked up front
  const size = DTYPE_BYTES[dtype];
  return size === undefined ? null : n * size;
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

interface ReadModel {
  modelJson: string;
  json: tf.io.ModelJSON;
  text: Uint8Array;
  shards: { file: string; data: Uint8Array }[];
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** Reads and checks model.json and every weight shard it lists, without building the model. */
async function readModelFiles(dirOrFile: string): Promise<ReadModel> {
  const modelJson = await resolveModelJson(dirOrFile);
  const dir = path.dirname(modelJson);
  let text: Uint8Array;
  try {
    text = new Uint8Array(await fs.readFile(modelJson));
  } catch (e) {
    throw badFile(modelJson, `cannot be read (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(text));
  } catch (e) {
    throw badFile(modelJson, `is not valid JSON (${(e as Error).message})`);
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
  const shards: ReadModel['shards'] = [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    let expected: number | null = 0;
    for (const w of group.weights) {
      const b = entryBytes(w);
      expected = expected === null || b === null ? null : expected + b;
      weightSpecs.push(w);
    }
    let actual = 0;
    const files: string[] = [];
    for (const rel of group.paths) {
      if (path.isAbsolute(rel) || /^[a-z]+:\/\//i.test(rel)) {
        throw badFile(modelJson, `weight path "${rel}" must be relative to the model folder`);
      }
      const file = path.resolve(dir, rel);
      let data: Uint8Array;
      try {
        data = new Uint8Array(await fs.readFile(file));
      } catch (e) {
        const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
        throw badFile(file, missing ? `weight shard listed in ${modelJson} is missing` : `cannot be read (${(e as Error).message})`, { modelJson });
      }
      shards.push({ file, data });
      files.push(file);
      actual += data.byteLength;
    }
    if (expected !== null && actual !== expected) {
      const which = files.length === 1 ? files[0] : files.join(', ');
      throw badFile(which, `weight shard size mismatch: ${actual} bytes on disk but ${modelJson} describes ${expected} bytes (truncated or wrong file?)`,
        { modelJson, actualBytes: actual, expectedBytes: expected });
    }
  }
  return { modelJson, json, text, shards, weightSpecs };
}

/** sha256 (hex) of model.json followed by its weight shards in manifest order. */
export async function modelSha256(dirOrFile: string): Promise<string> {
  const r = await readModelFiles(dirOrFile);
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
 * manifest, a topology tfjs cannot build.
 */
export async function loadModel(dirOrFile: string): Promise<LoadedModel> {
  const r = await readModelFiles(dirOrFile);
  const meta = parseMeta(r.json.userDefinedMetadata, r.modelJson);
  const weightData = r.shards.map((s) => s.data.buffer.slice(s.data.byteOffset, s.data.byteOffset + s.data.byteLength) as ArrayBuffer);
  const artifacts = tf.io.getModelArtifactsForJSONSync(r.json, r.weightSpecs, weightData);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    throw badFile(r.modelJson, `cannot be loaded as a tfjs layers model: ${(e as Error).message}`);
  }
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
