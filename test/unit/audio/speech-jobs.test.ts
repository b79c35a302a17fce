import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioAttackParams, audioTrainParams, jobStartSchema } from '../../../src-main/api/jobs';
import { initBackend, type BackendInfo } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SpeechModel, dbx, readWav } from '../../../src-main/engine/audio';
import { SessionStore } from '../../../src-main/engine/sessions';
import { audioAttackJob, audioTrain, audioTranscribe, initRecord } from '../../../src-main/jobs/kinds/audio';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { DATA } from '../helpers';

let root: string;
let env: JobEnv;
let trainSession: string;
const sessions: string[] = [];

const jsonl = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  const backend: BackendInfo = await initBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'advlab-audio-jobs-'));
  env = { backend, dataDirs: [DATA], sessionsRoot: join(root, 'sessions'), onSession: (id) => void sessions.push(id) };
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('audio jobs', () => {
  it('validates params: defaults, strictness, registration', () => {
    const a = audioAttackParams.parse({ model: 'm', wav: 'x.wav' });
    expect(a).toMatchObject({ target: null, iterations: 1000, c: 1, tau0: 0.05, learningRate: 0.005 });
    expect(a.engine).toBe('auto');
    expect(() => audioAttackParams.parse({ model: 'm', wav: 'x.wav', engine: 'gpu' })).toThrow(/engine/);
    expect(() => audioAttackParams.parse({ model: 'm', wav: 'x.wav', epsilon: 3 })).toThrow(/Unrecognized key.*epsilon/);
    expect(audioTrainParams.parse({}).quick).toBe(false);
    expect(() => audioTrainParams.parse({ arch: 'cw-mnist' })).toThrow(/expected one of .*speech-base.*speech-small/);
    expect(jobStartSchema.parse({ kind: 'audio-train', params: { quick: true } }).kind).toBe('audio-train');
    expect(jobHandlers['audio-train']).toBe(audioTrain);
    expect(jobHandlers['audio-attack']).toBe(audioAttackJob);
    expect(jobHandlers['audio-transcribe']).toBe(audioTranscribe);
  });

  it('audio-train writes the model, metrics, examples and the summary the UI reads', async () => {
    const r = (await audioTrain({ quick: true, epochs: 1, utterances: 32, seed: 2, tags: ['t'] }, new LocalContext(), env)) as Record<string, unknown>;
    trainSession = r.session as string;
    expect(sessions).toContain(trainSession);
    const store = new SessionStore(env.sessionsRoot);
    const m = await store.manifest(trainSession);
    expect(m.kind).toBe('audio-train');
    expect(m.status).toBe('finished');
    expect(m.summary).toMatchObject({ model: 'model/model.json', arch: 'speech-small', dataset: 'fsdd', heldOutSpeaker: 'yweweler', quick: true, trainedLetters: 'efghinorstuvwxz' });
    for (const k of ['cer', 'wer', 'cerUnseen', 'werUnseen', 'seconds']) expect(typeof m.summary[k]).toBe('number');
    // The jobs' default engine (auto, as image training's): the steps on ONNX Runtime, CTC in JS.
    expect(m.params).toMatchObject({ engine: 'auto' });
    expect(m.summary).toMatchObject({ engine: 'onnx', engineReason: expect.stringMatching(/^onnx \(\d+ threads\): auto: every layer is exported for training$/) });
    const dir = store.dir(trainSession);
    const meta = JSON.parse(await readFile(join(dir, 'artifacts', 'model', 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta).toMatchObject({ task: 'speech-to-text', arch: 'speech-small', trainedBy: trainSession, trainingStatus: 'complete' });
    expect(meta.frontend.sampleRate).toBe(8000);
    expect(meta.alphabet).toHaveLength(28);
    // The letters of the ten digit words, and the space: all a digits-only model can learn to emit.
    expect(meta.trainedSymbols.join('')).toBe(' efghinorstuvwxz');
    const train = await jsonl(join(dir, 'metrics', 'train.jsonl'));
    expect(train).toHaveLength(2);
    expect(Object.keys(train[0]).sort()).toEqual(['epoch', 'loss', 'step']);
    const epochs = await jsonl(join(dir, 'metrics', 'epochs.jsonl'));
    expect(Object.keys(epochs[0]).sort()).toEqual(['epoch', 'loss', 'val_cer', 'val_wer']);
    const examples = JSON.parse(await readFile(join(dir, 'artifacts', 'examples.json'), 'utf8')) as Record<string, unknown>[];
    expect(examples).toHaveLength(200);
    expect(new Set(examples.map((e) => e.split))).toEqual(new Set(['test-seen', 'test-unseen']));
    expect(Object.keys(examples[0])).toEqual(expect.arrayContaining(['id', 'transcript', 'predicted', 'cer', 'split', 'wav']));
    const wav = readWav(await readFile(join(dir, 'artifacts', examples[0].wav as string)));
    expect(wav.sampleRate).toBe(8000);
    expect(wav.bitsPerSample).toBe(16);
  });

  it('audio-attack writes original / adversarial / perturbation WAVs, attack.jsonl and a summary without "model"', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const wavPath = join(store.dir(trainSession), 'artifacts', 'examples', (await readdir(join(store.dir(trainSession), 'artifacts', 'examples')))[0]);
    const r = (await audioAttackJob({ model: trainSession, wav: wavPath, target: 'a', iterations: 20, seed: 1 }, new LocalContext(), env)) as Record<string, unknown>;
    const m = await store.manifest(r.session as string);
    expect(m.kind).toBe('audio-attack');
    expect(m.status).toBe('finished');
    expect(m.summary).not.toHaveProperty('model');
    expect(m.models[0]).toMatchObject({ id: trainSession, arch: 'speech-small' });
    expect(m.summary).toMatchObject({ target: 'a', iterations: 20, sampleRate: 8000, tau0: 0.05, unseenSymbols: 'a' });
    // engine auto: the speech network on ONNX Runtime (issue 13), the front end and CTC in tfjs.
    expect(m.summary).toMatchObject({ engine: 'onnx', engineReason: expect.stringMatching(/^onnx \(\d+ threads\): auto: every layer is exported$/) });
    for (const k of ['success', 'transcriptBefore', 'transcriptAfter', 'seconds', 'tau', 'perturbationGain']) expect(m.summary).toHaveProperty(k);
    const art = join(store.dir(r.session as string), 'artifacts');
    const orig = readWav(await readFile(join(art, 'original.wav')));
    const adv = readWav(await readFile(join(art, 'adversarial.wav')));
    const pert = readWav(await readFile(join(art, 'perturbation.wav')));
    for (const w of [orig, adv, pert]) {
      expect(w.sampleRate).toBe(8000);
      expect(w.bitsPerSample).toBe(16);
      expect(w.samples.length).toBe(orig.samples.length);
    }
    const delta = adv.samples.map((v, i) => v - orig.samples[i]);
    expect(m.summary.dbx).toBeCloseTo(dbx(delta, orig.samples), 6);
    expect(Math.max(...pert.samples.map(Math.abs))).toBeCloseTo(0.9, 3);
    // perturbation.wav is delta x gain (up to 16-bit rounding).
    const gain = m.summary.perturbationGain as number;
    const k = delta.findIndex((v) => Math.abs(v) === Math.max(...delta.map(Math.abs)));
    expect(pert.samples[k]).toBeCloseTo(delta[k] * gain, 3);
    const rows = await jsonl(join(store.dir(r.session as string), 'metrics', 'attack.jsonl'));
    expect(rows.map((x) => x.iteration)).toEqual([10, 20]);
    expect(Object.keys(rows[0]).sort()).toEqual(['ctc', 'dbx', 'iteration', 'loss', 'tau']);

    const t = (await audioTranscribe({ model: join(store.dir(trainSession), 'artifacts', 'model'), wav: join(art, 'adversarial.wav') }, new LocalContext(), env)) as Record<string, unknown>;
    expect(t.transcript).toBe(m.summary.transcriptAfter);
  });

  it('reports bad input clearly and opens no session for it', async () => {
    const count = sessions.length;
    const notWav = join(root, 'notes.wav');
    await writeFile(notWav, 'this is text, not audio');
    await expect(audioAttackJob({ model: trainSession, wav: notWav, target: 'one' }, new LocalContext(), env)).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringContaining(notWav) });
    await expect(audioAttackJob({ model: trainSession, wav: join(root, 'missing.wav'), target: 'one' }, new LocalContext(), env)).rejects.toThrow(/missing\.wav: cannot be read/);
    const store = new SessionStore(env.sessionsRoot);
    const wavPath = join(store.dir(trainSession), 'artifacts', 'examples', (await readdir(join(store.dir(trainSession), 'artifacts', 'examples')))[0]);
    await expect(audioAttackJob({ model: trainSession, wav: wavPath, target: 'ok google?' }, new LocalContext(), env)).rejects.toThrow(/character "\?" at position 9 is not in the alphabet/);
    await expect(audioAttackJob({ model: 'no-such-model', wav: wavPath, target: 'one' }, new LocalContext(), env)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(audioTrain({ quick: true }, new LocalContext(), { ...env, dataDirs: [root] })).rejects.toThrow(/FSDD not found/);
    expect(sessions.length).toBe(count);
    expect(existsSync(env.sessionsRoot)).toBe(true);
  });

  it('audio-train --init continues a model, saving a checkpoint after every epoch while it runs', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const count = sessions.length;
    // A mismatched architecture is refused before a session opens.
    await expect(audioTrain({ init: trainSession, arch: 'speech-base' }, new LocalContext(), env)).rejects.toThrow(/is a speech-small model, not speech-base/);
    expect(sessions.length).toBe(count);

    // While epoch 2 trains, artifacts/checkpoint/ holds epoch 1's model, loadable as a speech model.
    const seen: { epoch: number; status: unknown; sameWeights: boolean }[] = [];
    const initModel = await SpeechModel.load(join(store.dir(trainSession), 'artifacts', 'model'));
    const initWeights = initModel.network.getWeights().map((w) => w.dataSync().slice());
    initModel.dispose();
    let checking: Promise<void> | null = null;
    const ctx = new LocalContext((p) => {
      if (checking || p.phase !== 'epoch 2/2') return;
      const dir = join(store.dir(sessions[sessions.length - 1]), 'artifacts', 'checkpoint');
      checking = SpeechModel.load(dir).then((m) => {
        const w = m.network.getWeights().map((t) => t.dataSync());
        // Learning rate 1e-9: weights stay at the init model's (to float precision) if training started from it.
        seen.push({ epoch: m.extraMeta.checkpointEpoch as number, status: m.extraMeta.trainingStatus, sameWeights: w.every((a, i) => a.every((v, k) => Math.abs(v - initWeights[i][k]) < 1e-5)) });
        m.dispose();
      });
    });
    const r = (await audioTrain({ init: trainSession, epochs: 2, utterances: 32, learningRate: 1e-9, seed: 3 }, ctx, env)) as Record<string, unknown>;
    await checking;
    expect(seen).toEqual([{ epoch: 1, status: 'checkpoint', sameWeights: true }]);
    const m = await store.manifest(r.session as string);
    expect(m.status).toBe('finished');
    expect(m.summary).toMatchObject({ arch: 'speech-small', epochsRun: 2 });
    expect(m.models[0]).toMatchObject({ id: trainSession, arch: 'speech-small' });
    const dir = store.dir(r.session as string);
    // The final model replaces the checkpoint, and carries none of its marks.
    expect(existsSync(join(dir, 'artifacts', 'checkpoint'))).toBe(false);
    const meta = JSON.parse(await readFile(join(dir, 'artifacts', 'model', 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta).toMatchObject({ trainedBy: r.session, trainingStatus: 'complete' });
    // The starting point as the user named it (a session id here), with its sha256: never a path of this machine.
    expect(meta.initFrom).toMatch(new RegExp(`^${trainSession} \\(sha256 [0-9a-f]{64}\\)$`));
    expect(meta).not.toHaveProperty('checkpointEpoch');
    const final = await SpeechModel.load(join(dir, 'artifacts', 'model'));
    const w = final.network.getWeights().map((t) => t.dataSync());
    final.dispose();
    expect(w.every((a, i) => a.every((v, k) => Math.abs(v - initWeights[i][k]) < 1e-5))).toBe(true);
  });

  it('a continued model records starter:NAME or a session id as given, a file by its path, with the sha256', () => {
    expect(initRecord('starter:speech', { path: '/opt/app/resources/starter/models/speech/model.json', sha256: 'ab' })).toBe('starter:speech (sha256 ab)');
    expect(initRecord('20261205-1', { id: '20261205-1', path: '/home/u/sessions/20261205-1/artifacts/model/model.json', sha256: 'cd' })).toBe('20261205-1 (sha256 cd)');
    expect(initRecord('./m', { path: '/home/u/m/model.json', sha256: 'ef' })).toBe('/home/u/m/model.json (sha256 ef)');
  });
});
