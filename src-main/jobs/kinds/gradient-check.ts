/**
 * The gradient-masking check job: runs engine/eval/masking.ts on any model (a session id or a model
 * path; defended models come with their preprocessing through resolveModel/classifierFor) and saves
 * one session of kind 'gradient-check' with checks.json (each check: pass or warn, its numbers and an
 * explanation) and the loss surfaces it examined. Without a given surrogate, an undefended small-cnn
 * is trained on the dataset's training split for the white-box-versus-transfer check.
 */
import { gradientCheckParams } from '../../api/jobs';
import { loadConfinedDataset } from '../confine';
import { images } from './attack';
import { gradientMaskingChecks, trainSurrogate } from '../../engine/eval';
import { checkInputShape } from '../../engine/models';
import type { Classifier } from '../../engine/models/classifier';
import { SessionStore } from '../../engine/sessions';
import { childContext, type JobContext } from '../../engine/context';
import { jobEngine, prepareShards, releaseOnError, resolveModel, splitSpecFor } from '../model-ref';
import { engineSummary, releaseClassifier } from '../../engine/onnx/select';
import { openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';
import type * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifierFor } from '../../engine/models/defended';
import { loadModel, saveModel } from '../../engine/models/io';

/** The usual Linf budget of a dataset's threat model. */
export function defaultEps(dataset: string): number {
  const d = dataset.toLowerCase().replace(/_/g, '-');
  if (d === 'mnist') return 0.3;
  if (d === 'cifar10' || d === 'cifar-10') return 8 / 255;
  return 0.1;
}

/** Progress of [from, to) of the whole job, in thousandths. */
function part(ctx: JobContext, from: number, to: number, label: string): JobContext {
  return childContext(ctx, { from: 1000 * from, span: 1000 * (to - from), total: 1000, round: true, label });
}

export const gradientCheck = (async (raw, ctx, env) => {
  const p = gradientCheckParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store, ctx);
  const given = p.surrogate ? await resolveModel(p.surrogate, store, ctx) : null;
  const split = splitSpecFor(model, p.dataset, p.splitSpec);
  const clf = await jobEngine(model, p.engine, ctx);
  prepareShards(ctx, given?.classifier); // a given surrogate is attacked on tfjs
  const { set, eps, writer } = await releaseOnError(clf, async () => {
    const set = await images(env, { ...p, ...split });
    // The classifier's input (after any preprocessing the model's metadata declares), not the raw network's.
    checkInputShape(model.classifier, set.shape, set.name);
    if (given) checkInputShape(given.classifier, set.shape, set.name);
    const eps = p.eps ?? defaultEps(set.name);
    const { writer } = await openSession(env, {
      kind: 'gradient-check',
      name: p.name ?? `gradient-masking check of ${model.label} (${set.name}, eps ${Number(eps.toFixed(4))})`,
      params: { ...p, eps },
      tags: p.tags,
      datasets: [{ name: set.name, split: p.split, sha256: set.source.sha256, images: set.labels.length, description: set.source.split }],
      models: [model.ref, ...(given ? [given.ref] : [])],
    });
    return { set, eps, writer };
  });
  return runInSession(writer, async () => {
    const t0 = performance.now();
    let surrogate: Classifier;
    let owned: tf.LayersModel | null = null;
    let surrogateNote: string;
    let shipped: Awaited<ReturnType<typeof shippableSurrogate>> | null = null;
    if (given) {
      surrogate = given.classifier;
      surrogateNote = `given: ${given.label}`;
    } else {
      const train = await loadConfinedDataset(p.dataset, { dataDirs: env.dataDirs, split: 'train', limit: p.surrogateTrainLimit, seed: p.seed + 1, ...split });
      const s = await trainSurrogate(train, { arch: 'small-cnn', epochs: p.surrogateEpochs, seed: p.seed + 7 }, part(ctx, 0, 0.2, 'surrogate'));
      surrogate = s.classifier;
      owned = s.model;
      if (ctx.shards) {
        // Saved so the transfer check's attack on it goes out as shards too (a classifier needs a spec to travel).
        shipped = await shippableSurrogate(s.model);
        surrogate = shipped.classifier;
      }
      surrogateNote = `small-cnn trained for ${p.surrogateEpochs} epoch(s) on ${train.labels.length} ${set.name} training images`;
    }
    try {
      const report = await gradientMaskingChecks(clf, set.images, set.labels,
        { eps, steps: p.steps, restarts: p.restarts, surrogate, surfaceImages: p.surfaceImages, seed: p.seed }, part(ctx, given ? 0 : 0.2, 1, 'checks'));
      const { surfaces, ...rest } = report;
      await writer.writeArtifact('checks.json', JSON.stringify({ model: model.label, dataset: set.name, surrogate: surrogateNote, ...rest }, null, 1), 'json', 'gradient-masking checks: status, numbers and explanation of each');
      if (surfaces.length) await writer.writeArtifact('loss-surfaces.json', JSON.stringify({ surfaces }), 'json', 'the margin loss surfaces the smoothness check examined');
      for (const c of report.checks) await writer.appendMetric('checks', { check: c.id, status: c.status, ...c.numbers });
      const summary = {
        checksPassed: report.checksPassed, checksWarned: report.checksWarned, warned: report.warned.join(',') || 'none',
        ...Object.fromEntries(report.checks.map((c) => [`check:${c.id}`, c.status])),
        modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: report.n, eps, cleanAccuracy: report.cleanAccuracy,
        surrogate: surrogateNote, seconds: (performance.now() - t0) / 1000, backend: env.backend.name, ...engineSummary(clf),
      };
      return {
        summary,
        result: {
          ...summary, warned: report.warned,
          checks: report.checks.map((c) => ({ id: c.id, name: c.name, status: c.status, numbers: c.numbers, explanation: c.explanation })),
        },
      };
    } finally {
      owned?.dispose();
      await shipped?.dispose();
    }
  }).finally(() => releaseClassifier(clf));
}) satisfies JobHandler<'gradient-check'>;

/**
 * The trained surrogate saved to a temporary folder and loaded back, so its classifier has a spec and
 * the transfer check's attack on it runs as shards on the pool or a cluster (the same weights, float32
 * both ways: the same logits and per-example results as the model in memory). dispose() removes it.
 */
async function shippableSurrogate(model: tf.LayersModel): Promise<{ classifier: Classifier; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'advlab-surrogate-'));
  try {
    await saveModel(model, dir, { arch: 'small-cnn' });
    const loaded = await loadModel(join(dir, 'model.json'));
    return {
      classifier: classifierFor(loaded),
      dispose: async () => {
        loaded.model.dispose();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
