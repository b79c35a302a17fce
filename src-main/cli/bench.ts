/**
 * `advlab bench`: fixed benchmark suites run through the same jobs as the GUI and the CLI, with the
 * results appended as dated rows to BENCHMARKS.md (machine, backend, numbers). Targets live here and
 * in BENCHMARKS.md, never in unit tests.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { CliContext, Command } from './context';
import { badInput } from '../engine/errors';
import type { JobInfo } from '../api/contract';
import type { JobParamsOf } from '../api/jobs';
import { audioTargetsSuite, type AudioTargetsFlags } from './bench-audio-targets';
import { clusterSuite } from './bench-cluster';
import { initBackend } from '../engine/backend';
import { loadDataset, starterModels } from '../engine/data';
import { loadModel } from '../engine/models';
import { benchEngines } from '../engine/onnx/bench';
import { ortStatus } from '../engine/onnx/runtime';
import { resolveAppOptions } from '../host/app';
import { locateModel } from '../jobs/model-ref';

import type { BenchRow as Row } from './bench-row';

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
    const r = ok(await c.runJob('train', { dataset: 'mnist', arch, epochs: 1, batchSize: 100, limit: quick ? 500 : 3000, testLimit: 100, validationSplit: 0, engine: 'tfjs', name: `bench: ${arch} throughput`, tags: ['bench'] }));
    backend = String(r.backend);
    rows.push({ suite: 'train', benchmark: `${arch} training throughput (batch 100, MNIST)`, metric: 'images/s', value: f(r.imagesPerSecond, 0) });
  }
  const r = ok(await c.runJob('train', { dataset: 'fashion-mnist', arch: 'cw-mnist', epochs: 1, batchSize: 100, validationSplit: 0, engine: 'tfjs', ...(quick ? { limit: 2000, testLimit: 500 } : {}), name: 'bench: cw-mnist, 1 epoch of Fashion-MNIST', tags: ['bench'] }));
  rows.push({ suite: 'train', benchmark: `cw-mnist, 1 epoch on ${quick ? '2,000' : 'all 60,000'} Fashion-MNIST images`, metric: 'test accuracy', value: pct(r.testAccuracy) });
  rows.push({ suite: 'train', benchmark: `cw-mnist, 1 epoch on ${quick ? '2,000' : 'all 60,000'} Fashion-MNIST images`, metric: 'seconds', value: f(r.seconds, 0) });
  return { rows, backend };
}

/** The tag that marks the attacks suite's cw-mnist (full or quick) in the store. */
const benchModelTag = (quick: boolean) => (quick ? 'bench-model-quick' : 'bench-model');

/** The attacks suite's cw-mnist, if this store has one trained on MNIST's own training file. */
async function existingBenchModel(c: CliContext, quick: boolean): Promise<{ id: string; accuracy: number } | null> {
  const store = c.app().store;
  const tag = benchModelTag(quick);
  // Reuse a benchmark model only if it was trained on MNIST's own training file (the standard
  // protocol); one trained on a split of the test file, before MNIST had a training file, is not.
  for (const existing of await store.list({ tag, status: 'finished' })) {
    const m = await store.manifest(existing.id);
    const onTrainFile = m.datasets.some((d) => d.split === 'train' && /its own train files/.test(String(d.description ?? '')));
    if (onTrainFile && typeof existing.summary.testAccuracy === 'number') return { id: existing.id, accuracy: existing.summary.testAccuracy };
  }
  return null;
}

async function benchModel(c: CliContext, quick: boolean): Promise<{ id: string; accuracy: number }> {
  const existing = await existingBenchModel(c, quick);
  if (existing) return existing;
  c.out.info(`training the benchmark model (cw-mnist on MNIST's training file; evaluated on its test images)...`);
  // Full: the paper's recipe (Carlini & Wagner's train_models.py: SGD, Nesterov momentum 0.9, lr 0.01, decay 1e-6, batch 128,
  // dropout 0.5, up to 50 epochs), here until the validation loss stops improving for 4 epochs.
  // Quick: one Adam epoch on 1,000 images, a smoke run.
  const recipe = quick
    ? { epochs: 1, batchSize: 100, learningRate: 0.001, earlyStopPatience: 0, limit: 1000, testLimit: 500 }
    : { epochs: 50, batchSize: 128, learningRate: 0.01, optimizer: 'momentum' as const, nesterov: true, decay: 1e-6, dropout: 0.5, earlyStopPatience: 4 };
  const r = ok(await c.runJob('train', { dataset: 'mnist', arch: 'cw-mnist', validationSplit: 0.1, ...recipe, name: 'bench: cw-mnist on MNIST', tags: ['bench', benchModelTag(quick)] }));
  return { id: String(r.session), accuracy: Number(r.testAccuracy) };
}

