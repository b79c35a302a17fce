/**
 * Case study: defensive distillation (Papernot, McDaniel, Wu, Jha & Swami, IEEE S&P 2016) and how
 * Carlini & Wagner (IEEE S&P 2017) broke it.
 *
 * 1. An undefended baseline: the architecture trained on hard labels with softmax cross-entropy.
 * 2. The teacher: the same architecture trained at temperature T, loss CE(softmax(Z / T), y).
 * 3. Soft labels: softmax(Z_teacher(x) / T) for every training image.
 * 4. The distilled student: the same architecture trained at T on the soft labels.
 * 5. Deployment at T = 1: the student's logits are used as they are, so they are about T times larger
 *    than a normally trained network's and the float32 softmax saturates to exactly one-hot.
 *
 * Then FGSM and PGD on the softmax cross-entropy (whose input gradient vanishes on the saturated
 * softmax), PGD on the logit margin, and C&W L2 (margin on logits) attack the baseline and the
 * distilled model on the same test images. The finding reproduced: the cross-entropy attacks largely
 * fail on the distilled model while C&W succeeds about as often, with about the same distortion, as
 * on the undefended model; the input gradients show why (the fraction that is exactly zero).
 */
import { ENGINE_REQUESTS } from '../onnx/engines';
import { z } from 'zod';
import { runAttack, type AttackResult } from '../attacks';
import { ARCHITECTURE_NAMES, buildModel, deriveSeed } from '../models/architectures';
import { fromLayersModel } from '../models/classifier';
import { distillationLoss } from '../models/losses';
import { evaluate, softLabels } from '../models/predict';
import type { TrainOptions } from '../models/train';
import { registerCaseStudy } from './index';
import type { CaseStudy, RecipeEnv, RecipeOutcome } from './types';
import {
  Phases, attackNumbers, commonlyCorrect, inputGradientStats, loadSplits, logitStats, parseCaseParams, round4, row, saveArtifactModel,
  trainModel, writeExamples,
} from './kit';

/** The parameters of a distillation run (flat, so `--set key=value` reaches every one). */
export const distillationParamsSchema = z.strictObject({
  dataset: z.string().min(1).default('fashion-mnist'),
  arch: z.enum(ARCHITECTURE_NAMES).default('cw-mnist'),
  /** Training images (a seeded subset); absent = the whole train split. */
  trainN: z.number().int().min(10).optional(),
  /** Test images attacked by FGSM and PGD. */
  testN: z.number().int().min(1).default(1000),
  /** Of those, how many C&W attacks (the first cwN); absent = all testN. */
  cwN: z.number().int().min(1).optional(),
  /** Epochs for each of the three networks. */
  epochs: z.number().int().min(1).default(10),
  /** Limit on batches per epoch (demos, tests). */
  limitBatches: z.number().int().min(1).optional(),
  batchSize: z.number().int().min(1).default(128),
  optimizer: z.enum(['adam', 'sgd', 'momentum']).default('momentum'),
  learningRate: z.number().positive().default(0.01),
  /**
   * What trains the three networks: 'tfjs' (the default: the recipe's reference numbers were measured on it),
   * 'onnx' or 'auto' (ONNX Runtime when every layer is exported for training, else tfjs with the reason in the
   * log; see engine/models/train.ts). The engines agree step by step within float noise, but at T = 100 the
   * noise grows over a training run: the quick run's baseline PGD success moved by 1% on ONNX Runtime.
   */
  engine: z.enum(ENGINE_REQUESTS).default('tfjs'),
  /** Fraction of the training images held out for validation curves (0 = none). */
  validationSplit: z.number().min(0).max(0.5).default(0),
  /** Distillation temperature T (Papernot et al. used 100 on MNIST). */
  temperature: z.number().positive().default(100),
  seed: z.number().int().default(0),
  /** Linf budget of FGSM and PGD. */
  eps: z.number().positive().max(1).default(0.1),
  pgdSteps: z.number().int().min(1).default(40),
  cwSearchSteps: z.number().int().min(1).default(9),
  cwMaxIterations: z.number().int().min(1).default(1000),
  cwLearningRate: z.number().positive().default(0.01),
  cwInitialConst: z.number().positive().default(0.01),
  /** Test images shown in the report (clean, and each attack on the distilled model). */
  examples: z.number().int().min(0).max(8).default(3),
});
export type DistillationParams = z.output<typeof distillationParamsSchema>;

