/**
 * Defects test/fuzz found in session import (issue 14), each a clear BAD_FILE naming the archive
 * now, where before a RangeError or an EEXIST escaped as INTERNAL:
 * - a central directory record whose name/extra/comment lengths run past the directory;
 * - an extra field whose length runs past its record;
 * - a file entry named like the folders the import creates (`<id>/metrics`, `<id>/artifacts`).
 */
import { promises as fsp, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { zipSync } from 'fflate';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { importSessionArchive } from '../../../src-main/engine/sessions/archive';
import { fakeManifest, tempRoot } from './helpers';

const ID = '20260101-000000-train-0001';
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function zip(files: Record<string, string>): Buffer {
  return Buffer.from(zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]))));
}
const centralAt = (z: Buffer) => z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));

async function refused(z: Buffer, name: string): Promise<AdvlabError> {
  const root = tempRoot('advlab-archive-fz-');
  roots.push(root);
  const file = path.join(root, '..', `${path.basename(root)}-${name}`);
  await fsp.writeFile(file, z);
  try {
    await importSessionArchive(root, file);
  } catch (e) {
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as AdvlabError).code).toBe('BAD_FILE');
    expect((e as AdvlabError).message).toContain(file);
    expect(readdirSync(root)).toEqual([]);
    return e as AdvlabError;
  } finally {
    await fsp.rm(file, { force: true });
  }
  throw new Error(`${name}: expected the import to be refused`);
}

describe('archive defects found by fuzzing', () => {
  const ok = () => zip({ [`${ID}/manifest.json`]: JSON.stringify(fakeManifest(ID)), [`${ID}/metrics/loss.jsonl`]: '{"step":0}\n' });

  it('a central record whose lengths run past the central directory is BAD_FILE, not a RangeError', async () => {
    for (const field of [28, 30, 32]) { // name, extra, comment length
      const z = ok();
      z.writeUInt16LE(0xffff, centralAt(z) + field);
      const e = await refused(z, `len${field}.zip`);
      expect(e.message).toMatch(/not a readable zip archive \(central directory entry 1 of 2 runs past the end of the central directory\)/);
    }
  });

  it('an extra field longer than its record is BAD_FILE', async () => {
    // A record with a 4-byte extra field (0x0001 zip64) whose own length says 0xfff0.
    const z = ok();
    const c = centralAt(z);
    const nameLen = z.readUInt16LE(c + 28);
    const extra = Buffer.alloc(4);
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(0xfff0, 2);
    const at = c + 46 + nameLen;
    const patched = Buffer.concat([z.subarray(0, at), extra, z.subarray(at)]);
    patched.writeUInt16LE(4, c + 30);
    const eocd = patched.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    patched.writeUInt32LE(patched.readUInt32LE(eocd + 12) + 4, eocd + 12); // the central directory grew by 4
    const e = await refused(patched, 'extra.zip');
    expect(e.message).toMatch(/has an extra field that runs past its record/);
  });

  it('a file named <id>/metrics or <id>/artifacts is refused before anything is written', async () => {
    for (const sub of ['metrics', 'artifacts']) {
      const e = await refused(zip({ [`${ID}/manifest.json`]: JSON.stringify(fakeManifest(ID)), [`${ID}/${sub}`]: 'x' }), `${sub}.zip`);
      expect(e.message).toContain(`refused: entry "${ID}/${sub}" is a file, but a session's ${sub}/ is a folder`);
    }
  });
});
