/**
 * The starter pack (resources/starter): its samples load as test images only, a real dataset of the
 * same name takes precedence, `starter:` names it explicitly, its models load and classify, their
 * cards tell the truth about the weights, and the pack stays under 10 MB. Then the built CLI:
 * `advlab data get fsdd` against a loopback server serving a real FSDD archive, `data list`, and a
 * real MNIST mirror whose training files are not upstream's (refused by md5, nothing installed).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appDataDirs, listDatasets, loadDataset, starterDataDir, starterModels } from '../../../src-main/engine/data';
import { datasetEntries } from '../../../src-main/api/handlers';
import { resolveModel } from '../../../src-main/jobs/model-ref';
import { SessionStore } from '../../../src-main/engine/sessions';
import { DATA, rejection } from '../helpers';
import { argmaxAt, batchLogits } from '../../../src-main/engine/models/predict';
import { startLoopback, tarGz } from './loopback';

const ROOT = resolve(import.meta.dirname, '../../..');
const STARTER = join(ROOT, 'resources', 'starter');

function duBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((a, d) => a + (d.isDirectory() ? duBytes(join(dir, d.name)) : statSync(join(dir, d.name)).size), 0);
}

describe('starter pack', () => {
  it('is found next to the program, holds the samples and models, and stays under 10 MB', () => {
    expect(starterDataDir()).toBe(join(STARTER, 'data'));
    expect(readdirSync(join(STARTER, 'data', 'fsdd', 'recordings')).filter((f) => f.endsWith('.wav')).length).toBe(30);
    expect(starterModels().map((m) => m.name)).toEqual(['cw-mnist', 'small-cnn-fashion', 'small-cnn-fashion-adv', 'speech', 'speech-base']);
    expect(duBytes(STARTER)).toBeLessThan(10 * 1024 * 1024);
  });

  it('starter:mnist is the first 1,000 test images, all of them the test split; no train split', async () => {
    const s = await loadDataset('starter:mnist', { dataDirs: [], split: 'test' });
    expect(s.labels.length).toBe(1000);
    expect(s.source.split).toContain('starter sample');
    const real = await loadDataset('mnist', { dataDirs: [DATA], split: 'test', choice: { pick: 'first', n: 1000, offset: 0, seed: 0 } });
    expect(Buffer.from(s.labels).equals(Buffer.from(real.labels))).toBe(true);
    expect(s.images.subarray(0, 784 * 5)).toEqual(real.images.subarray(0, 784 * 5));
    const e = await rejection(loadDataset('starter:mnist', { dataDirs: [], split: 'train' }));
    expect(e.code).toBe('BAD_INPUT');
    expect(e.message).toContain('advlab data get mnist');
  });

  it('is searched last: a real dataset of the same name takes precedence, and the listing says which is used', async () => {
    const dirs = appDataDirs({ env: DATA, starterDataDir: starterDataDir(), systemDirs: [] });
    expect(dirs.at(-1)).toBe(join(STARTER, 'data'));
    const test = await loadDataset('mnist', { dataDirs: dirs, split: 'test' });
    expect(test.labels.length).toBe(10000);
    const listed = await listDatasets(dirs);
    expect(listed.filter((d) => d.name === 'mnist').map((d) => [d.starter ?? false, d.used])).toEqual([[false, true], [true, false]]);
    const entries = await datasetEntries(dirs);
    expect(entries.find((d) => d.name === 'mnist')).toMatchObject({ shadowsStarter: true, splits: { train: 10000, test: 10000 } });
    // With no other data folder, the starter sample is the one in use.
    const alone = await datasetEntries(appDataDirs({ env: undefined, starterDataDir: starterDataDir(), systemDirs: [] }));
    expect(alone.map((d) => [d.name, d.starter, d.splits])).toEqual([['mnist', true, { test: 1000 }], ['fashion-mnist', true, { test: 1000 }]]);
  });

  it('starter models load by starter:NAME and classify the starter samples; the cards give the weights\' sha256', async () => {
    const store = new SessionStore(mkdtempSync(join(tmpdir(), 'advlab-starter-')));
    for (const [name, dataset, least] of [['cw-mnist', 'starter:mnist', 0.93], ['small-cnn-fashion', 'starter:fashion-mnist', 0.8]] as const) {
      const m = await resolveModel(`starter:${name}`, store);
      expect(m.ref.id).toBe(`starter:${name}`);
      const set = await loadDataset(dataset, { dataDirs: [], split: 'test', choice: { pick: 'first', n: 200, offset: 0, seed: 0 } });
      const logits = batchLogits(m.classifier, set.images, set.labels.length);
      let ok = 0;
      for (let i = 0; i < set.labels.length; i++) if (argmaxAt(logits, i * 10, 10) === set.labels[i]) ok++;
      expect(ok / set.labels.length).toBeGreaterThan(least);
      m.loaded.model.dispose();
      const card = readFileSync(join(STARTER, 'models', name, 'MODEL_CARD.md'), 'utf8');
      const sha = createHash('sha256').update(readFileSync(join(STARTER, 'models', name, 'weights.bin'))).digest('hex');
      expect(card).toContain(`sha256 ${sha}`);
    }
    const e = await rejection(resolveModel('starter:nope', store));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('starter:cw-mnist');
  });
});

function advlab(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string; json: Record<string, unknown> | null }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/advlab.mjs'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('close', (status) => {
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
      } catch {
        json = null;
      }
      ok({ status, stdout, stderr, json });
    });
  });
}

describe('advlab data get / list (built CLI, loopback mirror)', () => {
  it('gets FSDD from a real archive of the pinned commit, verified by content, resumable, and lists it', async () => {
    const rec = join(DATA, 'fsdd', 'recordings');
    const members = readdirSync(rec).sort().map((f) => ({ path: `free-spoken-digit-dataset-26eb9aaf76e81b692f806f9140c2d2777410d7a1/recordings/${f}`, data: readFileSync(join(rec, f)) }));
    members.push({ path: 'free-spoken-digit-dataset-26eb9aaf76e81b692f806f9140c2d2777410d7a1/README.md', data: Buffer.from('readme') });
    const archive = tarGz(members, { level: 1, paxGlobal: true });
    const server = await startLoopback({ '26eb9aaf76e81b692f806f9140c2d2777410d7a1.tar.gz': archive });
    const home = mkdtempSync(join(tmpdir(), 'advlab-home-'));
    const env = { ADVLAB_HOME: home, ADVLAB_DATA: '', ADVLAB_SYSTEM_DATA: '' };
    try {
      const r = await advlab(['data', 'get', 'fsdd', '--mirror', `${server.base}/drop-once`, '--json'], env);
      expect(r.status, r.stderr).toBe(0);
      expect(r.json).toMatchObject({ dataset: 'fsdd', dir: join(home, 'fsdd'), alreadyInstalled: false, files: [{ verified: 'content', bytes: archive.length }] });
      expect(r.stderr).toMatch(/\d+\/\d+ bytes=\S+ totalBytes=\S+ bytesPerSecond=\S+ etaSeconds=\d+/); // progress with bytes and ETA
      expect(r.stderr).toMatch(/dropped after \d+ of \d+ bytes; resuming/);
      expect(readdirSync(join(home, 'fsdd', 'recordings')).length).toBe(3000);
      expect(readdirSync(home).filter((n) => n.startsWith('.advlab'))).toEqual([]);
      const list = await advlab(['data', 'list', '--json'], env);
      expect(list.status).toBe(0);
      const fsdd = (list.json!.downloads as { name: string; installed: string[] }[]).find((d) => d.name === 'fsdd')!;
      expect(fsdd.installed).toEqual([join(home, 'fsdd')]);
      expect(list.json!.target).toBe(home);
    } finally {
      await server.close();
    }
  }, 180_000);

  it('a mirror serving files other than the pinned ones is refused by checksum and nothing is installed', async () => {
    const files = Object.fromEntries(readdirSync(join(DATA, 'mnist')).filter((f) => f.endsWith('.gz')).map((f) => [f, readFileSync(join(DATA, 'mnist', f))]));
    const server = await startLoopback(files);
    const home = mkdtempSync(join(tmpdir(), 'advlab-home-'));
    const env = { ADVLAB_HOME: home, ADVLAB_DATA: '', ADVLAB_SYSTEM_DATA: '' };
    try {
      // Our MNIST training files are the first 10,000 images rebuilt, not upstream's 60,000: their md5 differs.
      const r = await advlab(['data', 'get', 'mnist', '--mirror', `${server.base}/good`, '--json'], env);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('train-images-idx3-ubyte.gz: checksum mismatch: expected md5 f68b3c2dcbeaaa9fbdd348bbdeb94873');
      const list = await advlab(['data', 'list', '--json'], env);
      expect((list.json!.downloads as { name: string; installed: string[] }[]).find((d) => d.name === 'mnist')!.installed).toEqual([]);
      expect((list.json!.datasets as { name: string; starter: boolean }[]).filter((d) => d.name === 'mnist').map((d) => d.starter)).toEqual([true]);
    } finally {
      await server.close();
    }
  }, 120_000);
});
