/**
 * The case studies' kit: what the four defense recipes (thermometer, distillation, detector,
 * adversarial training) share. Parameters parsed once with clear errors, progress across the named
 * phases of a recipe, the dataset splits (recorded in the session), training with its curves in the
 * session, models saved as session artifacts, attack runs and their numbers, input-gradient and
 * softmax statistics, example images, and the rounding and rows of the evidence.
 */
import * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';
import { childContext, type JobContext } from '../context';
import { loadDataset, type ImageSet } from '../data';
import { badInput } from '../errors';
import { encodePng, perturbationPng } from '../images';
import { runAttack, type AttackResult } from '../attacks';
import { crossEntropy } from '../attacks/losses';
import { gradWithLogits, oneHot } from '../attacks/ops';
import type { Classifier } from '../models/classifier';
import { buildModel } from '../models/architectures';
import { saveModel, type ModelMeta } from '../models/io';
import { argmaxAt } from '../models/predict';
import { trainClassifier, type EpochRow, type TrainHooks, type TrainOptions, type TrainResult } from '../models/train';
import type { SessionWriter } from '../sessions';
import type { EvidenceRow, RecipeEnv } from './types';

/** Parses a case study's flat parameters with its strict schema; unknown or bad keys become one clear error. */
export function parseCaseParams<T>(study: string, schema: z.ZodType<T>, params: Record<string, unknown>): T {
  const r = schema.safeParse(params);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') return `unknown parameter(s) ${(i as unknown as { keys: string[] }).keys.map((k) => `"${k}"`).join(', ')}`;
    const key = i.path.join('.');
    return `"${key}": ${i.message} (got ${JSON.stringify(params[String(i.path[0])])})`;
  });
  throw badInput(`Invalid parameters for the ${study} case study: ${problems.join('; ')}`, { caseStudy: study, issues: problems });
}

/**
 * Progress across the named phases of a recipe. Each phase reports its own step/total, which becomes
 * its share of the whole run (shares proportional to the phases' weights, e.g. a training phase weighs
 * more than an FGSM run, so the overall fraction and ETA mean something). The label is the phase's
 * name, then its inner phase, then its own count ("adversarial training: epoch 1/10 (120/9380)").
 * Starting a later phase reports its start at once (and logs its name); `done()` reports the end.
 */
export class Phases {
  private readonly starts: number[] = [];
  private readonly total: number;
  private started = -1;
  private static readonly SCALE = 1000;
  constructor(private readonly ctx: JobContext, private readonly phases: { name: string; weight: number }[]) {
    let s = 0;
    for (const p of phases) { this.starts.push(s); s += p.weight; }
    this.total = s;
  }

