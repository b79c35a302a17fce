/**
 * Case study "adversarial-training" (Madry et al., ICLR 2018): the defense the talk found holds up.
 *
 * 1. Train an undefended classifier normally, and the same architecture with PGD adversarial
 *    minibatches (advtrain-core.ts), on the same data for the same epochs. After every epoch both are
 *    scored on a held-out subset of test images, clean and under PGD at the training eps: the series
 *    metrics/epochs.jsonl (adversarial training) and metrics/undefended-epochs.jsonl, charted live.
 * 2. Evaluate both on separate test images at the trained eps: FGSM, PGD with random restarts
 *    (cross-entropy) and PGD on the C&W margin loss; robust accuracy is per input the worst case over
 *    the PGD runs.
 * 3. Run the gradient-masking checks (eval/masking.ts) on the adversarially trained model, with the
 *    undefended model as the transfer surrogate: a real defense should pass them.
 * claimReproduced: robust accuracy (adversarially trained) - robust accuracy (undefended) >= minGap.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { quietContext, type JobContext } from '../context';
import { fromLayersModel, type Classifier } from '../models/classifier';
import { buildModel, evaluate, type EpochRow } from '../models';
import { gradientMaskingChecks, type MaskingReport } from '../eval/masking';
import { badInput } from '../errors';
import { registerCaseStudy } from './index';
import type { CaseStudy, EvidenceRow, RecipeEnv, RecipeOutcome } from './types';
import { Phases, attackSet, loadSplits, parseCaseParams, pct, round4, saveArtifactModel, slice, trainPlain, within } from './kit';
import { adversarialTrain } from './advtrain-core';

const paramsSchema = z.strictObject({
  dataset: z.string().min(1).default('fashion-mnist'),
  arch: z.string().min(1).default('small-cnn'),
  trainLimit: z.number().int().min(100).default(60000),
  epochs: z.number().int().min(1).default(10),
  batchSize: z.number().int().min(1).default(64),
  learningRate: z.number().positive().default(0.001),
  seed: z.number().int().min(0).default(1),
  /** Linf training and evaluation budget. */
  eps: z.number().positive().max(1).default(0.1),
  /** PGD steps per training batch (Madry et al. MNIST: 40) and their step size (default 2.5 eps / steps). */
  trainSteps: z.number().int().min(1).default(10),
  trainStepSize: z.number().positive().optional(),
  /** Epochs over which eps ramps up linearly from 0 (0 = Madry: the full eps from the first step). */
  epsWarmupEpochs: z.number().min(0).default(1),
  /**
   * 'scratch' (Madry et al.) or 'undefended': start from the undefended model's weights and train
   * adversarially from there (adversarial fine-tuning), which converges in far fewer steps.
   */
  init: z.enum(['scratch', 'undefended']).default('scratch'),
  /** Fraction of each batch replaced by adversarial examples (Madry: 1). */
  adversarialFraction: z.number().gt(0).max(1).default(1),
  /** Held-out test images scored after every epoch (clean and PGD), and the PGD steps used there. */
  monitorImages: z.number().int().min(10).default(500),
  monitorSteps: z.number().int().min(1).default(10),
  /** Test images of the final evaluation (distinct from the monitored ones). */
  n: z.number().int().min(10).default(1000),
  evalSteps: z.number().int().min(1).default(100),
  evalRestarts: z.number().int().min(1).default(5),
  /** claimReproduced needs robust accuracy to beat the undefended model's by at least this. */
  minGap: z.number().min(0).max(1).default(0.4),
  /** Run the gradient-masking checks on the adversarially trained model. */
  gradientCheck: z.boolean().default(true),
  gradientCheckImages: z.number().int().min(10).default(200),
  gradientCheckSteps: z.number().int().min(1).default(20),
});
export type AdversarialTrainingParams = z.output<typeof paramsSchema>;

interface ModelEval {
  clean: number;
  fgsm: number;
  pgd: number;
  pgdMargin: number;
  /** Per input, correct under every PGD run. */
  worst: number;
}

