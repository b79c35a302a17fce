/**
 * The evaluate job: the standard ensemble (engine/eval/ensemble.ts) on any model, then the AutoAttack
 * and RobustBench checks of engine/eval/masking.ts fed with the ensemble's outcome. One session of kind
 * 'evaluate' with evaluate.json (waterfall, per-example provenance, checks), examples.json (a table) and
 * evaluate-state.json, the resumable state, rewritten crash-safely (fs-atomic) at most checkpointSeconds
 * apart. `resume: <session id>` starts a new session that continues the interrupted one's state with its
 * model, images and settings (the interrupted session stays as it was left, named in `resumedFrom`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluateParams, type EvaluateParams } from '../../api/jobs';
import { childContext, keepPartial, type JobContext } from '../../engine/context';
import { writeFileAtomic } from '../../engine/core/fs-atomic';
import { badInput } from '../../engine/errors';
import { EVALUATE_CHECKS, gradientMaskingChecks, runEnsemble, type EnsembleResult, type EnsembleState } from '../../engine/eval';
import { checkInputShape } from '../../engine/models';
import { SessionStore } from '../../engine/sessions';
import { resolveModel, splitSpecFor } from '../model-ref';
import { cancelledWith, openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';
import { images } from './attack';

export const EVALUATE_STATE_FILE = 'evaluate-state.json';

/** The usual budget of a dataset's threat model in a norm. */
export function defaultEvalEps(dataset: string, norm: 'linf' | 'l2'): number {
  const d = dataset.toLowerCase().replace(/_/g, '-');
  const cifar = d === 'cifar10' || d === 'cifar-10';
  if (norm === 'l2') return cifar ? 0.5 : 2;
  if (d === 'mnist') return 0.3;
  return cifar ? 8 / 255 : 0.1;
}

/** Progress of [from, to) of the whole job, in thousandths. */
function part(ctx: JobContext, from: number, to: number, label: string): JobContext {
  return childContext(ctx, { from: 1000 * from, span: 1000 * (to - from), total: 1000, round: true, label });
}

/** The parameters and saved state of an interrupted evaluation. */
async function priorRun(store: SessionStore, id: string, given: EvaluateParams): Promise<{ params: EvaluateParams; state: EnsembleState }> {
  // The runner hands over parsed params (defaults filled in): anything but the defaults was given.
  const defaults = evaluateParams.parse({}) as Record<string, unknown>;
  const extra = Object.entries(given).filter(([k, v]) => !['resume', 'name', 'tags'].includes(k) && JSON.stringify(v) !== JSON.stringify(defaults[k])).map(([k]) => k);
  if (extra.length) throw badInput(`resume reuses the interrupted evaluation's settings: give only resume (and name, tags), not ${extra.join(', ')}`);
  const m = await store.manifest(id);
  if (m.kind !== 'evaluate') throw badInput(`Session ${id} is a ${m.kind} session, not an evaluation`);
  if (m.status === 'finished') throw badInput(`Session ${id} is finished: there is nothing to resume`);
  let state: EnsembleState;
  try {
    state = JSON.parse(await readFile(join(store.dir(id), 'artifacts', EVALUATE_STATE_FILE), 'utf8')) as EnsembleState;
  } catch (e) {
    throw badInput(`Session ${id} saved no evaluation state yet (${(e as Error).message}); start it again instead`);
  }
  const { resumedFrom: _chain, resume: _r, ...params } = m.params as Record<string, unknown>;
  return { params: evaluateParams.parse(params), state };
}

