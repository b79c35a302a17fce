/**
 * NatsShardExecutor: a job's shards run on `advlab worker` processes behind a NATS JetStream work
 * queue. The job itself (its coordinator, which merges the results and writes the session) stays in
 * the submitting app, so the session folder is assembled here exactly as a local run's.
 *
 * One `run` call is a run with its own id: its shards go to advlab.shard.<run> (Nats-Msg-Id
 * <run>:<shard id>, so a shard published twice is queued once), the workers report on the durable
 * stream advlab.event.<run> (started, result, retry, failed, stopped) and on advlab.progress.<run>,
 * and store each result once in the Object Store under result/<run>/<index> (sha256 in its
 * description, checked here before the result is trusted). Models go up once, content-addressed
 * (models.ts). Cancel is a message on advlab.cancel.<run> that every worker watches (its shards
 * stop within a step) plus a purge of the run's shards not yet taken; the run then waits (bounded) for
 * its running shards' answers, so a shard that gives back a partial result when cancelled (the audio
 * attack) gives it here as on the local pool. A shard whose worker dies is
 * redelivered after the ack wait; after max-deliver the run fails with the last error. The run
 * never hangs: losing the server for longer than offlineMs, or nothing happening for stallMs,
 * fails it with a message that says which.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { jetstream, type JetStreamClient, type ConsumerMessages } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import type { JobContext } from '../../engine/context';
import { AdvlabError, CancelledError } from '../../engine/errors';
import type { Shard, ShardExecutor, ShardProgress, ShardResultOf, ShardType } from '../../engine/shards/types';
import { decodePayload, encodePayload, sha256Hex } from './codec';
import { connectCluster, INLINE_PAYLOAD_BYTES, NAMES, type Cluster, type ClusterAuth, type ClusterTimings } from './connection';
import { mapSpecs, ModelUploader } from './models';
import { ConnectionWatch, offlineMsFromEnv, untilOnline } from './online';
import { clusterEventSchema, clusterProgressSchema, resultObjectName, taskObjectName, workerInfoSchema, type ClusterEvent, type WireError, type WorkerInfo } from './protocol';

export interface NatsExecutorOptions {
  auth: ClusterAuth;
  /** The submitting job's id (logs, the workers' view). */
  job: string;
  /** Cancellation and log lines are the job's. */
  ctx: Pick<JobContext, 'cancelled' | 'log'>;
  timings?: ClusterTimings;
  /** Fail a run when the server has been unreachable this long (ADVLAB_CLUSTER_OFFLINE_MS, default 60 s). */
  offlineMs?: number;
  /** Told after every shard sent or finished: shards done and sent over every run, and the distinct workers that ran them (JobInfo.shards). */
  onShards?: (s: { where: 'cluster'; done: number; total: number; workers: number; ran: { worker: string; shards: number }[] }) => void;
  /** Fail a run when no shard started, progressed or finished for this long (ADVLAB_CLUSTER_STALL_MS, default 10 min: no worker is taking shards). */
  stallMs?: number;
}

const envMs = (name: string, dflt: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

/** A stored result's description: its sha256 (hex) and the worker that stored it. */
export const RESULT_DESCRIPTION = /^sha256:([0-9a-f]{64})(?: worker:(\S+))?$/;
export const resultDescription = (sha256: string, worker: string) => `sha256:${sha256} worker:${worker}`;

/** Errors a worker reports as the shard's own (its input is wrong): retrying them elsewhere cannot help. */
export const PERMANENT_CODES = new Set(['BAD_INPUT', 'BAD_FILE', 'UNSUPPORTED', 'NOT_FOUND', 'TOO_LARGE', 'FORBIDDEN']);

/** Which workers answer a ping within `waitMs`: the cluster's capacity (parallelism) is the sum of theirs. */
export async function pingWorkers(cluster: Cluster, waitMs = 1000): Promise<WorkerInfo[]> {
  const out: WorkerInfo[] = [];
  try {
    // Replies come together: stop 100 ms after the last one (at most waitMs), not after the whole wait.
    const replies = await cluster.nc.requestMany(NAMES.pingSubject, undefined, { maxWait: waitMs, strategy: 'stall', stall: 100 });
    for await (const m of replies) {
      const parsed = workerInfoSchema.safeParse(safeJson(m.data));
      if (parsed.success) out.push(parsed.data);
    }
  } catch {
    // no responders: no worker yet
  }
  return out;
}

/** Waits for `p` at most `ms` (errors ignored): cleanup never holds a run up. */
async function bounded(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.resolve(p).catch(() => undefined), new Promise((ok) => (timer = setTimeout(ok, ms)))]);
  clearTimeout(timer);
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