/**
 * FGSM, PGD with restarts and PGD on the margin loss at the trained eps. `ctx` gets one monotone
 * progress over all three (each attack's share by its gradient steps).
 */
async function evaluateRobustness(clf: Classifier, images: Float32Array, labels: Uint8Array, p: AdversarialTrainingParams, ctx: JobContext): Promise<ModelEval> {
  const n = labels.length;
  const marginRestarts = Math.max(1, Math.ceil(p.evalRestarts / 2));
  const cost = [1, p.evalSteps * p.evalRestarts, p.evalSteps * marginRestarts];
  const total = cost[0] + cost[1] + cost[2];
  const fgsm = await attackSet('fgsm', clf, images, labels, { eps: p.eps }, within(ctx, 0, cost[0], total));
  const pgd = await attackSet('pgd', clf, images, labels, { eps: p.eps, steps: p.evalSteps, restarts: p.evalRestarts, seed: p.seed + 11 }, within(ctx, cost[0], cost[1], total));
  const margin = await attackSet('pgd-margin', clf, images, labels, { eps: p.eps, steps: p.evalSteps, restarts: marginRestarts, seed: p.seed + 13 }, within(ctx, cost[0] + cost[1], cost[2], total));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const a = pgd.perExample[i], b = margin.perExample[i];
    if (a.cleanCorrect && a.advPred === a.label && b.advPred === b.label) worst++;
  }
  return { clean: fgsm.summary.cleanAccuracy, fgsm: fgsm.summary.robustAccuracy, pgd: pgd.summary.robustAccuracy, pgdMargin: margin.summary.robustAccuracy, worst: worst / n };
}

