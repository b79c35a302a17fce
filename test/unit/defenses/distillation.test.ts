import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { resolveDataDirs } from '../../../src-main/engine/data';
import { loadModel } from '../../../src-main/engine/models';
import { classifierFor } from '../../../src-main/engine/models/defended';
import { SessionStore } from '../../../src-main/engine/sessions';
import { getCaseStudy } from '../../../src-main/engine/defenses';
import '../../../src-main/engine/defenses/all';
import { loadRecipe } from '../../../src-main/engine/defenses/recipes';
import { DISTILLATION_CRITERION, distillationParamsSchema } from '../../../src-main/engine/defenses/distillation';
import { backwardProgress } from '../helpers';

let tmp: string;
beforeAll(async () => {
  await initBackend('wasm');
  tmp = mkdtempSync(join(tmpdir(), 'advlab-distill-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('distillation recipe', () => {
  it('recipe file: full and quick parameters are valid; bad parameters are refused by name', async () => {
    const r = loadRecipe('distillation');
    expect(r.caseStudy).toBe('distillation');
    const full = distillationParamsSchema.parse(r.full);
    const quick = distillationParamsSchema.parse({ ...r.full, ...r.quick });
    expect(full.temperature).toBe(100);
    expect(quick.temperature).toBe(100);
    expect(quick.eps).toBe(full.eps);
    expect(quick.testN).toBeLessThanOrEqual(100);
    const study = getCaseStudy('distillation')!;
    await expect(study.run({ temprature: 50 }, {} as never)).rejects.toThrow(/unknown parameter.*"temprature"/);
    await expect(study.run({ temperature: -1 }, {} as never)).rejects.toThrow(/"temperature"/);
  });

  it('quick run: CE attacks fail on the distilled model (vanishing gradient) while C&W on logits succeeds', async () => {
    const store = new SessionStore(join(tmp, 'sessions'));
    const writer = await store.create({
      kind: 'recipe', name: 'distillation test', params: {},
      environment: { backend: 'wasm', tfjsVersion: tf.version.tfjs, advlabVersion: 'test', node: process.version, platform: process.platform, cpus: 2, hostname: 'test' },
    });
    const ctx = new LocalContext();
    const tensorsBefore = tf.memory().numTensors;
    const out = await getCaseStudy('distillation')!.run(
      {
        arch: 'small-cnn', trainN: 2000, epochs: 3, batchSize: 64, optimizer: 'adam', learningRate: 0.003, temperature: 100,
        testN: 60, eps: 0.1, pgdSteps: 10, cwN: 30, cwSearchSteps: 3, cwMaxIterations: 50, cwLearningRate: 0.1, cwInitialConst: 0.1, examples: 2,
      },
      { dataDirs: resolveDataDirs(), writer, ctx, quick: true },
    );
    expect(tf.memory().numTensors).toBe(tensorsBefore); // every model, optimizer and attack tensor released
    expect(backwardProgress(ctx.events)).toEqual([]); // the bar only moves forward
    const e = out.evidence as Record<string, number>;
    expect(e.cleanAccBaseline).toBeGreaterThan(0.6);
    expect(e.cleanAccDistilled).toBeGreaterThan(0.5);
    // Deployed at T = 1 the distilled logits are far larger and the softmax saturates.
    expect(e.logitMarginDistilled).toBeGreaterThan(10 * e.logitMarginBaseline);
    expect(e.softmaxSaturatedDistilled).toBeGreaterThan(0.5);
    expect(e.zeroGradExamplesBaseline).toBe(0);
    expect(e.zeroGradExamplesDistilled).toBeGreaterThan(0.3);
    // The key inequalities: CE-PGD works on the baseline, not on the distilled model; C&W works on both.
    expect(e.pgdSuccessBaseline).toBeGreaterThan(e.pgdSuccessDistilled + 0.4);
    expect(e.cwSuccessDistilled).toBeGreaterThan(e.pgdSuccessDistilled + 0.4);
    expect(e.cwSuccessDistilled).toBeGreaterThanOrEqual(DISTILLATION_CRITERION.cwMin);
    expect(e.cwL2Ratio).toBeLessThan(DISTILLATION_CRITERION.l2RatioMax);
    const C = DISTILLATION_CRITERION;
    expect(out.claimReproduced).toBe(e.pgdSuccessBaseline >= C.baselinePgdMin && e.pgdSuccessDistilled <= C.distilledPgdMax && e.cwSuccessDistilled >= C.cwMin && e.cwL2Ratio <= C.l2RatioMax);
    expect(out.criterion).toMatch(/C&W/);
    expect(out.table.find((r) => /PGD \(CE.*distilled/.test(r.what))?.reference).toMatch(/Papernot/);
    const last = ctx.events.at(-1)!;
    expect(last.step).toBe(last.total);

    // Three models saved and listed; the student is the deployed defense and loads as a plain network.
    const m = writer.manifest;
    for (const name of ['baseline', 'teacher', 'student']) {
      expect(m.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining([`models/${name}/model.json`, `models/${name}/weights.bin`]));
    }
    expect(e.model).toBe('models/student/model.json');
    const student = join(writer.dir, 'artifacts', 'models/student/model.json');
    expect(JSON.parse(readFileSync(student, 'utf8')).userDefinedMetadata.preprocessing.distillationTemperature).toBe(100);
    const clf = classifierFor(await loadModel(student));
    expect(clf.inputShape).toEqual([28, 28, 1]);
    expect(m.models.map((x) => x.role)).toEqual(['baseline', 'teacher', 'distilled']);
    expect(m.artifacts.filter((a) => a.kind === 'image').length).toBeGreaterThanOrEqual(7);
    for (const s of ['train-baseline', 'train-teacher', 'train-student']) expect(existsSync(join(writer.dir, 'metrics', `${s}.jsonl`))).toBe(true);
    await writer.finish();
  });
});
