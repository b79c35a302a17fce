import { buildReport, buildSessionView } from '../../../src-main/report';
import { promises as fsp, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { readWav, encodeWav } from '../../../src-main/engine/audio/wav';
import { binomialTest, rmsDbfs } from '../../../src-main/engine/audio/dbx';
import { parseParams } from '../../../src-main/api/contract';
import { ListeningService, planTrials, saveUpload, safeUploadName, uploadsDir, decodeUpload, listClips, listeningHandlers } from '../../../src-main/listening';
import { DATA, FIXTURE_ENV, FSDD, makeAudioAttackSession, type Fixture } from './fixtures';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(os.tmpdir(), 'advlab-listening-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('planTrials', () => {
  it('is reproducible from its seed and different for another seed', () => {
    const a = planTrials({ pairs: 3, repeats: 4, mode: 'ab', seed: 42 });
    const b = planTrials({ pairs: 3, repeats: 4, mode: 'ab', seed: 42 });
    const c = planTrials({ pairs: 3, repeats: 4, mode: 'ab', seed: 43 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(a.map((t) => t.trial)).toEqual([...Array(12).keys()]);
  });

  it('shows every pair `repeats` times in a shuffled order, with fair coin flips', () => {
    const plan = planTrials({ pairs: 5, repeats: 400, mode: 'ab', seed: 7 });
    const counts = [0, 0, 0, 0, 0];
    for (const t of plan) counts[t.pair]++;
    expect(counts).toEqual([400, 400, 400, 400, 400]);
    // Not in pair order: the first 20 trials are not 0,1,2,3,4,0,1,...
    expect(plan.slice(0, 20).map((t) => t.pair)).not.toEqual([...Array(20).keys()].map((i) => i % 5));
    const adv = plan.filter((t) => t.x === 'adversarial').length / plan.length;
    expect(adv).toBeGreaterThan(0.47);
    expect(adv).toBeLessThan(0.53);
    for (const t of plan) expect(t.correct).toBe(t.x);
  });

  it('ABX: A and B are one of each, X is one of them, the answer says which', () => {
    const plan = planTrials({ pairs: 2, repeats: 500, mode: 'abx', seed: 3 });
    let xIsA = 0, aIsOriginal = 0;
    for (const t of plan) {
      expect(new Set([t.a, t.b])).toEqual(new Set(['original', 'adversarial']));
      expect(t.correct).toBe(t.x === t.a ? 'A' : 'B');
      if (t.correct === 'A') xIsA++;
      if (t.a === 'original') aIsOriginal++;
    }
    expect(xIsA / plan.length).toBeGreaterThan(0.45);
    expect(xIsA / plan.length).toBeLessThan(0.55);
    expect(aIsOriginal / plan.length).toBeGreaterThan(0.45);
    expect(aIsOriginal / plan.length).toBeLessThan(0.55);
  });

  it('refuses impossible plans', () => {
    expect(() => planTrials({ pairs: 0, repeats: 1, mode: 'ab', seed: 1 })).toThrow(/pairs/);
    expect(() => planTrials({ pairs: 1, repeats: 1, mode: 'xy' as never, seed: 1 })).toThrow(/mode/);
  });
});

describe('binomial p-value against chance', () => {
  it('matches exact tail sums', () => {
    expect(binomialTest(6, 6)).toBeCloseTo(1 / 64, 12);
    expect(binomialTest(9, 10)).toBeCloseTo(11 / 1024, 12);
    expect(binomialTest(5, 10)).toBeCloseTo(638 / 1024, 12);
    expect(binomialTest(0, 10)).toBe(1);
  });
});

describe('ListeningService', () => {
  let root: string;
  let store: SessionStore;
  let quiet: Fixture;
  let loud: Fixture;

  beforeAll(async () => {
    root = tmp();
    store = new SessionStore(join(root, 'sessions'));
    quiet = await makeAudioAttackSession(store, { clip: '7_jackson_0.wav', seed: 1 });
    // Its adversarial clip is 6 dB louder than its original: loudness matching must undo that.
    loud = await makeAudioAttackSession(store, { clip: '3_theo_1.wav', seed: 2, advGainDb: 6 });
  });

  // The key as written on disk (the store itself will not hand it out while the test is open).
  const key = async (id: string) => JSON.parse(await fsp.readFile(join(store.dir(id), 'artifacts', 'key.json'), 'utf8'));

  it('seals the key while the test is open: no read through the store, no view, no report; readable once it ends', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const view = await svc.create({ sessions: [quiet.id], mode: 'ab', repeats: 2, seed: 3 });
    await expect(store.readArtifact(view.session, 'key.json')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(store.artifactFile(view.session, 'key.json')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(store.artifactFile(view.session, 'clips/../key.json')).rejects.toMatchObject({ code: 'BAD_INPUT' });
    const v = await buildSessionView(store, view.session);
    expect(JSON.stringify(v.json) + JSON.stringify(v.tables)).not.toContain('"identity"');
    expect(v.problems.join(' ')).toContain('sealed until its test ends');
    expect((await buildReport(store, [view.session])).html).not.toContain('"identity"');
    expect((await key(view.session)).clips).toHaveLength(2); // on disk all along
    await svc.finish(view.session);
    expect(JSON.parse((await store.readArtifact(view.session, 'key.json')).toString('utf8')).clips).toHaveLength(2);
  });

  it('stores loudness-matched clips under neutral names and gives the listener no identities', async () => {
    const changed: string[] = [];
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV, onChange: (id) => changed.push(id) });
    const view = await svc.create({ sessions: [quiet.id, loud.id], mode: 'ab', repeats: 3, seed: 11, targetDbfs: -26 });
    expect(view.trials).toHaveLength(6);
    expect(changed).toEqual([view.session]);
    expect(JSON.stringify(view)).not.toMatch(/original|adversarial/);
    const k = await key(view.session);
    expect(k.clips).toHaveLength(4);
    // Before matching the loud pair differs by ~6 dB...
    expect(rmsDbfs(loud.adversarial) - rmsDbfs(loud.original)).toBeGreaterThan(5.5);
    // ...the stored clips are all at the common level (read back from the WAVs as written).
    for (const c of k.clips) {
      const stored = readWav(await store.readArtifact(view.session, c.path), c.path);
      expect(c.path).toMatch(/^clips\/c\d\d\.wav$/);
      expect(Math.abs(rmsDbfs(stored.samples) - view.levelDbfs)).toBeLessThan(0.05);
      expect(stored.bitsPerSample).toBe(16);
      expect(stored.sampleRate).toBe(8000);
    }
    expect(view.levelDbfs).toBeLessThanOrEqual(-26);
    // Matching scales, it does not change the waveform: the stored clip is the source times one gain.
    const lo = k.clips.find((c: { pair: number; identity: string }) => c.pair === 1 && c.identity === 'original');
    const s = readWav(await store.readArtifact(view.session, lo.path)).samples;
    const g = 10 ** (lo.gainDb / 20);
    let err = 0;
    for (let i = 0; i < s.length; i++) err = Math.max(err, Math.abs(s[i] - loud.original[i] * g));
    expect(err).toBeLessThan(2 / 32768);
    const m = await store.manifest(view.session);
    expect(m.kind).toBe('listening');
    expect(m.status).toBe('running');
    // The seed gives the whole plan: it is recorded when the test ends, not while it is open.
    expect(m.params).toMatchObject({ sessions: [quiet.id, loud.id], mode: 'ab', repeats: 3 });
    expect(m.params).not.toHaveProperty('seed');
    expect(await svc.finish(view.session)).toMatchObject({ seed: 11 });
    expect((await store.manifest(view.session)).params).toMatchObject({ sessions: [quiet.id, loud.id], mode: 'ab', repeats: 3, seed: 11 });
  });

  it('the same seed gives the same trials (the plan is in key.json)', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const a = await svc.create({ sessions: [quiet.id, loud.id], mode: 'abx', repeats: 2, seed: 5 });
    const b = await svc.create({ sessions: [quiet.id, loud.id], mode: 'abx', repeats: 2, seed: 5 });
    const strip = (k: { trials: { pair: number; a: string; b: string; x: string; correct: string }[] }) => k.trials.map(({ pair, a, b, x, correct }) => ({ pair, a, b, x, correct }));
    expect(strip(await key(a.session))).toEqual(strip(await key(b.session)));
    expect(a.trials).toEqual(b.trials);
    for (const t of a.trials) expect([t.clips.a, t.clips.b]).toContain(t.clips.x);
    await svc.finish(a.session);
    await svc.finish(b.session);
  });

  it('records every answer in metrics/answers.jsonl and scores the test with the binomial p-value', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const view = await svc.create({ sessions: [quiet.id, loud.id], mode: 'ab', repeats: 4, seed: 99 });
    const k = await key(view.session);
    const wrong = new Set([2, 5]);
    for (const t of view.trials) {
      const truth = k.trials[t.trial].correct as string;
      const answer = wrong.has(t.trial) ? (truth === 'original' ? 'adversarial' : 'original') : truth;
      // The clip played is the one the key names.
      const clip = k.clips.find((c: { path: string }) => c.path === t.clips.x);
      expect(clip.identity).toBe(truth);
      const r = await svc.answer({ session: view.session, trial: t.trial, answer: answer as 'original', ms: 1234, plays: { x: 2 } });
      expect(r).toEqual({ answered: t.trial + 1, remaining: 8 - t.trial - 1 });
    }
    // Twice the same trial, out of order, or the wrong kind of answer: refused.
    await expect(svc.answer({ session: view.session, trial: 3, answer: 'original' })).rejects.toMatchObject({ code: 'CONFLICT' });
    // While the test is open the rows hold the answers and nothing that tells the truth...
    const open = (await store.readMetrics(view.session, 'answers')).rows;
    expect(open.map((r) => r.trial)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const r of open) expect(Object.keys(r).sort()).toEqual(['answer', 'ms', 'playsX', 'time', 'trial']);
    const result = await svc.finish(view.session);
    // ...and once it has ended, every row has its truth.
    const rows = (await store.readMetrics(view.session, 'answers')).rows;
    expect(rows).toHaveLength(8);
    expect(rows.map((r) => r.trial)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows.filter((r) => r.correct === false).map((r) => r.trial)).toEqual([2, 5]);
    expect(rows[0]).toMatchObject({ ms: 1234, playsX: 2, source: expect.any(String), truth: expect.stringMatching(/original|adversarial/) });
    expect(rows.map((r) => r.time)).toEqual(open.map((r) => r.time));
    expect(result).toMatchObject({ trials: 8, plannedTrials: 8, correct: 6, accuracy: 0.75, mode: 'ab', status: 'finished' });
    expect(result.pValue).toBeCloseTo(binomialTest(6, 8), 12);
    expect(result.pValue).toBeCloseTo(37 / 256, 12);
    const m = await store.manifest(view.session);
    expect(m.status).toBe('finished');
    expect(m.summary).toMatchObject({ trials: 8, correct: 6, accuracy: 0.75, mode: 'ab' });
    expect(m.summary.pValue).toBeCloseTo(37 / 256, 12);
    const results = JSON.parse((await store.readArtifact(view.session, 'results.json')).toString('utf8'));
    expect(results.perPair.map((p: { trials: number }) => p.trials).reduce((a: number, b: number) => a + b)).toBe(8);
    // Ended: no more answers, no second finish.
    await expect(svc.answer({ session: view.session, trial: 8, answer: 'original' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(svc.finish(view.session)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses out-of-order trials and answers of the other mode; an early finish is cancelled with the partial score', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const view = await svc.create({ sessions: [quiet.id], mode: 'abx', repeats: 6, seed: 1 });
    await expect(svc.answer({ session: view.session, trial: 1, answer: 'A' })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(svc.answer({ session: view.session, trial: 0, answer: 'original' })).rejects.toThrow(/ABX answer is "A" or "B"/);
    const k = await key(view.session);
    await svc.answer({ session: view.session, trial: 0, answer: k.trials[0].correct });
    await svc.answer({ session: view.session, trial: 1, answer: k.trials[1].correct });
    const r = await svc.finish(view.session);
    expect(r).toMatchObject({ status: 'cancelled', trials: 2, plannedTrials: 6, correct: 2, accuracy: 1 });
    expect(r.pValue).toBeCloseTo(0.25, 12);
    expect((await store.manifest(view.session)).status).toBe('cancelled');
  });

  it('names the session and the problem for sources it cannot use', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const w = await store.create({ kind: 'train', params: {}, environment: FIXTURE_ENV });
    await w.finish({});
    await expect(svc.create({ sessions: [w.id], mode: 'ab' })).rejects.toThrow(new RegExp(`${w.id} is a "train" session`));
    await expect(svc.create({ sessions: ['nope-123'], mode: 'ab' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // An audio-attack session whose clips differ in length.
    const bad = await store.create({ kind: 'audio-attack', params: {}, environment: FIXTURE_ENV });
    await bad.writeArtifacts([
      { path: 'original.wav', data: encodeWav(new Float32Array(800).fill(0.1), 8000) },
      { path: 'adversarial.wav', data: encodeWav(new Float32Array(700).fill(0.1), 8000) },
    ]);
    await bad.finish({});
    await expect(svc.create({ sessions: [bad.id], mode: 'ab' })).rejects.toThrow(/adversarial\.wav: 700 samples, original\.wav has 800/);
    expect(svc.openTests()).toEqual([]);
  });

  it('validates create parameters in the API contract', () => {
    expect(() => parseParams('listening.create', { sessions: ['a'], mode: 'ab', repeats: 501 })).toThrow(/500 trials|repeats/);
    expect(() => parseParams('listening.create', { sessions: ['a', 'a'] })).toThrow(/twice/);
    expect(parseParams('listening.create', { sessions: ['a'] })).toMatchObject({ mode: 'ab', repeats: 5, targetDbfs: -23 });
    expect(() => parseParams('listening.answer', { session: 'a', trial: 0, answer: 'maybe' })).toThrow(/answer/);
  });
});

describe('uploads', () => {
  it('saves a readable WAV next to the sessions root and reports its format', async () => {
    const root = tmp();
    const dir = uploadsDir(join(root, 'sessions'));
    expect(dir).toBe(join(root, 'uploads'));
    const bytes = readFileSync(join(FSDD, '0_george_0.wav'));
    const r = await saveUpload(dir, 'my clip (1).wav', bytes);
    expect(r).toMatchObject({ name: 'my clip (1).wav', sampleRate: 8000, channels: 1, bitsPerSample: 16, encoding: 'pcm' });
    expect(r.path.startsWith(dir)).toBe(true);
    expect(r.path).toMatch(/my_clip_1_\.wav$/);
    expect(Buffer.compare(await fsp.readFile(r.path), bytes)).toBe(0);
    const listed = await listClips([DATA], dir);
    expect(listed.uploads.map((u) => u.path)).toEqual([r.path]);
    expect(listed.fsdd?.clips.length).toBe(3000);
    expect(listed.fsdd?.clips[0]).toMatchObject({ speaker: expect.any(String), digit: expect.any(Number) });
  });

  it('refuses a non-WAV and an unsupported encoding with the file name and the problem, saving nothing', async () => {
    const dir = join(tmp(), 'uploads');
    await expect(saveUpload(dir, 'notes.txt', Buffer.from('hello, this is not audio at all'))).rejects.toThrow(/^notes\.txt: not a WAV file/);
    const mulaw = encodeWav(new Float32Array(100).fill(0.2), 8000);
    mulaw.writeUInt16LE(7, 20); // format code 7: mu-law
    mulaw.writeUInt16LE(8, 34);
    mulaw.writeUInt16LE(1, 32);
    await expect(saveUpload(dir, 'phone.wav', mulaw)).rejects.toThrow(/^phone\.wav: unsupported encoding mu-law/);
    await expect(saveUpload(dir, 'empty.wav', new Uint8Array(0))).rejects.toThrow(/empty\.wav: the file is empty/);
    await expect(fsp.readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => decodeUpload('x.wav', 'not base64!!')).toThrow(/x\.wav: the upload is not base64/);
  });

  it("lists a speech model's saved held-out utterances as clips to attack", async () => {
    const store = new SessionStore(join(tmp(), 'sessions'));
    const w = await store.create({ kind: 'audio-train', params: {}, environment: FIXTURE_ENV });
    await w.writeArtifacts([
      { path: 'examples/test-seen-u1.wav', data: readFileSync(join(FSDD, '1_george_1.wav')) },
      { path: 'examples.json', data: JSON.stringify([{ id: 'u1', transcript: 'one', split: 'test-seen', wav: 'examples/test-seen-u1.wav' }, { id: 'u2', transcript: 'two', split: 'test-seen' }, { id: 'u3', transcript: 'gone', split: 'x', wav: 'examples/missing.wav' }]) },
    ]);
    await w.finish({});
    const h = listeningHandlers({ store, dataDirs: [DATA] });
    const r = (await h['audio.clips']({ model: w.id })) as { examples: { path: string; transcript: string }[] };
    expect(r.examples).toEqual([{ name: 'test-seen u1', path: join(store.dir(w.id), 'artifacts', 'examples', 'test-seen-u1.wav'), transcript: 'one', split: 'test-seen' }]);
    expect('examples' in ((await h['audio.clips']({})) as object)).toBe(false);
  });

  it('keeps only a safe last path segment of the name', () => {
    expect(safeUploadName('../../etc/passwd')).toBe('passwd.wav');
    expect(safeUploadName('C:\\Users\\me\\rec.WAV')).toBe('rec.WAV');
    expect(safeUploadName('...')).toBe('clip.wav');
  });

  it('the API handler saves into uploads/ and sends sessions.changed when a test is created', async () => {
    const root = tmp();
    const store = new SessionStore(join(root, 'sessions'));
    const events: string[] = [];
    const h = listeningHandlers({ store, dataDirs: [DATA], emit: (e) => events.push(e.type) });
    const bytes = readFileSync(join(FSDD, '5_yweweler_3.wav'));
    const up = (await h['audio.upload']({ name: 'five.wav', base64: bytes.toString('base64') })) as { path: string };
    expect(up.path.startsWith(join(root, 'uploads'))).toBe(true);
    const f = await makeAudioAttackSession(store, { clip: '5_yweweler_3.wav' });
    await h['listening.create'](parseParams('listening.create', { sessions: [f.id], repeats: 1, seed: 1 }));
    expect(events).toEqual(['sessions.changed']);
  });
});
