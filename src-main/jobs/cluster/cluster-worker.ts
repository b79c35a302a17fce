/**
 * `advlab worker`: pulls shards from the cluster's work queue and runs them with the engine's shard
 * handlers. Per shard: validate the envelope (known shard type, well-formed ClassifierSpecs, models by
 * object key only, the task's own schema), fetch the task if it is an object (sha256-checked) and the
 * models (cached by sha256), run it with a context whose checkpoint throws once the run is cancelled,
 * stream its progress, keep the ack alive with in-progress acks every ackWait/3, store the result once
 * (a shard redelivered after its result was stored is not run again) and only then ack it.
 *
 * Failures: a shard's own error (bad input, bad file...) fails its run at once; any other error is
 * retried on a later delivery (nak) until max-deliver, when the run fails with it; a worker that dies
 * leaves its shard unacked, and the server gives it to another worker after the ack wait.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import type { JobContext } from '../../engine/context';
import { AdvlabError, CancelledError, serializeError } from '../../engine/errors';
import type { Shard, ShardType } from '../../engine/shards/types';
import { decodePayload, encodePayload, sha256Hex } from './codec';
import { connectCluster, NAMES, type Cluster, type ClusterAuth, type ClusterTimings } from './connection';
import { PERMANENT_CODES, RESULT_DESCRIPTION, resultDescription } from './executor';
import { mapSpecs, ModelCache } from './models';
import { ConnectionWatch, offlineMsFromEnv, untilOnline, type OnlineOptions } from './online';
import { resultObjectName, shardEnvelopeSchema, type ClusterEvent, type ShardEnvelope, type WireError } from './protocol';
import { validateTask } from './validate';

/**
 * Runs one shard: on the worker's local pool (jobs/pool.ts: worker threads, so this thread stays free
 * to keep acks alive and hear a cancel while tensor work runs), or in place (tests). The shard stops
 * at its next step once cancelFlag's [0] is 1 (ctx.cancelled says the same).
 */
export type ShardRunner = (shard: Shard, ctx: JobContext, cancelFlag: SharedArrayBuffer) => Promise<unknown>;

export interface ClusterWorkerOptions {
  auth: ClusterAuth;
  /** Shards run at once. */
  concurrency: number;
  run: ShardRunner;
  /** Where models are cached (by sha256). */
  cacheDir: string;
  timings?: ClusterTimings;
  log?: (line: string) => void;
  /** How long a stopping worker lets its running shards finish before handing them back (default 30 s). */
  graceMs?: number;
  /** How long a request may keep failing (the server away or restarting) before the shard is given up (ADVLAB_CLUSTER_OFFLINE_MS, default 60 s). */
  offlineMs?: number;
}

/** Progress goes out at most this often per shard (and always its last step). */
const PROGRESS_EVERY_MS = 100;
/** How long cancelled run ids are remembered (a late delivery of their shards is dropped). */
const CANCELLED_TTL_MS = 3600_000;

export class ClusterWorker {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  private cluster!: Cluster;
  private js!: JetStreamClient;
  private cache!: ModelCache;
  private watch!: ConnectionWatch;
  private readonly cancelled = new Map<string, number>();
  private readonly running = new Map<string, { run: string; abort: () => void; msg: JsMsg }>();
  private readonly subs: Subscription[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];
  /** Shards finished by this worker (stored), for logs and tests. */
  done = 0;

  constructor(private readonly opts: ClusterWorkerOptions) {}

  private log(line: string): void {
    this.opts.log?.(`${new Date().toISOString().slice(11, 23)} [worker ${this.id}] ${line}`);
  }

  /**
   * A request of a shard's, retried while the server restarts (online.ts): a restart costs the shard a
   * pause, not its delivery (a finished shard's result is still stored and announced once the server is back).
   */
  private online<R>(what: string, op: () => Promise<R>, cancelled?: () => boolean): Promise<R> {
    const o: OnlineOptions = { url: this.opts.auth.url, offlineMs: this.opts.offlineMs ?? offlineMsFromEnv(), cancelled, closed: () => this.cluster.nc.isClosed(), reconnectedAt: () => this.watch.reconnectedAt, log: (l) => this.log(l) };
    return untilOnline(what, o, op);
  }

