/**
 * Image attack jobs: an attack on n images (with optional transfer to a second model), a robust
 * accuracy sweep over epsilons, and loss surfaces around one image. Each writes one session whose
 * artifacts are what the Attack view and the Sessions view draw: examples.json (per-example rows),
 * examples/<i>-{orig,adv,pert}.png, curve.json, loss-surface.json.
 */
import { attackParams, lossSurfaceParams, sweepParams } from '../../api/jobs';
import { getAttack, runAttack, transferAttack, type AttackResult, type PerExample } from '../../engine/attacks';
import type { ImageChoice, ImageSet } from '../../engine/data';
import { loadConfinedDataset } from '../confine';
import { childContext, keepPartial } from '../../engine/context';
import { badInput, type CancelledError } from '../../engine/errors';
import { fixedEpsilon, lossSurface, robustAccuracyCurve } from '../../engine/eval';
import { encodePng, perturbationPng } from '../../engine/images';
import { checkInputShape, softmax } from '../../engine/models';
import type { SessionWriter } from '../../engine/sessions';
import { jobEngine, prepareShards, releaseOnError, resolveModel, splitSpecFor } from '../model-ref';
import { engineSummary, releaseClassifier } from '../../engine/onnx/select';
import { cancelledWith, openSession, runInSession } from '../session-env';
import type { JobEnv, JobHandler } from '../types';
import { SessionStore } from '../../engine/sessions';

/** The job's n images (its image selection: n, pick, offset, seed); source.indices says which of the split. */
export async function images(env: JobEnv, p: ImageChoice & { dataset: string; split: 'train' | 'test'; splitSpec?: string; modelSplitSpec?: string }): Promise<ImageSet> {
  const { splitSpec, modelSplitSpec } = p;
  const choice = { n: p.n, pick: p.pick, offset: p.offset, seed: p.seed };
  return loadConfinedDataset(p.dataset, { dataDirs: env.dataDirs, split: p.split, choice, ...(splitSpec ? { splitSpec } : {}), ...(modelSplitSpec ? { modelSplitSpec } : {}) });
}

/** The index in the split of the set's k-th image (see ImageSet.source.indices). */
function splitIndex(set: ImageSet, k: number): number {
  return set.source.indices ? set.source.indices[k] : k;
}

function datasetRef(set: ImageSet, split: string) {
  return { name: set.name, split, sha256: set.source.sha256, images: set.labels.length, description: set.source.split };
}

function round(v: number, d?: number): number;
function round(v: number | null, d?: number): number | null;
function round(v: number | null, d = 5): number | null {
  return v == null ? null : Number(v.toFixed(d));
}

/** Per-example rows for examples.json / CSV (`index`: the image's index in the split): no logits arrays (those go in logits.json). */
export type ExampleRow = ReturnType<typeof rows>[number];
/** examples-detail.json: class probabilities and perturbation scale of the saved examples. */
export interface ExamplesDetail {
  classNames: string[];
  examples: { index: number; perturbationScale: number; cleanProbs: number[]; advProbs: number[] }[];
}

/** `index` in every per-example artifact (and the PNG names) is the image's index in the split. */
function rows(r: AttackResult, set: ImageSet) {
  const classNames = set.classNames;
  return r.perExample.map((e: PerExample) => ({
    index: splitIndex(set, e.index), label: e.label, labelName: classNames[e.label] ?? String(e.label),
    ...(e.target !== undefined ? { target: e.target } : {}),
    cleanPred: e.cleanPred, advPred: e.advPred, advPredName: classNames[e.advPred] ?? String(e.advPred),
    cleanCorrect: e.cleanCorrect, success: e.success, counted: e.counted,
    l0: e.l0, l2: round(e.l2), linf: round(e.linf), iterations: e.iterations, advConfidence: round(e.advConfidence, 4),
  }));
}

/** PNGs of the first `count` examples, scaled up for viewing, plus their probabilities. */
async function saveExamples(writer: SessionWriter, set: ImageSet, r: AttackResult, count: number): Promise<void> {
  const [h, w, c] = set.shape;
  const per = h * w * c;
  const scale = h <= 32 ? 4 : 1;
  // Row j's adversarial is the j-th of r.adversarial. With the 'all' target an image has several rows
  // (one per target): its first row is the one shown, so that every PNG name and detail is one image's.
  const seen = new Set<number>();
  const shown = r.perExample.map((e, j) => ({ e, j })).filter(({ e }) => !seen.has(e.index) && seen.add(e.index)).slice(0, count);
  const detail: ExamplesDetail['examples'] = [];
  for (const { e, j } of shown) {
    const clean = set.images.subarray(e.index * per, (e.index + 1) * per);
    const adv = r.adversarial.subarray(j * per, (j + 1) * per);
    const pert = perturbationPng(clean, adv, h, w, c, scale);
    const i = splitIndex(set, e.index);
    await writer.writeArtifacts([
      { path: `examples/${i}-orig.png`, data: encodePng(clean, h, w, c, scale), kind: 'image', description: `example ${i}: original (label ${e.label})` },
      { path: `examples/${i}-adv.png`, data: encodePng(adv, h, w, c, scale), kind: 'image', description: `example ${i}: adversarial (predicted ${e.advPred})` },
      { path: `examples/${i}-pert.png`, data: pert.png, kind: 'image', description: `example ${i}: perturbation, full colour = ${pert.maxAbs.toFixed(4)}` },
    ]);
    detail.push({ index: i, perturbationScale: pert.maxAbs, cleanProbs: softmax(e.cleanLogits).map((v) => round(v, 5)), advProbs: softmax(e.advLogits).map((v) => round(v, 5)) });
  }
  await writer.writeArtifact('examples-detail.json', JSON.stringify({ classNames: set.classNames, examples: detail } satisfies ExamplesDetail), 'json', 'class probabilities before/after and perturbation scale of the saved examples');
}

