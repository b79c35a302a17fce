/**
 * `advlab bench`: fixed benchmark suites run through the same jobs as the GUI and the CLI, with the
 * results appended as dated rows to BENCHMARKS.md (machine, backend, numbers). Targets live here and
 * in BENCHMARKS.md, never in unit tests.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { CliContext, Command } from './index';
import { badInput } from '../engine/errors';
import type { JobInfo } from '../api/contract';

type Row = { suite: string; benchmark: string; metric: string; value: string; target?: string; met?: boolean };

function machine(): string {
  const cpu = cpus()[0]?.model?.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${cpus().length} cores ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}-${process.arch}, Node ${process.version}`;
}

function ok(info: JobInfo): Record<string, unknown> {
  if (info.state !== 'finished') throw new Error(`${info.kind} job ${info.state}: ${info.error?.message ?? ''}`);
  return info.result as Record<string, unknown>;
}

const HEADER = `# Benchmarks

Rows are appended by \`advlab bench\` (one row per measurement, dated, with the machine and the engine
backend). Targets come from the issues; "met" says whether this run reached them.

| date | machine | backend | suite | benchmark | metric | value | target | met |
|---|---|---|---|---|---|---|---|---|
`;

export function appendRows(file: string, rows: Row[], backend: string): void {
  if (!existsSync(file) || !readFileSync(file, 'utf8').includes('| date | machine |')) {
    writeFileSync(file, (existsSync(file) ? readFileSync(file, 'utf8') + '\n' : '') + HEADER);
  }
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const m = machine();
  appendFileSync(file, rows.map((r) => `| ${date} | ${m} | ${backend} | ${r.suite} | ${r.benchmark} | ${r.metric} | ${r.value} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |\n`).join(''));
}

const f = (v: unknown, d = 3) => (typeof v === 'number' ? v.toFixed(d) : String(v));
const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)}%` : String(v));

async function trainSuite(c: CliContext, quick: boolean): Promise<{ rows: Row[]; backend: string }> {
  const rows: Row[] = [];
  let backend = '';
  for (const arch of ['small-cnn', 'cw-mnist']) {
    const r = ok(await c.runJob('train', { dataset: 'mnist', arch, epochs: 1, batchSize: 100, limit: quick ? 500 : 3000, testLimit: 100, validationSplit: 0, name: `bench: ${arch} throughput`, tags: ['bench'] }));
    backend = String(r.backend);
    rows.push({ suite: 'train', benchmark: `${arch} training throughput (batch 100, MNIST)`, metric: 'images/s', value: f(r.imagesPerSecond, 0) });
  }
  const r = ok(await c.runJob('train', { dataset: 'fashion-mnist', arch: 'cw-mnist', epochs: 1, batchSize: 100, validationSplit: 0, ...(quick ? { limit: 2000, testLimit: 500 } : {}), name: 'bench: cw-mnist, 1 epoch of Fashion-MNIST', tags: ['bench'] }));
  rows.push({ suite: 'train', benchmark: `cw-mnist, 1 epoch on ${quick ? '2,000' : 'all 60,000'} Fashion-MNIST images`, metric: 'test accuracy', value: pct(r.testAccuracy) });
  rows.push({ suite: 'train', benchmark: `cw-mnist, 1 epoch on ${quick ? '2,000' : 'all 60,000'} Fashion-MNIST images`, metric: 'seconds', value: f(r.seconds, 0) });
  return { rows, backend };
}

async function benchModel(c: CliContext, quick: boolean): Promise<{ id: string; accuracy: number }> {
  const store = c.app().store;
  const tag = quick ? 'bench-model-quick' : 'bench-model';
  const existing = (await store.list({ tag, status: 'finished' }))[0];
  if (existing && typeof existing.summary.testAccuracy === 'number') return { id: existing.id, accuracy: existing.summary.testAccuracy };
  c.out.info(`training the benchmark model (cw-mnist on MNIST's first 8,000 test images; evaluated on the other 2,000)...`);
  const r = ok(await c.runJob('train', {
    dataset: 'mnist', arch: 'cw-mnist', epochs: quick ? 1 : 10, batchSize: 100, learningRate: 0.001, validationSplit: 0.1,
    earlyStopPatience: quick ? 0 : 3, ...(quick ? { limit: 1000, testLimit: 500 } : {}), name: 'bench: cw-mnist on MNIST', tags: ['bench', tag],
  }));
  return { id: String(r.session), accuracy: Number(r.testAccuracy) };
}

async function attackSuite(c: CliContext, quick: boolean): Promise<{ rows: Row[]; backend: string }> {
  const model = await benchModel(c, quick);
  const rows: Row[] = [{ suite: 'attacks', benchmark: 'cw-mnist clean accuracy (held-out MNIST)', metric: 'accuracy', value: pct(model.accuracy), target: '>= 97%', met: model.accuracy >= 0.97 }];
  const n = quick ? 10 : 100;
  const base = { model: model.id, dataset: 'mnist', split: 'test', n, seed: 0, saveExamples: 8, tags: ['bench'] };
  const run = async (attack: string, goal: unknown, params: Record<string, unknown>, label: string) => {
    const r = ok(await c.runJob('attack', { ...base, attack, goal, params, name: `bench: ${label}` }));
    return r;
  };
  const fgsm = await run('fgsm', { kind: 'untargeted' }, { eps: 0.3 }, 'FGSM eps=0.3');
  rows.push({ suite: 'attacks', benchmark: 'FGSM Linf eps=0.3 untargeted', metric: 'success / mean L2 / ms per example', value: `${pct(fgsm.successRate)} / ${f(fgsm.meanL2)} / ${f(fgsm.msPerExample, 1)}` });
  const pgd = await run('pgd', { kind: 'untargeted' }, { eps: 0.3, steps: 40, randomStart: true }, 'PGD-40 eps=0.3');
  rows.push({ suite: 'attacks', benchmark: 'PGD-40 Linf eps=0.3 untargeted', metric: 'success / mean L2 / ms per example', value: `${pct(pgd.successRate)} / ${f(pgd.meanL2)} / ${f(pgd.msPerExample, 1)}`, target: 'success 100%', met: pgd.successRate === 1 });
  const cw = await run('cw-l2', { kind: 'targeted', target: 'next' }, quick ? { binarySearchSteps: 3, maxIterations: 100 } : { binarySearchSteps: 9, maxIterations: 1000, abortEarly: true }, 'C&W L2 targeted next');
  const cwOk = cw.successRate === 1 && typeof cw.meanL2 === 'number' && cw.meanL2 <= 1.9;
  rows.push({ suite: 'attacks', benchmark: `C&W L2 targeted (next), ${quick ? '3x100' : '9 search steps x 1000 iterations, abort early'}`, metric: 'success / mean L2 / seconds', value: `${pct(cw.successRate)} / ${f(cw.meanL2)} / ${f(cw.seconds, 1)}`, target: 'success 100%, mean L2 <= 1.9 (paper 1.76)', met: cwOk });
  const ddn = await run('ddn', { kind: 'targeted', target: 'next' }, { steps: quick ? 50 : 300 }, 'DDN targeted next');
  const within = typeof ddn.meanL2 === 'number' && typeof cw.meanL2 === 'number' ? ddn.meanL2 <= 1.1 * cw.meanL2 : false;
  const faster = Number(ddn.seconds) <= Number(cw.seconds) / 10;
  rows.push({ suite: 'attacks', benchmark: `DDN L2 targeted (next), ${quick ? 50 : 300} steps`, metric: 'success / mean L2 / seconds', value: `${pct(ddn.successRate)} / ${f(ddn.meanL2)} / ${f(ddn.seconds, 1)}`, target: 'mean L2 within 10% of C&W in <= 1/10 of its time', met: within && faster });
  return { rows, backend: String(cw.backend) };
}

/** A trained speech model: --speech-model, else the last finished bench speech session, else train one. */
async function speechModel(c: CliContext, quick: boolean, given?: string): Promise<{ path: string; cer: unknown; cerUnseen: unknown; arch: unknown; trained: boolean; seconds?: unknown }> {
  if (given) return { path: resolve(given), cer: null, cerUnseen: null, arch: null, trained: false };
  const store = c.app().store;
  const tag = quick ? 'bench-speech-quick' : 'bench-speech';
  const existing = (await store.list({ tag, status: 'finished', kind: 'audio-train' }))[0];
  if (existing) return { path: resolve(store.dir(existing.id), 'artifacts', String(existing.summary.model)), cer: existing.summary.cer, cerUnseen: existing.summary.cerUnseen, arch: existing.summary.arch, trained: false };
  c.out.info(`training the benchmark speech model (${quick ? 'quick' : 'speech-base, 20 epochs'})...`);
  const r = ok(await c.runJob('audio-train', { quick, name: 'bench: speech model', tags: ['bench', tag] }));
  return { path: String(r.model), cer: r.cer, cerUnseen: r.cerUnseen, arch: r.arch, trained: true, seconds: r.seconds };
}

