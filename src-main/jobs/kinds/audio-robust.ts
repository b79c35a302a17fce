/**
 * Attacks that survive: robust mode ('audio-robust', engine/audio/eot.ts) and the universal perturbation
 * ('audio-universal', engine/audio/universal.ts). Every adversarial WAV they save is re-checked from
 * disk with a freshly loaded model (audio-survival.ts).
 *
 * Sessions:
 *  - audio-robust: artifacts original.wav, adversarial.wav (the EOT attack's), perturbation.wav (scaled to
 *    a 0.9 peak, gain summary.perturbationGain), plain-adversarial.wav (with compare), heldout.json (one row
 *    per held-out transformation: room seed, SNR, shift, resampling, each clip's transcript under it),
 *    heldout/*.wav (the first three held-out renderings of the robust clip), survival.json; metrics
 *    attack.jsonl (the EOT attack, as audio-attack's) and plain.jsonl; summary {success, target,
 *    transcriptBefore, transcriptAfter, dbx, heldOutSuccess, plainSuccess, plainDbx, plainHeldOutSuccess,
 *    dbxCost, survived, ...}. Cancelled before the held-out evaluation: original.wav and the EOT attack's
 *    adversarial.wav so far, the attack's summary with heldOutSuccess null, marked cancelled.
 *  - audio-universal: artifacts universal-<k>.wav (the kept delta of the k-th bound, at its true level),
 *    curve.json (one row per bound, with the clips and the held-out transcripts), examples/<k>-<clip>.wav (three held-out clips with the largest bound's delta), survival.json;
 *    metrics train.jsonl {step, eps, loss}, checks.jsonl {step, eps, trainSuccess}, curve.jsonl (one row
 *    per bound); summary {target, bestHeldOutSuccess, bestEps, ... per-bound heldOutSuccess@eps}. A cancel keeps
 *    the bounds finished so far, marked cancelled.
 */
import { basename } from 'node:path';
import { audioRobustParams, audioUniversalParams } from '../../api/jobs';
import {
  audiblePerturbation, applyTransform, listFsdd, mulberry32, readWavFile, resample, robustAudioAttack, universalPerturbation, validateTarget, write16,
  type AudioAttackResult,
} from '../../engine/audio';
import { AdvlabError } from '../../engine/errors';
import { SessionStore } from '../../engine/sessions';
import { resolveSpeechModel } from '../model-ref';
import { cancelledWith, openSession, runInSession } from '../session-env';
import { keepPartial } from '../../engine/context';
import type { JobHandler } from '../types';
import { findFsdd, readClip } from './audio';
import { recheckArtifacts } from './audio-survival';

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