async function attackSuite(c: CliContext, quick: boolean): Promise<{ rows: Row[]; backend: string }> {
  const model = await benchModel(c, quick);
  const rows: Row[] = [{ suite: 'attacks', benchmark: `cw-mnist clean accuracy (MNIST test set, ${quick ? '500' : 'all 10,000'} images)`, metric: 'accuracy', value: pct(model.accuracy), target: '>= 97%', met: model.accuracy >= 0.97 }];
  const n = quick ? 10 : 100;
  const base = { model: model.id, dataset: 'mnist', split: 'test' as const, n, seed: 0, saveExamples: 8, tags: ['bench'] };
  const run = async (attack: string, goal: JobParamsOf<'attack'>['goal'], params: Record<string, unknown>, label: string) => {
    const r = ok(await c.runJob('attack', { ...base, attack, goal, params, name: `bench: ${label}` }));
    return r;
  };
  const fgsm = await run('fgsm', { kind: 'untargeted' }, { eps: 0.3 }, 'FGSM eps=0.3');
  rows.push({ suite: 'attacks', benchmark: 'FGSM Linf eps=0.3 untargeted', metric: 'success / mean L2 / ms per example', value: `${pct(fgsm.successRate)} / ${f(fgsm.meanL2)} / ${f(fgsm.msPerExample, 1)}` });
  // PGD-40 on both losses Madry et al. use: cross-entropy and the C&W margin on logits.
  for (const loss of ['ce', 'margin'] as const) {
    const pgd = await run('pgd', { kind: 'untargeted' }, { eps: 0.3, steps: 40, randomStart: true, loss }, `PGD-40 eps=0.3, ${loss} loss`);
    rows.push({ suite: 'attacks', benchmark: `PGD-40 Linf eps=0.3 untargeted, ${loss === 'ce' ? 'cross-entropy' : 'C&W margin'} loss, random start`, metric: 'success / mean L2 / ms per example', value: `${pct(pgd.successRate)} / ${f(pgd.meanL2)} / ${f(pgd.msPerExample, 1)}`, target: 'success 100%', met: pgd.successRate === 1 });
  }
  const cw = await run('cw-l2', { kind: 'targeted', target: 'next' }, quick ? { binarySearchSteps: 3, maxIterations: 100 } : { binarySearchSteps: 9, maxIterations: 1000, abortEarly: true }, 'C&W L2 targeted next');
  const cwOk = cw.successRate === 1 && typeof cw.meanL2 === 'number' && cw.meanL2 <= 1.9;
  rows.push({ suite: 'attacks', benchmark: `C&W L2 targeted (next), ${quick ? '3x100' : '9 search steps x 1000 iterations, abort early'}`, metric: 'success / mean L2 / seconds', value: `${pct(cw.successRate)} / ${f(cw.meanL2)} / ${f(cw.seconds, 1)}`, target: 'success 100%, mean L2 <= 1.9 (paper 1.76)', met: cwOk });
  const ddn = await run('ddn', { kind: 'targeted', target: 'next' }, { steps: quick ? 50 : 300 }, 'DDN targeted next');
  const within = typeof ddn.meanL2 === 'number' && typeof cw.meanL2 === 'number' ? ddn.meanL2 <= 1.1 * cw.meanL2 : false;
  const faster = Number(ddn.seconds) <= Number(cw.seconds) / 10;
  rows.push({ suite: 'attacks', benchmark: `DDN L2 targeted (next), ${quick ? 50 : 300} steps`, metric: 'success / mean L2 / seconds', value: `${pct(ddn.successRate)} / ${f(ddn.meanL2)} / ${f(ddn.seconds, 1)}`, target: 'mean L2 within 10% of C&W in <= 1/10 of its time', met: within && faster });
  // Issue 15: DDN with 1,000 steps within 2% of C&W's mean L2.
  const ddn1k = await run('ddn', { kind: 'targeted', target: 'next' }, { steps: quick ? 100 : 1000 }, 'DDN-1000 targeted next');
  const within2 = typeof ddn1k.meanL2 === 'number' && typeof cw.meanL2 === 'number' && Math.abs(ddn1k.meanL2 - cw.meanL2) <= 0.02 * cw.meanL2;
  rows.push({ suite: 'attacks', benchmark: `DDN L2 targeted (next), ${quick ? 100 : 1000} steps`, metric: 'success / mean L2 / seconds', value: `${pct(ddn1k.successRate)} / ${f(ddn1k.meanL2)} / ${f(ddn1k.seconds, 1)}`, target: 'mean L2 within 2% of C&W', met: within2 });
  return { rows, backend: String(cw.backend) };
}

interface EngineSuiteOptions {
  /** A model (session id, model.json or starter:NAME) instead of the default (see engineSuite). */
  model?: string;
  /** C&W size as "SEARCHxITERATIONS" (default 9x1000; quick 3x100). */
  cw?: string;
  /** DDN steps (default 1000; quick 50). */
  ddn?: string;
  /** Which engines to run the attacks on, comma-separated (default "tfjs,onnx"). */
  engines?: string;
  /** Which attacks, comma-separated among fgsm, pgd, cw, ddn (default all four). */
  attacks?: string;
  /** The speech model of the audio rows (default the starter speech-base); "none" skips them. */
  speechModel?: string;
  /** Audio rows: clips (default 5; quick 1) and iterations per attack (default 1000; quick 20). */
  audioClips?: string;
  audioIterations?: string;
  /** 'training': the training rows (cli/bench-engine-train.ts) instead of the rest (which never trains); 'speech-training': speech-large's (cli/bench-speech-train.ts). */
  part?: string;
}

/**
 * `--suite engine` (issue 13): cw-mnist (--model, else the attacks suite's benchmark model when this store
 * has one, else the starter pack's cw-mnist: the suite never trains), MNIST's first 100 test images, tfjs vs ONNX Runtime in one run. Forward and VJP at batch 100 timed in this process; FGSM,
 * PGD-40, C&W (targeted next) and DDN (targeted next) run as attack jobs with engine 'tfjs' and 'onnx'.
 * The machine's load average (as `uptime` prints it) is recorded at the start and the end: other jobs
 * on a shared machine slow both engines.
 */