  async start(): Promise<void> {
    this.cluster = await connectCluster(this.opts.auth, { name: `advlab worker ${this.id}`, timings: this.opts.timings, worker: true });
    this.js = jetstream(this.cluster.nc, { timeout: 10_000 });
    this.cache = new ModelCache(this.cluster.os, this.opts.cacheDir, (what, op) => this.online(what, op));
    const { nc } = this.cluster;
    this.watch = new ConnectionWatch(nc, (event, downMs) => this.log(event === 'disconnect' ? `lost ${this.opts.auth.url}: reconnecting` : `${this.opts.auth.url} is back after ${(downMs / 1000).toFixed(1)} s`));
    this.subs.push(nc.subscribe(NAMES.cancelSubject('*'), {
      callback: (err, m) => {
        if (err) return;
        const run = m.subject.split('.').at(-1)!;
        this.cancelled.set(run, Date.now());
        for (const [, r] of this.running) if (r.run === run) r.abort();
      },
    }));
    this.subs.push(nc.subscribe(NAMES.pingSubject, {
      callback: (err, m) => {
        if (err || this.stopping) return;
        m.respond(JSON.stringify({ id: this.id, capacity: this.opts.concurrency, host: hostname(), pid: process.pid, running: this.running.size }));
      },
    }));
    const consumer = await this.js.consumers.get(NAMES.shardStream, NAMES.workers);
    this.log(`connected to ${this.opts.auth.url}: ${this.opts.concurrency} shard(s) at once, ack wait ${this.cluster.timings.ackWaitMs} ms, max-deliver ${this.cluster.timings.maxDeliver}`);
    this.loops = Array.from({ length: this.opts.concurrency }, async () => {
      while (!this.stopping) {
        let msg: JsMsg | null = null;
        try {
          msg = await consumer.next({ expires: 2000 });
        } catch (e) {
          if (this.stopping) break;
          this.log(`pull failed (${(e as Error).message}); retrying`);
          await sleep(1000);
          continue;
        }
        if (!msg) continue;
        if (this.stopping) {
          msg.nak();
          break;
        }
        await this.handle(msg);
      }
    });
  }

  /** Stops pulling, lets running shards finish within graceMs, hands the others back (nak) and disconnects. */
  async stop(graceMs = this.opts.graceMs ?? 30_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const all = Promise.all(this.loops);
    const timer = new Promise<'late'>((ok) => setTimeout(() => ok('late'), graceMs).unref());
    if ((await Promise.race([all, timer])) === 'late') {
      for (const [, r] of this.running) r.msg.nak();
    }
    for (const s of this.subs) s.unsubscribe();
    await this.cluster.close();
  }

  private isCancelled(run: string): boolean {
    const now = Date.now();
    for (const [k, t] of this.cancelled) if (now - t > CANCELLED_TTL_MS) this.cancelled.delete(k);
    return this.cancelled.has(run);
  }

  private async event(run: string, ev: ClusterEvent, msgID?: string): Promise<void> {
    await this.js.publish(NAMES.eventSubject(run), JSON.stringify(ev), { timeout: 10_000, ...(msgID ? { msgID } : {}) });
  }

