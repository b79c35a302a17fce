/**
 * Pieces the detector and adversarial-training case studies share: progress over several phases,
 * loading a dataset's train/test subsets, training an undefended classifier, robust accuracy of a
 * set of images under one attack, saving a model into the recipe's session, PNG rows of images.
 */
import * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';
import { childContext, type JobContext } from '../context';
import { badInput } from '../errors';
import { loadDataset, type ImageSet } from '../data';
import { runAttack, type AttackResult } from '../attacks';
import { buildModel, saveModel, trainClassifier, type EpochRow, type TrainHooks, type TrainResult } from '../models';
import type { SessionWriter } from '../sessions';

/** Parses a case study's params with its strict zod schema; unknown or bad keys name the recipe. */
export function parseCaseParams<T>(schema: z.ZodType<T>, params: Record<string, unknown>, study: string): T {
  const r = schema.safeParse(params);
  if (!r.success) {
    const problems = r.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown parameter(s) ${(i as unknown as { keys: string[] }).keys.join(', ')}` : `${i.path.join('.')}: ${i.message}`));
    throw badInput(`Case study "${study}": ${problems.join('; ')}`, { caseStudy: study, issues: problems });
  }
  return r.data;
}

/**
 * Splits one job's progress into named phases with weights; `phase(i)` is a context whose step/total
 * land inside phase i's share of the whole.
 */
export class Phases {
  private readonly starts: number[] = [];
  private readonly total: number;
  constructor(private readonly ctx: JobContext, private readonly phases: { name: string; weight: number }[]) {
    let s = 0;
    for (const p of phases) { this.starts.push(s); s += p.weight; }
    this.total = s;
  }
  phase(name: string): JobContext {
    const i = this.phases.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`Unknown phase ${name}`);
    const { ctx } = this;
    // Steps are the whole recipe's (weighted) units, in thousandths; the phase's own count goes in its label.
    return childContext(ctx, { from: 1000 * this.starts[i], span: 1000 * this.phases[i].weight, total: Math.round(1000 * this.total), round: true, label: name, count: true, logPrefix: name });
  }
}

/** A context for items [from, from + count) of `total`: inner progress maps into that share. */
export function within(ctx: JobContext, from: number, count: number, total: number): JobContext {
  return childContext(ctx, { from, span: count, total, count: true });
}

export interface Splits {
  train: ImageSet;
  test: ImageSet;
}

/** A dataset's train and test subsets (seeded, reproducible). */
export async function loadSplits(dataDirs: string[], dataset: string, trainLimit: number, testLimit: number, seed: number, ctx?: JobContext): Promise<Splits> {
  const train = await loadDataset(dataset, { dataDirs, split: 'train', limit: trainLimit, seed, ...(ctx ? { ctx } : {}) });
  const test = await loadDataset(dataset, { dataDirs, split: 'test', limit: testLimit, seed: seed + 1, ...(ctx ? { ctx } : {}) });
  return { train, test };
}

/** Images [from, from + count) of a set, as a flat array and labels. */
export function slice(set: ImageSet, from: number, count: number): { images: Float32Array; labels: Uint8Array; n: number } {
  const per = set.shape[0] * set.shape[1] * set.shape[2];
  const n = Math.max(0, Math.min(count, set.labels.length - from));
  return { images: set.images.subarray(from * per, (from + n) * per), labels: set.labels.subarray(from, from + n), n };
}

/** An ImageSet of given images (for trainClassifier), e.g. clean + adversarial with 0/1 labels. */
export function imageSet(name: string, images: Float32Array, labels: Uint8Array, shape: [number, number, number], classNames: string[], note: string): ImageSet {
  return { name, images, labels, shape, classNames, source: { files: [], sha256: '', split: note } };
}

export interface PlainTraining {
  arch: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

/** Builds `arch` and trains it normally (softmax cross-entropy, Adam) on `train`; hooks may depend on the model. */
export async function trainPlain(train: ImageSet, o: PlainTraining, ctx: JobContext, hooks: TrainHooks | ((model: tf.LayersModel) => TrainHooks) = {}): Promise<{ model: tf.LayersModel; result: TrainResult }> {
  const model = buildModel(o.arch, { inputShape: train.shape, numClasses: train.classNames.length, seed: o.seed });
  try {
    const result = await trainClassifier(model, train, { epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed }, typeof hooks === 'function' ? hooks(model) : hooks, ctx);
    return { model, result };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Runs an untargeted attack on (images, labels); returns the result (robust accuracy in its summary). */
export function attackSet(attack: string, classifier: Parameters<typeof runAttack>[1], images: Float32Array, labels: ArrayLike<number>, params: Record<string, unknown>, ctx: JobContext): Promise<AttackResult> {
  return runAttack(attack, classifier, images, Array.from(labels), { kind: 'untargeted' }, params, ctx, { batchSize: 100 });
}

/** Saves a model under artifacts/<dir>/ and lists it in the session. */
export async function saveSessionModel(writer: SessionWriter, model: tf.LayersModel, dir: string, meta: Record<string, unknown>, description: string): Promise<string> {
  await saveModel(model, writer.artifactPath(dir), meta);
  await writer.registerArtifact(`${dir}/model.json`, 'model', description);
  return `${dir}/model.json`;
}

/** The chartable part of an epoch row: epoch, loss, accuracy (and validation ones). */
export function epochMetrics(row: EpochRow): Record<string, number> {
  return { epoch: row.epoch, loss: row.loss, acc: row.acc, ...(row.val_loss !== undefined ? { val_loss: row.val_loss, val_acc: row.val_acc! } : {}) };
}

export const pct = (v: number | null | undefined): string => (v == null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
export const round4 = (v: number | null | undefined): number | null => (v == null || !Number.isFinite(v) ? null : Math.round(v * 1e4) / 1e4);
