import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { writeIdxPair } from '../data/fixtures';

/**
 * A declared split needs a set with one file. The shared MNIST copy now has its own train and test
 * files, so these tests generate one: an mnist/ folder holding only a t10k file of 1,000 28x28
 * images (the counts of the 10,000-image original scaled by 1/10: last:900 holds out images 0-99).
 */
const TOTAL = 1000;
const labelsOf = (n: number) => Array.from({ length: n }, (_, i) => (i + 7) % 10);

let root: string;
let data: string;
let env: JobEnv;
let modelSession: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-split-'));
  data = join(root, 'data');
  writeIdxPair(join(data, 'mnist'), 't10k', labelsOf(TOTAL), { rows: 28, cols: 28, gz: true });
  env = { backend: await initBackend('wasm'), dataDirs: [data], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('a model trained on a declared split is attacked on its own held-out images', () => {
  it('attack and sweep default to the split spec saved with the model; a given spec wins', async () => {
    const ctx = new LocalContext();
    const t = (await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 200, testLimit: 50, split: 'last:900', validationSplit: 0 }, ctx, env)) as { session: string };
    modelSession = t.session;
    const store = new SessionStore(env.sessionsRoot);
    const a = (await jobHandlers.attack({ model: t.session, dataset: 'mnist', attack: 'fgsm', n: 5, params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(a.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/^mnist t10k images 0-99 as test \(split last:900\)/) });
    const s = (await jobHandlers.sweep({ model: t.session, dataset: 'mnist', attack: 'fgsm', epsilons: [0, 0.1], n: 5 }, ctx, env)) as { session: string };
    expect(JSON.stringify((await store.manifest(s.session)).datasets)).toContain('split last:900');
    const b = (await jobHandlers.attack({ model: t.session, dataset: 'mnist', attack: 'fgsm', n: 5, splitSpec: 'first:900', params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(b.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/images 900-999 as test \(split first:900\)/) });
  }, 120_000);

  it('once the set has its own train files, the model is still attacked on its held-out t10k images, and a given split spec is refused', async () => {
    expect(modelSession).toBeDefined();
    // The same set gains a training file (as the shared MNIST copy did): a native split from now on.
    writeIdxPair(join(data, 'mnist'), 'train', labelsOf(300), { rows: 28, cols: 28, gz: true });
    const ctx = new LocalContext();
    const store = new SessionStore(env.sessionsRoot);
    const a = (await jobHandlers.attack({ model: modelSession, dataset: 'mnist', attack: 'fgsm', n: 5, params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(a.session)).datasets[0]).toMatchObject({
      description: expect.stringMatching(/^mnist t10k images 0-99 as test \(split last:900, recorded with the model: it was trained on a split of the t10k file before mnist had its own train files\)/),
    });
    const s = (await jobHandlers.sweep({ model: modelSession, dataset: 'mnist', attack: 'fgsm', epsilons: [0, 0.1], n: 5 }, ctx, env)) as { session: string };
    expect(JSON.stringify((await store.manifest(s.session)).datasets)).toContain('split last:900, recorded with the model');

    // A split spec given for a set with its own train and test files is refused, by every job that takes one.
    const refused = /mnist in .* has its own train and test files; a split spec \("first:900"\) applies only to a set with one file/;
    await expect(jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 20, split: 'first:900' }, ctx, env)).rejects.toThrow(refused);
    await expect(jobHandlers.attack({ model: modelSession, dataset: 'mnist', attack: 'fgsm', n: 5, splitSpec: 'first:900', params: { eps: 0.1 } }, ctx, env)).rejects.toThrow(refused);
    await expect(jobHandlers.sweep({ model: modelSession, dataset: 'mnist', attack: 'fgsm', epsilons: [0.1], n: 5, splitSpec: 'first:900' }, ctx, env)).rejects.toThrow(refused);
    await expect(jobHandlers['loss-surface']({ model: modelSession, dataset: 'mnist', splitSpec: 'first:900', resolution: 3 }, ctx, env)).rejects.toThrow(refused);
    await expect(jobHandlers['gradient-check']({ model: modelSession, dataset: 'mnist', n: 2, splitSpec: 'first:900' }, ctx, env)).rejects.toThrow(refused);

    // A model trained on the native split records no spec and is attacked on the whole test file.
    const t = (await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 100, testLimit: 50, validationSplit: 0 }, ctx, env)) as { session: string };
    expect((await store.manifest(t.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/^mnist train images \(300, its own train files\); subset of 100 of 300 /) });
    const c = (await jobHandlers.attack({ model: t.session, dataset: 'mnist', attack: 'fgsm', n: 5, params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(c.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/^mnist t10k images \(1000, its own test files\); first 5 of 1000 \(offset 0\)$/) });
  }, 120_000);
});
