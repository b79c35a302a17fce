/**
 * The minnorm job: minimum-norm attacks compared at equal cost on any model (engine/eval/minnorm.ts),
 * one session of kind 'minnorm' with minnorm.json (per attack: distances, success, mean, optimality,
 * distance-versus-budget curve; per example: the best distance and the attack that found it).
 * `references`: earlier minnorm sessions whose attacks join the comparison (GivenAttack), accepted only
 * when they ran on the same model (sha256), the same images and split, the same norm and goal.
 */
import { minnormParams } from '../../api/jobs';
import { MINNORM_ATTACKS, minNormComparison, type GivenAttack } from '../../engine/eval';
import { badInput } from '../../engine/errors';
import type { ImageSet } from '../../engine/data';
import type { ModelRef } from '../../engine/sessions';
import { checkInputShape } from '../../engine/models';
import { SessionStore } from '../../engine/sessions';
import { engineSummary, releaseClassifier } from '../../engine/onnx/select';
import { jobEngine, releaseOnError, resolveModel, splitSpecFor } from '../model-ref';
import { openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';
import { images } from './attack';

/** The parameters that must agree for a session's distances to be compared with this run's. */
const SAME = ['split', 'n', 'pick', 'offset', 'seed', 'splitSpec', 'norm', 'goal'] as const;

/** The attacks of finished minnorm session `id`, per example of `set` (see `references`). */
async function referenced(store: SessionStore, id: string, p: ReturnType<typeof minnormParams.parse>, model: ModelRef, set: ImageSet): Promise<GivenAttack[]> {
  const m = await store.manifest(id);
  if (m.kind !== 'minnorm' || m.status !== 'finished') throw badInput(`Reference ${id} is a ${m.status} ${m.kind} session; give a finished minnorm session`);
  const differ: string[] = SAME.filter((k) => JSON.stringify(m.params[k]) !== JSON.stringify(p[k]));
  if (m.models[0]?.sha256 !== model.sha256) differ.unshift('model');
  const d = m.datasets[0];
  if (!d || d.sha256 !== set.source.sha256 || d.images !== set.labels.length || d.description !== set.source.split) differ.push('dataset');
  if (differ.length) throw badInput(`Reference ${id} was run with another ${differ.join(', ')}: its distances cannot be compared with this run's`);
  const rows = JSON.parse((await store.readArtifact(id, 'examples.json')).toString()) as Record<string, number | null | string>[];
  const summary = JSON.parse((await store.readArtifact(id, 'minnorm.json')).toString()) as { attacks: { attack: string; seconds: number; curve: { budget: number }[] }[] };
  const byIndex = new Map(rows.map((r) => [r.index as number, r]));
  const position = Array.from({ length: set.labels.length }, (_, k) => (set.source.indices ? set.source.indices[k] : k));
  return summary.attacks.map((a) => ({
    attack: a.attack,
    distances: position.map((i) => { const v = byIndex.get(i)?.[a.attack]; return typeof v === 'number' ? v : null; }),
    counted: position.map((i) => byIndex.has(i)),
    budget: a.curve[a.curve.length - 1].budget,
    seconds: a.seconds,
  }));
}

export const minnorm = (async (raw, ctx, env) => {
  const p = minnormParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const model = await resolveModel(p.model, store, ctx);
  const clf = await jobEngine(model, p.engine, ctx);
  const own = p.attacks ?? [...MINNORM_ATTACKS[p.norm]];
  const { set, given, writer } = await releaseOnError(clf, async () => {
    const set = await images(env, { ...p, ...splitSpecFor(model, p.dataset, p.splitSpec) });
    checkInputShape(model.classifier, set.shape, set.name);
    const given = (await Promise.all((p.references ?? []).map((id) => referenced(store, id, p, model.ref, set)))).flat();
    const { writer } = await openSession(env, {
      kind: 'minnorm',
      name: p.name ?? `minimum-norm ${p.norm} attacks on ${model.label} (${set.name}, n=${set.labels.length}, ${p.budget} passes${p.cw ? `, C&W ${p.cw.binarySearchSteps} x ${p.cw.maxIterations}` : ''}${given.length ? `, with ${given.map((g) => g.attack).join(', ')} from ${p.references!.join(', ')}` : ''})`,
      params: { ...p, attacks: own }, tags: p.tags,
      datasets: [{ name: set.name, split: p.split, sha256: set.source.sha256, images: set.labels.length, description: set.source.split }],
      models: [model.ref],
    });
    return { set, given, writer };
  });
  const index = (k: number) => (set.source.indices ? set.source.indices[k] : k);
  return runInSession(writer, async () => {
    const t0 = performance.now();
    const r = await minNormComparison(clf, set.images, set.labels, { norm: p.norm, attacks: own, given, budget: p.budget, goal: p.goal, curveFractions: p.curves ? undefined : [], ...(p.cw ? { cw: p.cw } : {}) }, ctx);
    const best = r.best.map((b) => ({ ...b, index: index(b.index) }));
    await writer.writeArtifact('minnorm.json', JSON.stringify({ ...r, best, attacks: r.attacks.map((a) => ({ ...a, distances: undefined })) }), 'json', 'optimality, mean distances and distance-versus-budget curves per attack; best distance per example');
    await writer.writeArtifact('examples.json', JSON.stringify(best.map((b, k) => ({ ...b, ...Object.fromEntries(r.attacks.map((a) => [a.attack, a.distances[r.best[k].index]])) }))), 'table', 'per example: each attack\'s distance and the best');
    for (const a of r.attacks) for (const c of a.curve) await writer.appendMetric('curve', { attack: a.attack, ...c });
    const summary = {
      modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: r.n, counted: r.counted, norm: p.norm, budget: p.budget,
      goal: p.goal.kind === 'targeted' ? `targeted ${JSON.stringify(p.goal.target)}` : 'untargeted',
      ...Object.fromEntries(r.attacks.flatMap((a) => [[`optimality:${a.attack}`, a.optimality], [`meanDistance:${a.attack}`, a.meanDistance], [`meanDistanceCommon:${a.attack}`, a.meanDistanceCommon], [`successRate:${a.attack}`, a.successRate]])),
      ...(p.cw ? { cw: `${p.cw.binarySearchSteps} x ${p.cw.maxIterations}` } : {}),
      ...(p.references ? { references: p.references.join(', ') } : {}),
      seconds: (performance.now() - t0) / 1000, backend: env.backend.name, ...engineSummary(clf),
    };
    return { summary, result: { ...summary, attacks: r.attacks.map((a) => ({ attack: a.attack, optimality: a.optimality, meanDistance: a.meanDistance, medianDistance: a.medianDistance, meanDistanceCommon: a.meanDistanceCommon, successRate: a.successRate, curve: a.curve, seconds: a.seconds })) } };
  }).finally(() => releaseClassifier(clf));
}) satisfies JobHandler<'minnorm'>;
