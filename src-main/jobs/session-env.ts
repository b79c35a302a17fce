/** Opening a job's session: the store, the environment block, and telling the runner its id. */
import { collectEnvironment, SessionStore, type CreateSessionOptions, type SessionWriter } from '../engine/sessions';
import { ADVLAB_VERSION } from '../paths';
import type { JobEnv } from './types';

export async function openSession(env: JobEnv, opts: Omit<CreateSessionOptions, 'environment'>): Promise<{ store: SessionStore; writer: SessionWriter }> {
  const store = new SessionStore(env.sessionsRoot);
  const writer = await store.create({
    ...opts,
    environment: collectEnvironment({ backend: env.backend.name, tfjsVersion: env.backend.tfjsVersion, advlabVersion: ADVLAB_VERSION }),
  });
  env.onSession(writer.id);
  return { store, writer };
}

/** Runs `body`; on an error the session is marked failed (with the error) before it propagates. */
export async function withSession<T>(writer: SessionWriter, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    await writer.fail(e).catch(() => undefined);
    throw e;
  }
}
