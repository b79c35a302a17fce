/**
 * Models travel through the Object Store on the first shard that names them, which can come right
 * after a server restart: the upload (submitting side) and the fetch (worker side) go through the
 * caller's retry (untilOnline), so an Object Store that times out a few times delays them and one
 * that stays away fails them with the clear "Lost the cluster" message, never the bare 'timeout'.
 * A fake Object Store stands for the connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '@nats-io/obj';
import { initBackend } from '../../../src-main/engine/backend';
import { modelSha256, saveModel } from '../../../src-main/engine/models/io';
import { MODEL_KEY_PREFIX, ModelCache, ModelUploader, modelObjectName, type Requester } from '../../../src-main/jobs/cluster/models';
import { untilOnline } from '../../../src-main/jobs/cluster/online';

let tmp: string;
let modelJson: string;
let sha256: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'advlab-models-online-'));
  await initBackend('wasm');
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })] });
  await saveModel(model, join(tmp, 'model'), { arch: 'test-tiny' });
  model.dispose();
  modelJson = join(tmp, 'model', 'model.json');
  sha256 = await modelSha256(modelJson);
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** An in-memory Object Store whose every request fails with NATS's bare 'timeout' while `down()` says so. */
function fakeStore(down: () => boolean) {
  const objects = new Map<string, Uint8Array>();
  const calls = { info: 0, putBlob: 0, getBlob: 0 };
  const gate = () => {
    if (down()) throw new Error('timeout');
  };
  const os = {
    async info(name: string) {
      calls.info++;
      gate();
      return objects.has(name) ? { name, size: objects.get(name)!.byteLength } : null;
    },
    async putBlob(meta: { name: string }, data: Uint8Array) {
      calls.putBlob++;
      gate();
      objects.set(meta.name, data);
      return { name: meta.name };
    },
    async getBlob(name: string) {
      calls.getBlob++;
      gate();
      return objects.get(name) ?? null;
    },
  };
  return { os: os as unknown as ObjectStore, objects, calls };
}

/** Fails the first `n` requests (each call of down() is one request). */
const failing = (n: number) => {
  let left = n;
  return () => left-- > 0;
};

/** The retry the executor and the worker use, with a short pause so the test runs in ms (the real one waits RETRY_MS). */
const retry = (offlineMs: number): Requester => (what, op) => untilOnline(what, { url: 'nats://fake:4222', offlineMs, sleep: async () => undefined }, op);

describe('models through an Object Store that times out while the server restarts', () => {
  it('the upload of a model (submitting side) waits out a few timeouts and stores it once', async () => {
    const store = fakeStore(failing(3));
    const spec = await new ModelUploader(store.os, retry(4000)).toObjectKey({ kind: 'saved', modelJson, sha256, gradient: 'real' });
    expect(spec.modelJson).toBe(MODEL_KEY_PREFIX + modelObjectName(sha256));
    expect([...store.objects.keys()]).toEqual([modelObjectName(sha256)]);
  });

  it('the fetch of a model (worker side) waits out a few timeouts and gives the cached, sha256-checked model', async () => {
    const up = fakeStore(() => false);
    await new ModelUploader(up.os).toObjectKey({ kind: 'saved', modelJson, sha256, gradient: 'real' });
    const store = fakeStore(failing(4));
    for (const [k, v] of up.objects) store.objects.set(k, v);
    const spec = await new ModelCache(store.os, join(tmp, 'cache'), retry(4000)).toLocalPath({ kind: 'saved', modelJson: MODEL_KEY_PREFIX + modelObjectName(sha256), sha256, gradient: 'real' });
    expect(await modelSha256(spec.modelJson)).toBe(sha256);
    expect(store.calls.getBlob).toBe(5);
  });

  it('an Object Store that stays away fails the upload with the clear message, not the bare timeout', async () => {
    const store = fakeStore(() => true);
    const e = await new ModelUploader(store.os, (what, op) => untilOnline(what, { url: 'nats://fake:4222', offlineMs: 1000, now: clock(), sleep: async () => undefined }, op))
      .toObjectKey({ kind: 'saved', modelJson, sha256, gradient: 'real' }).then(() => null, (x: unknown) => x);
    expect((e as Error).message).toMatch(new RegExp(`^Lost the cluster at nats://fake:4222 while uploading the model ${sha256.slice(0, 12)}: timeout`));
  });
});

/** A clock that moves 100 ms per reading. */
function clock() {
  let t = 0;
  return () => (t += 100);
}