/** The 'all' target's best / average / worst case as flat summary fields (a summary holds scalars only). */
function caseFields(r: AttackResult): Record<string, number | null> {
  const c = r.targetCases;
  if (!c) return {};
  return {
    bestSuccessRate: c.best.successRate, bestMeanL2: c.best.meanL2, averageSuccessRate: c.average.successRate,
    averageMeanL2: c.average.meanL2, worstSuccessRate: c.worst.successRate, worstMeanL2: c.worst.meanL2, targetsPerImage: c.targetsPerImage,
  };
}

export const attack = (async (raw, ctx, env) => {
  const p = attackParams.parse(raw);
  const def = getAttack(p.attack);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store, ctx);
  const target = p.transferTo ? await resolveModel(p.transferTo, store, ctx) : null;
  const clf = await jobEngine(model, p.engine, ctx);
  prepareShards(ctx, target?.classifier); // the transfer model judges on tfjs
  const { set, writer } = await releaseOnError(clf, async () => {
    const set = await images(env, { ...p, ...splitSpecFor(model, p.dataset, p.splitSpec) });
    checkInputShape(model.classifier, set.shape, set.name);
    const { writer } = await openSession(env, {
      kind: 'attack',
      name: p.name ?? `${def.name} on ${model.label} (${set.name}, n=${set.labels.length})`,
      params: p,
      tags: p.tags,
      datasets: [datasetRef(set, p.split)],
      models: [model.ref, ...(target ? [target.ref] : [])],
    });
    return { set, writer };
  });
  return runInSession(writer, async () => {
    let result: AttackResult;
    let cancel: CancelledError | null = null;
    let transfer: { transferRate?: number | null; transferSuccessRate?: number | null; transferModel?: string } = {};
    if (target) {
      const t = await transferAttack(def, clf, target.classifier, set.images, set.labels, p.goal, p.params, ctx, { batchSize: p.batchSize });
      result = t.source;
      transfer = { transferRate: t.transferRate, transferSuccessRate: t.target.summary.successRate, transferModel: p.transferTo };
      await writer.writeArtifact('transfer.json', JSON.stringify({ summary: t.target.summary, perExample: t.target.perExample.map((e) => ({ index: splitIndex(set, e.index), advPred: e.advPred, success: e.success })) }), 'json', `the same adversarials judged on ${target.label}`);
    } else {
      // A cancel keeps the examples attacked so far (the batches done): saved below, session cancelled.
      ({ value: result, cancel } = await keepPartial(runAttack(def, clf, set.images, set.labels, p.goal, p.params, ctx, { batchSize: p.batchSize })));
    }
    await writer.writeArtifact('examples.json', JSON.stringify(rows(result, set)), 'table', 'per-example results');
    await writer.writeArtifact('logits.json', JSON.stringify(result.perExample.map((e) => ({ index: splitIndex(set, e.index), clean: e.cleanLogits.map((v) => round(v, 4)), adv: e.advLogits.map((v) => round(v, 4)) }))), 'json', 'clean and adversarial logits per example');
    await saveExamples(writer, set, result, p.saveExamples);
    const s = result.summary;
    const summary = {
      attack: def.id, attackName: def.name, norm: def.norm, goal: p.goal.kind === 'targeted' ? `targeted ${JSON.stringify(p.goal.target)}` : 'untargeted',
      model: undefined, modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: s.n,
      cleanAccuracy: s.cleanAccuracy, successRate: s.successRate, robustAccuracy: s.robustAccuracy,
      meanL0: s.meanL0, meanL2: s.meanL2, medianL2: s.medianL2, meanLinf: s.meanLinf,
      seconds: s.ms / 1000, msPerExample: s.msPerExample, backend: env.backend.name, ...engineSummary(clf), ...transfer, ...caseFields(result),
    };
    if (result.targetCases) await writer.writeArtifact('target-cases.json', JSON.stringify(result.targetCases), 'json', 'best, average and worst case over each image\'s targets (Carlini & Wagner 2017, Table IV)');
    delete (summary as Record<string, unknown>).model; // 'model' marks sessions that hold a model
    const outcome = {
      summary: { ...summary, params: JSON.stringify(result.params), ...(cancel ? { requested: set.labels.length } : {}) },
      result: { attack: def.id, n: s.n, successRate: s.successRate, meanL2: s.meanL2, medianL2: s.medianL2, meanLinf: s.meanLinf, seconds: s.ms / 1000, msPerExample: s.msPerExample, backend: env.backend.name, ...engineSummary(clf), cleanAccuracy: s.cleanAccuracy, robustAccuracy: s.robustAccuracy, ...transfer, ...(result.targetCases ? { targetCases: result.targetCases } : {}) },
    };
    if (cancel) throw cancelledWith(outcome, cancel);
    return outcome;
  }).finally(() => releaseClassifier(clf));
}) satisfies JobHandler<'attack'>;

