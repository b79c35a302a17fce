/**
 * `advlab bench --suite audio --part targets` (issue 18): targeted attacks on a speech model with every
 * letter, N clips (half synthesized by held-out voices of the corpus, half real recordings of the
 * held-out FSDD speaker; engine/audio/bench.ts `targetsClips` says how they are chosen) x the first M
 * of ALPHABET_TARGETS (together every letter, "open the door" first). Every attack is the audio-attack
 * job's engine code (audioAttack) on the engine the job would pick (ONNX Runtime for the network when
 * it loads, the front end in tfjs). One row per attack (exact?, transcript, dB_x of the 16-bit WAV,
 * seconds, iteration of the first success) and the summary against the issue's targets: 100% exact,
 * mean dB_x <= -30 dB.
 *
 * `--processes P` splits the attacks over P child processes (attack i goes to child i mod P, each with
 * one ONNX Runtime thread unless ADVLAB_ORT_THREADS says otherwise) and merges their rows; `--shard K/P`
 * is what each child runs.
 *
 * Every finished attack is appended at once to the rows file (`--rows FILE`, JSON lines; default
 * .bench-out/audio-targets-rows.jsonl), with the model's sha256 and a digest of the run's settings (model,
 * clips, targets, iterations, attack options, engine). A stopped run keeps its rows there, and the same
 * command started again runs only the attacks the file lacks for those settings, then summarises them all. Without --corpus, the corpus's first 0.1 hours with seed 1 are generated
 * into the temp folder (clips depend only on the seed and their index, so these are the first clips of
 * any seed-1 corpus made with the same synthesizers).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { CliContext } from './context';
import type { BenchRow as Row } from './bench-row';
import { badInput } from '../engine/errors';
import { starterModels } from '../engine/data';
import { resolveAppOptions } from '../host/app';
import type { AudioTargetsResult, AudioTargetsRow } from '../engine/audio/bench';

export interface AudioTargetsFlags {
  speechModel?: string;
  clips?: string;
  targets?: string;
  iterations?: string;
  corpus?: string;
  engine?: string;
  shard?: string;
  processes?: string;
  /** Optional attack options (the job's defaults otherwise). */
  lr?: string;
  tau0?: string;
  alignmentMargin?: string;
  /** End an attack this many checks after its last success without another (engine/audio/attack.ts `patience`). */
  patience?: string;
  /** JSON-lines file of finished attacks (resumed from). */
  rows?: string;
}

/** A line of the rows file: the attack's row, the model it ran on and the digest of the run's settings. */
export type TargetsFileRow = AudioTargetsRow & { modelSha256: string; settings: string };

/** The rows file's rows of a run with these settings (other runs' lines are left alone). */
export function readTargetsRows(file: string, settings: string): AudioTargetsRow[] {
  if (!existsSync(file)) return [];
  const byIndex = new Map<number, AudioTargetsRow>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let r: TargetsFileRow;
    try {
      r = JSON.parse(line) as TargetsFileRow;
    } catch {
      continue; // a line cut short when the run was stopped mid-write
    }
    if (r.settings === settings && Number.isInteger(r.index)) {
      const { modelSha256: _sha, settings: _s, ...row } = r;
      byIndex.set(r.index, row);
    }
  }
  return [...byIndex.values()];
}

const CORPUS_HOURS = 0.1;
const CORPUS_SEED = 1;

function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw badInput(`${name} must be a positive integer, got "${v}"`);
  return n;
}

function optionalNumber(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw badInput(`${name} must be a number, got "${v}"`);
  return n;
}

