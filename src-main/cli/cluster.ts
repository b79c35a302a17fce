/**
 * The cluster on the command line: `--queue nats://host:4222` (with --token, --user/--pass or
 * --creds, or ADVLAB_NATS_TOKEN / ADVLAB_NATS_USER / ADVLAB_NATS_PASS / ADVLAB_NATS_CREDS so that a
 * secret need not appear in the process list) sends a job's shards to the cluster, and
 * `advlab worker --nats URL` is a worker that runs them.
 */
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { badInput } from '../engine/errors';
import { clusterAuthSchema, type ClusterAuth } from '../jobs/cluster/connection';
import { appDataDir } from '../paths';
import type { Command, CliContext } from './context';

/** Credentials, shared by --queue (submitting) and advlab worker --nats. */
export const CREDENTIAL_OPTIONS = {
  token: { type: 'string' },
  user: { type: 'string' },
  pass: { type: 'string' },
  creds: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** What a command that can send its shards to the cluster accepts. */
export const QUEUE_OPTIONS = { queue: { type: 'string' }, ...CREDENTIAL_OPTIONS } as const satisfies ParseArgsConfig['options'];
export const QUEUE_USAGE = '[--queue nats://HOST:4222 (--token T | --user U --pass P | --creds FILE)]';

/** The cluster a URL and credentials name (flags first, then ADVLAB_NATS_*), checked: no anonymous access. */
export function clusterAuth(url: string, v: { token?: string; user?: string; pass?: string; creds?: string }, env: NodeJS.ProcessEnv = process.env): ClusterAuth {
  const auth = {
    url,
    token: v.token ?? env.ADVLAB_NATS_TOKEN,
    user: v.user ?? env.ADVLAB_NATS_USER,
    pass: v.pass ?? env.ADVLAB_NATS_PASS,
    creds: v.creds !== undefined ? resolve(v.creds) : env.ADVLAB_NATS_CREDS,
  };
  const clean = Object.fromEntries(Object.entries(auth).filter(([, x]) => x !== undefined && x !== ''));
  const parsed = clusterAuthSchema.safeParse(clean);
  if (!parsed.success) throw badInput(`--queue/--nats: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** The cluster of a command's arguments (--queue and its credentials), or undefined when it runs here. */
export function queueFromArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ClusterAuth | undefined {
  const { values } = parseArgs({ args, strict: false, options: QUEUE_OPTIONS });
  if (values.queue === undefined) return undefined;
  if (typeof values.queue !== 'string' || values.queue === '') throw badInput('--queue needs a NATS URL, e.g. nats://host:4222');
  return clusterAuth(values.queue, values as Record<string, string | undefined>, env);
}

export const worker: Command = {
  summary: 'run shards of other machines\' jobs: pull them from a NATS JetStream cluster until stopped (SIGTERM/Ctrl-C)',
  usage: 'advlab worker --nats nats://HOST:4222 (--token T | --user U --pass P | --creds FILE) [--workers N (shards at once on this machine\'s pool, default: its cores)] [--cache DIR] [--backend NAME] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({ nats: { type: 'string' }, workers: { type: 'string' }, cache: { type: 'string' }, ...CREDENTIAL_OPTIONS });
    if (!v.nats) throw badInput('--nats is required: the cluster\'s URL, e.g. nats://host:4222');
    const auth = clusterAuth(v.nats, v);
    const { defaultPoolSize, parseWorkers } = await import('../jobs/pool');
    const concurrency = parseWorkers(v.workers, '--workers') ?? parseWorkers(process.env.ADVLAB_WORKERS, 'ADVLAB_WORKERS') ?? defaultPoolSize();
    const { ClusterWorker } = await import('../jobs/cluster/cluster-worker');
    const { ShardPool } = await import('../jobs/pool');
    // The shards run on a local pool of engine threads, one per shard at once: this thread only talks to the cluster.
    const backendName = v.backend ?? process.env.ADVLAB_BACKEND;
    const pool = new ShardPool({ size: concurrency, backend: backendName });
    const w = new ClusterWorker({
      auth,
      concurrency,
      run: (shard, ctx, cancelFlag) => pool.run(`cluster-worker`, shard, cancelFlag, (p) => ctx.progress(p)),
      cacheDir: v.cache ? resolve(v.cache) : process.env.ADVLAB_CLUSTER_CACHE ?? join(appDataDir(), 'cluster-cache', 'models'),
      log: (line) => process.stderr.write(line + '\n'),
    });
    await w.start();
    process.stderr.write(`advlab worker ${w.id} ready on ${auth.url} (${concurrency} at once on its pool, backend ${backendName ?? 'auto'})\n`);
    const signal = await new Promise<NodeJS.Signals>((ok) => {
      process.once('SIGINT', ok);
      process.once('SIGTERM', ok);
    });
    process.stderr.write(`${signal}: stopping (running shards finish or go back to the queue)\n`);
    const again = () => process.exit(signal === 'SIGINT' ? 130 : 143);
    process.once('SIGINT', again);
    process.once('SIGTERM', again);
    await w.stop();
    await pool.close();
    c.out.result({ worker: w.id, url: auth.url, shards: w.done, signal }, `worker ${w.id} stopped after ${w.done} shard(s)`);
    return 0;
  },
};