function toError(e: WireError): AdvlabError {
  return new AdvlabError((e.code as 'INTERNAL') ?? 'INTERNAL', e.message, e.details);
}

/** After a cancel, how long a run waits at least for its shards' 'started' events in flight, and at most for its running shards to answer. */
export const CANCEL_SETTLE_MS = 500;
export const CANCEL_GRACE_MS = 10_000;

export class NatsShardExecutor implements ShardExecutor {
  readonly where = 'cluster' as const;
  /** Shards run per worker id, over every run of this executor (the Jobs list shows it). */
  readonly ran = new Map<string, number>();
  private readonly js: JetStreamClient;
  private readonly uploader: ModelUploader;
  private readonly offlineMs: number;
  private readonly stallMs: number;
  private readonly watch: ConnectionWatch;
  private sent = 0;
  private finished = 0;
  private closed = false;

  private constructor(private readonly cluster: Cluster, readonly parallelism: number, private readonly opts: NatsExecutorOptions) {
    this.js = jetstream(cluster.nc, { timeout: 10_000 });
    // Model uploads are retried while the server restarts (a model goes up on the first shard naming it, which can come right after one).
    this.uploader = new ModelUploader(cluster.os, (what, op) => this.untilOnline(what, opts.ctx, op));
    this.offlineMs = opts.offlineMs ?? offlineMsFromEnv();
    this.stallMs = opts.stallMs ?? envMs('ADVLAB_CLUSTER_STALL_MS', 600_000);
    // The job's log says when the server went away and came back (a restart shows as a pause, not a mystery).
    this.watch = new ConnectionWatch(cluster.nc, (event, downMs) => {
      if (this.closed) return;
      if (event === 'disconnect') opts.ctx.log(`lost the cluster at ${opts.auth.url}: reconnecting (the job fails if it stays away ${Math.round(this.offlineMs / 1000)} s)`);
      else opts.ctx.log(`the cluster at ${opts.auth.url} is back after ${(downMs / 1000).toFixed(1)} s`);
    });
  }

  private get disconnectedAt(): number | null {
    return this.watch.disconnectedAt;
  }

  /** Connects, sets the streams up and asks the workers for their capacity (at least 1: shards wait in the queue for a worker). */
  static async open(opts: NatsExecutorOptions): Promise<NatsShardExecutor> {
    const cluster = await connectCluster(opts.auth, { name: `advlab ${opts.job} on ${hostname()}`, timings: opts.timings });
    const workers = await pingWorkers(cluster);
    const capacity = workers.reduce((a, w) => a + w.capacity, 0);
    return new NatsShardExecutor(cluster, Math.max(1, capacity), opts);
  }

  private report(): void {
    this.opts.onShards?.({ where: 'cluster', done: this.finished, total: this.sent, workers: this.ran.size, ran: [...this.ran].map(([worker, shards]) => ({ worker, shards })) });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.cluster.close();
  }

  /** An idempotent request, retried while the server restarts (online.ts); `what` says what was in flight when it fails. */
  private untilOnline<R>(what: string, ctx: { readonly cancelled: boolean }, op: () => Promise<R>): Promise<R> {
    return untilOnline(what, { url: this.opts.auth.url, offlineMs: this.offlineMs, cancelled: () => ctx.cancelled, closed: () => this.closed || this.cluster.nc.isClosed(), reconnectedAt: () => this.watch.reconnectedAt, log: (l) => this.opts.ctx.log(l) }, op);
  }

