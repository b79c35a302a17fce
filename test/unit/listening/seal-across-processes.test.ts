/**
 * Issue 14, blind listening tests: the seal on an open test's key.json is on disk (the session's
 * .sealed.json), not in the memory of the process that opened it. So a second store on the same
 * folder, and the CLI's own `advlab sessions export` in another process, refuse to export (or read)
 * the key while the test is open, just as the API's sessions.export does; once the test ends, or its
 * process is gone (a test left open by a crash), the key is readable and the session exports.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListeningService } from '../../../src-main/listening';
import { SEAL_FILE, SessionStore } from '../../../src-main/engine/sessions';
import { FIXTURE_ENV, makeAudioAttackSession } from './fixtures';
import { advlab } from '../helpers';

let tmp: string;
let sessions: string;
let opener: SessionStore;
let service: ListeningService;
let session: string;

/** `advlab sessions export ID --out FILE` in another process (the built CLI). */
const cliExport = (id: string, out: string) => advlab(['sessions', 'export', id, '--out', out, '--sessions', sessions, '--json'], { timeoutMs: 60_000 });

beforeAll(async () => {
  tmp = mkdtempSync(join(os.tmpdir(), 'advlab-seal-'));
  sessions = join(tmp, 'sessions');
  opener = new SessionStore(sessions);
  service = new ListeningService(opener, { environment: () => FIXTURE_ENV });
  const a = await makeAudioAttackSession(opener, { clip: '7_jackson_0.wav', seed: 1 });
  const view = await service.create({ sessions: [a.id], mode: 'ab', repeats: 2, seed: 42 });
  session = view.session;
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the seal of an open listening test is visible across store instances and processes', () => {
  it('is a file in the session folder naming key.json', () => {
    const seal = JSON.parse(readFileSync(join(opener.dir(session), SEAL_FILE), 'utf8'));
    expect(seal.artifacts).toEqual(['key.json']);
    expect(seal.process.pid).toBe(process.pid);
  });

  it('a second store on the same folder refuses to read or export the key', async () => {
    const other = new SessionStore(sessions);
    expect(await other.isSealed(session, 'key.json')).toBe(true);
    await expect(other.readArtifact(session, 'key.json')).rejects.toMatchObject({ code: 'CONFLICT' });
    const out = join(tmp, 'second-store.zip');
    await expect(other.exportArchive(session, out)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/artifacts\/key\.json, sealed until its test ends/) });
    expect(existsSync(out)).toBe(false);
  });

  it('the CLI in another process refuses `sessions export --out` while the test is open (non-zero exit, CONFLICT, no file)', () => {
    const out = join(tmp, 'cli-open.zip');
    const r = cliExport(session, out);
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.json?.error?.code).toBe('CONFLICT');
    expect(r.json?.error?.message).toMatch(/key\.json, sealed until its test ends/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('once the test ends the seal is gone and the CLI exports the session with its key', async () => {
    await service.answer({ session, trial: 0, answer: 'original' });
    await service.finish(session);
    expect(existsSync(join(opener.dir(session), SEAL_FILE))).toBe(false);
    const out = join(tmp, 'cli-finished.zip');
    const r = cliExport(session, out);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(out).includes(`${session}/artifacts/key.json`)).toBe(true);
  }, 60_000);

  it('a test whose process is gone (left open by a crash) is no longer sealed', async () => {
    const a = await makeAudioAttackSession(opener, { clip: '3_theo_1.wav', seed: 2 });
    const open = await new ListeningService(opener, { environment: () => FIXTURE_ENV }).create({ sessions: [a.id], mode: 'ab', repeats: 1, seed: 7 });
    const other = new SessionStore(sessions);
    expect(await other.isSealed(open.session, 'key.json')).toBe(true);
    // The writer's process is gone: a pid that is not alive (the manifest's and the seal's).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    const mf = join(opener.dir(open.session), 'manifest.json');
    const m = JSON.parse(readFileSync(mf, 'utf8'));
    m.process = { ...m.process, pid, startTime: undefined };
    writeFileSync(mf, JSON.stringify(m));
    expect(await other.isSealed(open.session, 'key.json')).toBe(false);
    expect(JSON.parse((await other.readArtifact(open.session, 'key.json')).toString('utf8')).seed).toBe(7);
  });
});
