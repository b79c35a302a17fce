/**
 * Requests to the cluster while its server restarts. A NATS request made while the connection is
 * down, or right after it came back while JetStream is still recovering its streams, fails with a
 * bare 'timeout' (or 'no responders'); that must not end a job or throw away a finished shard. Every
 * idempotent request a job or a worker makes goes through `untilOnline`: it is tried again every
 * RETRY_MS until it succeeds, the job is cancelled, or the server has failed it for offlineMs
 * (ADVLAB_CLUSTER_OFFLINE_MS). The window starts at the first failure and again at every reconnect:
 * a server that comes back gets offlineMs to answer, a server that stays away fails the request
 * after offlineMs, with a message that says which server, for how long, and what was in flight.
 */
import { AdvlabError, CancelledError } from '../../engine/errors';
import type { NatsConnection } from '@nats-io/transport-node';

/** How long a request keeps failing before its job fails (ms), unless ADVLAB_CLUSTER_OFFLINE_MS says otherwise. */
export const DEFAULT_OFFLINE_MS = 60_000;
/** Pause between two tries of a failed request. */
export const RETRY_MS = 500;

export function offlineMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.ADVLAB_CLUSTER_OFFLINE_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_OFFLINE_MS;
}

/**
 * The connection's state as the requests need it: when it was lost (null while connected) and when
 * it last came back. One per connection; it follows nc.status() until the connection closes.
 */
export class ConnectionWatch {
  disconnectedAt: number | null = null;
  reconnectedAt: number | null = null;
  constructor(nc: Pick<NatsConnection, 'status'>, onChange?: (event: 'disconnect' | 'reconnect', downMs: number) => void, now: () => number = Date.now) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' && this.disconnectedAt === null) {
          this.disconnectedAt = now();
          onChange?.('disconnect', 0);
        } else if (s.type === 'reconnect') {
          const down = this.disconnectedAt === null ? 0 : now() - this.disconnectedAt;
          this.disconnectedAt = null;
          this.reconnectedAt = now();
          onChange?.('reconnect', down);
        }
      }
    })().catch(() => undefined);
  }
}

export interface OnlineOptions {
  /** The server, for the message. */
  url: string;
  offlineMs: number;
  /** A cancelled job stops retrying (CancelledError). */
  cancelled?: () => boolean;
  /** A connection closed on purpose (a worker stopping, a job ending) is not a restart: no retry. */
  closed?: () => boolean;
  /** When the connection last came back (a new window starts then). */
  reconnectedAt?: () => number | null;
  /** Told once per request, at its first failure (the job's log: why it is waiting). */
  log?: (line: string) => void;
  /** Tests: a clock and a sleep. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs `op` (an idempotent request) until it succeeds. An AdvlabError is the request's own answer
 * (not found, bad input...) and is thrown at once; any other error is the connection's and is retried
 * within the window described above.
 */
export async function untilOnline<R>(what: string, o: OnlineOptions, op: () => Promise<R>): Promise<R> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((ok) => setTimeout(ok, ms)));
  const t0 = now();
  let tries = 0;
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if (o.cancelled?.()) throw new CancelledError();
      if (e instanceof AdvlabError || e instanceof CancelledError) throw e;
      if (o.closed?.()) throw new AdvlabError('INTERNAL', `The connection to the cluster at ${o.url} was closed while ${what}: ${(e as Error).message}`, { url: o.url, what });
      tries++;
      const since = Math.max(t0, o.reconnectedAt?.() ?? 0);
      const message = (e as Error).message;
      if (now() - since > o.offlineMs) {
        throw new AdvlabError('INTERNAL', `Lost the cluster at ${o.url} while ${what}: ${message} (tried ${tries} times over ${Math.round((now() - t0) / 1000)} s, the last ${Math.round((now() - since) / 1000)} s without an answer; ADVLAB_CLUSTER_OFFLINE_MS ${o.offlineMs})`, { url: o.url, what, tries, ms: now() - t0 });
      }
      if (tries === 1) o.log?.(`the cluster at ${o.url} did not answer while ${what} (${message}): trying again until it does (at most ${Math.round(o.offlineMs / 1000)} s without an answer)`);
      await sleep(RETRY_MS);
    }
  }
}