async function run(raw: Record<string, unknown>, env: RecipeEnv): Promise<RecipeOutcome> {
  const p = parseCaseParams('adversarial-training', paramsSchema, raw);
  const { writer } = env;
  const phases = new Phases(env.ctx, [
    { name: 'data', weight: 1 }, { name: 'undefended training', weight: 4 }, { name: 'adversarial training', weight: 40 },
    { name: 'evaluation', weight: 10 }, { name: 'gradient check', weight: p.gradientCheck ? 5 : 0.01 },
  ]);
  const { train, test } = await loadSplits(env, { dataset: p.dataset, trainLimit: p.trainLimit, testLimit: p.monitorImages + p.n, seed: p.seed, testSeed: p.seed + 1 }, phases.phase('data'));
  if (test.labels.length < p.monitorImages + p.n) throw badInput(`The ${p.dataset} test split has ${test.labels.length} images; monitorImages + n needs ${p.monitorImages + p.n}`);
  const monitor = slice(test, 0, p.monitorImages);
  const evalSet = slice(test, p.monitorImages, p.n);

  /** After each epoch: clean and PGD accuracy on the monitored images, appended to `series`. */
  const monitorEpoch = (model: tf.LayersModel, series: string, ctx: JobContext) => async (row: EpochRow) => {
    const r = await attackSet('pgd', fromLayersModel(model), monitor.images, monitor.labels, { eps: p.eps, steps: p.monitorSteps, seed: p.seed + row.epoch }, quietContext(ctx));
    const metrics = { clean_acc: r.summary.cleanAccuracy, pgd_acc: r.summary.robustAccuracy };
    await writer.appendMetric(series, { epoch: row.epoch, loss: row.loss, train_acc: row.acc, ...metrics });
    ctx.log(`epoch ${row.epoch}: clean ${pct(metrics.clean_acc)}, PGD ${pct(metrics.pgd_acc)} (eps ${p.eps}) on ${monitor.n} held-out images`);
  };

  // 1. Undefended and adversarially trained models, each monitored after every epoch.
  const undefCtx = phases.phase('undefended training');
  const { model: undefended } = await trainPlain(train, p, undefCtx, (m) => ({ onEpoch: monitorEpoch(m, 'undefended-epochs', undefCtx) }));
  let advModel: tf.LayersModel | null = null;
  try {
    advModel = buildModel(p.arch, { inputShape: train.shape, numClasses: train.classNames.length, seed: p.seed });
    if (p.init === 'undefended') advModel.setWeights(undefended.getWeights());
    const advCtx = phases.phase('adversarial training');
    const stepsPerEpoch = Math.ceil(train.labels.length / p.batchSize);
    const res = await adversarialTrain(advModel, train, { epochs: p.epochs, batchSize: p.batchSize, learningRate: p.learningRate, seed: p.seed },
      { eps: p.eps, steps: p.trainSteps, ...(p.trainStepSize ? { stepSize: p.trainStepSize } : {}), adversarialFraction: p.adversarialFraction, seed: p.seed,
        warmupSteps: Math.round(p.epsWarmupEpochs * stepsPerEpoch) },
      { onEpoch: monitorEpoch(advModel, 'epochs', advCtx) }, advCtx);
    const undefendedCleanAcc = (await evaluate(undefended, { ...test, images: evalSet.images.slice(), labels: evalSet.labels.slice() })).accuracy;

    // 2. Evaluation at the trained eps.
    const evalCtx = phases.phase('evaluation');
    const und = await evaluateRobustness(fromLayersModel(undefended), evalSet.images, evalSet.labels, p, within(evalCtx, 0, 1, 2));
    const adv = await evaluateRobustness(fromLayersModel(advModel), evalSet.images, evalSet.labels, p, within(evalCtx, 1, 1, 2));

    // 3. Gradient-masking checks on the adversarially trained model.
    let check: MaskingReport | null = null;
    if (p.gradientCheck) {
      const m = Math.min(p.gradientCheckImages, evalSet.n);
      check = await gradientMaskingChecks(fromLayersModel(advModel), evalSet.images.subarray(0, m * train.shape.reduce((a, b) => a * b, 1)), Array.from(evalSet.labels.subarray(0, m)),
        { eps: p.eps, steps: p.gradientCheckSteps, surrogate: fromLayersModel(undefended), seed: p.seed }, phases.phase('gradient check'));
      await writer.writeArtifact('gradient-check.json', JSON.stringify({ model: 'adversarially trained', ...check, surfaces: undefined }, null, 1), 'json', 'gradient-masking checks on the adversarially trained model');
    }

    const meta = { arch: p.arch, dataset: p.dataset, classNames: train.classNames, inputShape: train.shape };
    const advPath = (await saveArtifactModel(writer, 'model', advModel, { ...meta, adversarialTraining: { eps: p.eps, steps: p.trainSteps } }, `${p.arch} adversarially trained (PGD, eps ${p.eps}) on ${p.dataset}`)).rel;
    await saveArtifactModel(writer, 'undefended', undefended, meta, `${p.arch} trained normally on ${p.dataset}`);
    await writer.update({ summary: { model: advPath } });

    const gap = adv.worst - und.worst;
    const claimReproduced = gap >= p.minGap;
    const madry = p.dataset === 'mnist' && Math.abs(p.eps - 0.3) < 1e-9;
    const madryRef = (v: number, text: string) => (madry ? v : `${text} (Madry et al., MNIST eps 0.3)`);
    const evidence: Record<string, number | string | boolean | null> = {
      dataset: p.dataset, arch: p.arch, eps: p.eps, trainSteps: p.trainSteps, epochs: res.epochsRun, n: evalSet.n,
      undefendedClean: round4(undefendedCleanAcc), undefendedFgsm: round4(und.fgsm), undefendedPgd: round4(und.pgd), undefendedPgdMargin: round4(und.pgdMargin), undefendedRobust: round4(und.worst),
      advClean: round4(adv.clean), advFgsm: round4(adv.fgsm), advPgd: round4(adv.pgd), advPgdMargin: round4(adv.pgdMargin), advRobust: round4(adv.worst),
      robustGap: round4(gap), minGap: p.minGap,
      ...(check ? { gradientCheckPassed: check.checksPassed, gradientCheckWarned: check.checksWarned, gradientCheckWarnings: check.warned.join(',') || 'none' } : {}),
    };
    const table: EvidenceRow[] = [
      { what: 'clean accuracy, undefended', measured: und.clean, reference: madryRef(0.992, '99.2%'), unit: '%' },
      { what: 'clean accuracy, adversarially trained', measured: adv.clean, reference: madryRef(0.988, '98.8%'), unit: '%' },
      { what: `FGSM eps ${p.eps}: accuracy, undefended`, measured: und.fgsm, unit: '%' },
      { what: `FGSM eps ${p.eps}: accuracy, adversarially trained`, measured: adv.fgsm, reference: madryRef(0.956, '95.6%'), unit: '%' },
      { what: `PGD ${p.evalSteps} steps x ${p.evalRestarts} restarts: accuracy, undefended`, measured: und.pgd, reference: '~0% (the talk)', unit: '%' },
      { what: `PGD ${p.evalSteps} steps x ${p.evalRestarts} restarts: accuracy, adversarially trained`, measured: adv.pgd, reference: madryRef(0.893, '89.3% with 100 steps x 20 restarts'), unit: '%' },
      { what: `PGD on the C&W margin loss: accuracy, undefended`, measured: und.pgdMargin, unit: '%' },
      { what: `PGD on the C&W margin loss: accuracy, adversarially trained`, measured: adv.pgdMargin, reference: madryRef(0.94, '~94% (CW loss, 40 steps)'), unit: '%' },
      { what: 'robust accuracy (worst case of the PGD runs), undefended', measured: und.worst, unit: '%' },
      { what: 'robust accuracy (worst case of the PGD runs), adversarially trained', measured: adv.worst, unit: '%' },
      ...(check ? [{ what: 'gradient-masking checks on the adversarially trained model: warnings', measured: check.warned.length ? check.warned.join(', ') : 'none', reference: 'none expected for a real defense' }] : []),
    ];
    return {
      claimReproduced,
      criterion: `robust accuracy ${pct(adv.worst)} (adversarially trained) - ${pct(und.worst)} (undefended) = ${pct(gap)} ${claimReproduced ? '>=' : '<'} ${pct(p.minGap)}`,
      evidence,
      table,
      notes: [
        `Both models: ${p.arch} on ${train.labels.length} ${p.dataset} training images, ${p.epochs} epochs, Adam ${p.learningRate}, batch ${p.batchSize}. Adversarial training: PGD eps ${p.eps}, ${p.trainSteps} steps per batch, ${p.adversarialFraction === 1 ? 'whole batches adversarial' : `${pct(p.adversarialFraction)} of each batch adversarial`}` +
          `${p.epsWarmupEpochs > 0 ? `, eps ramped up linearly over the first ${p.epsWarmupEpochs} epoch(s)` : ''}, ${p.init === 'scratch' ? 'from scratch (as Madry et al.)' : 'starting from the undefended model\'s weights (adversarial fine-tuning)'}.`,
        `Evaluation on ${evalSet.n} test images at the trained eps; per-epoch curves on ${monitor.n} other test images (PGD ${p.monitorSteps} steps). Madry et al.'s numbers are for MNIST at eps 0.3 with a larger network and 100k training steps.`,
        ...(check ? [`Gradient-masking checks: ${check.checksPassed} passed, ${check.checksWarned} warned${check.warned.length ? ` (${check.warned.join(', ')})` : ''}; see gradient-check.json.`] : []),
      ],
    };
  } finally {
    undefended.dispose();
    advModel?.dispose();
  }
}

export const adversarialTrainingCaseStudy: CaseStudy = { id: 'adversarial-training', checkParams: (raw) => void parseCaseParams('adversarial-training', paramsSchema, raw), run };
registerCaseStudy(adversarialTrainingCaseStudy);
