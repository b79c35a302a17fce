/** One model resolver for image and speech jobs: session ids and paths, and the errors for neither. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { locateModel, resolveModel, resolveSpeechModel } from '../../../src-main/jobs/model-ref';
import { ENV, tempRoot } from '../sessions/helpers';

describe('locateModel', () => {
  it('maps a session id to its model artifact and name, and a path to itself', async () => {
    const store = new SessionStore(tempRoot());
    const w = await store.create({ kind: 'train', name: 'my run', params: {}, environment: ENV });
    await w.finish({ model: 'model/model.json' });
    expect(await locateModel(w.id, store)).toEqual({ path: join(store.dir(w.id), 'artifacts', 'model/model.json'), id: w.id, label: 'my run' });
    const dir = join(tempRoot(), 'm');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.json'), '{}');
    expect(await locateModel(dir, store)).toEqual({ path: dir, label: dir });
  });

  it('refuses a session without a model (naming the kind wanted) and a reference that is neither', async () => {
    const store = new SessionStore(tempRoot());
    const w = await store.create({ kind: 'attack', params: {}, environment: ENV });
    await w.finish({ successRate: 1 });
    await expect(resolveModel(w.id, store)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `Session ${w.id} holds no model (its summary has no "model" entry)` });
    await expect(resolveSpeechModel(w.id, store)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/use an audio-train session$/) });
    for (const resolve of [resolveModel, resolveSpeechModel]) {
      await expect(resolve('/nonexistent/model.json', store)).rejects.toMatchObject({ code: 'NOT_FOUND', details: { model: '/nonexistent/model.json' } });
    }
  });

  it('refuses a speech-to-text model where an image classifier is wanted, saying where it can be attacked', async () => {
    const store = new SessionStore(tempRoot());
    await expect(resolveModel('starter:speech-base', store)).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringMatching(/^speech-to-text on FSDD .*\(starter\) is a speech-to-text model, not an image classifier: attack it with the audio attack/),
    });
  });
});
