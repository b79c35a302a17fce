import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { strToU8, zipSync, unzipSync } from 'fflate';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvlabError } from '../../../src-main/engine/errors';
import { SessionStore } from '../../../src-main/engine/sessions';
import { ENV, fakeManifest, readTree, tempRoot } from './helpers';

const roots: string[] = [];
function newRoot(): string {
  const r = tempRoot('advlab-archive-');
  roots.push(r);
  return r;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function code(e: unknown): string | undefined {
  return e instanceof AdvlabError ? e.code : undefined;
}

async function sampleSession(store: SessionStore): Promise<string> {
  const w = await store.create({ kind: 'audio-attack', name: 'targeted "yes"', params: { eps: 0.002 }, environment: ENV, tags: ['audio'] });
  for (let i = 0; i < 20; i++) await w.appendMetric('loss', { step: i, ctc: 10 / (i + 1) });
  await w.writeArtifact('audio/adv.wav', randomBytes(5000));
  await w.writeArtifact('images/spectrogram.png', randomBytes(3000));
  await w.writeArtifact('model/weights.bin', randomBytes(4096));
  await w.writeArtifact('model/model.json', JSON.stringify({ format: 'layers-model', weightsManifest: [] }));
  await w.writeArtifact('results.json', JSON.stringify({ success: true }));
  await w.finish({ success: true, snrDb: 31.5 });
  await store.setNotes(w.id, 'Notes with unicode: ε = 0.002 → inaudible?\n');
  return w.id;
}

/** Writes a zip of `entries` into a temp file and returns its path. */
async function writeZip(dir: string, name: string, entries: Record<string, Uint8Array | string>): Promise<string> {
  const z: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(entries)) z[k] = typeof v === 'string' ? strToU8(v) : v;
  const file = path.join(dir, name);
  await fsp.writeFile(file, zipSync(z));
  return file;
}

describe('session archives', () => {
  it('round-trips a session byte for byte, and renames on an id clash', async () => {
    const src = new SessionStore(newRoot());
    const id = await sampleSession(src);
    const out = newRoot();
    const file = path.join(out, `${id}.zip`);
    const res = await src.exportArchive(id, file);
    expect(res.files).toBe(8); // manifest, notes, 1 metric file, 5 artifacts
    expect(readdirSync(out)).toEqual([`${id}.zip`]); // one file, no temp left behind
    expect(Object.keys(unzipSync(new Uint8Array(await fsp.readFile(file)))).every((n) => n.startsWith(`${id}/`))).toBe(true);

    const dst = new SessionStore(newRoot());
    const imported = await dst.importArchive(file);
    expect(imported).toMatchObject({ id, originalId: id, renamed: false });
    const a = await readTree(src.dir(id));
    const b = await readTree(dst.dir(id));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [rel, bytes] of a) expect(b.get(rel)?.equals(bytes), rel).toBe(true);
    expect((await dst.list()).map((s) => [s.id, s.status])).toEqual([[id, 'finished']]);

    // Importing again: the id is taken, so the copy gets a suffix and the original is untouched.
    const again = await dst.importArchive(file);
    expect(again.renamed).toBe(true);
    expect(again.id).toMatch(new RegExp(`^${id}-[0-9a-f]{4}$`));
    expect((await dst.show(again.id)).manifest.id).toBe(again.id);
    expect((await readTree(dst.dir(id))).get('manifest.json')?.equals(a.get('manifest.json')!)).toBe(true);
    const copy = await readTree(dst.dir(again.id));
    expect(copy.get('artifacts/model/weights.bin')?.equals(a.get('artifacts/model/weights.bin')!)).toBe(true);
    expect((await dst.list()).length).toBe(2);

    // An id sitting in the trash is also never overwritten.
    await src.delete(id);
    const back = await src.importArchive(file);
    expect(back.renamed).toBe(true);
    await src.restore(id);
    expect((await src.list()).length).toBe(2);
  });

  it('refuses an archive written with a newer schema, naming the archive and both versions', async () => {
    const dir = newRoot();
    const id = '20270101-000000-train-abcd';
    const file = await writeZip(dir, 'future.zip', {
      [`${id}/manifest.json`]: JSON.stringify({ ...fakeManifest(id), schemaVersion: 3, newField: { x: 1 } }),
      [`${id}/metrics/train.jsonl`]: '{"step":1}\n',
    });
    const root = newRoot();
    const store = new SessionStore(root);
    const err = await store.importArchive(file).catch((e: unknown) => e);
    expect(code(err)).toBe('UNSUPPORTED');
    const msg = (err as Error).message;
    expect(msg).toContain(file);
    expect(msg).toMatch(/schema version 3/);
    expect(msg).toMatch(/up to version 1/);
    expect(readdirSync(root)).toEqual([]); // nothing written, no staging left
  });

  it('refuses path traversal, stray entries, missing or invalid manifests, and non-zips', async () => {
    const dir = newRoot();
    const root = newRoot();
    const store = new SessionStore(root);
    const id = '20260101-000000-train-0001';
    const manifest = JSON.stringify(fakeManifest(id));
    const cases: [string, Record<string, string>, RegExp][] = [
      ['dotdot.zip', { [`${id}/manifest.json`]: manifest, [`${id}/../../evil.txt`]: 'pwned' }, /outside the session folder/],
      ['abs.zip', { [`${id}/manifest.json`]: manifest, '/tmp/evil.txt': 'pwned' }, /outside the session folder/],
      ['backslash.zip', { [`${id}/manifest.json`]: manifest, [`${id}/..\\..\\evil.txt`]: 'pwned' }, /outside the session folder/],
      ['two-tops.zip', { [`${id}/manifest.json`]: manifest, 'other/evil.txt': 'x' }, /more than one top-level folder/],
      ['no-manifest.zip', { [`${id}/metrics/a.jsonl`]: '{}\n' }, /no .*manifest\.json inside/],
      ['bad-manifest.zip', { [`${id}/manifest.json`]: '{"schemaVersion":1,"id":' }, /not valid JSON/],
      ['wrong-id.zip', { [`${id}/manifest.json`]: JSON.stringify(fakeManifest('20260101-000000-train-9999')) }, /says id/],
    ];
    for (const [name, entries, why] of cases) {
      const file = await writeZip(dir, name, entries);
      const err = await store.importArchive(file).catch((e: unknown) => e);
      expect(code(err), name).toBe('BAD_FILE');
      expect((err as Error).message, name).toMatch(why);
      expect((err as Error).message, name).toContain(file);
    }
    const notZip = path.join(dir, 'notes.txt');
    await fsp.writeFile(notZip, 'this is not a zip file at all, just text');
    await expect(store.importArchive(notZip)).rejects.toThrow(/not a zip archive/);
    await expect(store.importArchive(path.join(dir, 'missing.zip'))).rejects.toSatisfy((e: unknown) => code(e) === 'NOT_FOUND');
    expect(readdirSync(root)).toEqual([]);
    expect(existsSync(path.join(path.dirname(root), 'evil.txt'))).toBe(false);
    expect(existsSync('/tmp/evil.txt')).toBe(false);
  });
});