/** The thresholds that decide claimReproduced. */
export const DISTILLATION_CRITERION = {
  /** CE-PGD must succeed on the baseline at least this often (the attack works at this eps)... */
  baselinePgdMin: 0.7,
  /** ...and on the distilled model at most this often (the defense "works" against it)... */
  distilledPgdMax: 0.5,
  /** ...while C&W succeeds on the distilled model at least this often... */
  cwMin: 0.9,
  /** ...with a mean L2 at most this many times the baseline's. */
  l2RatioMax: 2,
} as const;

const MODELS = ['baseline', 'distilled'] as const;
type Which = (typeof MODELS)[number];

async function run(raw: Record<string, unknown>, env: RecipeEnv): Promise<RecipeOutcome> {
  const p = parseCaseParams('distillation', distillationParamsSchema, raw);
  const { writer, ctx } = env;
  const cwN = Math.min(p.cwN ?? p.testN, p.testN);
  const attacks = ['fgsm', 'pgd', 'pgd-margin', 'cw-l2'] as const;
  // Stage weights: rough cost in input gradients (a training step costs about 1.5 per image, C&W about
  // half its nominal iterations with abortEarly), so the overall fraction and ETA mean something.
  const trainCost = p.epochs * Math.min(p.trainN ?? 60_000, (p.limitBatches ?? Infinity) * p.batchSize) * 1.5;
  const attackCost = { fgsm: p.testN, pgd: p.pgdSteps * p.testN, 'pgd-margin': p.pgdSteps * p.testN, 'cw-l2': 0.5 * p.cwSearchSteps * p.cwMaxIterations * cwN };
  const w = (cost: number) => cost / 1000;
  const phases = new Phases(ctx, [
    { name: 'load data', weight: w(p.testN) }, { name: 'train baseline', weight: w(trainCost) }, { name: 'train teacher', weight: w(trainCost) },
    { name: 'soft labels', weight: w(trainCost / 10) }, { name: 'train student', weight: w(trainCost) }, { name: 'gradients', weight: w(3 * p.testN) },
    ...attacks.flatMap((a) => MODELS.map((m) => ({ name: `${a} ${m}`, weight: w(attackCost[a]) }))), { name: 'save', weight: w(p.testN) },
  ]);

  const { train, test } = await loadSplits(env, { dataset: p.dataset, trainLimit: p.trainN, testLimit: p.testN, seed: p.seed, testSeed: p.seed }, phases.phase('load data'));
  const build = (i: number) => buildModel(p.arch, { inputShape: train.shape, numClasses: train.classNames.length, seed: deriveSeed(p.seed, i) });
  const options: TrainOptions = {
    optimizer: p.optimizer, learningRate: p.learningRate, batchSize: p.batchSize, epochs: p.epochs, seed: p.seed, engine: p.engine,
    ...(p.validationSplit > 0 ? { validationSplit: p.validationSplit } : {}),
    ...(p.limitBatches ? { limitBatches: p.limitBatches } : {}),
  };
  const T = p.temperature;
  const baseline = build(1), teacher = build(2), student = build(3);
  try {
    const rb = await trainModel(baseline, train, options, {}, phases.phase('train baseline'), { writer, name: 'baseline' });
    const rt = await trainModel(teacher, train, options, { loss: distillationLoss(T) }, phases.phase('train teacher'), { writer, name: 'teacher' });
    const soft = await softLabels(teacher, train, T, 500, phases.phase('soft labels'));
    const rs = await trainModel(student, train, { ...options, targets: soft }, { loss: distillationLoss(T) }, phases.phase('train student'), { writer, name: 'student' });

    // Deployed at T = 1: the student's logits, unscaled.
    const clf = { baseline: fromLayersModel(baseline), distilled: fromLayersModel(student) };
    const gctx = phases.phase('gradients');
    const clean = { baseline: await evaluate(baseline, test, { ctx: gctx }), distilled: await evaluate(student, test, { ctx: gctx }) };
    const teacherClean = await evaluate(teacher, test, { ctx: gctx });
    const grads = { baseline: await inputGradientStats(clf.baseline, test, test.labels.length, gctx), distilled: await inputGradientStats(clf.distilled, test, test.labels.length, gctx) };
    const logits = { baseline: await logitStats(clf.baseline, test, test.labels.length), distilled: await logitStats(clf.distilled, test, test.labels.length) };

    const attackParams: Record<(typeof attacks)[number], Record<string, unknown>> = {
      fgsm: { eps: p.eps },
      pgd: { eps: p.eps, steps: p.pgdSteps, loss: 'ce', seed: p.seed },
      'pgd-margin': { eps: p.eps, steps: p.pgdSteps, seed: p.seed },
      'cw-l2': { binarySearchSteps: p.cwSearchSteps, maxIterations: p.cwMaxIterations, learningRate: p.cwLearningRate, initialConst: p.cwInitialConst },
    };
    const cwImages = test.images.subarray(0, cwN * test.shape[0] * test.shape[1] * test.shape[2]);
    const cwLabels = test.labels.subarray(0, cwN);
    const results = {} as Record<(typeof attacks)[number], Record<Which, AttackResult>>;
    for (const a of attacks) {
      results[a] = {} as Record<Which, AttackResult>;
      for (const m of MODELS) {
        const actx = phases.phase(`${a} ${m}`);
        results[a][m] = a === 'cw-l2'
          ? await runAttack(a, clf[m], cwImages, cwLabels, { kind: 'untargeted' }, attackParams[a], actx)
          : await runAttack(a, clf[m], test.images, test.labels, { kind: 'untargeted' }, attackParams[a], actx);
        const s = results[a][m].summary;
        actx.log(`success ${s.successRate == null ? 'n/a' : (100 * s.successRate).toFixed(1) + '%'}, robust accuracy ${(100 * s.robustAccuracy).toFixed(1)}%${s.meanL2 != null ? `, mean L2 ${s.meanL2.toFixed(3)}` : ''}`);
      }
    }

    phases.phase('save');
    const status = (r: { stoppedEarly: boolean }) => (r.stoppedEarly ? 'stopped-early' as const : 'complete' as const);
    const common = { arch: p.arch, dataset: p.dataset, classNames: train.classNames, inputShape: train.shape };
    const savedBaseline = await saveArtifactModel(writer, 'models/baseline', baseline, { ...common, trainingStatus: status(rb) }, `undefended ${p.arch} (baseline)`);
    const savedTeacher = await saveArtifactModel(writer, 'models/teacher', teacher, { ...common, trainingStatus: status(rt), preprocessing: { distillationTemperature: T } },
      `teacher trained at T=${T} (logits; divide by T for its training softmax)`);
    const savedStudent = await saveArtifactModel(writer, 'models/student', student, { ...common, trainingStatus: status(rs), preprocessing: { distillationTemperature: T } },
      `distilled network trained at T=${T} on the teacher's soft labels, deployed at T=1 (logits as trained)`);
    await writer.update({
      models: [
        { path: savedBaseline.modelJson, arch: p.arch, sha256: savedBaseline.sha256, role: 'baseline' },
        { path: savedTeacher.modelJson, arch: p.arch, sha256: savedTeacher.sha256, role: 'teacher' },
        { path: savedStudent.modelJson, arch: p.arch, sha256: savedStudent.sha256, role: 'distilled' },
      ],
    });
    const shown = commonlyCorrect([results.pgd.distilled, results['cw-l2'].distilled, results['cw-l2'].baseline], p.examples);
    await writeExamples(writer, test, shown, [
      { key: 'pgd-distilled', title: 'PGD (CE) on distilled', result: results.pgd.distilled },
      { key: 'cw-distilled', title: 'C&W L2 on distilled', result: results['cw-l2'].distilled },
      { key: 'cw-baseline', title: 'C&W L2 on baseline', result: results['cw-l2'].baseline },
    ].filter((a) => shown.every((i) => i < a.result.perExample.length)));

    const n = Object.fromEntries(attacks.map((a) => [a, { baseline: attackNumbers(results[a].baseline), distilled: attackNumbers(results[a].distilled) }])) as
      Record<(typeof attacks)[number], Record<Which, ReturnType<typeof attackNumbers>>>;
    const cwL2 = { baseline: n['cw-l2'].baseline.meanL2, distilled: n['cw-l2'].distilled.meanL2 };
    const l2Ratio = cwL2.baseline && cwL2.distilled != null ? cwL2.distilled / cwL2.baseline : null;
    const C = DISTILLATION_CRITERION;
    const pgdB = n.pgd.baseline.successRate ?? 0, pgdD = n.pgd.distilled.successRate ?? 1, cwD = n['cw-l2'].distilled.successRate ?? 0;
    const checks = [
      pgdB >= C.baselinePgdMin,
      pgdD <= C.distilledPgdMax,
      cwD >= C.cwMin,
      l2Ratio !== null && l2Ratio <= C.l2RatioMax,
    ];
    const claimReproduced = checks.every(Boolean);
    const pct = (v: number | null) => (v == null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
    const criterion =
      `CE-PGD (eps ${p.eps}, ${p.pgdSteps} steps) succeeds on the baseline (${pct(pgdB)} >= ${pct(C.baselinePgdMin)}) but not on the distilled model ` +
      `(${pct(pgdD)} <= ${pct(C.distilledPgdMax)}), while C&W L2 succeeds on the distilled model (${pct(cwD)} >= ${pct(C.cwMin)}) with mean L2 ` +
      `${cwL2.distilled?.toFixed(3) ?? 'n/a'} vs the baseline's ${cwL2.baseline?.toFixed(3) ?? 'n/a'} (ratio ${l2Ratio?.toFixed(2) ?? 'n/a'} <= ${C.l2RatioMax})`;

    const evidence: Record<string, number | string | boolean | null> = {
      model: savedStudent.rel,
      dataset: p.dataset, arch: p.arch, temperature: T, eps: p.eps, trainImages: train.labels.length, testImages: test.labels.length, cwImages: cwN,
      cleanAccBaseline: round4(clean.baseline.accuracy), cleanAccTeacher: round4(teacherClean.accuracy), cleanAccDistilled: round4(clean.distilled.accuracy),
      logitMarginBaseline: round4(logits.baseline.meanMargin), logitMarginDistilled: round4(logits.distilled.meanMargin),
      softmaxSaturatedBaseline: round4(logits.baseline.saturated), softmaxSaturatedDistilled: round4(logits.distilled.saturated),
      zeroGradExamplesBaseline: round4(grads.baseline.zeroExamples), zeroGradExamplesDistilled: round4(grads.distilled.zeroExamples),
      zeroGradComponentsBaseline: round4(grads.baseline.zeroComponents), zeroGradComponentsDistilled: round4(grads.distilled.zeroComponents),
      gradNormBaseline: grads.baseline.meanNorm, gradNormDistilled: grads.distilled.meanNorm,
      fgsmSuccessBaseline: round4(n.fgsm.baseline.successRate), fgsmSuccessDistilled: round4(n.fgsm.distilled.successRate),
      pgdSuccessBaseline: round4(pgdB), pgdSuccessDistilled: round4(pgdD),
      pgdMarginSuccessBaseline: round4(n['pgd-margin'].baseline.successRate), pgdMarginSuccessDistilled: round4(n['pgd-margin'].distilled.successRate),
      cwSuccessBaseline: round4(n['cw-l2'].baseline.successRate), cwSuccessDistilled: round4(cwD),
      cwMeanL2Baseline: round4(cwL2.baseline), cwMeanL2Distilled: round4(cwL2.distilled), cwL2Ratio: round4(l2Ratio),
    };
    const table = [
      row('Clean test accuracy, baseline', round4(clean.baseline.accuracy), null, '%'),
      row(`Clean test accuracy, distilled (T=${T}, deployed at T=1)`, round4(clean.distilled.accuracy), 'MNIST 99.05% (Papernot et al. 2016, T=100)', '%'),
      row('Mean logit margin (top minus runner-up), baseline', round4(logits.baseline.meanMargin)),
      row('Mean logit margin, distilled', round4(logits.distilled.meanMargin), `about T times the baseline's (C&W 2017)`),
      row('Test inputs whose float32 softmax is exactly one-hot, distilled', round4(logits.distilled.saturated), null, '%'),
      row('Correctly classified test inputs with an all-zero CE input gradient, baseline', round4(grads.baseline.zeroExamples), null, '%'),
      row('Correctly classified test inputs with an all-zero CE input gradient, distilled', round4(grads.distilled.zeroExamples), 'the gradient vanishes (Carlini & Wagner 2016, 2017)', '%'),
      row('Mean L2 norm of the CE input gradient, baseline', Number(grads.baseline.meanNorm.toPrecision(3))),
      row('Mean L2 norm of the CE input gradient, distilled', Number(grads.distilled.meanNorm.toPrecision(3))),
      row(`FGSM (CE, eps ${p.eps}) success, baseline`, round4(n.fgsm.baseline.successRate), null, '%'),
      row(`FGSM (CE, eps ${p.eps}) success, distilled`, round4(n.fgsm.distilled.successRate), 'fails (Carlini & Wagner 2016, "Defensive distillation is not robust")', '%'),
      row(`PGD (CE, eps ${p.eps}, ${p.pgdSteps} steps) success, baseline`, round4(pgdB), null, '%'),
      row(`PGD (CE, eps ${p.eps}, ${p.pgdSteps} steps) success, distilled`, round4(pgdD), '0.45% (Papernot et al. 2016: JSMA success on MNIST, T=100, down from 95.89%)', '%'),
      row(`PGD on the logit margin (eps ${p.eps}) success, baseline`, round4(n['pgd-margin'].baseline.successRate), null, '%'),
      row(`PGD on the logit margin (eps ${p.eps}) success, distilled`, round4(n['pgd-margin'].distilled.successRate), null, '%'),
      row('C&W L2 success, baseline', round4(n['cw-l2'].baseline.successRate), '100% (C&W 2017)', '%'),
      row('C&W L2 success, distilled', round4(cwD), '100% (C&W 2017)', '%'),
      row('C&W L2 mean distortion, baseline', round4(cwL2.baseline), null, 'L2'),
      row('C&W L2 mean distortion, distilled', round4(cwL2.distilled), 'close to the undefended model (C&W 2017)', 'L2'),
    ];
    const notes = [
      `${p.arch} on ${p.dataset}: ${train.labels.length} training images, ${p.epochs} epoch(s) per network, ${p.optimizer} lr ${p.learningRate}; ` +
      `attacks on ${test.labels.length} test images (C&W on the first ${cwN}); success rates are over clean-correct inputs.`,
      'PGD uses a random start in the eps-ball; where the gradient is exactly zero it cannot move from there, so its "success" on the distilled model is what random noise of that size does.',
      'The saved student (models/student) is the deployed defense; `advlab attack --model <this session>` attacks it.',
    ];
    phases.done();
    return { claimReproduced, criterion, evidence, table, notes };
  } finally {
    baseline.dispose();
    teacher.dispose();
    student.dispose();
  }
}

export const distillationStudy: CaseStudy = { id: 'distillation', checkParams: (raw) => void parseCaseParams('distillation', distillationParamsSchema, raw), run };
registerCaseStudy(distillationStudy);
