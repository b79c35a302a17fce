/**
 * `advlab bench --suite cluster` (issue 17): a 16-cell study (1 model x 2 attacks x 8 epsilons, 4
 * shards per cell) through a real nats-server on this machine with 1 and then 2 `advlab worker`
 * processes (one pool thread each), the same study both times (its cells' examples.json must be
 * identical: asserted), and the queue's round trip per shard: a one-image FGSM shard submitted alone,
 * publish to result, median and 90th percentile over 30.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliContext } from './context';
import type { JobInfo } from '../api/contract';

import type { BenchRow as Row } from './bench-row';

/** bin/advlab.mjs, from the built CLI (out/main/cli.js). */
const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/advlab.mjs');

function load(): string {
  const [a, b, c] = loadavg();
  return `load ${a.toFixed(2)} ${b.toFixed(2)} ${c.toFixed(2)}`;
}

function startWorker(url: string, token: string, cache: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'worker', '--nats', url, '--token', token, '--workers', '1', '--cache', cache], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`advlab worker not ready in 60 s:\n${log}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += String(d);
      if (/ready on/.test(log)) {
        clearTimeout(timer);
        ok(child);
      }
    });
    child.once('exit', (code) => fail(new Error(`advlab worker exited (${code}):\n${log}`)));
  });
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  await exited;
}

function runStudy(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ wall: number; json: Record<string, unknown> }> {
  const t = performance.now();
  const child = spawn(process.execPath, [BIN, 'study', file, ...args, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => (out += String(d)));
  child.stderr!.on('data', (d: Buffer) => (err += String(d)));
  return new Promise((ok, fail) => {
    child.once('exit', (code) => {
      const wall = (performance.now() - t) / 1000;
      if (code !== 0) return fail(new Error(`advlab study exited ${code}:\n${err.slice(-2000)}`));
      ok({ wall, json: JSON.parse(out.trim().split('\n').at(-1)!) });
    });
  });
}

export async function clusterSuite(c: CliContext, quick: boolean): Promise<{ rows: Row[]; backend: string }> {
  const { startLocalNatsServer } = await import('../jobs/cluster/local-server');
  const { NatsShardExecutor } = await import('../jobs/cluster/executor');
  const { modelSha256 } = await import('../engine/models/io');
  const { loadDataset } = await import('../engine/data/registry');
  const app = c.app();
  const sessionsRoot = app.core.opts.sessionsRoot;
  // The model: a small MLP trained here in seconds (the shards' work is the attack, not the model).
  c.out.info('cluster bench: training the model (mlp, MNIST, 1 epoch on 3,000 images)...');
  const trained = (await c.runJob('train', { dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 3000, testLimit: 200, validationSplit: 0, name: 'bench cluster: model', tags: ['bench'] })) as JobInfo<'train'>;
  if (trained.state !== 'finished') throw new Error(`training failed: ${trained.error?.message}`);
  const modelJson = String((trained.result as { model: string }).model);

  const server = await startLocalNatsServer();
  const tmp = mkdtempSync(join(tmpdir(), 'advlab-bench-cluster-'));
  const env = { ...process.env, ADVLAB_SESSIONS: sessionsRoot };
  const workers: ChildProcess[] = [];
  const rows: Row[] = [];
  try {
    const n = quick ? 16 : 64, batchSize = n / 4;
    const epsilons = [0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3];
    const studyFile = join(tmp, 'study.json');
    writeFileSync(studyFile, JSON.stringify({
      name: 'bench cluster', dataset: 'mnist', n, batchSize, saveExamples: 0, tags: ['bench'], models: [modelJson],
      attacks: [{ attack: 'pgd', params: { steps: quick ? 10 : 40, seed: 1 } }, { attack: 'bim', params: { steps: quick ? 10 : 20 } }],
      grid: { eps: epsilons },
    }));
    const queue = ['--queue', server.url, '--token', server.token, '--max-jobs', '4', '--sessions', sessionsRoot];
    const runs: { workers: number; wall: number; examples: string[] }[] = [];
    for (const count of [1, 2]) {
      while (workers.length < count) workers.push(await startWorker(server.url, server.token, join(tmp, `cache-${workers.length}`), env));
      c.out.info(`cluster bench: 16-cell study with ${count} worker process(es)...`);
      const { wall, json } = await runStudy(studyFile, queue, env);
      const sessions = (json.rows as { session: string }[]).map((r) => r.session);
      runs.push({ workers: count, wall, examples: sessions.map((s) => readFileSync(join(sessionsRoot, s, 'artifacts', 'examples.json'), 'utf8')) });
      c.out.info(`  ${count} worker(s): ${wall.toFixed(1)} s`);
    }
    const [one, two] = runs;
    const same = one.examples.every((e, i) => e === two.examples[i]);
    if (!same) throw new Error('the study\'s examples.json differ between 1 and 2 workers (the cluster must not change per-example results)');
    const shards = 16 * 4;
    rows.push({
      suite: 'cluster', benchmark: `16-cell study (PGD and BIM x 8 eps, n=${n} in 4 shards each: ${shards} shards) through nats-server, 1 vs 2 advlab worker processes (1 pool thread each) on this machine (${load()})`,
      metric: 'seconds 1 / 2 workers, speedup (identical results)', value: `${one.wall.toFixed(1)} / ${two.wall.toFixed(1)} s, ${(one.wall / two.wall).toFixed(2)}x`,
    });

    // Round trip: one tiny shard at a time (model cached on the workers after the first).
    const image = await loadDataset('mnist', { dataDirs: app.core.opts.dataDirs, split: 'test', limit: 1 });
    const x = { images: image.images, labels: Int32Array.from(image.labels) };
    const ctx = { cancelled: false, log: () => undefined };
    const executor = await NatsShardExecutor.open({ auth: { url: server.url, token: server.token }, job: 'bench-rtt', ctx });
    const times: number[] = [];
    try {
      const spec = { kind: 'saved' as const, modelJson, sha256: await modelSha256(modelJson), gradient: 'real' as const };
      for (let i = 0; i < 31; i++) {
        const t = performance.now();
        await executor.run([{ type: 'attack-batch', id: `rtt/${i}`, task: { classifier: spec, attack: 'fgsm', params: { eps: 0.1 }, images: x.images, shape: [1, 28, 28, 1], labels: x.labels, targets: null, batch: 0 } }]);
        if (i > 0) times.push(performance.now() - t); // the first uploads the model
      }
    } finally {
      await executor.close();
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    rows.push({
      suite: 'cluster', benchmark: `queue round trip of one shard (1-image FGSM, model cached), submit to result, ${times.length} in a row (${load()})`,
      metric: 'median / p90 ms', value: `${q(0.5).toFixed(1)} / ${q(0.9).toFixed(1)} ms`,
    });
    return { rows, backend: 'wasm' };
  } finally {
    for (const w of workers) await stopWorker(w);
    await server.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
}
