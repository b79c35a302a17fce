/**
 * Audio jobs: train a speech-to-text model on FSDD ('audio-train'), attack it with a targeted (or
 * untargeted) audio adversarial example ('audio-attack', Carlini & Wagner 2018), and transcribe a WAV
 * file ('audio-transcribe', no session).
 *
 * Sessions:
 *  - audio-train: artifacts model/ (tfjs model.json + weights.bin, metadata with the front end and
 *    the alphabet), examples.json (rows {id, transcript, predicted, cer, split[, wav]}), examples/*.wav
 *    (a few held-out utterances, 16-bit, to attack); metrics train.jsonl {step, epoch, loss} and
 *    epochs.jsonl {epoch, loss, val_cer, val_wer}; summary {model, arch, dataset, cer, wer,
 *    cerUnseen, werUnseen, seconds, ...}.
 *  - audio-attack: artifacts original.wav, adversarial.wav (16-bit PCM at the clip's rate),
 *    perturbation.wav (adversarial - original, scaled to a 0.9 full-scale peak; the gain is
 *    summary.perturbationGain); metrics attack.jsonl {iteration, loss, ctc, dbx, tau}; summary
 *    {success, target, transcriptBefore, transcriptAfter, dbx, iterations, seconds, tau, sampleRate, alignmentMargin,
 *    perturbationGain, survived, secondCopyTranscript, ...} and no 'model' key (that key marks sessions
 *    holding a model); survival.json: the saved adversarial.wav (and adversarial-stage2.wav) re-checked
 *    (audio-survival.ts).
 *    With the imperceptible second stage (params.stage2): also adversarial-stage2.wav,
 *    perturbation-stage2.wav (amplified as above, gain summary.perturbationGainStage2), masking.json
 *    (per analysis frame: the clip's masking threshold and PSD, both perturbations' PSDs, in dB),
 *    metrics stage2.jsonl {iteration, loss, ctc, violation, violationDb, alpha, dbx, success}; summary
 *    {stage2: true, dbxStage2, transcriptStage2, violationStage1, violationStage2, violationDbStage1,
 *    violationDbStage2, aboveFractionStage1, aboveFractionStage2, stage2Improved, stage2Iterations,
 *    stage2Alpha, stage2Seconds}.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import { audioAttackParams, audioTrainParams, audioTranscribeParams } from '../../api/jobs';
import {
  DIGIT_WORDS, audioAttack, audiblePerturbation, maskingFrames, readWav, resolveAudioAttackOptions, trainSpeechModel, validateTarget, write16, resample,
  type ImperceptibleResult, type SpeechEvalResult, type SpeechModel, type Utterance,
} from '../../engine/audio';
import { keepPartial, type JobContext } from '../../engine/context';
import type { AudioAttackOptions, AudioAttackResult, AudioAttackRow } from '../../engine/audio/attack';
import type { AudioClipTask } from '../../engine/shards/audio-clip';
import { shardId } from '../../engine/shards/digest';
import type { SavedClassifierSpec } from '../../engine/shards/types';
import { AdvlabError, CancelledError, badFile, badInput } from '../../engine/errors';
import { SessionStore, type SessionWriter } from '../../engine/sessions';
import { confinedFile } from '../confine';
import { resolveSpeechModel } from '../model-ref';
import { describeEngine, useSequenceEngine } from '../../engine/onnx/select';
import { cancelledWith, openSession, runInSession, trainedModelOutcome } from '../session-env';
import { recheckArtifacts } from './audio-survival';
import type { JobHandler } from '../types';

/** The FSDD recordings folder in the first data folder that has one. */
export function findFsdd(dataDirs: readonly string[]): string {
  for (const d of dataDirs) {
    const dir = join(d, 'fsdd', 'recordings');
    if (existsSync(dir)) return dir;
  }
  throw new AdvlabError('NOT_FOUND', `FSDD not found: no fsdd/recordings folder in ${dataDirs.join(', ') || '(no data folders)'}; put the Free Spoken Digit Dataset's recordings there`, { dataDirs: [...dataDirs] });
}