export const evaluate = (async (raw, ctx, env) => {
  const given = evaluateParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const prior = given.resume ? await priorRun(store, given.resume, given) : null;
  const p: EvaluateParams = prior ? { ...prior.params, ...(given.name ? { name: given.name } : {}), tags: given.tags.length ? given.tags : prior.params.tags } : given;
  if (!p.model) throw badInput('model is required (a session id of a trained model or a model.json path), or resume: <session id>');
  if (!p.dataset) throw badInput('dataset is required (e.g. mnist, fashion-mnist), or resume: <session id>');
  const model = await resolveModel(p.model, store);
  const set = await images(env, { ...p, dataset: p.dataset, ...splitSpecFor(model, p.dataset, p.splitSpec) });
  checkInputShape(model.classifier, set.shape, set.name);
  const eps = p.eps ?? defaultEvalEps(set.name, p.norm);
  if (p.norm === 'linf' && eps > 1) throw badInput(`eps ${eps} is larger than the whole pixel range: a Linf budget is in (0, 1]`);
  const { writer } = await openSession(env, {
    kind: 'evaluate',
    name: p.name ?? `${p.version} evaluation of ${model.label} (${set.name}, ${p.norm} eps ${Number(eps.toFixed(4))}, n=${set.labels.length})${prior ? ', resumed' : ''}`,
    params: { ...p, eps, ...(given.resume ? { resumedFrom: given.resume } : {}), resume: undefined } as Record<string, unknown>,
    tags: p.tags,
    datasets: [{ name: set.name, split: p.split, sha256: set.source.sha256, images: set.labels.length, description: set.source.split }],
    models: [model.ref],
  });
  const index = (k: number) => (set.source.indices ? set.source.indices[k] : k);
  return runInSession(writer, async () => {
    const t0 = performance.now();
    const statePath = writer.artifactPath(EVALUATE_STATE_FILE);
    const save = async (s: EnsembleState) => {
      await writeFileAtomic(statePath, JSON.stringify(s));
      await writer.registerArtifact(EVALUATE_STATE_FILE, 'json', 'resumable per-example state (advlab evaluate --resume SESSION)');
    };
    if (prior) await save(prior.state);
    const run = keepPartial(runEnsemble(model.classifier, set.images, set.labels,
      { norm: p.norm, eps, version: p.version, seed: p.attackSeed, chunkSize: p.chunkSize, checkpointSeconds: p.checkpointSeconds },
      part(ctx, 0, 0.92, 'ensemble'), { ...(prior ? { state: prior.state } : {}), save }));
    const { value, cancel } = await run;
    if (cancel) {
      const state = value as unknown as EnsembleState;
      await save(state);
      const robust = state.robust.reduce((a, b) => a + b, 0);
      throw cancelledWith({ summary: { cancelledDuring: state.current?.attack ?? 'between attacks', attacksDone: state.done.join(',') || 'none', robustAccuracySoFar: robust / state.config.n, resumable: true } }, cancel);
    }
    const r = value as EnsembleResult;
    // The checks: randomized forward pass, softmax outputs, zero gradients, Square beyond the gradient attacks, RobustBench's rules.
    const report = await gradientMaskingChecks(model.classifier, set.images, set.labels,
      { eps: p.norm === 'linf' ? eps : Math.min(1, eps), only: EVALUATE_CHECKS, ensemble: r.outcome, batchSize: p.chunkSize }, part(ctx, 0.92, 1, 'checks'));
    const perExample = r.perExample.map((e) => ({
      index: index(e.index), label: e.label, labelName: set.classNames[e.label] ?? String(e.label), cleanPred: e.cleanPred, cleanCorrect: e.cleanCorrect,
      robust: e.robust, brokenBy: e.brokenBy, iterations: e.iterations, distance: e.distance == null ? null : Number(e.distance.toFixed(5)), advPred: e.advPred,
    }));
    const checks = report.checks.map((c) => ({ id: c.id, name: c.name, status: c.status, numbers: c.numbers, explanation: c.explanation }));
    await writer.writeArtifact('evaluate.json', JSON.stringify({
      model: model.label, dataset: set.name, norm: p.norm, eps, version: p.version, attacks: r.attacks, waterfall: r.waterfall, checks, perExample,
      resumedFrom: given.resume ?? null, resumed: r.state.resumed,
    }), 'json', 'waterfall, per-example provenance and the checks');
    await writer.writeArtifact('examples.json', JSON.stringify(perExample), 'table', 'per example: which attack broke it, after how many iterations or queries, at what distance');
    for (const w of r.waterfall) await writer.appendMetric('waterfall', { ...w });
    for (const c of report.checks) await writer.appendMetric('checks', { check: c.id, status: c.status, ...c.numbers });
    const summary = {
      modelId: model.ref.id ?? model.loaded.modelJson, dataset: set.name, n: r.n, norm: p.norm, eps, version: p.version,
      cleanAccuracy: r.cleanAccuracy, robustAccuracy: r.robustAccuracy,
      ...Object.fromEntries(r.waterfall.slice(1).map((w) => [`robustAcc@${w.attack}`, w.robustAccuracy])),
      checksPassed: report.checksPassed, checksWarned: report.checksWarned, warned: report.warned.join(',') || 'none',
      ...(given.resume ? { resumedFrom: given.resume } : {}),
      seconds: (performance.now() - t0) / 1000, backend: env.backend.name,
    };
    return { summary, result: { ...summary, waterfall: r.waterfall, checks, warned: report.warned } };
  });
}) satisfies JobHandler<'evaluate'>;