  private async handle(msg: JsMsg): Promise<void> {
    const attempt = msg.info.deliveryCount;
    let env: ShardEnvelope;
    try {
      const parsed = shardEnvelopeSchema.safeParse(decodePayload(msg.data));
      if (!parsed.success) throw new AdvlabError('BAD_INPUT', `${parsed.error.issues[0]?.path.join('.') || 'envelope'}: ${parsed.error.issues[0]?.message}`);
      env = parsed.data as ShardEnvelope;
    } catch (e) {
      // Not a shard we can read: nobody can, and there is no run to tell.
      this.log(`refused a message (${(e as Error).message})`);
      msg.term();
      return;
    }
    const { run, index, id } = env;
    const base = { index, id, worker: this.id, attempt };
    if (this.isCancelled(run)) {
      msg.term();
      return;
    }
    const resultName = resultObjectName(run, index);
    const { os, timings } = this.cluster;
    // Stored already (a redelivery after the ack was lost): tell the run again, ack, do not run it twice.
    const stored = await this.online(`looking for the stored result of ${id}`, () => os.info(resultName)).catch(() => null);
    const known = RESULT_DESCRIPTION.exec(stored?.description ?? '');
    if (stored && known) {
      await this.online(`announcing the stored result of ${id}`, () => this.event(run, { t: 'result', ...base, object: resultName, sha256: known[1], bytes: stored.size, ms: 0 }, `result:${run}:${index}`)).catch(() => undefined);
      await msg.ackAck().catch(() => undefined);
      return;
    }
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const isAborted = () => Atomics.load(flag, 0) === 1;
    const key = `${run}/${index}`;
    this.running.set(key, { run, msg, abort: () => Atomics.store(flag, 0, 1) });
    const keepAlive = setInterval(() => msg.working(), Math.max(250, Math.floor(timings.ackWaitMs / 3)));
    let lastSent = 0;
    const t0 = performance.now();
    try {
      await this.online(`announcing the start of ${id}`, () => this.event(run, { t: 'started', ...base }), isAborted);
      this.log(`${id}: started (run ${run}, attempt ${attempt})`);
      let task: unknown;
      if (env.taskObject !== undefined) {
        const name = env.taskObject;
        const blob = await this.online(`fetching the task of ${id}`, () => os.getBlob(name), isAborted);
        if (!blob) throw new AdvlabError('NOT_FOUND', `The task object ${env.taskObject} is gone`);
        if (sha256Hex(blob) !== env.taskSha256) throw new AdvlabError('BAD_FILE', `The task object ${env.taskObject} does not match its sha256`);
        task = decodePayload(blob);
      } else task = env.task;
      validateTask(env.type, task);
      task = await mapSpecs(task, (s) => this.cache.toLocalPath(s));
      const ctx: JobContext = {
        progress: (p) => {
          const now = performance.now();
          if (now - lastSent < PROGRESS_EVERY_MS && p.step < p.total) return;
          lastSent = now;
          this.cluster.nc.publish(NAMES.progressSubject(run), JSON.stringify({ index, worker: this.id, step: p.step, total: p.total, phase: p.phase, metrics: p.metrics }));
        },
        checkpoint: () => {
          if (isAborted()) throw new CancelledError();
        },
        get cancelled() {
          return isAborted();
        },
        log: (m) => this.log(`${id}: ${m}`),
      };
      // A result is stored even when the run was cancelled meanwhile: a shard that answers a cancel with
      // what it found so far (the audio attack's partial result) gives it to the job, as on the local pool.
      const result = await this.opts.run({ type: env.type as ShardType, id, task } as Shard, ctx, flag.buffer as SharedArrayBuffer);
      const bytes = encodePayload(result);
      const sha = sha256Hex(bytes);
      // Stored once: another delivery of this shard may have stored it meanwhile (it is the same result).
      // Idempotent, so a server restart here only delays it: the work done is not thrown away.
      await this.online(`storing the result of ${id}`, async () => {
        if (!(await os.info(resultName))) await os.putBlob({ name: resultName, description: resultDescription(sha, this.id) }, bytes);
      });
      const ms = performance.now() - t0;
      await this.online(`announcing the result of ${id}`, () => this.event(run, { t: 'result', ...base, object: resultName, sha256: sha, bytes: bytes.byteLength, ms }, `result:${run}:${index}`));
      // The result is stored and announced: a lost ack only means a redelivery, which finds it stored and runs nothing.
      await msg.ackAck().catch((e: Error) => this.log(`${id}: stored, but its ack was lost (${e.message}); a redelivery will find the result stored`));
      this.done++;
      this.log(`${id}: done in ${Math.round(performance.now() - t0)} ms (run ${run}, attempt ${attempt})`);
    } catch (e) {
      if (e instanceof CancelledError || isAborted()) {
        msg.term();
        await this.event(run, { t: 'stopped', ...base }).catch(() => undefined);
        this.log(`${id}: stopped (run ${run} cancelled, attempt ${attempt})`);
        return;
      }
      const error = serializeError(e) as WireError;
      const permanent = PERMANENT_CODES.has(error.code);
      const last = attempt >= timings.maxDeliver;
      this.log(`${id}: ${permanent || last ? 'failed' : 'will retry'} (attempt ${attempt}): ${error.message}`);
      if (permanent || last) {
        msg.term();
        await this.event(run, { t: 'failed', ...base, error }).catch(() => undefined);
      } else {
        msg.nak(1000);
        await this.event(run, { t: 'retry', ...base, error }).catch(() => undefined);
      }
    } finally {
      clearInterval(keepAlive);
      this.running.delete(key);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