/** The folder name a corpus gets in the app's data folder when no --out is given. */
export const DEFAULT_CORPUS_NAME = 'speech-corpus';

/** A corpus reference: a path, or a bare name looked up in the data folders (first that has its corpus.json). */
export function resolveCorpus(ref: string, dataDirs: readonly string[]): string {
  if (ref.includes('/') || ref.includes('\\') || ref.startsWith('.')) return ref;
  for (const d of dataDirs) {
    if (existsSync(join(d, ref, 'corpus.json'))) return join(d, ref);
  }
  throw new AdvlabError('NOT_FOUND', `No speech corpus "${ref}" in ${dataDirs.join(', ') || '(no data folders)'}: make one with \`advlab audio corpus\``, { corpus: ref });
}

/** Reads a WAV file for an attack or a transcription: errors name the file. */
export async function readClip(file: string): Promise<{ samples: Float32Array; sampleRate: number; sha256: string; duration: number }> {
  let bytes: Buffer;
  const real = await confinedFile(file, 'wav'); // where it leads now, checked again (jobs/confine.ts)
  try {
    bytes = await readFile(real);
  } catch (e) {
    throw badFile(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const wav = readWav(bytes, file);
  return { samples: wav.samples, sampleRate: wav.sampleRate, sha256: createHash('sha256').update(bytes).digest('hex'), duration: wav.duration };
}

function evalRows(r: SpeechEvalResult | null, split: string, wavs: Map<string, string>) {
  return (r?.rows ?? []).map((row) => ({ ...row, cer: Number(row.cer.toFixed(4)), split, ...(wavs.has(`${split}/${row.id}`) ? { wav: wavs.get(`${split}/${row.id}`) } : {}) }));
}

/** A few held-out utterances as 16-bit WAVs (clips to attack); returns split/id -> artifact path. */
async function saveExampleWavs(writer: SessionWriter, parts: { split: string; utterances: Utterance[]; count: number }[], rate: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const items = [];
  for (const p of parts) {
    for (const u of p.utterances.slice(0, p.count)) {
      const path = `examples/${p.split}-${u.id}.wav`;
      out.set(`${p.split}/${u.id}`, path);
      items.push({ path, data: write16(u.samples, rate), kind: 'audio' as const, description: `${p.split} utterance ${u.id}: "${u.transcript}"` });
    }
  }
  if (items.length) await writer.writeArtifacts(items);
  return out;
}

/** Saves a training model's checkpoint without changing the model: its metadata and model path stay as they were. */
async function saveCheckpoint(model: SpeechModel, dir: string, meta: Parameters<SpeechModel['save']>[1]): Promise<void> {
  const { extraMeta, modelJson } = model;
  const networkMeta = model.network.getUserDefinedMetadata() ?? {};
  try {
    await model.save(dir, meta);
  } finally {
    model.extraMeta = extraMeta;
    model.modelJson = modelJson;
    model.network.setUserDefinedMetadata(networkMeta);
  }
}

export const audioTrain = (async (raw, ctx, env) => {
  const p = audioTrainParams.parse(raw);
  const fsdd = findFsdd(env.dataDirs);
  const corpus = p.corpus ? resolveCorpus(p.corpus, env.dataDirs) : undefined;
  const dataset = corpus ? 'corpus+fsdd' : 'fsdd';
  // --init: the model to continue training (fine-tuning, or a stopped run's checkpoint); its architecture is the run's.
  const init = p.init ? await resolveSpeechModel(p.init, new SessionStore(env.sessionsRoot), ctx) : undefined;
  if (init && p.arch && init.model.arch !== p.arch) {
    init.model.dispose();
    throw badInput(`--init ${p.init} is a ${init.model.arch} model, not ${p.arch}: leave out arch to continue its training`);
  }
  const arch = init?.model.arch ?? p.arch ?? (p.quick ? 'speech-small' : 'speech-base');
  const opened = await openSession(env, {
    kind: 'audio-train',
    name: p.name ?? `${arch} on ${dataset}${p.quick ? ' (quick)' : ''}`,
    params: p,
    tags: p.tags,
    datasets: [{ name: 'fsdd', split: 'train' }, ...(p.corpus ? [{ name: 'speech-corpus', split: 'train' }] : [])],
    ...(init ? { models: [init.ref] } : {}),
  }).catch((e: unknown) => {
    init?.model.dispose();
    throw e;
  });
  const { writer } = opened;
  // After every validated epoch the model is saved to artifacts/checkpoint/ (replaced each time), so a killed
  // run keeps its last finished epoch; the folder is removed once the final model is saved.
  const checkpointDir = writer.artifactPath('checkpoint');
  return runInSession(writer, async () => {
    // A run cancelled while training keeps the model trained so far, saved and marked cancelled; one
    // cancelled before (while building the data) has nothing to save.
    const { value: result, cancel } = await keepPartial(trainSpeechModel({
      arch, quick: p.quick, epochs: p.epochs, utterances: p.utterances, seed: p.seed, fsddDir: fsdd,
      ...(corpus ? { corpus } : {}), ...(p.fsddUtterances !== undefined ? { fsddUtterances: p.fsddUtterances } : {}),
      ...(p.batchSize ? { batchSize: p.batchSize } : {}), ...(p.learningRate ? { learningRate: p.learningRate } : {}),
      engine: p.engine, ...(p.augment !== undefined ? { augment: p.augment } : {}),
    }, {
      onBatch: (row) => writer.appendMetric('train', { step: row.step, epoch: row.epoch, loss: row.loss }),
      onEpoch: (row) => writer.appendMetric('epochs', { epoch: row.epoch, loss: row.loss, val_cer: row.val_cer, val_wer: row.val_wer }),
      onCheckpoint: (m, row) => saveCheckpoint(m, checkpointDir, { dataset, trainedBy: writer.id, trainingStatus: 'checkpoint', checkpointEpoch: row.epoch, ...(init ? { initFrom: initRecord(p.init!, init.ref) } : {}) }),
    }, ctx, init?.model)).catch((e: unknown) => {
      init?.model.dispose(); // not handed back: the training failed, or was cancelled before it began
      throw e instanceof CancelledError ? cancelledWith({ summary: { arch, dataset, backend: env.backend.name } }, e) : e;
    });
    const { model, data, options: o } = result;
    try {
      await writer.update({
        datasets: [
          { name: 'fsdd', split: `train (recordings ${10}-49, speakers except ${data.heldOutSpeaker})` },
          { name: 'fsdd', split: 'validation (recordings 5-9)', sha256: data.sha256.val },
          { name: 'fsdd', split: 'test-seen (recordings 0-4)', sha256: data.sha256.testSeen },
          { name: 'fsdd', split: `test-unseen (speaker ${data.heldOutSpeaker})`, sha256: data.sha256.testUnseen },
          ...(data.corpus ? [
            { name: 'speech-corpus', split: `train + val (${data.corpus.dir})`, sha256: data.corpus.sha256 },
            { name: 'speech-corpus', split: `test-voices (held out: ${data.corpus.heldOutVoices.length} voices)`, sha256: data.corpus.sha256 },
          ] : []),
        ],
      });
      const status = cancel ? 'cancelled' : 'complete';
      // The letters the model heard in training: it can be driven to phrases over these, hardly to others.
      const trainedLetters = [...new Set([...DIGIT_WORDS.join(''), ...(data.corpus?.train ?? []).map((u) => u.transcript).join('')])].filter((ch) => ch !== ' ').sort().join('');
      const saved = await model.save(writer.artifactPath('model'), { dataset, trainedBy: writer.id, trainingStatus: status, trainedLetters, ...(init ? { initFrom: initRecord(p.init!, init.ref) } : {}) });
      await rm(checkpointDir, { recursive: true, force: true });
      await writer.registerArtifact('model/model.json', 'model', `${arch} speech-to-text model trained on ${p.corpus ? 'the synthesized corpus and FSDD' : 'FSDD'} (tfjs LayersModel; front end and alphabet in its metadata)`);
      const wavs = cancel ? new Map<string, string>() : await saveExampleWavs(writer, [
        { split: 'test-seen', utterances: data.testSeen, count: 10 },
        { split: 'test-unseen', utterances: data.testUnseen, count: 5 },
        ...(data.corpus ? [{ split: 'test-voices', utterances: data.corpus.testVoices, count: 10 }] : []),
      ], model.sampleRate);
      const rows = [...evalRows(result.testSeen, 'test-seen', wavs), ...evalRows(result.testUnseen, 'test-unseen', wavs), ...evalRows(result.testVoices, 'test-voices', wavs)];
      if (rows.length) await writer.writeArtifact('examples.json', JSON.stringify(rows), 'table', 'held-out utterances: transcript, prediction (greedy), CER');
      const last = result.epochs.at(-1);
      const summary = {
        model: 'model/model.json',
        arch,
        dataset,
        ...(result.testSeen ? { cer: result.testSeen.cer, wer: result.testSeen.wer } : {}),
        ...(result.testUnseen ? { cerUnseen: result.testUnseen.cer, werUnseen: result.testUnseen.wer } : {}),
        ...(result.testVoices ? { cerVoices: result.testVoices.cer, werVoices: result.testVoices.wer, testVoiceClips: result.testVoices.rows.length } : {}),
        ...(last ? { valCer: last.val_cer, valWer: last.val_wer, trainLoss: last.loss } : {}),
        seconds: result.seconds,
        epochsRun: result.epochsRun,
        utterancesPerEpoch: data.corpus ? data.corpus.train.length + o.fsddUtterances : o.utterances,
        testUtterances: o.testUtterances,
        heldOutSpeaker: data.heldOutSpeaker,
        trainedLetters,
        parameters: model.paramCount(),
        quick: o.quick,
        modelSha256: saved.sha256,
        utterancesPerSecond: result.utterancesPerSecond,
        cpuSeconds: result.cpuSeconds,
        backend: env.backend.name,
        engine: result.engine.engine,
        engineReason: describeEngine(result.engine),
      };
      return trainedModelOutcome(summary, saved.modelJson, cancel);
    } finally {
      model.dispose();
    }
  });
}) satisfies JobHandler<'audio-train'>;

export const audioAttackJob = (async (raw, ctx, env) => {
  const p = audioAttackParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const clip = await readClip(p.wav);
  const resolved = await resolveSpeechModel(p.model, store, ctx);
  const { model } = resolved;
  try {
    const engine = await useSequenceEngine(model, p.engine);
    ctx.log(`engine: ${describeEngine(engine)}`);
    // Bad targets and option combinations (stage 2 or the alignment loss without a target) fail before a session exists.
    if (p.stage2 && p.target === null) throw badInput('The imperceptible second stage needs a target phrase (it keeps the target transcript); it does not apply to the untargeted attack');
    const options = { target: p.target, iterations: p.iterations, c: p.c, learningRate: p.learningRate, tau0: p.tau0, seed: p.seed, alignmentMargin: p.alignmentMargin, stage2: p.stage2 };
    resolveAudioAttackOptions(options);
    if (p.target !== null) {
      const n = clip.sampleRate === model.sampleRate ? clip.samples.length : Math.ceil((clip.samples.length * model.sampleRate) / clip.sampleRate);
      validateTarget(model, p.target, n);
    }
    const { writer } = await openSession(env, {
      kind: 'audio-attack',
      name: p.name ?? (p.target === null ? `untargeted audio attack on ${basename(p.wav)}` : `"${p.target}" on ${basename(p.wav)}`),
      params: p,
      tags: p.tags,
      datasets: [{ name: basename(p.wav).slice(0, 200), split: 'wav file', sha256: clip.sha256 }],
      models: [resolved.ref],
    });
    return await runInSession(writer, async () => {
      // A cancelled attack keeps its best (or last) candidate so far, saved and marked cancelled.
      const sha256 = resolved.ref.sha256;
      const onRow = (row: AudioAttackRow) => writer.appendMetric('attack', { ...row });
      // On the pool (or a cluster) the clip's attack is one shard when it runs on tfjs; ONNX Runtime runs in place on
      // its own intra-op threads, and stage 2 (its masking analysis and metrics rows) stays in the job's thread.
      const sharded = ctx.shards && model.modelJson && sha256 && engine.engine === 'tfjs' && !p.stage2;
      const { value: r, cancel } = await keepPartial(sharded
        ? attackClipAsShard(ctx, { kind: 'saved', modelJson: resolvePath(model.modelJson!), sha256: sha256!, gradient: 'real' }, clip, options, onRow)
        : audioAttack(model, clip, options, ctx, { onRow, onStage2Row: (row) => writer.appendMetric('stage2', { ...row }) }));
      const audible = audiblePerturbation(r.perturbation, 0.9);
      await writer.writeArtifacts([
        { path: 'original.wav', data: write16(r.original, r.sampleRate), kind: 'audio', description: `the clip (16-bit, ${r.sampleRate} Hz): "${r.transcriptBefore}"` },
        { path: 'adversarial.wav', data: write16(r.adversarial, r.sampleRate), kind: 'audio', description: `adversarial clip (16-bit, ${r.sampleRate} Hz): "${r.transcriptAfter}"` },
        { path: 'perturbation.wav', data: write16(audible.samples, r.sampleRate), kind: 'audio', description: `adversarial - original, amplified x${audible.gain.toFixed(2)} to a 0.9 full-scale peak` },
      ]);
      const s2 = r.stage2 ? await writeStage2(writer, r.stage2, r.perturbation, r.sampleRate) : {};
      // The saved clips re-checked as a second user would have them: read back, model loaded afresh.
      const survival = await recheckArtifacts(writer, resolved.ref.path ?? model.modelJson!, [
        { path: 'adversarial.wav', inMemory: r.transcriptAfter },
        ...(r.stage2 ? [{ path: 'adversarial-stage2.wav', inMemory: r.stage2.transcript }] : []),
      ], ctx);
      const summary = {
        ...survival,
        success: r.success,
        mode: r.mode,
        target: r.target,
        transcriptBefore: r.transcriptBefore,
        transcriptAfter: r.transcriptAfter,
        dbx: r.dbx,
        linf: r.linf,
        iterations: r.iterations,
        successIteration: r.successIteration,
        ...(r.unseenSymbols.length ? { unseenSymbols: r.unseenSymbols.join('') } : {}),
        successes: r.successes,
        stopReason: r.stopReason,
        seconds: r.seconds,
        tau: r.tau,
        sampleRate: r.sampleRate,
        perturbationGain: audible.gain,
        modelId: resolved.ref.id ?? resolved.ref.path,
        arch: model.arch,
        wav: p.wav,
        c: p.c,
        learningRate: p.learningRate,
        tau0: p.tau0,
        alignmentMargin: p.alignmentMargin,
        backend: env.backend.name,
        ...s2,
        engine: engine.engine,
        engineReason: describeEngine(engine),
      };
      const outcome = { summary, result: summary };
      if (cancel) throw cancelledWith(outcome, cancel);
      return outcome;
    });
  } finally {
    model.dispose();
  }
}) satisfies JobHandler<'audio-attack'>;

/** Stage 2's artifacts (clip, amplified perturbation, per-frame masking analysis) and its summary keys. */
async function writeStage2(writer: SessionWriter, s: ImperceptibleResult, stage1Perturbation: Float32Array, rate: number) {
  const audible = audiblePerturbation(s.perturbation, 0.9);
  const one = maskingFrames(stage1Perturbation, s.threshold);
  const two = maskingFrames(s.perturbation, s.threshold);
  const masking = {
    sampleRate: s.threshold.config.sampleRate, windowSize: s.threshold.config.windowSize, hop: s.threshold.config.hop,
    freqs: one[0]?.freqs ?? [],
    frames: one.map((f, i) => ({ frame: f.frame, start: f.start, threshold: f.threshold, clip: f.clip, stage1: f.perturbation, stage2: two[i].perturbation })),
  };
  await writer.writeArtifacts([
    { path: 'adversarial-stage2.wav', data: write16(s.adversarial, rate), kind: 'audio', description: `stage 2 (imperceptible) clip (16-bit, ${rate} Hz): "${s.transcript}"` },
    { path: 'perturbation-stage2.wav', data: write16(audible.samples, rate), kind: 'audio', description: `stage 2 perturbation, amplified x${audible.gain.toFixed(2)} to a 0.9 full-scale peak` },
  ]);
  await writer.writeArtifact('masking.json', JSON.stringify(masking), 'json', 'per frame: the clip\'s masking threshold and PSD, stage 1 and stage 2 perturbation PSDs (dB, 96 dB per-frame scale; null threshold: no hearing there)');
  return {
    stage2: true,
    dbxStage2: s.dbx,
    linfStage2: s.linf,
    transcriptStage2: s.transcript,
    violationStage1: s.violationBefore.loss,
    violationStage2: s.violationAfter.loss,
    violationDbStage1: s.violationBefore.meanExcessDb,
    violationDbStage2: s.violationAfter.meanExcessDb,
    aboveFractionStage1: s.violationBefore.aboveFraction,
    aboveFractionStage2: s.violationAfter.aboveFraction,
    stage2Improved: s.improved,
    stage2Iterations: s.iterations,
    stage2BestIteration: s.bestIteration,
    stage2Alpha: s.alpha,
    stage2Seconds: s.seconds,
    perturbationGainStage2: audible.gain,
  };
}

/**
 * The clip's attack as one 'audio-clip' shard (engine/shards/audio-clip.ts) on the job's executor (the
 * pool or a cluster): the same attack, seed and options as in place, so the same result; its metrics
 * rows are appended once it is back, in order; a cancelled shard's partial result ends the job
 * cancelled with it (as audioAttack's CancelledError does in place).
 */
async function attackClipAsShard(
  ctx: JobContext, model: SavedClassifierSpec, clip: { samples: Float32Array; sampleRate: number }, options: AudioAttackOptions,
  onRow: (row: AudioAttackRow) => Promise<void> | void,
): Promise<AudioAttackResult> {
  const task: AudioClipTask = { model, samples: clip.samples.slice(), sampleRate: clip.sampleRate, options };
  const id = shardId('audio-clip', 0, { model, sampleRate: clip.sampleRate, options }, [task.samples]);
  const [out] = await ctx.shards!.run([{ type: 'audio-clip', id, task }], (_, pr) => ctx.progress(pr));
  const { cancelled, ...r } = out;
  if (r.unseenSymbols.length) ctx.log(`The model never saw ${r.unseenSymbols.map((c) => JSON.stringify(c)).join(', ')} in its training transcripts; it may be unable to emit them, whatever the perturbation.`);
  for (const row of r.history) await onRow(row);
  if (cancelled) throw new CancelledError(`Audio attack cancelled after ${r.iterations} iteration(s)`, r);
  return r;
}

export const audioTranscribe = (async (raw, ctx, env) => {
  const p = audioTranscribeParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const clip = await readClip(p.wav);
  const resolved = await resolveSpeechModel(p.model, store, ctx);
  try {
    const t0 = performance.now();
    const x = clip.sampleRate === resolved.model.sampleRate ? clip.samples : resample(clip.samples, clip.sampleRate, resolved.model.sampleRate);
    const [text] = await resolved.model.transcribeBatch([x], { method: p.method });
    return {
      transcript: text, wav: p.wav, duration: clip.duration, sampleRate: clip.sampleRate, method: p.method,
      model: resolved.ref.id ?? resolved.ref.path, arch: resolved.model.arch, seconds: (performance.now() - t0) / 1000, backend: env.backend.name,
    };
  } finally {
    resolved.model.dispose();
  }
}) satisfies JobHandler<'audio-transcribe'>;


/**
 * What a continued model records as its starting point: the reference as the user gave it when it names a model
 * anywhere (starter:NAME, a session id), the file otherwise, with the weights' sha256 either way. A model trained
 * from starter:speech then says so on every machine, not where the pack was unpacked on the training one.
 */
export function initRecord(given: string, ref: { path?: string; id?: string; sha256?: string }): string {
  const portable = given.startsWith('starter:') || ref.id !== undefined || ref.path === undefined;
  const where = portable ? (ref.id ?? given) : ref.path;
  return ref.sha256 ? `${where} (sha256 ${ref.sha256})` : `${where}`;
}
