/**
 * The training job: load a dataset, build an architecture, train with live progress, evaluate on
 * the test split, and save everything in one session (model, curves, summary). A cancelled run keeps
 * the model trained so far, marked cancelled.
 */
import { trainParams, type TrainParams } from '../../api/jobs';
import { loadConfinedDataset } from '../confine';
import { keepPartial } from '../../engine/context';
import { buildModel, evaluate, parseAugment, saveModel, trainClassifier } from '../../engine/models';
import type { JobHandler } from '../types';
import { openSession, runInSession, trainedModelOutcome } from '../session-env';

export const train = (async (raw, ctx, env) => {
  const p: TrainParams = trainParams.parse(raw);
  const common = { dataDirs: env.dataDirs, seed: p.seed, ...(p.split ? { splitSpec: p.split } : {}) };
  const trainSet = await loadConfinedDataset(p.dataset, { ...common, split: 'train', limit: p.limit });
  const testSet = await loadConfinedDataset(p.dataset, { ...common, split: 'test', limit: p.testLimit });
  // Built before the session opens: an unknown architecture or one that does not fit the data is a
  // refused job, not a failed session.
  const model = buildModel(p.arch, { inputShape: trainSet.shape, numClasses: trainSet.classNames.length, seed: p.seed, ...(p.dropout !== undefined ? { dropout: p.dropout } : {}) });
  let opened: Awaited<ReturnType<typeof openSession>>;
  try {
    opened = await openSession(env, {
      kind: 'train',
      name: p.name ?? `${p.arch} on ${p.dataset}`,
      params: p,
      tags: p.tags,
      datasets: [
        { name: trainSet.name, split: 'train', sha256: trainSet.source.sha256, images: trainSet.labels.length, description: trainSet.source.split },
        { name: testSet.name, split: 'test', sha256: testSet.source.sha256, images: testSet.labels.length, description: testSet.source.split },
      ],
    });
  } catch (e) {
    model.dispose();
    throw e;
  }
  const { writer } = opened;
  return runInSession(writer, async () => {
    try {
      // A cancelled run keeps the model trained so far, saved and marked cancelled.
      const { value: result, cancel } = await keepPartial(trainClassifier(model, trainSet, {
        optimizer: p.optimizer,
        learningRate: p.learningRate,
        ...(p.momentum !== undefined ? { momentum: p.momentum } : {}),
        ...(p.nesterov !== undefined ? { nesterov: p.nesterov } : {}),
        ...(p.decay !== undefined ? { decay: p.decay } : {}),
        engine: p.engine,
        batchSize: p.batchSize,
        epochs: p.epochs,
        seed: p.seed,
        validationSplit: p.validationSplit > 0 ? p.validationSplit : undefined,
        earlyStop: p.earlyStopPatience > 0 ? { patience: p.earlyStopPatience, restoreBest: true } : undefined,
        ...(p.augment !== undefined ? { augment: parseAugment(p.augment) } : {}),
      }, {
        onBatch: (row) => writer.appendMetric('train', { ...row }),
        onEpoch: (row) => writer.appendMetric('epochs', { ...row }),
      }, ctx));
      const test = cancel ? null : await evaluate(model, testSet, { confusion: true, ctx });
      const saved = await saveModel(model, writer.artifactPath('model'), {
        arch: p.arch,
        dataset: p.dataset,
        classNames: trainSet.classNames,
        inputShape: trainSet.shape,
        trainedBy: writer.id,
        ...(p.split ? { splitSpec: p.split } : {}),
        trainingStatus: cancel ? 'cancelled' : result.stoppedEarly ? 'stopped-early' : 'complete',
      });
      await writer.registerArtifact('model/model.json', 'model', `${p.arch} trained on ${p.dataset} (tfjs LayersModel)`);
      if (test?.confusion) {
        await writer.writeArtifact('confusion.json', JSON.stringify({ classNames: trainSet.classNames, confusion: test.confusion }), 'json', 'test-set confusion matrix [true][predicted]');
      }
      const last = result.history.epochs.at(-1);
      const summary = {
        model: 'model/model.json',
        arch: p.arch,
        dataset: p.dataset,
        modelSha256: saved.sha256,
        trainImages: trainSet.labels.length,
        testImages: testSet.labels.length,
        ...(test ? { testAccuracy: test.accuracy, testLoss: test.loss } : {}),
        ...(last?.val_acc != null ? { valAccuracy: last.val_acc } : {}),
        epochsRun: result.epochsRun,
        stoppedEarly: result.stoppedEarly,
        seconds: result.seconds,
        imagesPerSecond: result.imagesPerSecond,
        backend: env.backend.name,
        engine: result.engine.engine,
        engineReason: `${result.engine.engine}${result.engine.threads ? ` (${result.engine.threads} threads)` : ''}: ${result.engine.reason}`,
      };
      return trainedModelOutcome(summary, saved.modelJson, cancel);
    } finally {
      model.dispose();
    }
  });
}) satisfies JobHandler<'train'>;