export const sweep = (async (raw, ctx, env) => {
  const p = sweepParams.parse(raw);
  const def = getAttack(p.attack);
  if (!def.epsilonBall) throw badInput(`${def.name} is a minimal-distortion attack; a sweep needs a fixed-epsilon attack (fgsm, bim, pgd, pgd-l2, pgd-margin)`);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store, ctx);
  const clf = await jobEngine(model, p.engine, ctx);
  const { set, writer } = await releaseOnError(clf, async () => {
    const set = await images(env, { ...p, ...splitSpecFor(model, p.dataset, p.splitSpec) });
    checkInputShape(model.classifier, set.shape, set.name);
    const { writer } = await openSession(env, {
      kind: 'sweep', name: p.name ?? `robust accuracy vs eps: ${def.name} on ${model.label}`, params: p, tags: p.tags,
      datasets: [datasetRef(set, p.split)], models: [model.ref],
    });
    return { set, writer };
  });
  return runInSession(writer, async () => {
    const t0 = performance.now();
    // A cancel keeps the points of the epsilons done so far: saved below, session cancelled.
    const { value: curve, cancel } = await keepPartial(robustAccuracyCurve(clf, fixedEpsilon(def, p.params), set.images, set.labels, p.epsilons, def.norm, ctx));
    for (const point of curve) await writer.appendMetric('curve', { ...point });
    await writer.writeArtifact('curve.json', JSON.stringify({ attack: def.id, norm: def.norm, points: curve }), 'json', 'robust accuracy versus epsilon');
    const summary = {
      attack: def.id, norm: def.norm, modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: set.labels.length,
      cleanAccuracy: curve.find((c) => c.eps === 0)?.robustAccuracy ?? null,
      ...Object.fromEntries(curve.map((c) => [`robustAcc@${c.eps}`, c.robustAccuracy])),
      seconds: (performance.now() - t0) / 1000, backend: env.backend.name, ...engineSummary(clf),
      ...(cancel ? { requestedEpsilons: p.epsilons.length } : {}),
    };
    const outcome = { summary, result: { curve, ...summary } };
    if (cancel) throw cancelledWith(outcome, cancel);
    return outcome;
  }).finally(() => releaseClassifier(clf));
}) satisfies JobHandler<'sweep'>;

export const lossSurfaceJob = (async (raw, ctx, env) => {
  const p = lossSurfaceParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store, ctx);
  prepareShards(ctx, model.classifier); // the surface runs on tfjs
  const set = await loadConfinedDataset(p.dataset, { dataDirs: env.dataDirs, split: p.split, ...splitSpecFor(model, p.dataset, p.splitSpec) });
  if (p.index >= set.labels.length) throw badInput(`index ${p.index} is out of range: the ${p.split} split of ${set.name} has ${set.labels.length} images`);
  checkInputShape(model.classifier, set.shape, set.name);
  const [h, w, c] = set.shape;
  const per = h * w * c;
  const x = set.images.slice(p.index * per, (p.index + 1) * per);
  const label = set.labels[p.index];
  const { writer } = await openSession(env, {
    kind: 'loss-surface', name: p.name ?? `loss surface of ${set.name}[${p.index}] on ${model.label}`, params: p, tags: p.tags,
    datasets: [{ name: set.name, split: p.split, sha256: set.source.sha256 }], models: [model.ref],
  });
  return runInSession(writer, async () => {
    const surfaces = [];
    for (const [i, directions] of p.directions.entries()) {
      const part = childContext(ctx, { from: i, span: 1, total: p.directions.length, childUnits: true, label: directions });
      surfaces.push(await lossSurface(model.classifier, x, label, { directions, range: p.range, resolution: p.resolution, objective: p.objective, seed: p.seed }, part));
    }
    await writer.writeArtifact('loss-surface.json', JSON.stringify({ label, labelName: set.classNames[label], surfaces }), 'json', 'loss on 2-D grids around the image');
    await writer.writeArtifact('image.png', encodePng(x, h, w, c, h <= 32 ? 4 : 1), 'image', `${set.name} ${p.split}[${p.index}], label ${set.classNames[label]}`);
    const summary: Record<string, number | string> = { modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, index: p.index, label };
    for (const s of surfaces) {
      const flat = s.loss.flat();
      summary[`${s.directions}:maxLoss`] = Math.max(...flat);
      summary[`${s.directions}:misclassifiedFraction`] = s.predicted.flat().filter((v) => v !== label).length / flat.length;
    }
    return { summary, result: summary };
  });
}) satisfies JobHandler<'loss-surface'>;