export const audioRobust = (async (raw, ctx, env) => {
  const p = audioRobustParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const clip = await readClip(p.wav);
  const resolved = await resolveSpeechModel(p.model, store, ctx);
  const { model } = resolved;
  try {
    if (p.target !== null) {
      const n = clip.sampleRate === model.sampleRate ? clip.samples.length : Math.ceil((clip.samples.length * model.sampleRate) / clip.sampleRate);
      validateTarget(model, p.target, n);
    }
    const { writer } = await openSession(env, {
      kind: 'audio-robust',
      name: p.name ?? `robust ${p.target === null ? 'untargeted' : `"${p.target}"`} on ${basename(p.wav)}`,
      params: p,
      tags: p.tags,
      datasets: [{ name: basename(p.wav).slice(0, 200), split: 'wav file', sha256: clip.sha256 }],
      models: [resolved.ref],
    });
    return await runInSession(writer, async () => {
      const eot = {
        samples: p.samples, rooms: p.rooms, reverbProbability: p.reverbProbability, snrDb: p.snrDb, maxShiftMs: p.maxShiftMs,
        resampleProbability: p.resampleProbability, rirMaxSeconds: p.rirMaxSeconds, checkTransforms: p.checkTransforms,
        acceptFraction: p.acceptFraction, heldOut: p.heldOut,
      };
      const { value: r, cancel } = await keepPartial(robustAudioAttack(model, clip, { target: p.target, iterations: p.iterations, c: p.c, learningRate: p.learningRate, tau0: p.tau0, seed: p.seed }, eot, p.compare, ctx, {
        onRow: (which, row) => writer.appendMetric(which === 'robust' ? 'attack' : 'plain', { ...row }),
      }));
      if (cancel) {
        // Cancelled before the held-out evaluation: keep the EOT attack's clip so far, marked cancelled.
        const rob = r.robust;
        await writer.writeArtifacts([
          { path: 'original.wav', data: write16(rob.original, rob.sampleRate), kind: 'audio', description: `the clip (16-bit, ${rob.sampleRate} Hz): "${rob.transcriptBefore}"` },
          { path: 'adversarial.wav', data: write16(rob.adversarial, rob.sampleRate), kind: 'audio', description: `robust (EOT) adversarial clip so far (cancelled): "${rob.transcriptAfter}"` },
        ]);
        throw cancelledWith({ summary: { ...attackSummary(rob), heldOutSuccess: null, modelId: resolved.ref.id ?? resolved.ref.path ?? null, arch: model.arch, wav: p.wav, backend: env.backend.name } }, cancel);
      }
      const rob = r.robust;
      const plain = r.plain;
      const held = r.heldOut!;
      const audible = audiblePerturbation(rob.perturbation, 0.9);
      const rate = rob.sampleRate;
      const wavs: { path: string; data: Buffer; kind: 'audio'; description: string }[] = [
        { path: 'original.wav', data: write16(rob.original, rate), kind: 'audio', description: `the clip (16-bit, ${rate} Hz): "${rob.transcriptBefore}"` },
        { path: 'adversarial.wav', data: write16(rob.adversarial, rate), kind: 'audio', description: `robust (EOT) adversarial clip: "${rob.transcriptAfter}"; target under ${pct(held.robust.successRate)} of held-out transformations` },
        { path: 'perturbation.wav', data: write16(audible.samples, rate), kind: 'audio', description: `adversarial - original, amplified x${audible.gain.toFixed(2)} to a 0.9 full-scale peak` },
      ];
      if (plain) wavs.push({ path: 'plain-adversarial.wav', data: write16(plain.adversarial, rate), kind: 'audio', description: `plain (no EOT) adversarial clip: "${plain.transcriptAfter}"; target under ${pct(held.plain!.successRate)} of held-out transformations` });
      r.heldOutTransforms.slice(0, 3).forEach((t, i) => {
        wavs.push({ path: `heldout/${i}.wav`, data: write16(applyTransform(rob.adversarial, t, rate, r.eot), rate), kind: 'audio', description: `the robust clip under held-out transformation ${i}: "${held.robust.transcripts[i]}"` });
      });
      await writer.writeArtifacts(wavs);
      await writer.writeArtifact('heldout.json', JSON.stringify(r.heldOutTransforms.map((t, i) => ({
        index: i, ...t, robust: held.robust.transcripts[i], ...(held.plain ? { plain: held.plain.transcripts[i] } : {}),
      })), null, 1), 'table', 'held-out transformations (rooms never in the attack\'s pool) and what each adversarial clip transcribes under them');
      const checks = [{ path: 'adversarial.wav', inMemory: rob.transcriptAfter }, ...(plain ? [{ path: 'plain-adversarial.wav', inMemory: plain.transcriptAfter }] : [])];
      const survival = await recheckArtifacts(writer, resolved.ref.path ?? model.modelJson!, checks, ctx);
      const summary = {
        ...attackSummary(rob),
        ...survival,
        heldOutSuccess: held.robust.successRate,
        heldOutTrials: held.robust.trials,
        ...(plain && held.plain ? {
          plainSuccess: plain.success, plainTranscriptAfter: plain.transcriptAfter, plainDbx: plain.dbx, plainHeldOutSuccess: held.plain.successRate,
          plainSeconds: plain.seconds, dbxCost: rob.dbx !== null && plain.dbx !== null ? rob.dbx - plain.dbx : null,
        } : {}),
        eotSamples: r.eot.samples, rooms: r.eot.rooms, snrDb: r.eot.snrDb, maxShiftMs: r.eot.maxShiftMs, reverbProbability: r.eot.reverbProbability,
        resampleProbability: r.eot.resampleProbability, acceptFraction: r.eot.acceptFraction, checkTransforms: r.eot.checkTransforms,
        totalSeconds: r.seconds,
        modelId: resolved.ref.id ?? resolved.ref.path ?? null, arch: model.arch, wav: p.wav, c: p.c, learningRate: p.learningRate, tau0: p.tau0, backend: env.backend.name,
      };
      ctx.log(`held-out transformations: robust ${held.robust.hits}/${held.robust.trials}${held.plain ? `, plain ${held.plain.hits}/${held.plain.trials}` : ''}`);
      return { summary, result: summary };
    });
  } finally {
    model.dispose();
  }
}) satisfies JobHandler<'audio-robust'>;

