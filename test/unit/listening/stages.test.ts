/** ABX between the two stages of an attack run with the imperceptible second stage (Qin et al. 2019). */
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { readWav } from '../../../src-main/engine/audio/wav';
import { matchLoudness } from '../../../src-main/engine/audio/dbx';
import { parseParams } from '../../../src-main/api/contract';
import { ListeningService } from '../../../src-main/listening';
import { FIXTURE_ENV, makeAudioAttackSession, type Fixture } from './fixtures';

describe('ABX between stage 1 and stage 2 of an attack', () => {
  let root: string;
  let store: SessionStore;
  let both: Fixture;
  let plain: Fixture;
  beforeAll(async () => {
    root = mkdtempSync(join(os.tmpdir(), 'advlab-stages-'));
    store = new SessionStore(join(root, 'sessions'));
    both = await makeAudioAttackSession(store, { clip: '7_jackson_0.wav', seed: 1, stage2DbBelow: 6 });
    plain = await makeAudioAttackSession(store, { clip: '3_theo_1.wav', seed: 2 });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const key = async (id: string) => JSON.parse(await fsp.readFile(join(store.dir(id), 'artifacts', 'key.json'), 'utf8'));

  it('plays the stage-1 and stage-2 clips (loudness-matched) as A, B and X, and scores against the key', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    const view = await svc.create({ sessions: [both.id], mode: 'abx', compare: 'stages', repeats: 4, seed: 5 });
    expect(view.compare).toBe('stages');
    const k = await key(view.session);
    expect(k.compare).toBe('stages');
    expect(k.clips.map((c: { identity: string }) => c.identity).sort()).toEqual(['stage1', 'stage2']);
    // The clips are the session's adversarial.wav and adversarial-stage2.wav, matched to one level.
    const art = join(store.dir(both.id), 'artifacts');
    const s1 = readWav(await fsp.readFile(join(art, 'adversarial.wav'))).samples;
    const s2 = readWav(await fsp.readFile(join(art, 'adversarial-stage2.wav'))).samples;
    const matched = matchLoudness([s1, s2], -23);
    for (const [i, id] of (['stage1', 'stage2'] as const).entries()) {
      const clip = k.clips.find((c: { identity: string }) => c.identity === id);
      const heard = readWav(await fsp.readFile(join(store.dir(view.session), 'artifacts', clip.path))).samples;
      expect(heard.length).toBe(s1.length);
      let err = 0;
      for (let j = 0; j < heard.length; j++) err = Math.max(err, Math.abs(heard[j] - matched.clips[i][j]));
      expect(err).toBeLessThanOrEqual(1 / 32768 + 1e-9);
    }
    for (const t of view.trials) {
      expect(Object.keys(t.clips).sort()).toEqual(['a', 'b', 'x']);
      const planned = k.trials[t.trial];
      expect([planned.a, planned.b].sort()).toEqual(['stage1', 'stage2']);
      await svc.answer({ session: view.session, trial: t.trial, answer: t.trial === 0 ? (planned.correct === 'A' ? 'B' : 'A') : planned.correct });
    }
    const r = await svc.finish(view.session);
    expect(r).toMatchObject({ compare: 'stages', mode: 'abx', trials: 4, correct: 3, status: 'finished' });
    const rows = (await store.readMetrics(view.session, 'answers')).rows;
    expect(rows.every((row) => ['stage1', 'stage2'].includes(row.x as string))).toBe(true);
    const m = await store.manifest(view.session);
    expect(m.summary).toMatchObject({ compare: 'stages', correct: 3 });
    expect(m.name).toMatch(/stage 1 vs stage 2/);
  });

  it('refuses A/B for stages and attacks without a second stage, naming the session', async () => {
    const svc = new ListeningService(store, { environment: () => FIXTURE_ENV });
    expect(() => parseParams('listening.create', { sessions: ['a'], mode: 'ab', compare: 'stages' })).toThrow(/compared by ABX/);
    expect(parseParams('listening.create', { sessions: ['a'] })).toMatchObject({ compare: 'attack' });
    await expect(svc.create({ sessions: [plain.id], mode: 'abx', compare: 'stages' })).rejects.toThrow(new RegExp(`${plain.id} ran no imperceptible second stage`));
    // The default comparison of a two-stage attack is still original vs (stage-1) adversarial.
    const v = await svc.create({ sessions: [both.id], mode: 'abx', repeats: 1, seed: 1 });
    expect((await key(v.session)).clips.map((c: { identity: string }) => c.identity).sort()).toEqual(['adversarial', 'original']);
    await svc.finish(v.session);
    expect(svc.openTests()).toEqual([]);
  });
});
