/**
 * Issue 14, uploads: a chunked archive upload counts every byte it holds, resent parts included (a
 * part resent 1,000 times, or resent larger, can never take it over its cap), every upload in
 * progress together is capped too, and the archive lands only inside the store (a staging folder
 * under its root, never a path the client names).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { AdvlabError } from '../../../src-main/engine/errors';
import { MAX_IMPORT_BYTES, MAX_IMPORT_HELD_BYTES } from '../../../src-main/engine/limits';
import { reviewHandlers } from '../../../src-main/report/api';
import { fakeManifest } from '../sessions/helpers';

const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const tmpStore = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'advlab-upload-'));
  made.push(d);
  return new SessionStore(path.join(d, 'sessions'));
};
const b64 = (n: number) => Buffer.alloc(n, 7).toString('base64');

async function refusal(p: Promise<unknown>): Promise<AdvlabError> {
  try {
    await p;
  } catch (e) {
    return e as AdvlabError;
  }
  throw new Error('expected a refusal');
}

describe('chunked archive upload byte accounting', () => {
  it('the limits are the named constants by default', () => {
    expect(MAX_IMPORT_BYTES).toBe(1024 ** 3);
    expect(MAX_IMPORT_HELD_BYTES).toBeGreaterThanOrEqual(MAX_IMPORT_BYTES);
  });

  it('a part resent 1,000 times is held (and counted) once', async () => {
    const h = reviewHandlers(tmpStore(), undefined, { importBytes: 1000, heldBytes: 5000 });
    for (let i = 0; i < 1000; i++) {
      const r = await h['sessions.import']({ data: b64(600), upload: { id: 'again', part: 0, parts: 2 } });
      expect(r).toEqual({ complete: false, received: 1, parts: 2 });
    }
    // 600 held: a second part of 300 fits under 1000 (counted per resend, it would have been refused long ago).
    const e = await refusal(h['sessions.import']({ data: b64(300), upload: { id: 'again', part: 1, parts: 2 } }));
    expect(e.code).not.toBe('TOO_LARGE'); // it completed and tried to import the (not a zip) bytes
  });

  it('a part resent larger counts at its new size: the cap cannot be passed by resending', async () => {
    const h = reviewHandlers(tmpStore(), undefined, { importBytes: 1000, heldBytes: 5000 });
    await h['sessions.import']({ data: b64(3), upload: { id: 'grow', part: 0, parts: 3 } });
    await h['sessions.import']({ data: b64(3), upload: { id: 'grow', part: 1, parts: 3 } });
    // Resent at 900 bytes: 903 held, under the cap.
    await h['sessions.import']({ data: b64(900), upload: { id: 'grow', part: 0, parts: 3 } });
    // Resending part 1 at 600 would hold 1500: refused, naming the limit, and the upload is dropped.
    const e = await refusal(h['sessions.import']({ data: b64(600), upload: { id: 'grow', part: 1, parts: 3 } }));
    expect(e).toBeInstanceOf(AdvlabError);
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toMatch(/1500 bytes, over the 1000-byte import limit \(MAX_IMPORT_BYTES\)/);
    // Dropped: the same id starts afresh.
    expect(await h['sessions.import']({ data: b64(3), upload: { id: 'grow', part: 2, parts: 3 } })).toEqual({ complete: false, received: 1, parts: 3 });
  });

  it('uploads in progress together are capped (MAX_IMPORT_HELD_BYTES), and a finished or dropped one frees its bytes', async () => {
    const h = reviewHandlers(tmpStore(), undefined, { importBytes: 1000, heldBytes: 1500 });
    await h['sessions.import']({ data: b64(900), upload: { id: 'a', part: 0, parts: 2 } });
    const e = await refusal(h['sessions.import']({ data: b64(900), upload: { id: 'b', part: 0, parts: 2 } }));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toMatch(/MAX_IMPORT_HELD_BYTES/);
    // 'a' is dropped by going over its own cap: its 900 bytes are freed, and 'b' fits.
    await refusal(h['sessions.import']({ data: b64(300), upload: { id: 'a', part: 1, parts: 2 } }).then(() => h['sessions.import']({ data: b64(900), upload: { id: 'a', part: 1, parts: 2 } })));
    expect(await h['sessions.import']({ data: b64(900), upload: { id: 'b', part: 0, parts: 2 } })).toEqual({ complete: false, received: 1, parts: 2 });
  });

  it('the archive is written only inside the store (a staging folder under its root), whatever the filename says', async () => {
    const store = tmpStore();
    const h = reviewHandlers(store);
    const id = '20260101-000000-train-0001';
    const zip = Buffer.from(zipSync({ [`${id}/manifest.json`]: Buffer.from(JSON.stringify(fakeManifest(id))) }));
    const outside = mkdtempSync(path.join(os.tmpdir(), 'advlab-upload-outside-'));
    made.push(outside);
    const mkdtemp = vi.spyOn((await import('node:fs')).promises, 'mkdtemp');
    const half = Math.ceil(zip.length / 2);
    const filename = `${outside}/../../etc/passwd`;
    await h['sessions.import']({ data: zip.subarray(0, half).toString('base64'), filename, upload: { id: 'in-store', part: 0, parts: 2 } });
    const r = await h['sessions.import']({ data: zip.subarray(half).toString('base64'), filename, upload: { id: 'in-store', part: 1, parts: 2 } });
    expect(r.complete).toBe(true);
    expect(mkdtemp).not.toHaveBeenCalled(); // no system temp folder
    mkdtemp.mockRestore();
    expect(readdirSync(outside)).toEqual([]);
    // Nothing left behind in the store but the imported session.
    expect(readdirSync(store.root).filter((n) => !n.startsWith('.index'))).toEqual([id]);
  });

  it("an upload's staging folder left by a killed host is removed by the store's first listing", async () => {
    const store = tmpStore();
    mkdirSync(store.root, { recursive: true });
    const deadPid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const dead = path.join(store.root, `.import-${deadPid}-upload-0123456789ab`);
    const live = path.join(store.root, `.import-${process.pid}-upload-ba9876543210`);
    for (const d of [dead, live]) {
      mkdirSync(d);
      writeFileSync(path.join(d, 'archive.zip'), 'partial');
    }
    await store.list();
    const left = readdirSync(store.root);
    expect(left).not.toContain(path.basename(dead));
    expect(left).toContain(path.basename(live)); // an upload of this (live) process is in progress
  });
});
