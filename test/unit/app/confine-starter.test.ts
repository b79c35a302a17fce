/**
 * A job let in by the API's door re-checks its files where it opens them (jobs/confine.ts) against the
 * confinement the door gives it (PathGuard.confinement). A `starter:NAME` model passes the door as a ref, so
 * the shipped model files must be inside that confinement, or every starter model fails in the worker
 * (it did: "model ... now leads outside the folders this job may read"). Files elsewhere stay refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PathGuard } from '../../../src-main/api/path-guard';
import { starterModels } from '../../../src-main/engine/data/starter';
import { confinedFile, setConfinement } from '../../../src-main/jobs/confine';
import { resolveModel, resolveSpeechModel } from '../../../src-main/jobs/model-ref';
import { SessionStore } from '../../../src-main/engine/sessions';
import { DATA } from '../helpers';

const tmp = mkdtempSync(join(os.tmpdir(), 'advlab-confine-starter-'));
afterAll(() => {
  setConfinement(null);
  rmSync(tmp, { recursive: true, force: true });
});

describe('confinement and the starter pack', () => {
  it('lets a confined job open every starter model (image and speech), and still refuses a file outside', async () => {
    const sessions = join(tmp, 'sessions');
    const guard = new PathGuard({ dataDirs: [DATA], sessionsRoot: sessions, uploadsDir: join(tmp, 'uploads') });
    setConfinement(await guard.confinement());
    const models = starterModels();
    expect(models.length).toBeGreaterThanOrEqual(4);
    for (const m of models) await expect(confinedFile(m.modelJson, 'model')).resolves.toBeTruthy();
    const store = new SessionStore(sessions);
    const image = await resolveModel('starter:cw-mnist', store);
    expect(image.classifier.inputShape).toEqual([28, 28, 1]);
    const speech = await resolveSpeechModel('starter:speech-base', store);
    speech.model.dispose();
    const outside = join(tmp, 'elsewhere.json');
    writeFileSync(outside, '{}');
    await expect(confinedFile(outside, 'model')).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});