  /** The context of phase `name`: its step/total land inside that phase's share of the whole. */
  phase(name: string): JobContext {
    const i = this.phases.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`Unknown phase ${name}`);
    const { ctx } = this;
    const start = this.starts[i], weight = this.phases[i].weight, total = this.total, scale = Phases.SCALE;
    if (i > this.started) {
      this.started = i;
      ctx.progress({ step: Math.round(scale * start), total: Math.round(scale * total), phase: name });
      ctx.log(name);
    }
    // The step/total are the whole recipe's (weighted) units; the phase's own count goes in its label.
    return childContext(ctx, { from: scale * start, span: scale * weight, total: Math.round(scale * total), round: true, label: name, count: true, logPrefix: name });
  }

  /** Reports the whole run done. */
  done(): void {
    const total = Math.round(Phases.SCALE * this.total);
    this.ctx.progress({ step: total, total, phase: 'done' });
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

/**
 * A dataset's train and test subsets (seeded, reproducible: the train subset is drawn with `seed`,
 * the test subset with `testSeed`), recorded in the session's datasets.
 */
export async function loadSplits(
  env: Pick<RecipeEnv, 'dataDirs' | 'writer'>, o: { dataset: string; trainLimit?: number; testLimit: number; seed: number; testSeed: number }, ctx: JobContext,
): Promise<Splits> {
  const train = await loadDataset(o.dataset, { dataDirs: env.dataDirs, split: 'train', ...(o.trainLimit ? { limit: o.trainLimit } : {}), seed: o.seed, ctx });
  const test = await loadDataset(o.dataset, { dataDirs: env.dataDirs, split: 'test', limit: o.testLimit, seed: o.testSeed, ctx });
  await env.writer.update({
    datasets: [
      { name: train.name, split: 'train', sha256: train.source.sha256, images: train.labels.length, description: train.source.split },
      { name: test.name, split: 'test', sha256: test.source.sha256, images: test.labels.length, description: test.source.split },
    ],
  });
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

/**
 * trainClassifier, and a cancelled training ends the recipe (CancelledError). With `log`, the curves go
 * into the session: metrics/train-<log>.jsonl gets one row per batch ({step, loss, acc}) and, after
 * each epoch with validation, a row {step, val_loss, val_acc}.
 */
export async function trainModel(
  model: tf.LayersModel, set: ImageSet, options: TrainOptions, hooks: TrainHooks, ctx: JobContext, log?: { writer: SessionWriter; name: string },
): Promise<TrainResult> {
  let all = hooks;
  if (log) {
    const series = `train-${log.name}`;
    let lastStep = 0;
    all = {
      ...hooks,
      onBatch: async (row, info) => {
        lastStep = row.step;
        await log.writer.appendMetric(series, { step: row.step, loss: row.loss, acc: row.acc });
        await hooks.onBatch?.(row, info);
      },
      onEpoch: async (row) => {
        if (row.val_loss !== undefined) await log.writer.appendMetric(series, { step: lastStep, val_loss: row.val_loss, val_acc: row.val_acc ?? null });
        await hooks.onEpoch?.(row);
      },
    };
  }
  return trainClassifier(model, set, options, all, ctx);
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
    const result = await trainModel(model, train, { epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed }, typeof hooks === 'function' ? hooks(model) : hooks, ctx);
    return { model, result };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The chartable part of an epoch row: epoch, loss, accuracy (and validation ones). */
export function epochMetrics(row: EpochRow): Record<string, number> {
  return { epoch: row.epoch, loss: row.loss, acc: row.acc, ...(row.val_loss !== undefined ? { val_loss: row.val_loss, val_acc: row.val_acc! } : {}) };
}

export interface SavedArtifactModel {
  /** model.json relative to the session's artifacts folder. */
  rel: string;
  modelJson: string;
  sha256: string;
}

/** Saves a model under artifacts/<rel>/ (trainedBy: this session) and lists model.json and weights.bin in the session. */
export async function saveArtifactModel(writer: SessionWriter, rel: string, model: tf.LayersModel, meta: ModelMeta, description: string): Promise<SavedArtifactModel> {
  const saved = await saveModel(model, writer.artifactPath(rel), { ...meta, trainedBy: writer.id });
  await writer.registerArtifact(`${rel}/weights.bin`, 'model', `${description}: weights`);
  await writer.registerArtifact(`${rel}/model.json`, 'model', description);
  return { rel: `${rel}/model.json`, modelJson: saved.modelJson, sha256: saved.sha256 };
}

/** Runs an untargeted attack on (images, labels); returns the result (robust accuracy in its summary). */
export function attackSet(attack: string, classifier: Parameters<typeof runAttack>[1], images: Float32Array, labels: ArrayLike<number>, params: Record<string, unknown>, ctx: JobContext): Promise<AttackResult> {
  return runAttack(attack, classifier, images, Array.from(labels), { kind: 'untargeted' }, params, ctx, { batchSize: 100 });
}

export interface GradientStats {
  /** Inputs the statistics are over: those the classifier gets right (the ones attacks are counted on). */
  counted: number;
  /** Fraction of their input-gradient components that are exactly 0. */
  zeroComponents: number;
  /** Fraction of them whose whole input gradient is exactly 0. */
  zeroExamples: number;
  /** Mean L2 norm of their per-example input gradient. */
  meanNorm: number;
}

/**
 * How much signal a gradient attack gets: the input gradient of the softmax cross-entropy of the
 * true label, computed through the classifier exactly as FGSM and PGD compute it, over the first n
 * inputs that the classifier classifies correctly.
 */
export async function inputGradientStats(classifier: Classifier, set: Pick<ImageSet, 'images' | 'labels' | 'shape'>, n: number, ctx: JobContext, batchSize = 100): Promise<GradientStats> {
  const [h, w, c] = set.shape;
  const per = h * w * c, k = classifier.numClasses;
  const count = Math.min(n, set.labels.length);
  let counted = 0, zeroComp = 0, zeroEx = 0, normSum = 0;
  for (let s = 0; s < count; s += batchSize) {
    ctx.checkpoint();
    const m = Math.min(batchSize, count - s);
    const labels = Int32Array.from(set.labels.subarray(s, s + m));
    const onehot = oneHot(labels, k);
    const [grad, logits] = tf.tidy(() => {
      const r = gradWithLogits((xi) => classifier.logits(xi), tf.tensor4d(set.images.subarray(s * per, (s + m) * per), [m, h, w, c]), (z) => crossEntropy(z, onehot));
      r.values.dispose();
      return [r.grad, r.logits];
    });
    const [v, z] = await Promise.all([grad.data(), logits.data()]);
    grad.dispose(); logits.dispose();
    onehot.dispose();
    for (let i = 0; i < m; i++) {
      if (argmaxAt(z, i * k, k) !== labels[i]) continue;
      let zeros = 0, sq = 0;
      for (let j = i * per; j < (i + 1) * per; j++) {
        if (v[j] === 0) zeros++;
        sq += v[j] * v[j];
      }
      counted++;
      zeroComp += zeros;
      if (zeros === per) zeroEx++;
      normSum += Math.sqrt(sq);
    }
    await new Promise((res) => setImmediate(res));
  }
  const d = Math.max(1, counted);
  return { counted, zeroComponents: zeroComp / (d * per), zeroExamples: zeroEx / d, meanNorm: normSum / d };
}

/** Softmax saturation of a classifier: mean logit margin (top - runner-up) and the fraction of float32 softmax outputs exactly one-hot. */
export async function logitStats(classifier: Classifier, set: Pick<ImageSet, 'images' | 'shape'>, n: number, batchSize = 250): Promise<{ meanMargin: number; saturated: number }> {
  const [h, w, c] = set.shape;
  const per = h * w * c, k = classifier.numClasses;
  const count = Math.min(n, set.images.length / per);
  let marginSum = 0, saturated = 0;
  for (let s = 0; s < count; s += batchSize) {
    const m = Math.min(batchSize, count - s);
    const [z, p] = tf.tidy(() => {
      const logits = classifier.logits(tf.tensor4d(set.images.subarray(s * per, (s + m) * per), [m, h, w, c]));
      return [logits, tf.max(tf.softmax(logits), 1)];
    });
    const zv = await z.data(), pv = await p.data();
    z.dispose(); p.dispose();
    for (let i = 0; i < m; i++) {
      const row = Array.from(zv.subarray(i * k, (i + 1) * k)).sort((a, b) => b - a);
      marginSum += row[0] - row[1];
      if (pv[i] === 1) saturated++;
    }
  }
  return { meanMargin: marginSum / count, saturated: saturated / count };
}

/** One example shown in the report: the clean image and, per attack, its adversarial and perturbation. */
export async function writeExamples(
  writer: SessionWriter, set: ImageSet, indices: number[], attacks: { key: string; title: string; result: AttackResult }[],
): Promise<void> {
  const [h, w, c] = set.shape;
  const per = h * w * c;
  const scale = h <= 32 ? 3 : 1;
  const name = (k: number) => set.classNames[k] ?? String(k);
  for (const i of indices) {
    const clean = set.images.subarray(i * per, (i + 1) * per);
    const items = [{ path: `examples/${i}-orig.png`, data: encodePng(clean, h, w, c, scale), kind: 'image' as const, description: `#${i} original: ${name(set.labels[i])}` }];
    for (const a of attacks) {
      const e = a.result.perExample[i];
      const adv = a.result.adversarial.subarray(i * per, (i + 1) * per);
      const pert = perturbationPng(clean, adv, h, w, c, scale);
      items.push(
        { path: `examples/${i}-${a.key}.png`, data: encodePng(adv, h, w, c, scale), kind: 'image', description: `#${i} ${a.title}: ${name(e.advPred)}${e.success ? '' : ' (attack failed)'}, L2 ${e.l2.toFixed(2)}` },
        { path: `examples/${i}-${a.key}-pert.png`, data: pert.png, kind: 'image', description: `#${i} ${a.title}: perturbation (full colour = ${pert.maxAbs.toFixed(3)})` },
      );
    }
    await writer.writeArtifacts(items);
  }
}

/** The first `count` test examples that every listed model classifies correctly (so every attack is counted on them). */
export function commonlyCorrect(results: AttackResult[], count: number): number[] {
  const n = results[0]?.perExample.length ?? 0;
  const out: number[] = [];
  for (let i = 0; i < n && out.length < count; i++) if (results.every((r) => r.perExample[i]?.cleanCorrect)) out.push(i);
  return out;
}

/** The attack numbers the evidence keeps: success rate, robust accuracy, distortion. */
export function attackNumbers(r: AttackResult): { successRate: number | null; robustAccuracy: number; meanL2: number | null; meanLinf: number | null; counted: number } {
  const s = r.summary;
  return { successRate: s.successRate, robustAccuracy: s.robustAccuracy, meanL2: s.meanL2, meanLinf: s.meanLinf, counted: s.counted };
}

/** A fraction as a percentage with one decimal ('n/a' for none). */
export const pct = (v: number | null | undefined): string => (v == null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

/** Rounds for evidence: 4 decimals; null, undefined and non-finite become null. */
export const round4 = (v: number | null | undefined): number | null => (v == null || !Number.isFinite(v) ? null : Math.round(v * 1e4) / 1e4);

/** A table row; a percentage row takes a fraction. */
export function row(what: string, measured: number | string | boolean | null, reference: number | string | null = null, unit: EvidenceRow['unit'] = ''): EvidenceRow {
  return { what, measured, reference, unit };
}
