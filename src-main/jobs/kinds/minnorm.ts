/**
 * The minnorm job: minimum-norm attacks compared at equal cost on any model (engine/eval/minnorm.ts),
 * one session of kind 'minnorm' with minnorm.json (per attack: distances, success, mean, optimality,
 * distance-versus-budget curve; per example: the best distance and the attack that found it).
 */
import { minnormParams } from '../../api/jobs';
import { MINNORM_ATTACKS, minNormComparison } from '../../engine/eval';
import { checkInputShape } from '../../engine/models';
import { SessionStore } from '../../engine/sessions';
import { engineFor, engineSummary, releaseClassifier } from '../../engine/onnx/select';
import { resolveModel, splitSpecFor } from '../model-ref';
import { openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';
import { images } from './attack';

export const minnorm = (async (raw, ctx, env) => {
  const p = minnormParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store);
  const set = await images(env, { ...p, ...splitSpecFor(model, p.dataset, p.splitSpec) });
  checkInputShape(model.classifier, set.shape, set.name);
  const attacks = p.attacks ?? [...MINNORM_ATTACKS[p.norm]];
  const { writer } = await openSession(env, {
    kind: 'minnorm',
    name: p.name ?? `minimum-norm ${p.norm} attacks on ${model.label} (${set.name}, n=${set.labels.length}, ${p.budget} passes${p.cw ? `, C&W ${p.cw.binarySearchSteps} x ${p.cw.maxIterations}` : ''})`,
    params: { ...p, attacks }, tags: p.tags,
    datasets: [{ name: set.name, split: p.split, sha256: set.source.sha256, images: set.labels.length, description: set.source.split }],
    models: [model.ref],
  });
  const clf = await engineFor(model.loaded, model.classifier, p.engine, { ...(ctx.shards ? { shardsTo: ctx.shards.where } : {}) });
  ctx.log(`engine: ${engineSummary(clf).engineReason}`);
  const index = (k: number) => (set.source.indices ? set.source.indices[k] : k);
  return runInSession(writer, async () => {
    const t0 = performance.now();
    const r = await minNormComparison(clf, set.images, set.labels, { norm: p.norm, attacks, budget: p.budget, goal: p.goal, curveFractions: p.curves ? undefined : [], ...(p.cw ? { cw: p.cw } : {}) }, ctx);
    const best = r.best.map((b) => ({ ...b, index: index(b.index) }));
    await writer.writeArtifact('minnorm.json', JSON.stringify({ ...r, best, attacks: r.attacks.map((a) => ({ ...a, distances: undefined })) }), 'json', 'optimality, mean distances and distance-versus-budget curves per attack; best distance per example');
    await writer.writeArtifact('examples.json', JSON.stringify(best.map((b, k) => ({ ...b, ...Object.fromEntries(r.attacks.map((a) => [a.attack, a.distances[r.best[k].index]])) }))), 'table', 'per example: each attack\'s distance and the best');
    for (const a of r.attacks) for (const c of a.curve) await writer.appendMetric('curve', { attack: a.attack, ...c });
    const summary = {
      modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: r.n, counted: r.counted, norm: p.norm, budget: p.budget,
      goal: p.goal.kind === 'targeted' ? `targeted ${JSON.stringify(p.goal.target)}` : 'untargeted',
      ...Object.fromEntries(r.attacks.flatMap((a) => [[`optimality:${a.attack}`, a.optimality], [`meanDistance:${a.attack}`, a.meanDistance], [`meanDistanceCommon:${a.attack}`, a.meanDistanceCommon], [`successRate:${a.attack}`, a.successRate]])),
      ...(p.cw ? { cw: `${p.cw.binarySearchSteps} x ${p.cw.maxIterations}` } : {}),
      seconds: (performance.now() - t0) / 1000, backend: env.backend.name, ...engineSummary(clf),
    };
    return { summary, result: { ...summary, attacks: r.attacks.map((a) => ({ attack: a.attack, optimality: a.optimality, meanDistance: a.meanDistance, medianDistance: a.medianDistance, meanDistanceCommon: a.meanDistanceCommon, successRate: a.successRate, curve: a.curve, seconds: a.seconds })) } };
  }).finally(() => releaseClassifier(clf));
}) satisfies JobHandler<'minnorm'>;