async function audioSuite(c: CliContext, quick: boolean, given?: string): Promise<{ rows: Row[]; backend: string }> {
  const m = await speechModel(c, quick, given);
  const rows: Row[] = [];
  if (typeof m.cer === 'number') {
    rows.push({ suite: 'audio', benchmark: `${m.arch} on FSDD utterances, held-out clips of seen speakers`, metric: 'CER', value: pct(m.cer), target: '<= 10%', met: m.cer <= 0.1 });
    if (typeof m.cerUnseen === 'number') rows.push({ suite: 'audio', benchmark: `${m.arch}, unseen speaker`, metric: 'CER', value: pct(m.cerUnseen) });
  }
  // The attack runs in this process (no UI thread here), on the same engine code as the audio-attack job.
  const { initBackend } = await import('../engine/backend');
  const { audioBenchmark } = await import('../engine/audio/bench');
  const backend = await initBackend(process.env.ADVLAB_BACKEND);
  const r = await audioBenchmark({
    model: m.path, clips: quick ? 2 : 10, iterations: quick ? 200 : 1000,
    onAttack: (row) => c.out.info(`  ${row.clip}: "${row.transcriptBefore}" -> target "${row.target}": ${row.success ? 'success' : 'failed'} ("${row.transcriptAfter}"), dB_x ${row.dbx?.toFixed(1) ?? 'n/a'}, ${row.seconds.toFixed(0)} s`),
  });
  rows.push({ suite: 'audio', benchmark: `targeted audio attack, ${r.clips} held-out clips x (digit phrase, non-digit phrase), ${r.iterations} iterations`, metric: 'success (digits / phrases)', value: `${pct(r.successRate)} (${pct(r.successRateDigits)} / ${pct(r.successRatePhrase)})`, target: '100%', met: r.successRate === 1 });
  rows.push({ suite: 'audio', benchmark: 'targeted audio attack, distortion of successful examples after 16-bit quantisation', metric: 'mean / median / worst dB_x', value: `${f(r.meanDbx, 1)} / ${f(r.medianDbx, 1)} / ${f(r.maxDbx, 1)} dB`, target: 'mean <= -30 dB (paper: -31 dB on DeepSpeech)', met: typeof r.meanDbx === 'number' && r.meanDbx <= -30 });
  rows.push({ suite: 'audio', benchmark: `targeted audio attack, mean clip ${r.meanClipSeconds.toFixed(2)} s`, metric: 'seconds per clip (both targets)', value: f(r.secondsPerClip, 0) });
  return { rows, backend: backend.name };
}

