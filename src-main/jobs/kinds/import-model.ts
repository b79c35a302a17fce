/**
 * Imports a tfjs LayersModel from disk into a session (kind 'import'), so it can be attacked like a
 * model trained here. With a dataset, the model's input shape is checked against it (a clear error
 * names both shapes) and its test accuracy is measured.
 */
import { basename, dirname } from 'node:path';
import { importModelParams } from '../../api/jobs';
import { confinedFile, loadConfinedDataset } from '../confine';
import { checkInputShape, evaluate, loadModel, saveModel } from '../../engine/models';
import { classifierFor } from '../../engine/models/defended';
import { openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';

export const importModel = (async (raw, ctx, env) => {
  const p = importModelParams.parse(raw);
  await confinedFile(p.path, 'path'); // checked again where it is opened (jobs/confine.ts)
  const loaded = await loadModel(p.path, { ctx });
  const set = p.dataset ? await loadConfinedDataset(p.dataset, { dataDirs: env.dataDirs, split: 'test', limit: p.testLimit }) : null;
  if (set) checkInputShape(classifierFor(loaded), set.shape, set.name);
  const label = p.name ?? `imported ${basename(dirname(loaded.modelJson))}`;
  const { writer } = await openSession(env, {
    kind: 'import', name: label, params: p, tags: p.tags,
    models: [{ path: loaded.modelJson, arch: loaded.meta.arch ?? 'imported', sha256: loaded.sha256 }],
    ...(set ? { datasets: [{ name: set.name, split: 'test', sha256: set.source.sha256 }] } : {}),
  });
  return runInSession(writer, async () => {
    ctx.progress({ step: 0, total: 1, phase: 'copying the model' });
    const saved = await saveModel(loaded.model, writer.artifactPath('model'), { ...loaded.meta, ...(set && !loaded.meta.dataset ? { dataset: set.name, classNames: set.classNames, inputShape: set.shape } : {}) });
    await writer.registerArtifact('model/model.json', 'model', `imported from ${loaded.modelJson}`);
    const test = set ? await evaluate(classifierFor(loaded), set, { ctx }) : null;
    const summary = {
      model: 'model/model.json', arch: loaded.meta.arch ?? 'imported', dataset: set?.name ?? loaded.meta.dataset ?? null, importedFrom: loaded.modelJson,
      modelSha256: saved.sha256, generatedBy: loaded.generatedBy ?? null, ...(test ? { testAccuracy: test.accuracy, testImages: test.n } : {}),
    };
    loaded.model.dispose();
    return { summary, result: { ...summary, model: saved.modelJson } };
  });
}) satisfies JobHandler<'import-model'>;