async function engineSuite(c: CliContext, quick: boolean, o: EngineSuiteOptions): Promise<{ rows: Row[]; backend: string }> {
  const loadStart = load();
  const ort = ortStatus();
  if (!ort.available) throw badInput(`--suite engine needs ONNX Runtime: ${ort.reason}`);
  const { engineTrainingRows } = await import('./bench-engine-train');
  if (o.part === 'training' || o.part === 'speech-training') {
    const rows: Row[] = o.part === 'training' ? await engineTrainingRows(c, quick) : await (await import('./bench-speech-train')).speechTrainingRows(c, quick);
    rows.push({ suite: 'engine', benchmark: 'machine load during the training rows (1, 5, 15 min load averages, as uptime prints them)', metric: 'start / end', value: `${loadStart} / ${load()}` });
    return { rows, backend: `${String((await initBackend()).name)} vs onnxruntime-node ${ort.version}` };
  }
  const starter = starterModels().find((m) => m.name === 'cw-mnist');
  const model: { id: string; accuracy: number | null } = o.model ? { id: o.model, accuracy: null }
    : (await existingBenchModel(c, quick)) ?? { id: 'starter:cw-mnist', accuracy: starter?.testAccuracy ?? null };
  const n = quick ? 10 : 100;
  const cwSize = (o.cw ?? (quick ? '3x100' : '9x1000')).split('x').map(Number);
  if (cwSize.length !== 2 || !cwSize.every((v) => Number.isInteger(v) && v > 0)) throw badInput(`--cw must be SEARCHxITERATIONS, e.g. 9x1000; got "${o.cw}"`);
  const ddnSteps = Number(o.ddn ?? (quick ? 50 : 1000));
  if (!Number.isInteger(ddnSteps) || ddnSteps < 1) throw badInput(`--ddn must be a number of steps; got "${o.ddn}"`);
  const engines = (o.engines ?? 'tfjs,onnx').split(',').map((e) => e.trim());
  for (const e of engines) if (e !== 'tfjs' && e !== 'onnx') throw badInput(`--engines: unknown engine "${e}" (tfjs, onnx)`);
  const ATTACK_KEYS: Record<string, string> = { fgsm: 'fgsm', pgd: 'pgd', cw: 'cw-l2', ddn: 'ddn' };
  const wanted = (o.attacks ?? 'fgsm,pgd,cw,ddn').split(',').map((a) => a.trim());
  for (const a of wanted) if (!ATTACK_KEYS[a]) throw badInput(`--attacks: unknown attack "${a}" (${Object.keys(ATTACK_KEYS).join(', ')})`);
  const rows: Row[] = [];
  const label = `${model.id.startsWith('starter:') ? model.id : `model ${model.id}`}, first ${n} MNIST test images`;
  if (model.accuracy !== null) rows.push({ suite: 'engine', benchmark: `${model.id.startsWith('starter:') ? `${model.id} clean accuracy (MNIST's 10,000 test images, its model card)` : 'cw-mnist clean accuracy (MNIST test set)'}`, metric: 'accuracy', value: pct(model.accuracy) });

  // Forward and VJP at batch n, in this process (tfjs on the jobs' backend).
  const backend = await initBackend();
  const loaded = await loadModel((await locateModel(model.id, c.app().store)).path);
  const set = await loadDataset('mnist', { dataDirs: resolveAppOptions(c.argv).dataDirs, split: 'test', choice: { n, pick: 'first', offset: 0, seed: 0 } });
  const t = await benchEngines(loaded.model, set.images, n);
  loaded.model.dispose();
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  rows.push({ suite: 'engine', benchmark: `forward pass, batch ${n}, ${label}`, metric: `tfjs-${backend.name} / onnx (${t.threads} threads) / speed-up`, value: `${ms(t.tfjs.forwardMs)} / ${ms(t.onnx.forwardMs)} / ${(t.tfjs.forwardMs / t.onnx.forwardMs).toFixed(1)}x` });
  rows.push({ suite: 'engine', benchmark: `logits + input gradient (VJP), batch ${n}, ${label}`, metric: `tfjs-${backend.name} / onnx (${t.threads} threads) / speed-up`, value: `${ms(t.tfjs.vjpMs)} / ${ms(t.onnx.vjpMs)} / ${(t.tfjs.vjpMs / t.onnx.vjpMs).toFixed(1)}x` });
  rows.push({ suite: 'engine', benchmark: `an attack step: logits, then the input gradient (onnx: linearize, the forward run keeping the backward's tensors, then the backward run), batch ${n}, ${label}`, metric: `tfjs-${backend.name} / onnx (${t.threads} threads) / speed-up`, value: `${ms(t.tfjs.vjpMs)} / ${ms(t.onnx.stepMs)} / ${(t.tfjs.vjpMs / t.onnx.stepMs).toFixed(1)}x` });
  rows.push({ suite: 'engine', benchmark: `an attack step on ONNX Runtime by route, batch ${n}, ${label} (${load()})`, metric: `onnx (${t.threads} threads): linearize / forward then vjp graph / fused loss call (lossGradient, C&W's margin)`, value: `${ms(t.onnx.stepMs)} / ${ms(t.onnx.forwardThenVjpMs)} / ${ms(t.onnx.fusedMs)}` });
  rows.push({ suite: 'engine', benchmark: `onnx vs tfjs-cpu (the exact reference), batch ${n}`, metric: 'max abs diff logits / VJP', value: `${t.maxAbsDiffCpu.logits.toExponential(1)} / ${t.maxAbsDiffCpu.vjp.toExponential(1)}`, target: '<= 1e-4', met: t.maxAbsDiffCpu.logits <= 1e-4 && t.maxAbsDiffCpu.vjp <= 1e-4 });
  if (backend.name !== 'cpu') {
    rows.push({ suite: 'engine', benchmark: `onnx vs tfjs-${backend.name}, batch ${n} (wasm's max-pool gradient breaks ties between equal maxima elsewhere than cpu and ONNX Runtime)`, metric: 'max abs diff logits / VJP', value: `${t.maxAbsDiff.logits.toExponential(1)} / ${t.maxAbsDiff.vjp.toExponential(1)}` });
  }

  // The attacks, as jobs, on each engine.
  const base = { model: model.id, dataset: 'mnist', split: 'test' as const, n, pick: 'first' as const, saveExamples: 0, tags: ['bench', 'bench-engine'] };
  const attacks: { id: string; goal: JobParamsOf<'attack'>['goal']; params: Record<string, unknown>; name: string; target?: string }[] = [
    { id: 'fgsm', goal: { kind: 'untargeted' }, params: { eps: 0.3 }, name: 'FGSM Linf eps=0.3 untargeted' },
    { id: 'pgd', goal: { kind: 'untargeted' }, params: { eps: 0.3, steps: 40, randomStart: true }, name: 'PGD-40 Linf eps=0.3 untargeted, cross-entropy, random start' },
    { id: 'cw-l2', goal: { kind: 'targeted', target: 'next' }, params: { binarySearchSteps: cwSize[0], maxIterations: cwSize[1], abortEarly: true }, name: `C&W L2 targeted (next), ${cwSize[0]}x${cwSize[1]}, abort early`, target: '>= 5x faster, same success, mean L2 within 0.5%' },
    { id: 'ddn', goal: { kind: 'targeted', target: 'next' }, params: { steps: ddnSteps }, name: `DDN-${ddnSteps} L2 targeted (next)`, target: '>= 5x faster, same success, mean L2 within 0.5%' },
  ];
  for (const a of attacks.filter((x) => wanted.some((w) => ATTACK_KEYS[w] === x.id))) {
    const results: Record<string, Record<string, unknown>> = {};
    for (const engine of engines) {
      const r = ok(await c.runJob('attack', { ...base, attack: a.id, goal: a.goal, params: a.params, engine: engine as 'tfjs' | 'onnx', name: `bench: ${a.name} on ${engine}` }));
      results[engine] = r;
      rows.push({ suite: 'engine', benchmark: `${a.name}, ${label}, engine ${engine === 'tfjs' ? `tfjs-${String(r.backend)}` : `onnx (${t.threads} threads)`}`, metric: 'success / mean L2 / seconds', value: `${pct(r.successRate)} / ${f(r.meanL2, 4)} / ${f(r.seconds, 1)}` });
      c.out.info(`${a.name} on ${engine}: ${f(r.seconds, 1)} s, success ${pct(r.successRate)}, mean L2 ${f(r.meanL2, 4)}`);
    }
    const [tj, ox] = [results.tfjs, results.onnx];
    if (tj && ox) {
      const speedup = Number(tj.seconds) / Number(ox.seconds);
      const l2 = [Number(tj.meanL2), Number(ox.meanL2)];
      const l2Diff = Math.abs(l2[1] - l2[0]) / l2[0];
      rows.push({
        suite: 'engine', benchmark: `${a.name}: onnx vs tfjs`, metric: 'speed-up / success difference / mean L2 difference',
        value: `${speedup.toFixed(1)}x / ${(100 * (Number(ox.successRate) - Number(tj.successRate))).toFixed(1)} points / ${(100 * l2Diff).toFixed(2)}%`,
        ...(a.target ? { target: a.target, met: speedup >= 5 && ox.successRate === tj.successRate && l2Diff <= 0.005 } : {}),
      });
    }
    if (a.id === 'cw-l2' && ox && cwSize[0] === 9 && cwSize[1] === 1000 && n === 100) {
      rows.push({ suite: 'engine', benchmark: 'C&W 9x1000 on 100 images, onnx', metric: 'seconds', value: f(ox.seconds, 1), target: '< 300 s', met: Number(ox.seconds) < 300 });
    }
  }
  rows.push(...await engineAudioRows(c, quick, o, engines));
  rows.push({ suite: 'engine', benchmark: 'machine load during the suite (1, 5, 15 min load averages, as uptime prints them)', metric: 'start / end', value: `${loadStart} / ${load()}` });
  return { rows, backend: `${backend.name} vs onnxruntime-node ${ort.version}` };
}

/**
 * The engine suite's audio rows: the targeted audio attack (issue 6: a digit phrase and a non-digit phrase
 * per clip) on the first clips of the audio benchmark, on each engine, in this process. On 'onnx' the speech
 * network runs on ONNX Runtime (useSequenceEngine) and the log-mel front end in tfjs.
 */
async function engineAudioRows(c: CliContext, quick: boolean, o: EngineSuiteOptions, engines: string[]): Promise<Row[]> {
  if (o.speechModel === 'none') return [];
  const path = o.speechModel ? resolve(o.speechModel) : starterModels().find((m) => m.name === 'speech-base')?.modelJson;
  if (!path) return [];
  const clips = Number(o.audioClips ?? (quick ? 1 : 5)), iterations = Number(o.audioIterations ?? (quick ? 20 : 1000));
  if (!Number.isInteger(clips) || clips < 1 || !Number.isInteger(iterations) || iterations < 1) throw badInput(`--audio-clips and --audio-iterations must be positive integers; got "${o.audioClips}", "${o.audioIterations}"`);
  const { audioBenchmark } = await import('../engine/audio/bench');
  const { SpeechModel } = await import('../engine/audio/model');
  const { useSequenceEngine } = await import('../engine/onnx/select');
  // FSDD from the data folders (--data, ADVLAB_DATA); without it the rows say so instead of failing the suite.
  const fsdd = resolveAppOptions(c.argv).dataDirs.map((d) => join(d, 'fsdd', 'recordings')).find((d) => existsSync(d));
  if (!fsdd) return [{ suite: 'engine', benchmark: 'targeted audio attack on each engine', metric: 'skipped', value: 'no fsdd/recordings in the data folders (--data, ADVLAB_DATA)' }];
  const name = o.speechModel ? `speech model ${o.speechModel}` : 'starter:speech-base';
  const rows: Row[] = [];
  const results: Record<string, { seconds: number; success: number; dbx: number | null }> = {};
  const model = await SpeechModel.load(path);
  try {
    for (const engine of engines) {
      const info = await useSequenceEngine(model, engine as 'tfjs' | 'onnx');
      c.out.info(`audio attack on ${info.engine}${info.threads ? ` (${info.threads} threads)` : ''}: ${info.reason}`);
      const r = await audioBenchmark({ model, clips, iterations, fsddDir: fsdd });
      const seconds = r.secondsPerClip * r.clips;
      results[engine] = { seconds, success: r.successRate, dbx: r.meanDbx };
      rows.push({ suite: 'engine', benchmark: `targeted audio attack, ${name}, ${r.clips} clip(s) x (digit phrase, non-digit phrase), ${iterations} iterations, engine ${engine === 'tfjs' ? 'tfjs' : `onnx (${info.threads} threads; front end in tfjs)`}`, metric: 'success / mean dB_x / seconds', value: `${pct(r.successRate)} / ${f(r.meanDbx, 1)} / ${f(seconds, 1)}` });
    }
  } finally {
    model.dispose();
  }
  const [tj, ox] = [results.tfjs, results.onnx];
  if (tj && ox) rows.push({ suite: 'engine', benchmark: `targeted audio attack (${clips} clips): onnx vs tfjs`, metric: 'speed-up / success difference', value: `${(tj.seconds / ox.seconds).toFixed(1)}x / ${(100 * (ox.success - tj.success)).toFixed(1)} points` });
  return rows;
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

async function audioSuite(c: CliContext, quick: boolean, given?: string, part?: string, targets?: AudioTargetsFlags): Promise<{ rows: Row[]; backend: string; detail?: unknown }> {
  if (part === 'targets') return audioTargetsSuite(c, { ...targets, speechModel: given }, load);
  if (part !== undefined) throw badInput(`--suite audio: unknown --part "${part}" (targets)`);
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

/**
 * Listing speed of a store of 5,000 sessions (the Sessions-view target: listed in under a second):
 * the store alone (the very first listing reads and validates every manifest and writes the index;
 * a new process reads the index and stats each manifest; warm: the in-memory cache), the same call over
 * HTTP through `advlab serve`'s API (a fresh app), and the renderer's index/filter/sort.
 */
async function sessionsSuite(c: CliContext, quick: boolean): Promise<{ rows: Row[]; backend: string }> {
  const n = quick ? 500 : 5000;
  const { writeSyntheticSessions } = await import('../engine/sessions/synthetic');
  const { SessionStore } = await import('../engine/sessions');
  const { createApp } = await import('../host/app');
  const { startHost } = await import('../host/server');
  const { RENDERER_DIR } = await import('./context');
  const { emptyFilter, filterSessions, indexSessions, sortSessions } = await import('../../src-shared/session-list');
  const root = mkdtempSync(join(tmpdir(), 'advlab-bench-sessions-'));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async <T>(f: () => Promise<T>): Promise<[number, T]> => {
    const t = performance.now();
    const v = await f();
    return [performance.now() - t, v];
  };
  try {
    c.out.info(`writing ${n} synthetic sessions to ${root}...`);
    await writeSyntheticSessions(root, n);
    const cold: number[] = [];
    for (let k = 0; k < 3; k++) {
      const [ms, list] = await time(() => new SessionStore(root).list());
      if (list.length !== n) throw new Error(`listed ${list.length} of ${n} sessions`);
      cold.push(ms);
    }
    const store = new SessionStore(root);
    await store.list();
    const warm: number[] = [];
    for (let k = 0; k < 5; k++) warm.push((await time(() => store.list()))[0]);
    // Over HTTP: a fresh app (cold store), as when the app starts, then again (warm).
    const app = createApp({ dataDirs: [], sessionsRoot: root, transport: 'http' });
    const host = await startHost({ core: app.core, rendererDir: RENDERER_DIR, artifactPath: (id, rel) => app.store.artifactFile(id, rel) });
    const http: { ms: number; bytes: number }[] = [];
    try {
      for (let k = 0; k < 3; k++) {
        const [ms, bytes] = await time(async () => {
          const res = await fetch(`http://127.0.0.1:${host.port}/api/sessions.list`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-advlab-token': host.token }, body: '{}' });
          const text = await res.text();
          const body = JSON.parse(text) as { ok: boolean; result: unknown[] };
          if (!body.ok || body.result.length !== n) throw new Error(`sessions.list over HTTP returned ${body.ok ? body.result.length : 'an error'}`);
          return text.length;
        });
        http.push({ ms, bytes });
      }
    } finally {
      await host.close();
      await app.runner.shutdown();
    }
    const summaries = (await store.list()) as unknown as Parameters<typeof indexSessions>[0];
    const ui: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t = performance.now();
      sortSessions(filterSessions(indexSessions(summaries), { ...emptyFilter(), text: 'run 1' }), 'metric:successRate', true);
      ui.push(performance.now() - t);
    }
    const label = `${n.toLocaleString('en')} sessions`;
    const ms = (v: number) => `${v.toFixed(0)} ms`;
    return {
      backend: 'n/a',
      rows: [
        { suite: 'sessions', benchmark: `${label}: first listing of a new store (every manifest read and validated, index written)`, metric: 'ms', value: ms(cold[0]) },
        { suite: 'sessions', benchmark: `${label}: list from a new process (index + one stat per manifest), as when the app starts`, metric: 'median of 2', value: ms(median(cold.slice(1))), target: '< 1 s', met: median(cold.slice(1)) < 1000 },
        { suite: 'sessions', benchmark: `${label}: store list, warm (cache, one stat each)`, metric: 'median of 5', value: ms(median(warm)), target: '< 1 s', met: median(warm) < 1000 },
        { suite: 'sessions', benchmark: `${label}: sessions.list over HTTP (advlab serve), first call then again`, metric: 'first / second / third', value: `${http.map((h) => ms(h.ms)).join(' / ')} (${(http[0].bytes / 1e6).toFixed(1)} MB JSON)`, target: '< 1 s', met: http[0].ms < 1000 },
        { suite: 'sessions', benchmark: `${label}: Sessions view index + search + sort (renderer code)`, metric: 'median of 5', value: ms(median(ui)) },
      ],
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A thermometer-defended model (the thermometer recipe's, quick): a wasm-only pipeline (encoding + cw-mnist) with a spec, so its attacks shard. */
async function thermometerModel(c: CliContext): Promise<string> {
  const store = c.app().store;
  const tag = 'bench-thermometer-model';
  const existing = (await store.list({ tag, status: 'finished' }))[0];
  if (existing) return existing.id;
  c.out.info('training the thermometer-defended benchmark model (the thermometer recipe, quick, no baseline)...');
  const r = ok(await c.runJob('recipe', { recipe: 'thermometer', quick: true, overrides: { baseline: false }, name: 'bench: thermometer-defended model', tags: ['bench', tag] }));
  return String(r.session);
}

/** The machine's load averages (1, 5, 15 min) as uptime prints them: other work on the cores skews a speedup. */
function load(): string {
  const [a, b, c] = loadavg();
  return `load ${a.toFixed(2)} ${b.toFixed(2)} ${c.toFixed(2)}`;
}

/**
 * Images the parallel suite attacks (shards of 8). Profiled (CPU profiles of every thread, 00:05 on
 * 5 Dec): each pool thread spends about 0.5 s of CPU loading the engine bundle and initialising its
 * backend before its first shard, and the job's thread judges success after the shards (a forward
 * pass over all images). At 64 images (3.6 s on 1 thread) those fixed costs were a quarter of the
 * pool's run, capping 2 threads near 1.4x whatever the shards did; 256 images (32 shards, 16 per
 * thread) make the attack itself over 90% of the time, as in a real evaluation (1,000+ images).
 */
export const PARALLEL_BENCH_IMAGES = 256;

/**
 * The shard pool (issue 17): the same seeded attacks on a thermometer-defended cw-mnist (wasm) with a
 * pool of 1 thread and with the default pool (one per core), in this run; the per-example results
 * must be identical (asserted), and the speedup is the attack's own time (clean logits, shards,
 * judging) 1 thread / pool. Each side runs the attack cold (the only job of an app whose threads start
 * with it, as a CLI command's), then on a second app that started its pool first (JobRunner.warmPool,
 * as the desktop app and the server do) twice: its first job, and warm (the second, on the same
 * threads: the pool is started once and reused, so this is what every later job finds); the row's
 * speedup is the warm one, with the other two beside it. Each run's log line splits its CPU by thread
 * (cpuAccountOf).
 * Measured (04:00 and 04:32, 5 Dec, under load, CPU time of the whole job, 256 images): a cold pool
 * run did 0.5-2.0 s more CPU work than a cold 1-thread run (the second thread starts its engine, loads
 * the model and compiles its code inside the job, and its first shard waits for that), a warm one
 * 0.2-1.8 s; the spread between runs is about 1.5 s (BENCHMARKS.md, "where the missing 15% goes").
 * Before the attacks, the ceiling row (cli/bench-parallel-ceiling.ts) says what the machine allows
 * two threads at once; each run's line gives the pool's per-shard timeline (tail, idle, messaging).
 */
async function parallelSuite(c: CliContext, quick: boolean, part?: string): Promise<{ rows: Row[]; backend: string }> {
  const { createApp, resolveAppOptions } = await import('../host/app');
  const { defaultPoolSize } = await import('../jobs/pool');
  const { timelineOf, cpuAccountOf } = await import('./bench-parallel-ceiling');
  const { processThreadsCpuMs } = await import('../jobs/thread-cpu');
  if (part !== undefined && !['attacks', 'training', 'pgd', 'cw'].includes(part)) throw badInput(`Unknown --part "${part}" (attacks, training; pgd or cw: that attack's row only)`);
  const pool = resolveAppOptions(c.argv).workers ?? defaultPoolSize();
  if (part === 'training') return parallelTraining(c, quick, pool);
  const model = await thermometerModel(c);
  const n = quick ? 16 : PARALLEL_BENCH_IMAGES, batchSize = quick ? 4 : 8;
  const base = { model, dataset: 'fashion-mnist', split: 'test' as const, n, seed: 0, saveExamples: 0, batchSize, tags: ['bench'] };
  type BenchAttack = { label: string; attack: string; goal: JobParamsOf<'attack'>['goal']; params: Record<string, unknown> };
  const attacks = ([
    { label: 'PGD-40 Linf eps=0.1, random start', attack: 'pgd', goal: { kind: 'untargeted' }, params: { eps: 0.1, steps: 40, randomStart: true, seed: 1 } },
    { label: `C&W L2 targeted (next), ${quick ? '2x20' : '3x100'}`, attack: 'cw-l2', goal: { kind: 'targeted', target: 'next' }, params: quick ? { binarySearchSteps: 2, maxIterations: 20 } : { binarySearchSteps: 3, maxIterations: 100 } },
  ] satisfies BenchAttack[] as BenchAttack[]).filter((a) => (part !== 'pgd' && part !== 'cw') || a.attack === (part === 'pgd' ? 'pgd' : 'cw-l2'));
  const rows: Row[] = [];
  let backend = '';
  if (pool >= 2 && (part === undefined || part === 'attacks')) {
    const { ceilingRow } = await import('./bench-parallel-ceiling');
    const backendOpt = resolveAppOptions(c.argv).backend;
    rows.push(await ceilingRow({ modelRef: model, store: c.app().store, dataDirs: resolveAppOptions(c.argv).dataDirs, threads: pool, batchSize, rounds: quick ? 2 : 5, ...(backendOpt ? { backend: backendOpt } : {}), load, info: (l) => c.out.info(l) }));
    c.out.info(`  ${rows[0].benchmark}: ${rows[0].value}`);
  }
  type Run = { workers: number; seconds: number; cpu: number; wall: number; examples: string; timeline: string; account: string };
  const show = (r: Run) => `${r.seconds.toFixed(1)} s (wall ${r.wall.toFixed(1)} s, CPU ${r.cpu.toFixed(1)} s)`;
  for (const a of attacks) {
    // Per side, two apps. The first runs the attack once on fresh threads, as a one-shot CLI command
    // does (cold: the threads start, warm up and load the model while the job loads its data, and its
    // first shards wait for them). The second starts its pool as the desktop app and the server do
    // (JobRunner.warmPool: the threads start and warm up before any job), then runs the attack twice:
    // the first job on those started threads, and the second on the same threads (warm: the pool's
    // steady state, as every later job in the app finds it).
    const cold: Run[] = [], started: Run[] = [], warm: Run[] = [];
    for (const workers of [1, pool]) {
      for (const passes of [[['cold', cold]], [['started with the app', started], ['warm', warm]]] as const) {
        const app = createApp({ ...resolveAppOptions(c.argv), workers, transport: 'http' });
        try {
          if (passes.length > 1) {
            const t = performance.now();
            await app.runner.warmPool();
            await app.runner.pool?.settled();
            const w = app.runner.pool?.warmth() ?? [];
            c.out.info(`  ${a.label}: ${workers} worker(s): the app started its pool in ${((performance.now() - t) / 1000).toFixed(1)} s: ${w.map((x) => `${x.state}${x.warmUpMs !== undefined ? ` (warm-up ${x.warmUpMs.toFixed(0)} ms, CPU ${x.warmUpCpuMs ?? '?'} ms)` : ''}${x.error ? ` (${x.error})` : ''}`).join(', ')}`);
          }
          for (const [pass, into] of passes) {
            const t = performance.now();
            const cpu0 = process.cpuUsage(), threads0 = processThreadsCpuMs();
            const job = app.runner.start('attack', { ...base, attack: a.attack, goal: a.goal, params: a.params, name: `bench parallel: ${a.label}, ${workers} worker(s), ${pass}` });
            const r = ok(await job.done);
            const cpu = process.cpuUsage(cpu0), threads1 = processThreadsCpuMs();
            backend = String(r.backend);
            const timings = app.runner.pool?.timings(job.jobId) ?? [];
            into.push({
              workers, seconds: Number(r.seconds), cpu: (cpu.user + cpu.system) / 1e6, wall: (performance.now() - t) / 1000, examples: readFileSync(await app.store.artifactFile(String(r.session), 'examples.json'), 'utf8'),
              timeline: timelineOf(timings, Number(r.seconds)),
              account: cpuAccountOf(threads0, threads1, app.runner.pool?.osThreadIds() ?? [], timings, (cpu.user + cpu.system) / 1000),
            });
            // The job's model, prepared on each thread while the job loaded its data (ShardPool.prepare): the thread's last preparation.
            const prepared = (app.runner.pool?.warmth() ?? []).map((w) => (w.prepared ? `${w.prepared.error ? `failed (${w.prepared.error})` : `${w.prepared.ms.toFixed(0)} ms`}${w.prepared.cpuMs !== undefined ? ` (CPU ${w.prepared.cpuMs.toFixed(0)} ms)` : ''}` : 'none')).join(', ');
            c.out.info(`  ${a.label}: ${workers} worker(s), ${pass}: ${show(into.at(-1)!)}; ${into.at(-1)!.timeline}; ${into.at(-1)!.account}; model prepared per thread: ${prepared || 'no pool'}`);
          }
        } finally {
          await app.runner.shutdown();
        }
      }
    }
    const all = [...cold, ...started, ...warm];
    if (all.some((r) => r.examples !== all[0].examples)) throw new Error(`${a.label}: examples.json differs between runs on 1 and ${pool} workers (the pool must not change per-example results)`);
    const speedup = warm[0].seconds / warm[1].seconds, coldSpeedup = cold[0].seconds / cold[1].seconds, startedSpeedup = started[0].seconds / started[1].seconds;
    c.out.info(`  ${a.label}: speedup ${speedup.toFixed(2)}x on ${pool} workers (warm), ${startedSpeedup.toFixed(2)}x on threads started with the app, ${coldSpeedup.toFixed(2)}x cold; identical examples.json in all six runs`);
    rows.push({
      suite: 'parallel', benchmark: `${a.label} on thermometer-defended cw-mnist (L=16), n=${n} in shards of ${batchSize}; 1 worker vs pool of ${pool}, each the second job on its app's threads (warm; the first job on threads the app started and warmed up: ${started[0].seconds.toFixed(1)} / ${started[1].seconds.toFixed(1)} s, ${startedSpeedup.toFixed(2)}x; cold, threads started with the job as in a CLI command: ${cold[0].seconds.toFixed(1)} / ${cold[1].seconds.toFixed(1)} s, ${coldSpeedup.toFixed(2)}x) (${load()}); warm pool run: ${warm[1].timeline}`,
      metric: 'seconds 1 / pool, speedup (identical results); CPU of the whole job, every thread, 1 / pool',
      value: `${warm[0].seconds.toFixed(1)} / ${warm[1].seconds.toFixed(1)} s, ${speedup.toFixed(2)}x; CPU ${warm[0].cpu.toFixed(1)} / ${warm[1].cpu.toFixed(1)} s (started with the app ${started[0].cpu.toFixed(1)} / ${started[1].cpu.toFixed(1)} s, cold ${cold[0].cpu.toFixed(1)} / ${cold[1].cpu.toFixed(1)} s)`,
      target: pool >= 2 ? '>= 1.8x on 2 cores' : undefined, met: pool >= 2 ? speedup >= 1.8 : undefined,
    });
  }
  if (part !== undefined) return { rows, backend };
  const training = await parallelTraining(c, quick, pool);
  return { rows: [...rows, ...training.rows], backend };
}

/** The suite's training row (issue 17): one epoch of cw-mnist, 1 worker vs the pool (cli/bench-parallel-train.ts). */
async function parallelTraining(c: CliContext, quick: boolean, pool: number): Promise<{ rows: Row[]; backend: string }> {
  const { parallelTrainingRow } = await import('./bench-parallel-train');
  const { row, backend } = await parallelTrainingRow(c, quick, pool, load);
  return { rows: [row], backend };
}

export const bench: Command = {
  summary: 'run the benchmark suites and append dated rows to BENCHMARKS.md',
  usage: 'advlab bench [--suite train|attacks|audio|sessions|parallel|cluster|engine|all] [--part attacks|training|pgd|cw (parallel; engine: training|speech-training; audio: targets)] [--workers N] [--quick] [--speech-model PATH] [--file BENCHMARKS.md] [--json]   engine suite: [--model M] [--cw 9x1000] [--ddn 1000] [--engines tfjs,onnx] [--attacks fgsm,pgd,cw,ddn] [--speech-model PATH|none] [--audio-clips 5] [--audio-iterations 1000]   audio --part targets (issue 18): [--speech-model starter:speech|PATH] [--clips 10] [--targets 10] [--iterations 1000] [--corpus DIR] [--engine auto|onnx|tfjs] [--processes P] [--shard K/P] [--lr X] [--tau0 X] [--alignment-margin K|none] [--patience N (end an attack N checks after its last success without another)] [--rows FILE (finished attacks, JSON lines; a run started again skips them; default .bench-out/audio-targets-rows.jsonl)]',
  async run(c: CliContext) {
    const { values: v } = c.parse({
      suite: { type: 'string' }, quick: { type: 'boolean' }, file: { type: 'string' }, 'speech-model': { type: 'string' }, part: { type: 'string' },
      model: { type: 'string' }, cw: { type: 'string' }, ddn: { type: 'string' }, engines: { type: 'string' }, attacks: { type: 'string' },
      'audio-clips': { type: 'string' }, 'audio-iterations': { type: 'string' },
      clips: { type: 'string' }, targets: { type: 'string' }, iterations: { type: 'string' }, corpus: { type: 'string' }, engine: { type: 'string' },
      shard: { type: 'string' }, processes: { type: 'string' }, lr: { type: 'string' }, tau0: { type: 'string' }, 'alignment-margin': { type: 'string' }, patience: { type: 'string' }, rows: { type: 'string' },
    });
    const suite = v.suite ?? 'all';
    const targets: AudioTargetsFlags = { clips: v.clips, targets: v.targets, iterations: v.iterations, corpus: v.corpus, engine: v.engine, shard: v.shard, processes: v.processes, lr: v.lr, tau0: v.tau0, alignmentMargin: v['alignment-margin'], patience: v.patience, rows: v.rows };
    const suites: Record<string, (c: CliContext, quick: boolean) => Promise<{ rows: Row[]; backend: string; detail?: unknown }>> = {
      train: trainSuite, attacks: attackSuite, audio: (cc, q) => audioSuite(cc, q, v['speech-model'], suite === 'audio' ? v.part : undefined, targets), sessions: sessionsSuite,
      parallel: (cc, q) => parallelSuite(cc, q, v.part), cluster: clusterSuite,
      engine: (cc, q) => engineSuite(cc, q, { part: v.part, model: v.model, cw: v.cw, ddn: v.ddn, engines: v.engines, attacks: v.attacks, speechModel: v['speech-model'], audioClips: v['audio-clips'], audioIterations: v['audio-iterations'] }),
    };
    // 'all' leaves out the cluster suite (it needs nats-server installed) and the engine suite (it repeats the attacks on both engines): each runs on request.
    const chosen = suite === 'all' ? Object.keys(suites).filter((s) => s !== 'cluster' && s !== 'engine') : [suite];
    for (const s of chosen) if (!suites[s]) throw badInput(`Unknown suite "${s}" (train, attacks, audio, sessions, parallel, cluster, engine, all)`);
    const file = resolve(v.file ?? 'BENCHMARKS.md');
    const all: Row[] = [];
    let detail: unknown;
    for (const s of chosen) {
      const r = await suites[s](c, v.quick ?? false);
      appendRows(file, r.rows, r.backend);
      all.push(...r.rows);
      if (r.detail !== undefined) detail = r.detail;
      for (const row of r.rows) c.out.info(`${row.benchmark}: ${row.metric} ${row.value}${row.target ? ` (target ${row.target}: ${row.met ? 'met' : 'NOT met'})` : ''}`);
    }
    c.out.result({ file, machine: machine(), host: hostname(), rows: all, ...(detail !== undefined ? { detail } : {}) });
    return 0;
  },
};
