import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SessionStore } from '../../../src-main/engine/sessions';
import { jobHandlers } from '../../../src-main/jobs/kinds';
import type { JobEnv } from '../../../src-main/jobs/types';
import { testOnlyMnistData } from '../helpers';

// A split spec applies to a set with one file: MNIST's test files alone.
const data = testOnlyMnistData();

let root: string;
let env: JobEnv;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'advlab-split-'));
  env = { backend: await initBackend('wasm'), dataDirs: [data.dir], sessionsRoot: join(root, 'sessions'), onSession: () => undefined };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  data.cleanup();
});

describe('a model trained on a declared split is attacked on its own held-out images', () => {
  it('attack and sweep default to the split spec saved with the model; a given spec wins', async () => {
    const ctx = new LocalContext();
    const t = (await jobHandlers.train({ dataset: 'mnist', arch: 'mlp', epochs: 1, limit: 200, testLimit: 50, split: 'last:9000', validationSplit: 0 }, ctx, env)) as { session: string };
    const store = new SessionStore(env.sessionsRoot);
    const a = (await jobHandlers.attack({ model: t.session, dataset: 'mnist', attack: 'fgsm', n: 5, params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(a.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/^mnist t10k images 0-999 as test \(split last:9000\)/) });
    const s = (await jobHandlers.sweep({ model: t.session, dataset: 'mnist', attack: 'fgsm', epsilons: [0, 0.1], n: 5 }, ctx, env)) as { session: string };
    expect(JSON.stringify((await store.manifest(s.session)).datasets)).toContain('split last:9000');
    const b = (await jobHandlers.attack({ model: t.session, dataset: 'mnist', attack: 'fgsm', n: 5, splitSpec: 'first:9000', params: { eps: 0.1 } }, ctx, env)) as { session: string };
    expect((await store.manifest(b.session)).datasets[0]).toMatchObject({ description: expect.stringMatching(/images 9000-9999 as test \(split first:9000\)/) });
  }, 120_000);
});