  async run<T extends ShardType>(shards: Shard<T>[], onProgress?: (index: number, p: ShardProgress) => void): Promise<ShardResultOf<T>[]> {
    const { ctx } = this.opts;
    if (ctx.cancelled) throw new CancelledError();
    if (shards.length === 0) return [];
    const ids = new Set(shards.map((s) => s.id));
    if (ids.size !== shards.length) throw new AdvlabError('INTERNAL', 'Two shards of one run share an id');
    const run = randomBytes(8).toString('hex');
    const { nc, os, jsm, timings } = this.cluster;
    const results = new Map<number, ShardResultOf<T>>();
    const lastError = new Map<number, WireError>();
    const shown = new Map<number, number>(); // progress shown per shard (never goes back: a retried shard starts again at 0)
    const totals = new Map<number, number>();
    const seqToIndex = new Map<number, number>();
    const fetching = new Set<number>();
    /** Shards a worker said it started, and those it stopped (cancelled) without a result. */
    const startedShards = new Set<number>(), stoppedShards = new Set<number>();
    /** When the job's cancel was first seen (the workers told): the run then waits for its running shards' answers. */
    let cancelledAt: number | null = null;
    let lastActivity = Date.now();
    let settle!: { ok: () => void; fail: (e: Error) => void };
    const finished = new Promise<void>((ok, fail) => (settle = { ok, fail }));
    let over = false;
    const fail = (e: Error) => {
      if (!over) (over = true), settle.fail(e);
    };
    const checkDone = () => {
      if (!over && results.size === shards.length) (over = true), settle.ok();
    };
    const progress = (index: number, p: ShardProgress) => {
      const step = Math.max(shown.get(index) ?? 0, p.total > 0 ? Math.min(p.step, p.total) : 0);
      shown.set(index, step);
      totals.set(index, p.total);
      onProgress?.(index, { ...p, step });
    };

    const takeResult = async (index: number, object: string, sha256: string, worker: string | null) => {
      if (results.has(index) || fetching.has(index)) return; // a shard run twice counts once
      fetching.add(index);
      try {
        // A result event can arrive while the server restarts: the read is retried as every other request is.
        const blob = await this.untilOnline(`fetching the result of shard ${shards[index].id}`, ctx, () => os.getBlob(object));
        if (!blob) throw new AdvlabError('INTERNAL', `Shard ${shards[index].id}: its result ${object} is not in the Object Store`);
        const got = sha256Hex(blob);
        if (got !== sha256) throw new AdvlabError('INTERNAL', `Shard ${shards[index].id}: its result ${object} has sha256 ${got}, the worker stored ${sha256}`);
        results.set(index, decodePayload<ShardResultOf<T>>(blob));
        if (worker) this.ran.set(worker, (this.ran.get(worker) ?? 0) + 1);
        this.finished++;
        this.report();
        const total = totals.get(index);
        if (total !== undefined) progress(index, { step: total, total });
        checkDone();
      } catch (e) {
        fail(e as Error);
      } finally {
        fetching.delete(index);
      }
    };

    const onEvent = (ev: ClusterEvent) => {
      lastActivity = Date.now();
      if (ev.index >= shards.length || shards[ev.index].id !== ev.id) return; // not one of ours
      switch (ev.t) {
        case 'started':
          startedShards.add(ev.index);
          if (ev.attempt > 1) ctx.log(`shard ${ev.id}: attempt ${ev.attempt} on ${ev.worker}`);
          break;
        case 'result':
          void takeResult(ev.index, ev.object, ev.sha256, ev.worker);
          break;
        case 'retry':
          lastError.set(ev.index, ev.error);
          ctx.log(`shard ${ev.id} failed on ${ev.worker} (attempt ${ev.attempt}), retrying: ${ev.error.message}`);
          break;
        case 'failed':
          if (!results.has(ev.index)) fail(toError({ ...ev.error, message: `Shard ${ev.id} failed on ${ev.worker} (attempt ${ev.attempt}): ${ev.error.message}` }));
          break;
        case 'stopped':
          stoppedShards.add(ev.index);
          break;
      }
    };
    /**
     * After a cancel the run ends as the local pool's does: a running shard may still answer with a result
     * (an audio attack gives back what it found so far), so the run waits for every shard a worker started
     * to answer (result or stopped; at least CANCEL_SETTLE_MS for 'started' events in flight, at most
     * CANCEL_GRACE_MS), then returns the results if every shard has one, else fails with CancelledError.
     */
    const checkCancelled = () => {
      if (over || cancelledAt === null) return;
      const waited = Date.now() - cancelledAt;
      const answering = [...startedShards].some((i) => !results.has(i) && !stoppedShards.has(i)) || fetching.size > 0;
      if (waited >= CANCEL_GRACE_MS || (waited >= CANCEL_SETTLE_MS && !answering)) fail(new CancelledError());
    };

    // Listen before publishing: the run's events from its first one (an ordered consumer recreates itself after a server restart).
    const subs: Subscription[] = [];
    let events: ConsumerMessages | null = null;
    try {
      // Every batch of an attack is its own run: one can start right after a server restart, while JetStream is still
      // recovering its streams, so these requests are retried as the others are (a raw 'timeout' ended the job).
      const consumer = await this.untilOnline(`listening for the events of run ${run}`, ctx, () => this.js.consumers.get(NAMES.eventStream, { filter_subjects: NAMES.eventSubject(run) }));
      events = await this.untilOnline(`listening for the events of run ${run}`, ctx, () => consumer.consume());
      void (async () => {
        for await (const m of events!) {
          const parsed = clusterEventSchema.safeParse(safeJson(m.data));
          if (parsed.success) onEvent(parsed.data);
        }
      })().catch((e) => fail(new AdvlabError('INTERNAL', `The cluster's event stream broke: ${(e as Error).message}`)));
      subs.push(nc.subscribe(NAMES.progressSubject(run), {
        callback: (err, m) => {
          if (err) return;
          const p = clusterProgressSchema.safeParse(safeJson(m.data));
          if (!p.success || p.data.index >= shards.length || results.has(p.data.index)) return;
          lastActivity = Date.now();
          progress(p.data.index, p.data);
        },
      }));
      // A shard whose last delivery went unacknowledged (its worker died each time) is announced by the server.
      subs.push(nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${NAMES.shardStream}.${NAMES.workers}`, {
        callback: (err, m) => {
          if (err) return;
          const a = safeJson(m.data) as { stream_seq?: number; deliveries?: number } | undefined;
          const index = a?.stream_seq !== undefined ? seqToIndex.get(a.stream_seq) : undefined;
          if (index === undefined || results.has(index)) return;
          // Its result may be on its way (stored, then the ack was lost): look once more before failing.
          setTimeout(() => {
            if (results.has(index) || fetching.has(index)) return;
            const e = lastError.get(index);
            fail(new AdvlabError((e?.code as 'INTERNAL') ?? 'INTERNAL', `Shard ${shards[index].id} was delivered ${a!.deliveries ?? timings.maxDeliver} times (max-deliver) without a result; ${e ? `last error: ${e.message}` : 'its workers stopped answering (died or lost the server) each time'}`, { shard: shards[index].id, ...(e?.details ?? {}) }));
          }, 1000);
        },
      }));

      for (const [index, shard] of shards.entries()) {
        if (ctx.cancelled) throw new CancelledError();
        const task = await mapSpecs(shard.task, (s) => this.uploader.toObjectKey(s));
        const envelope: Record<string, unknown> = { v: 1, run, index, job: this.opts.job, type: shard.type, id: shard.id };
        const taskBytes = encodePayload(task);
        if (taskBytes.byteLength > INLINE_PAYLOAD_BYTES) {
          const name = taskObjectName(run, index);
          await this.untilOnline(`storing the task of shard ${shard.id}`, ctx, () => os.putBlob({ name }, taskBytes));
          Object.assign(envelope, { taskObject: name, taskSha256: sha256Hex(taskBytes) });
        } else envelope.task = task;
        // Idempotent (msgID): a publish lost to a server restart is sent again until the server is back or the offline bound passes.
        const ack = await this.untilOnline(`sending shard ${shard.id}`, ctx, () => this.js.publish(NAMES.shardSubject(run), encodePayload(envelope), { msgID: `${run}:${shard.id}`, timeout: 10_000 }));
        seqToIndex.set(ack.seq, index);
        this.sent++;
        this.report();
      }

      const watch = setInterval(() => {
        if (over) return;
        if (ctx.cancelled) {
          if (cancelledAt === null) {
            cancelledAt = Date.now();
            // Tell the workers (their shards stop within a step) and drop what nobody took yet.
            nc.publish(NAMES.cancelSubject(run), new Uint8Array());
            void jsm.streams.purge(NAMES.shardStream, { filter: NAMES.shardSubject(run) }).catch(() => undefined);
          }
          checkCancelled();
        } else if (this.disconnectedAt !== null && Date.now() - this.disconnectedAt > this.offlineMs) {
          fail(new AdvlabError('INTERNAL', `Lost the cluster at ${this.opts.auth.url} for ${Math.round((Date.now() - this.disconnectedAt) / 1000)} s (ADVLAB_CLUSTER_OFFLINE_MS ${this.offlineMs}); ${results.size} of ${shards.length} shards had finished`));
        } else if (Date.now() - lastActivity > this.stallMs) {
          fail(new AdvlabError('INTERNAL', `No worker took or advanced a shard for ${Math.round(this.stallMs / 1000)} s (ADVLAB_CLUSTER_STALL_MS); ${results.size} of ${shards.length} shards had finished. Is an \`advlab worker\` connected to ${this.opts.auth.url}?`));
        }
      }, 200);
      // Events are durable, but a result stored while its event was lost (the server went away between the two) is found here.
      const reconcile = setInterval(() => {
        if (over || this.disconnectedAt !== null) return;
        for (let i = 0; i < shards.length; i++) {
          if (results.has(i) || fetching.has(i)) continue;
          void os.info(resultObjectName(run, i)).then((info) => {
            const m = RESULT_DESCRIPTION.exec(info?.description ?? '');
            if (info && m) void takeResult(i, info.name, m[1], m[2] ?? null);
          }).catch(() => undefined);
        }
      }, Math.max(2000, timings.ackWaitMs));
      try {
        await finished;
      } finally {
        clearInterval(watch);
        clearInterval(reconcile);
      }
      return shards.map((_, i) => results.get(i)!);
    } catch (e) {
      if ((e instanceof CancelledError || over) && this.disconnectedAt === null) {
        // Tell the workers (their shards stop within a step) and drop what nobody took yet.
        nc.publish(NAMES.cancelSubject(run), new Uint8Array());
        await bounded(jsm.streams.purge(NAMES.shardStream, { filter: NAMES.shardSubject(run) }), 5000);
      }
      throw e;
    } finally {
      over = true;
      for (const s of subs) s.unsubscribe();
      await bounded(events?.close(), 1000);
      // The run's objects are its own: results and large tasks go; models stay (content-addressed, shared).
      // Without a server this is skipped (the bucket's TTL removes them), never waited for.
      if (this.disconnectedAt === null) {
        await bounded(Promise.allSettled(shards.flatMap((_, i) => [os.delete(resultObjectName(run, i)), os.delete(taskObjectName(run, i))])), 5000);
      }
    }
  }
}
