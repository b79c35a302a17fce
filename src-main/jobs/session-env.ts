/**
 * A job's session from open to end: the store, the environment block, telling the runner its id,
 * and the one way every job kind ends it (finished, cancelled or failed).
 */
import { CancelledError } from '../engine/errors';
import { collectEnvironment, SessionStore, type CreateSessionOptions, type SessionWriter } from '../engine/sessions';
import { ADVLAB_VERSION } from '../paths';
import type { JobEnv } from './types';

export async function openSession(env: JobEnv, opts: Omit<CreateSessionOptions, 'environment'>): Promise<{ store: SessionStore; writer: SessionWriter }> {
  const store = new SessionStore(env.sessionsRoot);
  const writer = await store.create({
    ...opts,
    // workers: the pool threads the job's shards could use (1: it ran in its own thread).
    environment: { ...collectEnvironment({ backend: env.backend.name, tfjsVersion: env.backend.tfjsVersion, advlabVersion: ADVLAB_VERSION }), workers: env.workers ?? 1 },
  });
  env.onSession(writer.id);
  return { store, writer };
}

/** What a job's work ends with: the session's summary and the job's result (the session id is added to it). */
export interface SessionOutcome<R extends object> {
  summary: Record<string, unknown>;
  result: R;
}

/** What cancelled work saved: the session's summary and, when it kept a whole result (the model trained so far), the job's result. */
export interface CancelledOutcome<R extends object> {
  summary: Record<string, unknown>;
  result?: R;
}

const kept = new WeakMap<CancelledError, CancelledOutcome<object>>();

/**
 * For work that was cancelled but saved what it had done: throw this, and the session ends cancelled
 * with `outcome.summary`; the job's cancelled result is `outcome.result` (with the session id), if any.
 */
export function cancelledWith<R extends object>(outcome: CancelledOutcome<R>, cause?: CancelledError): CancelledError {
  const e = new CancelledError(cause?.message, outcome);
  kept.set(e, outcome);
  return e;
}

/**
 * How a job that trained a model ends its work: the summary, and as the job's result the summary with the
 * saved model's model.json. A cancelled run (keepPartial's `cancel`) throws that outcome instead, so the
 * session ends cancelled keeping the model trained so far, and the cancelled job still names its model.
 */
export function trainedModelOutcome<S extends Record<string, unknown>>(summary: S, modelJson: string, cancel: CancelledError | null): SessionOutcome<S & { model: string }> {
  const outcome = { summary, result: { ...summary, model: modelJson } };
  if (cancel) throw cancelledWith(outcome, cancel);
  return outcome;
}

/**
 * Runs a job's work in its session and ends the session:
 * - the work returns { summary, result }: the session is finished with the summary; the job returns
 *   { session, ...result };
 * - it throws cancelledWith(outcome): the session is marked cancelled with the outcome's summary
 *   (everything written so far stays), and the job ends with CancelledError carrying
 *   { session, ...result } (when the outcome has a result), which the worker reports as the
 *   cancelled job's result;
 * - it throws any other CancelledError: the session is marked cancelled as it is, and the job ends
 *   with a CancelledError carrying nothing (what an engine function kept stays in the job);
 * - any other error: the session is marked failed with it, and the error propagates.
 */
export async function runInSession<R extends object>(writer: SessionWriter, work: () => Promise<SessionOutcome<R>>): Promise<R & { session: string }> {
  try {
    const { summary, result } = await work();
    await writer.finish(summary);
    return { session: writer.id, ...result };
  } catch (e) {
    if (!(e instanceof CancelledError)) {
      await writer.fail(e).catch(() => undefined);
      throw e;
    }
    const outcome = kept.get(e);
    await writer.cancel(outcome?.summary).catch(() => undefined);
    throw new CancelledError(e.message, outcome?.result ? { session: writer.id, ...outcome.result } : undefined);
  }
}
