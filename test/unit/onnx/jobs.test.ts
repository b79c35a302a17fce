/**
 * `engine` on the image-model jobs: auto runs a plain model on ONNX Runtime and records it (summary,
 * result, log); tfjs runs the reference; both give the same result; a thermometer-encoded model stays
 * on tfjs with the reason; an unknown engine is refused by the schema with the accepted values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackParams } from '../../../src-main/api/jobs';
import { LocalContext } from '../../../src-main/engine/context';
import { buildModel } from '../../../src-main/engine/models/architectures';
import { fromLayersModel } from '../../../src-main/engine/models/classifier';
import type { LoadedModel } from '../../../src-main/engine/models/io';
import { SessionStore } from '../../../src-main/engine/sessions';
import { engineFor } from '../../../src-main/engine/onnx/select';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { trainSmallMnistModel, type SmallMnistModel } from '../../fixtures/small-mnist-model';

let env: JobEnv;
let model: string;
let fixture: SmallMnistModel | undefined;

beforeAll(async () => {
  fixture = await trainSmallMnistModel('advlab-engine-');
  ({ env, model } = fixture);
}, 120_000);
afterAll(() => fixture?.cleanup());

async function attack(extra: Record<string, unknown>) {
  const ctx = new LocalContext();
  const r = (await jobHandlers.attack({ model, dataset: 'mnist', attack: 'pgd', n: 8, params: { eps: 0.1, steps: 5 }, saveExamples: 0, ...extra }, ctx, env)) as Record<string, unknown> & { session: string };
  const manifest = await new SessionStore(env.sessionsRoot).manifest(r.session);
  return { r, summary: manifest.summary, logs: ctx.logs };
}

describe('--engine on the attack job', () => {
  it('auto runs a plain model on ONNX Runtime, tfjs on request; the session says which and why; same results', async () => {
    const auto = await attack({});
    expect(auto.summary).toMatchObject({ engine: 'onnx', engineReason: expect.stringMatching(/^onnx \(\d+ threads\): auto: every layer is exported/) });
    expect(auto.r).toMatchObject({ engine: 'onnx' });
    expect(auto.logs.some((l) => /^engine: onnx/.test(l))).toBe(true);
    const tfjs = await attack({ engine: 'tfjs' });
    expect(tfjs.summary).toMatchObject({ engine: 'tfjs', engineReason: 'tfjs: requested (--engine tfjs)' });
    expect(auto.r.successRate).toBe(tfjs.r.successRate);
    const onnx = await attack({ engine: 'onnx' });
    expect(onnx.summary).toMatchObject({ engine: 'onnx', engineReason: expect.stringMatching(/requested \(--engine onnx\)/) });
  });

  it('refuses an unknown engine with the accepted values', () => {
    const r = attackParams.safeParse({ model: 'm', dataset: 'mnist', attack: 'fgsm', engine: 'gpu' });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/auto.*onnx.*tfjs/);
    expect(attackParams.parse({ model: 'm', dataset: 'mnist', attack: 'fgsm' }).engine).toBe('auto');
  });

  it('keeps a thermometer-encoded model on tfjs with the reason, and --engine onnx refuses it', async () => {
    const m = buildModel('mlp', { inputShape: [28, 28, 4] });
    const loaded = { model: m, meta: { preprocessing: { thermometerLevels: 4 } }, modelJson: '/x/model.json' } as unknown as LoadedModel;
    const clf = await engineFor(loaded, fromLayersModel(m));
    expect(clf.engine).toMatchObject({ engine: 'tfjs', reason: 'defended wrapper (thermometer encoding, 4 levels) runs on tfjs' });
    await expect(engineFor(loaded, fromLayersModel(m), 'onnx')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});