function attackSummary(r: AudioAttackResult) {
  return {
    success: r.success, mode: r.mode, target: r.target, transcriptBefore: r.transcriptBefore, transcriptAfter: r.transcriptAfter,
    dbx: r.dbx, linf: r.linf, iterations: r.iterations, successIteration: r.successIteration, successes: r.successes, seconds: r.seconds, tau: r.tau,
    sampleRate: r.sampleRate, perturbationGain: audiblePerturbation(r.perturbation, 0.9).gain,
  };
}

export const audioUniversal = (async (raw, ctx, env) => {
  const p = audioUniversalParams.parse(raw);
  const store = new SessionStore(env.sessionsRoot);
  const dir = findFsdd(env.dataDirs);
  const all = await listFsdd(dir);
  if (all.length < p.trainClips + p.testClips) {
    throw new AdvlabError('BAD_INPUT', `universal perturbation: ${p.trainClips} training + ${p.testClips} held-out clips asked for, but ${dir} has ${all.length} recordings`, { dir, have: all.length });
  }
  const resolved = await resolveSpeechModel(p.model, store, ctx);
  const { model } = resolved;
  try {
    validateTarget(model, p.target, Math.round(p.seconds * model.sampleRate));
    // A seeded shuffle; the first trainClips train, the next testClips are held out.
    const rng = mulberry32(p.seed ^ 0x1b873593);
    const order = all.map((c) => ({ c, k: rng() })).sort((a, b) => a.k - b.k).map((o) => o.c);
    const trainSet = order.slice(0, p.trainClips);
    const testSet = order.slice(p.trainClips, p.trainClips + p.testClips);
    const load = async (f: { path: string }) => {
      const w = await readWavFile(f.path);
      return w.sampleRate === model.sampleRate ? w.samples : resample(w.samples, w.sampleRate, model.sampleRate);
    };
    const train = await Promise.all(trainSet.map(load));
    const heldOut = await Promise.all(testSet.map(load));
    const { writer } = await openSession(env, {
      kind: 'audio-universal',
      name: p.name ?? `universal "${p.target}" (${p.trainClips} clips)`,
      params: p,
      tags: p.tags,
      datasets: [{ name: 'fsdd', split: `train: ${trainSet.length} clips (seeded pick)` }, { name: 'fsdd', split: `held out: ${testSet.length} other clips` }],
      models: [resolved.ref],
    });
    return await runInSession(writer, async () => {
      // A cancel keeps the bounds finished so far (their deltas, curve rows and examples), marked cancelled.
      const { value: r, cancel } = await keepPartial(universalPerturbation(model, train, heldOut, {
        target: p.target, eps: p.eps, iterations: p.iterations, batchSize: p.batchSize, learningRate: p.learningRate, seconds: p.seconds, seed: p.seed,
      }, ctx, {
        onStep: (row) => (row.iteration % 5 === 0 ? writer.appendMetric('train', { step: row.iteration, eps: row.eps, loss: row.loss }) : undefined),
        onCheck: (row) => writer.appendMetric('checks', { step: row.iteration, eps: row.eps, trainSuccess: row.trainSuccess }),
      }));
      if (cancel && r.points.length === 0) throw cancelledWith({ summary: { target: r.target, bounds: 0, trainClips: train.length, testClips: heldOut.length } }, cancel);
      const rate = r.sampleRate;
      const rows = r.points.map((pt, k) => ({ k, eps: pt.eps, deltaDbfs: pt.deltaDbfs, meanDbx: pt.meanDbx, trainSuccess: pt.trainSuccess, heldOutSuccess: pt.heldOutSuccess, heldOutHits: pt.heldOutHits, heldOutTrials: pt.heldOutTrials, keptAt: pt.keptAt }));
      for (const row of rows) await writer.appendMetric('curve', row);
      const wavs = r.deltas.map((d, k) => ({ path: `universal-${k}.wav`, data: write16(d, rate), kind: 'audio' as const, description: `the universal perturbation for eps ${r.points[k].eps} (true level, ${r.points[k].deltaDbfs.toFixed(1)} dBFS): held-out success ${pct(r.points[k].heldOutSuccess)}` }));
      // Three held-out clips with the largest bound's delta, as stored.
      const last = r.deltas.length - 1;
      const examples = heldOut.slice(0, 3).map((x, i) => {
        const w = new Float32Array(r.length);
        w.set(x.subarray(0, r.length));
        const adv = w.map((v, j) => v + r.deltas[last][j]);
        return { path: `examples/${i}-${basename(testSet[i].file, '.wav')}.wav`, data: write16(adv, rate), kind: 'audio' as const, description: `held-out clip ${testSet[i].file} + the eps ${r.points[last].eps} delta: "${r.points[last].heldOutTranscripts[i]}"`, inMemory: r.points[last].heldOutTranscripts[i] };
      });
      await writer.writeArtifacts([...wavs, ...examples.map(({ inMemory: _m, ...e }) => e)]);
      await writer.writeArtifact('curve.json', JSON.stringify({
        target: r.target, sampleRate: rate, seconds: r.length / rate, train: trainSet.map((c) => c.file), heldOut: testSet.map((c) => c.file),
        heldOutClean: r.heldOutClean, points: r.points,
      }, null, 1), 'table', 'held-out success of each bound\'s universal perturbation (and the transcripts)');
      const survival = await recheckArtifacts(writer, resolved.ref.path ?? model.modelJson!, examples.map((e) => ({ path: e.path, inMemory: e.inMemory })), ctx);
      const best = r.points.reduce((a, b) => (b.heldOutSuccess > a.heldOutSuccess ? b : a));
      const summary: Record<string, string | number | boolean | null> = {
        target: r.target,
        bestHeldOutSuccess: best.heldOutSuccess,
        bestEps: best.eps,
        bestDeltaDbfs: best.deltaDbfs,
        trainClips: train.length,
        testClips: heldOut.length,
        bounds: r.points.length,
        iterations: p.iterations,
        seconds: r.seconds,
        windowSeconds: r.length / rate,
        ...survival,
        modelId: resolved.ref.id ?? resolved.ref.path ?? null,
        arch: model.arch,
        backend: env.backend.name,
      };
      for (const pt of r.points) {
        summary[`heldOutSuccess@${pt.eps}`] = pt.heldOutSuccess;
        summary[`trainSuccess@${pt.eps}`] = pt.trainSuccess;
      }
      const outcome = { summary, result: { ...summary, curve: rows } };
      if (cancel) throw cancelledWith(outcome, cancel);
      return outcome;
    });
  } finally {
    model.dispose();
  }
}) satisfies JobHandler<'audio-universal'>;