function parseShard(v: string | undefined): { index: number; count: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw badInput(`--shard must be K/N with 0 <= K < N, got "${v}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** The model.json of --speech-model: a path, or starter:NAME (default starter:speech). */
function speechModelPath(given: string | undefined): { path: string; name: string } {
  const ref = given ?? 'starter:speech';
  if (ref.startsWith('starter:')) {
    const m = starterModels().find((s) => s.name === ref.slice('starter:'.length));
    if (!m) throw badInput(`No starter model "${ref}" (starter models: ${starterModels().map((s) => `starter:${s.name}`).join(', ') || 'none'})`);
    return { path: m.modelJson, name: ref };
  }
  return { path: resolve(ref), name: ref };
}

const f1 = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));

/** One line per attack, for the log and the rows. */
export function describeTargetsRow(r: AudioTargetsRow): string {
  return `${r.clip} (${r.kind}, ${r.clipSeconds.toFixed(2)} s, "${r.transcriptBefore}") -> "${r.target}": ${r.exact ? 'exact' : 'NOT exact'} ("${r.transcriptAfter}"), dB_x ${f1(r.dbx)}, ${r.seconds.toFixed(1)} s, first success at ${r.firstSuccessIteration ?? 'never'} (quietest at ${r.successIteration ?? 'n/a'}, ${r.successes} successes, ${r.iterations} iterations, stopped: ${r.stopReason})`;
}

export function targetsRows(r: AudioTargetsResult, label: string, loadStart: string, loadEnd: string): Row[] {
  const rows: Row[] = r.rows.map((a) => ({
    suite: 'audio', benchmark: `targeted attack ${a.index + 1}/${r.attacks}: ${a.clip} (${a.kind}, ${a.clipSeconds.toFixed(2)} s, clean "${a.transcriptBefore}") -> "${a.target}"`,
    metric: 'exact / transcript / dB_x / s / first success / quietest success', value: `${a.exact ? 'yes' : 'no'} / "${a.transcriptAfter}" / ${f1(a.dbx)} / ${a.seconds.toFixed(1)} / ${a.firstSuccessIteration ?? 'never'} / ${a.successIteration ?? 'n/a'}`,
  }));
  const kinds = (['synthesized', 'real'] as const).map((k) => `${k} ${r.byKind[k].exact}/${r.byKind[k].attacks} (mean dB_x ${f1(r.byKind[k].meanDbx)})`).join(', ');
  rows.push({ suite: 'audio', benchmark: `targeted attacks, ${label}: exact transcripts of the 16-bit WAVs (${kinds})`, metric: 'exact', value: `${r.exact}/${r.attacks} (${((100 * r.exactRate) || 0).toFixed(1)}%)`, target: '100%', met: r.exact === r.attacks });
  rows.push({ suite: 'audio', benchmark: `targeted attacks, ${label}: dB_x of the exact ones after 16-bit quantisation`, metric: 'mean / median / worst dB_x', value: `${f1(r.meanDbx)} / ${f1(r.medianDbx)} / ${f1(r.maxDbx)}`, target: 'mean <= -30 dB', met: r.meanDbx !== null && r.meanDbx <= -30 });
  rows.push({ suite: 'audio', benchmark: `targeted attacks, ${label}: time (${loadStart} / ${loadEnd})`, metric: 'seconds per attack (mean) / total / mean first-success iteration', value: `${r.meanSeconds.toFixed(1)} / ${r.totalSeconds.toFixed(0)} / ${f1(r.meanFirstSuccessIteration)}` });
  return rows;
}

/** Runs the child processes of --processes P and returns their rows. */
async function runChildren(c: CliContext, processes: number, passArgs: string[]): Promise<AudioTargetsRow[]> {
  const scratch = mkdtempSync(join(tmpdir(), 'advlab-targets-'));
  try {
    const runs = Array.from({ length: processes }, (_, k) => new Promise<AudioTargetsRow[]>((done, fail) => {
      const args = [process.argv[1], 'bench', '--suite', 'audio', '--part', 'targets', ...passArgs, '--shard', `${k}/${processes}`, '--file', join(scratch, `rows-${k}.md`), '--json'];
      const child = spawn(process.execPath, args, { env: { ADVLAB_ORT_THREADS: '1', ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => c.out.info(`[${k}/${processes}] ${l}`)));
      child.on('error', fail);
      child.on('close', (code) => {
        const last = out.trim().split('\n').pop() ?? '';
        try {
          const j = JSON.parse(last) as { detail?: { rows: AudioTargetsRow[] }; error?: { message: string } };
          if (code === 0 && j.detail) return done(j.detail.rows);
          fail(new Error(`bench child ${k}/${processes} exited with ${code}: ${j.error?.message ?? last}`));
        } catch {
          fail(new Error(`bench child ${k}/${processes} exited with ${code} without a result`));
        }
      });
    }));
    return (await Promise.all(runs)).flat();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function audioTargetsSuite(c: CliContext, o: AudioTargetsFlags, load: () => string): Promise<{ rows: Row[]; backend: string; detail: AudioTargetsResult & { modelSha256: string; rowsFile: string } }> {
  const { ALPHABET_TARGETS, audioTargetsBenchmark, summarizeTargets, targetsClips } = await import('../engine/audio/bench');
  const nClips = positiveInt(o.clips, '--clips', 10);
  const nTargets = positiveInt(o.targets, '--targets', ALPHABET_TARGETS.length);
  if (nTargets > ALPHABET_TARGETS.length) throw badInput(`--targets is at most ${ALPHABET_TARGETS.length} (the benchmark's phrases)`);
  const iterations = positiveInt(o.iterations, '--iterations', 1000);
  const processes = positiveInt(o.processes, '--processes', 1);
  const shard = parseShard(o.shard);
  const engine = o.engine ?? 'auto';
  if (!['auto', 'onnx', 'tfjs'].includes(engine)) throw badInput(`--engine must be auto, onnx or tfjs, got "${engine}"`);
  const learningRate = optionalNumber(o.lr, '--lr'), tau0 = optionalNumber(o.tau0, '--tau0');
  const patience = o.patience === undefined ? undefined : positiveInt(o.patience, '--patience', 1);
  const alignmentMargin = o.alignmentMargin === undefined || o.alignmentMargin === 'none' ? undefined : optionalNumber(o.alignmentMargin, '--alignment-margin');
  const targets = ALPHABET_TARGETS.slice(0, nTargets);
  const { path, name } = speechModelPath(o.speechModel);
  const rowsFile = resolve(o.rows ?? join('.bench-out', 'audio-targets-rows.jsonl'));
  const fsdd = resolveAppOptions(c.argv).dataDirs.map((d) => join(d, 'fsdd', 'recordings')).find((d) => existsSync(d));
  if (!fsdd) throw badInput('--part targets needs FSDD recordings in the data folders (--data, ADVLAB_DATA) for its real clips');
  const nSynth = Math.ceil(nClips / 2), nReal = nClips - nSynth;
  let corpus = o.corpus ? resolve(o.corpus) : join(tmpdir(), `advlab-bench-corpus-seed${CORPUS_SEED}-${CORPUS_HOURS}h`);
  const { initBackend } = await import('../engine/backend');
  const backend = await initBackend(process.env.ADVLAB_BACKEND);
  if (!o.corpus && !existsSync(join(corpus, 'corpus.json'))) {
    const { generateCorpus } = await import('../engine/audio/corpus');
    c.out.info(`generating the first ${CORPUS_HOURS} h of the seed-${CORPUS_SEED} corpus into ${corpus} (pass --corpus DIR to use an existing one)...`);
    await generateCorpus({ out: corpus, hours: CORPUS_HOURS, seed: CORPUS_SEED, concurrency: 2 });
  }
  corpus = resolve(corpus);
  const { SpeechModel } = await import('../engine/audio/model');
  const { useSequenceEngine, describeEngine } = await import('../engine/onnx/select');
  const { modelSha256 } = await import('../engine/models/io');
  const loadStart = load();
  const model = await SpeechModel.load(path);
  const sha = await modelSha256(path);
  let result: AudioTargetsResult;
  let engineText = '';
  try {
    const clips = await targetsClips({ model, targets, corpusDir: corpus, fsddDir: fsdd, synthesized: nSynth, real: nReal });
    if (!shard) for (const k of clips) c.out.info(`clip ${k.id}: ${k.kind}, ${k.source}, ${(k.samples.length / k.sampleRate).toFixed(2)} s, "${k.transcript}"`);
    const attack = { ...(learningRate !== undefined ? { learningRate } : {}), ...(tau0 !== undefined ? { tau0 } : {}), ...(o.alignmentMargin === 'none' ? { alignmentMargin: null } : alignmentMargin !== undefined ? { alignmentMargin } : {}), ...(patience !== undefined ? { patience } : {}) };
    // What makes two runs' rows interchangeable: the model's bytes, the clips' samples, the targets and every attack setting.
    const clipDigest = createHash('sha256');
    for (const k of clips) clipDigest.update(k.id).update(new Uint8Array(k.samples.buffer, k.samples.byteOffset, k.samples.byteLength));
    const settings = createHash('sha256').update(JSON.stringify({ sha, clips: clipDigest.digest('hex'), targets, iterations, attack, engine })).digest('hex').slice(0, 16);
    if (processes > 1 && !shard) {
      const pass = ['--clips', String(nClips), '--targets', String(nTargets), '--iterations', String(iterations), '--corpus', corpus, '--engine', engine, '--speech-model', path,
        ...(o.lr ? ['--lr', o.lr] : []), ...(o.tau0 ? ['--tau0', o.tau0] : []), ...(o.alignmentMargin ? ['--alignment-margin', o.alignmentMargin] : []), ...(o.patience ? ['--patience', o.patience] : []), '--data', dirname(dirname(fsdd)), '--rows', rowsFile];
      const earlier = readTargetsRows(rowsFile, settings).length;
      c.out.info(`rows file ${rowsFile} (settings ${settings}, model sha256 ${sha}): ${earlier} of ${clips.length * targets.length} attacks already there${earlier ? ', not run again' : ''}`);
      result = summarizeTargets(await runChildren(c, processes, pass), iterations);
      engineText = `${processes} processes, engine ${engine} (1 ONNX Runtime thread each unless ADVLAB_ORT_THREADS is set)`;
    } else {
      const info = await useSequenceEngine(model, engine as 'auto' | 'onnx' | 'tfjs');
      engineText = describeEngine(info);
      c.out.info(`engine: ${engineText}`);
      const done = readTargetsRows(rowsFile, settings);
      if (!shard) c.out.info(`rows file ${rowsFile} (settings ${settings}, model sha256 ${sha}): ${done.length} of ${clips.length * targets.length} attacks already there${done.length ? ', not run again' : ''}`);
      mkdirSync(dirname(rowsFile), { recursive: true });
      // A run stopped mid-write leaves a line cut short: the next row starts on a line of its own.
      if (existsSync(rowsFile)) {
        const text = readFileSync(rowsFile, 'utf8');
        if (text.length && !text.endsWith('\n')) appendFileSync(rowsFile, '\n');
      }
      const onAttack = (r: AudioTargetsRow) => {
        // One write per line, appended: a stopped run keeps every attack it finished (two shards share the file).
        appendFileSync(rowsFile, `${JSON.stringify({ ...r, modelSha256: sha, settings } satisfies TargetsFileRow)}\n`);
        c.out.info(describeTargetsRow(r));
      };
      result = await audioTargetsBenchmark({ model, clips, targets, iterations, attack, done, ...(shard ? { shard } : {}), onAttack });
    }
  } finally {
    model.dispose();
  }
  const opts = [learningRate !== undefined ? `lr ${learningRate}` : '', tau0 !== undefined ? `tau0 ${tau0}` : '', o.alignmentMargin !== undefined ? `alignment margin ${o.alignmentMargin}` : '', patience !== undefined ? `patience ${patience} checks` : ''].filter(Boolean).join(', ');
  const label = `${name} (sha256 ${sha.slice(0, 12)}), ${nClips} clips (${nSynth} synthesized by held-out voices, ${nReal} of the held-out FSDD speaker) x ${nTargets} targets, ${iterations} iterations${opts ? ` (${opts})` : ''}, ${engineText}`;
  return { rows: targetsRows(result, label, loadStart, load()), backend: backend.name, detail: { ...result, modelSha256: sha, rowsFile } };
}