export const bench: Command = {
  summary: 'run the benchmark suites and append dated rows to BENCHMARKS.md',
  usage: 'advlab bench [--suite train|attacks|audio|all] [--quick] [--speech-model PATH] [--file BENCHMARKS.md] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({ suite: { type: 'string' }, quick: { type: 'boolean' }, file: { type: 'string' }, 'speech-model': { type: 'string' } });
    const suite = v.suite ?? 'all';
    const suites: Record<string, (c: CliContext, quick: boolean) => Promise<{ rows: Row[]; backend: string }>> = { train: trainSuite, attacks: attackSuite, audio: (cc, q) => audioSuite(cc, q, v['speech-model']) };
    const chosen = suite === 'all' ? Object.keys(suites) : [suite];
    for (const s of chosen) if (!suites[s]) throw badInput(`Unknown suite "${s}" (train, attacks, audio, all)`);
    const file = resolve(v.file ?? 'BENCHMARKS.md');
    const all: Row[] = [];
    for (const s of chosen) {
      const { rows, backend } = await suites[s](c, v.quick ?? false);
      appendRows(file, rows, backend);
      all.push(...rows);
      for (const r of rows) c.out.info(`${r.benchmark}: ${r.metric} ${r.value}${r.target ? ` (target ${r.target}: ${r.met ? 'met' : 'NOT met'})` : ''}`);
    }
    c.out.result({ file, machine: machine(), host: hostname(), rows: all });
    return 0;
  },
};
