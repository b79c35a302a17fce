/**
 * `n` says which images: the image selection of attack, sweep and gradient-check takes the first n
 * of the split by default (after `offset`), or a seeded random n with pick 'random' (the subset the
 * jobs took before picks existed); each example's index in the split is in examples.json, the other
 * per-example artifacts and the CSV; offset + n beyond the split is refused before any session.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { chooseIndices, loadDataset, subsetIndices } from '../../../src-main/engine/data';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { sessionCsv } from '../../../src-main/report/csv';
import { writeIdxPair } from '../data/fixtures';

const TOTAL = 1000;
// Labels with no short period, so that a shifted or reshuffled selection shows in the labels.
const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => (i * i * 31 + i * 7 + 3 + (i >> 4)) % 10);

let root: string;
let env: JobEnv;
let model: string;
let testLabels: Uint8Array;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-pick-'));
  const data = join(root, 'data');
  writeIdxPair(join(data, 'mnist'), 'train', labelsOf(300), { rows: 28, cols: 28, gz: true });
  writeIdxPair(join(data, 'mnist'), 't10k', labelsOf(TOTAL), { rows: 28, cols: 28, gz: true });
  env = { backend: await initBackend('wasm'), dataDirs: [data], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
  testLabels = (await loadDataset('mnist', { dataDirs: env.dataDirs, split: 'test' })).labels;
  const t = (await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 100, testLimit: 20, validationSplit: 0 }, new LocalContext(), env)) as { session: string };
  model = t.session;
}, 120_000);
afterAll(() => rm(root, { recursive: true, force: true }));

type Row = { index: number; label: number };

async function attack(extra: Record<string, unknown>) {
  const store = new SessionStore(env.sessionsRoot);
  const r = (await jobHandlers.attack({ model, dataset: 'mnist', attack: 'fgsm', n: 6, params: { eps: 0.1 }, saveExamples: 6, ...extra }, new LocalContext(), env)) as { session: string };
  const rows = JSON.parse((await store.readArtifact(r.session, 'examples.json')).toString('utf8')) as Row[];
  const logits = JSON.parse((await store.readArtifact(r.session, 'logits.json')).toString('utf8')) as { index: number }[];
  const pngs = (await readdir(join(store.dir(r.session), 'artifacts', 'examples'))).sort();
  const description = (await store.manifest(r.session)).datasets[0].description;
  const csv = await sessionCsv(store, r.session);
  return { session: r.session, rows, logits, pngs, description, csv };
}

function csvIndices(csv: { csv: string; columns: string[] }): number[] {
  const col = csv.columns.indexOf('index');
  expect(col).toBeGreaterThanOrEqual(0);
  return csv.csv.trim().split('\r\n').slice(1).map((line) => Number(line.split(',')[col]));
}

describe('chooseIndices', () => {
  it('first n after the offset; random n reproduces subsetIndices; beyond the split is refused with the numbers', () => {
    expect(Array.from(chooseIndices(10, { n: 3, pick: 'first', offset: 0, seed: 5 }).indices)).toEqual([0, 1, 2]);
    expect(chooseIndices(10, { n: 3, pick: 'first', offset: 7, seed: 5 })).toEqual({ indices: Int32Array.from([7, 8, 9]), note: 'first 3 of 10 (offset 7)' });
    const r = chooseIndices(2000, { n: 100, pick: 'random', offset: 0, seed: 4 });
    expect(r.indices).toEqual(subsetIndices(2000, 100, 4));
    expect(r.note).toBe('random 100 of 2000 (seed 4)');
    const shifted = chooseIndices(2000, { n: 100, pick: 'random', offset: 500, seed: 4 });
    expect(shifted.indices).toEqual(subsetIndices(1500, 100, 4).map((k) => k + 500));
    expect(shifted.note).toBe('random 100 of images 500-1999 of 2000 (seed 4)');
    expect(() => chooseIndices(10, { n: 3, pick: 'first', offset: 8, seed: 0 })).toThrow('offset 8 + n 3 = 11 is beyond the split: it has 10 images (0..9)');
    expect(() => chooseIndices(10, { n: 11, pick: 'random', offset: 0, seed: 0 })).toThrow(/beyond the split: it has 10 images/);
  });
});

describe('the image selection of the attack jobs', () => {
  it('takes the first n by default: indices 0..n-1 with the split\'s first labels, in examples.json, logits.json, the PNG names and the CSV', async () => {
    const a = await attack({});
    expect(a.rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(a.rows.map((r) => r.label)).toEqual(Array.from(testLabels.subarray(0, 6)));
    expect(a.logits.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(a.pngs).toContain('0-orig.png');
    expect(a.pngs).toContain('5-pert.png');
    expect(csvIndices(a.csv)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(a.description).toBe('mnist t10k images (1000, its own test files); first 6 of 1000 (offset 0)');
  }, 60_000);

  it('an offset shifts them', async () => {
    const a = await attack({ offset: 37 });
    const want = [37, 38, 39, 40, 41, 42];
    expect(a.rows.map((r) => r.index)).toEqual(want);
    expect(a.rows.map((r) => r.label)).toEqual(want.map((i) => testLabels[i]));
    expect(a.pngs).toEqual(want.flatMap((i) => [`${i}-adv.png`, `${i}-orig.png`, `${i}-pert.png`]).sort());
    expect(csvIndices(a.csv)).toEqual(want);
    expect(a.description).toMatch(/; first 6 of 1000 \(offset 37\)$/);
  }, 60_000);

  it('pick random takes the same images as before picks existed (the seeded subset), and records them', async () => {
    const a = await attack({ pick: 'random', seed: 3 });
    const want = Array.from(subsetIndices(TOTAL, 6, 3));
    expect(want).not.toEqual([0, 1, 2, 3, 4, 5]);
    expect(a.rows.map((r) => r.index)).toEqual(want);
    // The old selection (loadDataset's limit/seed, still what training limits use) gives the same labels.
    const old = await loadDataset('mnist', { dataDirs: env.dataDirs, split: 'test', limit: 6, seed: 3 });
    expect(a.rows.map((r) => r.label)).toEqual(Array.from(old.labels));
    expect(a.rows.map((r) => r.label)).toEqual(want.map((i) => testLabels[i]));
    expect(csvIndices(a.csv)).toEqual(want);
    expect(a.pngs).toContain(`${want[5]}-adv.png`);
    expect(a.description).toMatch(/; random 6 of 1000 \(seed 3\)$/);
  }, 60_000);

  it('refuses offset + n beyond the split, naming the numbers, before any session exists (attack, sweep, gradient-check)', async () => {
    const store = new SessionStore(env.sessionsRoot);
    const before = (await store.list()).length;
    const ctx = new LocalContext();
    const msg = 'offset 995 + n 6 = 1001 is beyond the split: it has 1000 images (0..999)';
    await expect(jobHandlers.attack({ model, dataset: 'mnist', attack: 'fgsm', n: 6, offset: 995, params: { eps: 0.1 } }, ctx, env)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining(msg) });
    await expect(jobHandlers.sweep({ model, dataset: 'mnist', attack: 'fgsm', epsilons: [0.1], n: 6, offset: 995 }, ctx, env)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining(msg) });
    await expect(jobHandlers['gradient-check']({ model, dataset: 'mnist', n: 6, offset: 995, pick: 'random' }, ctx, env)).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining(msg) });
    await expect(jobHandlers.attack({ model, dataset: 'mnist', attack: 'fgsm', n: 6, offset: -1 }, ctx, env)).rejects.toThrow(/offset/);
    // @ts-expect-error: a pick the schema refuses
    await expect(jobHandlers.attack({ model, dataset: 'mnist', attack: 'fgsm', n: 6, pick: 'last' }, ctx, env)).rejects.toThrow(/pick/);
    expect((await store.list()).length).toBe(before);
  }, 60_000);
});
