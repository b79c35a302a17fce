/**
 * Pieces the distillation and thermometer case studies share: parameter parsing with clear errors,
 * progress across the stages of a recipe, training with metrics written to the session, saving
 * models as session artifacts, input-gradient statistics (how much of the gradient is exactly zero)
 * and example images.
 */
import * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';
import { childContext, type JobContext } from '../context';
import { loadDataset, type ImageSet } from '../data';
import { badInput } from '../errors';
import { encodePng, perturbationPng } from '../images';
import { crossEntropy } from '../attacks/losses';
import { gradWithLogits, oneHot } from '../attacks/ops';
import type { AttackResult } from '../attacks/types';
import type { Classifier } from '../models/classifier';
import { saveModel, type ModelMeta } from '../models/io';
import { argmaxAt } from '../models/predict';
import { trainClassifier, type TrainHooks, type TrainOptions, type TrainResult } from '../models/train';
import type { SessionWriter } from '../sessions';
import type { EvidenceRow, RecipeEnv } from './types';

/** Parses a case study's flat parameters with its strict schema; unknown or bad keys become one clear error. */
export function parseStudyParams<T>(study: string, schema: z.ZodType<T>, params: Record<string, unknown>): T {
  const r = schema.safeParse(params);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') return `unknown parameter(s) ${(i as unknown as { keys: string[] }).keys.map((k) => `"${k}"`).join(', ')}`;
    const key = i.path.join('.');
    return `"${key}": ${i.message} (got ${JSON.stringify(params[String(i.path[0])])})`;
  });
  throw badInput(`Invalid parameters for the ${study} case study: ${problems.join('; ')}`, { issues: problems });
}

/**
 * Progress across the stages of a recipe: each stage reports its own step/total, which becomes its
 * share of the whole run (shares proportional to the stages' weights, e.g. a training stage weighs
 * more than an FGSM run, so the overall fraction and ETA mean something); the phase is prefixed with
 * the stage's label.
 */
export class Stages {
  private index = -1;
  private readonly labels: string[];
  /** Cumulative step at the start of each stage, and the overall total. */
  private readonly starts: number[] = [];
  private readonly total: number;

  /** `stages`: labels, or [label, weight] pairs (weight 1 by default). */
  constructor(private readonly ctx: JobContext, stages: (string | [string, number])[]) {
    this.labels = stages.map((s) => (typeof s === 'string' ? s : s[0]));
    let acc = 0;
    for (const s of stages) {
      this.starts.push(acc);
      acc += Math.max(1, Math.round(1000 * (typeof s === 'string' ? 1 : s[1])));
    }
    this.total = acc;
  }

  /** Starts the next stage (its label must be the next one given to the constructor) and returns its context. */
  next(label: string): JobContext {
    this.index++;
    if (this.labels[this.index] !== label) throw new Error(`Stage ${this.index} is "${this.labels[this.index]}", not "${label}"`);
    const parent = this.ctx, total = this.total, base = this.starts[this.index];
    const span = (this.starts[this.index + 1] ?? total) - base;
    const prefix = `${this.index + 1}/${this.labels.length} ${label}`;
    parent.progress({ step: base, total, phase: prefix });
    parent.log(prefix);
    return childContext(parent, { from: base, span, total, round: true, label: prefix, logPrefix: label });
  }

  /** Reports the whole run done. */
  done(): void {
    this.ctx.progress({ step: this.total, total: this.total, phase: 'done' });
  }
}

/** Loads the train and test subsets a case study uses and records them in the session. */
export async function loadSplits(env: RecipeEnv, dataset: string, trainN: number | undefined, testN: number, seed: number, ctx: JobContext): Promise<{ train: ImageSet; test: ImageSet }> {
  const train = await loadDataset(dataset, { dataDirs: env.dataDirs, split: 'train', ...(trainN ? { limit: trainN } : {}), seed, ctx });
  const test = await loadDataset(dataset, { dataDirs: env.dataDirs, split: 'test', limit: testN, seed, ctx });
  await env.writer.update({
    datasets: [
      { name: train.name, split: 'train', sha256: train.source.sha256, images: train.labels.length, description: train.source.split },
      { name: test.name, split: 'test', sha256: test.source.sha256, images: test.labels.length, description: test.source.split },
    ],
  });
  return { train, test };
}

/**
 * trainClassifier with its curves in the session: metrics/train-<name>.jsonl gets one row per batch
 * ({step, loss, acc}) and, after each epoch with validation, a row {step, val_loss, val_acc}.
 */
export async function trainLogged(
  writer: SessionWriter, name: string, model: tf.LayersModel, set: ImageSet, options: TrainOptions, hooks: TrainHooks, ctx: JobContext,
): Promise<TrainResult> {
  const series = `train-${name}`;
  let lastStep = 0;
  const r = await trainClassifier(model, set, options, {
    ...hooks,
    onBatch: async (row, info) => {
      lastStep = row.step;
      await writer.appendMetric(series, { step: row.step, loss: row.loss, acc: row.acc });
      await hooks.onBatch?.(row, info);
    },
    onEpoch: async (row) => {
      if (row.val_loss !== undefined) await writer.appendMetric(series, { step: lastStep, val_loss: row.val_loss, val_acc: row.val_acc ?? null });
      await hooks.onEpoch?.(row);
    },
  }, ctx);
  return r;
}

export interface SavedArtifactModel {
  /** model.json relative to the session's artifacts folder. */
  rel: string;
  modelJson: string;
  sha256: string;
}

/** Saves a model under artifacts/<rel>/ and lists model.json and weights.bin in the session. */
export async function saveArtifactModel(writer: SessionWriter, rel: string, model: tf.LayersModel, meta: ModelMeta, description: string): Promise<SavedArtifactModel> {
  const saved = await saveModel(model, writer.artifactPath(rel), { ...meta, trainedBy: writer.id });
  await writer.registerArtifact(`${rel}/weights.bin`, 'model', `${description}: weights`);
  await writer.registerArtifact(`${rel}/model.json`, 'model', description);
  return { rel: `${rel}/model.json`, modelJson: saved.modelJson, sha256: saved.sha256 };
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

/** Rounds for evidence: 4 significant decimals; null stays null. */
export function r4(v: number | null | undefined): number | null {
  return v == null || !Number.isFinite(v) ? null : Number(v.toFixed(4));
}

/** A table row; a percentage row takes a fraction. */
export function row(what: string, measured: number | string | boolean | null, reference: number | string | null = null, unit: EvidenceRow['unit'] = ''): EvidenceRow {
  return { what, measured, reference, unit };
}
