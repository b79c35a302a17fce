/** The one session tail of the job kinds: finished, cancelled (keeping what was saved) or failed. */
import { describe, expect, it } from 'vitest';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import { SessionStore } from '../../../src-main/engine/sessions';
import { cancelledWith, runInSession, trainedModelOutcome } from '../../../src-main/jobs/session-env';
import { ENV, tempRoot } from '../sessions/helpers';

const open = async () => {
  const store = new SessionStore(tempRoot());
  return { store, writer: await store.create({ kind: 'train', params: {}, environment: ENV }) };
};

describe('runInSession', () => {
  it('finishes the session with the summary and returns { session, ...result }', async () => {
    const { store, writer } = await open();
    const r = await runInSession(writer, async () => ({ summary: { acc: 0.9 }, result: { acc: 0.9, model: '/x' } }));
    expect(r).toEqual({ session: writer.id, acc: 0.9, model: '/x' });
    expect(await store.manifest(writer.id)).toMatchObject({ status: 'finished', summary: { acc: 0.9 } });
  });

  it('a cancel that kept its work ends the session cancelled with its summary and rethrows carrying { session, ...result }', async () => {
    const { store, writer } = await open();
    const err = await runInSession(writer, async () => { throw cancelledWith({ summary: { epochsRun: 2 }, result: { epochsRun: 2 } }, new CancelledError('stopped')); }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).message).toBe('stopped');
    expect((err as CancelledError).partial).toEqual({ session: writer.id, epochsRun: 2 });
    expect(await store.manifest(writer.id)).toMatchObject({ status: 'cancelled', summary: { epochsRun: 2 } });
  });

  it('a plain cancel (an attack stopped mid-way) marks the session cancelled, not failed; an engine partial does not leak out', async () => {
    const { store, writer } = await open();
    const err = await runInSession(writer, async () => { throw new CancelledError(undefined, { model: 'a tensor model' }); }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).partial).toBeUndefined();
    const m = await store.manifest(writer.id);
    expect(m.status).toBe('cancelled');
    expect(m.error).toBeUndefined();
  });

  it('a cancel that saved a summary but no whole result ends the session cancelled with it, carrying nothing', async () => {
    const { store, writer } = await open();
    const err = await runInSession(writer, async () => { throw cancelledWith({ summary: { arch: 'speech-small' } }, new CancelledError()); }).catch((e: unknown) => e);
    expect((err as CancelledError).partial).toBeUndefined();
    expect(await store.manifest(writer.id)).toMatchObject({ status: 'cancelled', summary: { arch: 'speech-small' } });
  });

  it('any other error marks the session failed with it and propagates', async () => {
    const { store, writer } = await open();
    await expect(runInSession(writer, async () => { throw new AdvlabError('BAD_FILE', 'broken'); })).rejects.toMatchObject({ code: 'BAD_FILE', message: 'broken' });
    expect(await store.manifest(writer.id)).toMatchObject({ status: 'failed', error: { code: 'BAD_FILE', message: 'broken' } });
  });

  it('a trained model\'s outcome: finished, the result names the saved model.json; cancelled, the session keeps the summary and the cancelled job still names its model', async () => {
    const a = await open();
    const done = await runInSession(a.writer, async () => trainedModelOutcome({ model: 'model/model.json', epochsRun: 3 }, '/s/model/model.json', null));
    expect(done).toEqual({ session: a.writer.id, model: '/s/model/model.json', epochsRun: 3 });
    expect(await a.store.manifest(a.writer.id)).toMatchObject({ status: 'finished', summary: { model: 'model/model.json', epochsRun: 3 } });
    const b = await open();
    const err = await runInSession(b.writer, async () => trainedModelOutcome({ model: 'model/model.json', epochsRun: 1 }, '/s/model/model.json', new CancelledError('stopped'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).message).toBe('stopped');
    expect((err as CancelledError).partial).toEqual({ session: b.writer.id, model: '/s/model/model.json', epochsRun: 1 });
    expect(await b.store.manifest(b.writer.id)).toMatchObject({ status: 'cancelled', summary: { model: 'model/model.json', epochsRun: 1 } });
  });
});
