/**
 * The cluster's names and its connection: one NATS server (or cluster) with JetStream gives the work
 * queue for shards, a durable event stream per job, subjects for progress and cancel, and an Object
 * Store for models, large tasks and results. Everything is declared here once and set up
 * idempotently by whoever connects first (a submitting app or a worker).
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { AdvlabError, badInput } from '../../engine/errors';

/** How to reach the cluster: a URL and credentials (api/contract.ts, shared with Settings). */
export { clusterAuthSchema, type ClusterAuth } from '../../api/contract';
import { clusterAuthSchema, type ClusterAuth } from '../../api/contract';

/** Names of the streams, consumer, subjects and bucket. */
export const NAMES = {
  shardStream: 'ADVLAB_SHARDS',
  eventStream: 'ADVLAB_EVENTS',
  workers: 'advlab-workers',
  bucket: 'advlab',
  /** One subject per job run: purging it drops the run's pending shards. */
  shardSubject: (run: string) => `advlab.shard.${run}`,
  /** Durable per-run events: a shard's result (stored), a retry, a failure. */
  eventSubject: (run: string) => `advlab.event.${run}`,
  /** Progress (best effort: a lost message only delays the bar). */
  progressSubject: (run: string) => `advlab.progress.${run}`,
  /** A run's cancel; workers listen on cancelSubject('*'). */
  cancelSubject: (run: string) => `advlab.cancel.${run}`,
  /** Every worker answers a ping here with its id and capacity. */
  pingSubject: 'advlab.workers.ping',
} as const;

/** Timings of the queue (ms). Long shards keep their ack alive with in-progress acks every ackWait/3. */
export interface ClusterTimings {
  /** A shard not acked (or marked in progress) within this is redelivered to another worker. */
  ackWaitMs: number;
  /** A shard is delivered at most this often; then its job fails with the last error. */
  maxDeliver: number;
}

/** Defaults, overridable by ADVLAB_CLUSTER_ACK_WAIT_MS / ADVLAB_CLUSTER_MAX_DELIVER (tests shorten the ack wait). */
export const DEFAULT_TIMINGS: ClusterTimings = { ackWaitMs: 30_000, maxDeliver: 3 };

export function clusterTimings(env: NodeJS.ProcessEnv = process.env): ClusterTimings {
  const int = (v: string | undefined, name: string, min: number, dflt: number) => {
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw badInput(`${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  return {
    ackWaitMs: int(env.ADVLAB_CLUSTER_ACK_WAIT_MS, 'ADVLAB_CLUSTER_ACK_WAIT_MS', 1000, DEFAULT_TIMINGS.ackWaitMs),
    maxDeliver: int(env.ADVLAB_CLUSTER_MAX_DELIVER, 'ADVLAB_CLUSTER_MAX_DELIVER', 1, DEFAULT_TIMINGS.maxDeliver),
  };
}

/** A task or result larger than this goes to the Object Store; the message carries its key (NATS's default max_payload is 1 MiB). */
export const INLINE_PAYLOAD_BYTES = 256 * 1024;
/** How long a run's events and stored results are kept (a submitting app that comes back within this finds them). */
export const EVENT_MAX_AGE_MS = 24 * 3600_000;

export interface Cluster {
  nc: NatsConnection;
  jsm: JetStreamManager;
  os: ObjectStore;
  timings: ClusterTimings;
  close(): Promise<void>;
}

/** Connects (a bounded wait: an unreachable server is a clear error, not a hang) and sets the streams up. */
export async function connectCluster(auth: ClusterAuth, opts: { name: string; timings?: ClusterTimings; worker?: boolean } = { name: 'advlab' }): Promise<Cluster> {
  const a = clusterAuthSchema.parse(auth);
  const servers = a.url.replace(/^tls:/, 'nats:');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: opts.name,
      timeout: 10_000,
      // Keep reconnecting (a restarted server comes back); every request below has its own timeout.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...(a.token !== undefined ? { token: a.token } : {}),
      ...(a.user !== undefined ? { user: a.user, pass: a.pass } : {}),
      ...(a.creds !== undefined ? { authenticator: credsAuthenticator(readFileSync(a.creds)) } : {}),
      ...(a.url.startsWith('tls:') ? { tls: {} } : {}),
    });
  } catch (e) {
    throw new AdvlabError('INTERNAL', `Cannot reach the cluster at ${a.url}: ${(e as Error).message}`, { url: a.url });
  }
  const wanted = opts.timings ?? clusterTimings();
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  await ensureStreams(jsm, wanted, opts.worker === true);
  // What the queue really does (a worker may have set other values than this process would).
  const { config } = await jsm.consumers.info(NAMES.shardStream, NAMES.workers);
  const timings: ClusterTimings = { ackWaitMs: Math.round((config.ack_wait ?? wanted.ackWaitMs * 1e6) / 1e6), maxDeliver: config.max_deliver ?? wanted.maxDeliver };
  const os = await new Objm(nc).create(NAMES.bucket, { storage: StorageType.File, ttl: EVENT_MAX_AGE_MS * 1e6 });
  // Drain (in-flight publishes go out) when connected; a connection without its server just closes.
  const close = async () => {
    if (nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    const drained = nc.isDraining() ? nc.closed() : nc.drain().catch(() => undefined);
    await Promise.race([drained, new Promise((ok) => (timer = setTimeout(ok, 2000)))]);
    clearTimeout(timer);
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  };
  return { nc, jsm, os, timings, close };
}

/**
 * Creates the streams and the workers' consumer, or brings the streams' settings up to date
 * (idempotent). The consumer's ack wait and max-deliver are the workers' to set (`workers`: a worker
 * started with other ADVLAB_CLUSTER_* values updates them); a submitting app only creates it if missing.
 */
export async function ensureStreams(jsm: JetStreamManager, t: ClusterTimings, workers = false): Promise<void> {
  const upsert = async (name: string, cfg: Partial<StreamConfig>) => {
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, cfg);
    } catch (e) {
      if (!/stream not found/i.test((e as Error).message)) throw e;
      await jsm.streams.add({ name, ...cfg });
    }
  };
  await upsert(NAMES.shardStream, { subjects: [NAMES.shardSubject('*')], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: 10 * 60e9 });
  await upsert(NAMES.eventStream, { subjects: [NAMES.eventSubject('*')], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: EVENT_MAX_AGE_MS * 1e6 });
  const consumer = {
    durable_name: NAMES.workers,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: t.ackWaitMs * 1e6,
    max_deliver: t.maxDeliver,
    max_ack_pending: 1000,
  };
  try {
    const info = await jsm.consumers.info(NAMES.shardStream, NAMES.workers);
    if (workers && (info.config.ack_wait !== consumer.ack_wait || info.config.max_deliver !== consumer.max_deliver)) {
      await jsm.consumers.update(NAMES.shardStream, NAMES.workers, { ack_wait: consumer.ack_wait, max_deliver: consumer.max_deliver });
    }
  } catch (e) {
    if (!/consumer not found/i.test((e as Error).message)) throw e;
    await jsm.consumers.add(NAMES.shardStream, consumer);
  }
}
