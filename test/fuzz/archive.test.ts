/**
 * Fuzzing session import (issue 14): a real exported session, then byte flips and hostile header
 * values (CRCs, sizes, offsets, name lengths), truncation, entry names mutated (traversal, absolute,
 * backslashes, NUL, a second top folder, file/folder clashes) and a mutated manifest, rezipped with
 * honest CRCs so the checks behind the zip layer are reached too. Every input is imported (inside
 * the store) or refused with an AdvlabError naming the archive; nothing is written outside the
 * store, no staging folder is left behind, and a session already in the store stays byte-identical.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../src-main/engine/sessions';
import { count, fuzz, hashTree, listing, mutateBytesN, mutateJson, type Rng } from './harness';

const ENV = { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: '0.1.0-fuzz', node: process.version, platform: 'linux-x64', cpus: 2, hostname: 'fuzz' };
const parent = mkdtempSync(path.join(tmpdir(), 'advlab-fuzz-archive-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

/** Offsets of the header fields of every local and central record (where a lie hurts most). */
function zipFields(zip: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= zip.length; i++) {
    const sig = zip.readUInt32LE(i);
    if (sig === 0x04034b50) out.push(i + 8, i + 14, i + 18, i + 22, i + 26, i + 28);
    else if (sig === 0x02014b50) out.push(i + 10, i + 16, i + 20, i + 24, i + 28, i + 30, i + 42);
    else if (sig === 0x06054b50) out.push(i + 8, i + 10, i + 12, i + 16);
  }
  return out;
}

const NAME_MUTATIONS: ((name: string, id: string, rng: Rng) => string)[] = [
  (n) => `../${n}`,
  (n) => `/${n}`,
  (n, id) => n.replace(`${id}/`, `${id}/../../`),
  (n, id) => n.replace(`${id}/`, `${id}\\..\\..\\`),
  (n, id) => n.replace(id, '20260101-000000-train-9999'),
  (n) => `${n}\u0000.png`,
  (n, id) => `${id}/manifest.json/inner`,
  (n, id) => `${id}/${'d/'.repeat(300)}x`,
  (n) => n.toUpperCase(),
  (n, id) => n.replace(id, `${id}/`),
  (n, id) => `${id}/metrics`,
  (n, id) => `${id}/./artifacts/../artifacts/x.bin`,
  (n) => `C:/${n}`,
  () => '',
  (n, id, rng) => `${id}/${rng.bytes(6).toString('latin1')}`,
];

describe('fuzz: session archives', () => {
  it('a mutated export is imported into the store or refused by name; nothing else changes', async () => {
    const root = path.join(parent, 'store');
    const inputs = path.join(parent, 'inputs');
    mkdirSync(inputs);
    const store = new SessionStore(root);
    const make = async (name: string) => {
      const w = await store.create({ kind: 'audio-attack', name, params: { eps: 0.002 }, environment: ENV, tags: ['fuzz'] });
      for (let i = 0; i < 5; i++) await w.appendMetric('loss', { step: i, ctc: 10 / (i + 1) });
      await w.writeArtifact('audio/adv.wav', Buffer.alloc(3000, 7));
      await w.writeArtifact('images/heat.png', Buffer.from('\x89PNG fake'));
      await w.writeArtifact('model/model.json', JSON.stringify({ format: 'layers-model', weightsManifest: [] }));
      await w.writeArtifact('results.json', JSON.stringify({ success: true }));
      await w.finish({ success: true });
      return w.id;
    };
    const kept = await make('kept');
    const source = await make('exported');
    const seedFile = path.join(inputs, 'seed.zip');
    await store.exportArchive(source, seedFile);
    await store.delete(source); // the export's id is free again; the trash holds it
    const seed = readFileSync(seedFile);
    const fields = zipFields(seed);
    const entries = unzipSync(seed);
    const keptHash = hashTree(store.dir(kept));
    const before = listing(parent, ['inputs']);

    // The seed imports (the fuzzer starts from a valid archive).
    const first = await store.importArchive(seedFile);
    rmSync(store.dir(first.id), { recursive: true });

    const file = path.join(inputs, 'fuzzed.zip');
    const out = await fuzz('archive', count(1500), {
      maxMs: 3000,
      make: (rng: Rng) => {
        const mode = rng.int(10);
        if (mode < 6) return { how: 'bytes', zip: mutateBytesN(rng, seed, fields) };
        if (mode < 9) { // entry names or the manifest, rezipped with honest CRCs and sizes
          const files: Record<string, Uint8Array> = {};
          const names = Object.keys(entries);
          const victim = rng.pick(names);
          for (const n of names) {
            if (n === victim && mode < 8) files[rng.pick(NAME_MUTATIONS)(n, source, rng)] = entries[n];
            else if (n === `${source}/manifest.json` && mode === 8) files[n] = Buffer.from(JSON.stringify(mutateJson(rng, JSON.parse(Buffer.from(entries[n]).toString('utf8')))));
            else files[n] = entries[n];
          }
          return { how: mode === 8 ? 'manifest' : `name ${JSON.stringify(victim)}`, zip: Buffer.from(zipSync(files)) };
        }
        return { how: 'truncated', zip: seed.subarray(0, rng.int(seed.length)) };
      },
      run: async ({ zip }) => {
        writeFileSync(file, zip);
        const r = await store.importArchive(file);
        const dir = store.dir(r.id);
        if (path.dirname(dir) !== root) throw new Error(`imported outside the store: ${dir}`);
        rmSync(dir, { recursive: true });
      },
      check: (e) => (e.code === 'INTERNAL' ? `INTERNAL: ${e.message}` : e.message.includes(file) ? null : `message does not name the archive: ${e.message.slice(0, 200)}`),
      describe: ({ how, zip }) => `${how}, ${zip.length} bytes`,
    });
    expect(out.failures).toEqual([]);
    expect(out.refused).toBeGreaterThan(out.tried / 2);
    expect(out.accepted).toBeGreaterThan(0);
    // Nothing outside the store, no staging folder left, the kept session byte-identical.
    expect(listing(parent, ['inputs'])).toEqual(before);
    expect(hashTree(store.dir(kept))).toBe(keptHash);
  });
});
