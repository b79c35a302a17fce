/**
 * untilOnline (jobs/cluster/online.ts): a request that fails while the server restarts is tried again
 * until the server answers; a request's own error (an AdvlabError) is not retried; a cancelled job
 * stops at once; a server that stays away fails the request after ADVLAB_CLUSTER_OFFLINE_MS with a
 * message naming the server, how long, and what was in flight; a server that came back gets a fresh
 * window (JetStream recovering after a restart is not the server being away). A fake clock and a
 * fake request that times out N times stand for the connection.
 */
import { describe, expect, it } from 'vitest';
import { AdvlabError, CancelledError } from '../../../src-main/engine/errors';
import { ConnectionWatch, RETRY_MS, untilOnline, type OnlineOptions } from '../../../src-main/jobs/cluster/online';

/** A clock that moves only when the retry sleeps (plus `perTry` ms per try: a request's own timeout). */
function fakeTime(perTry = 0) {
  let t = 1_000_000;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
    advance: (ms: number) => (t += ms),
    perTry,
  };
}

/** A request that fails with NATS's bare 'timeout' `n` times, then answers. */
function flaky(n: number, clock?: { advance: (ms: number) => number; perTry: number }) {
  let calls = 0;
  const op = async () => {
    calls++;
    clock?.advance(clock.perTry);
    if (calls <= n) throw new Error('timeout');
    return 'answer';
  };
  return { op, calls: () => calls };
}

const URL = 'nats://10.0.0.7:4222';

describe('untilOnline: requests while the cluster restarts', () => {
  it('a request that times out while the server restarts is tried again and answers; the log says once why the job waits', async () => {
    const clock = fakeTime();
    const lines: string[] = [];
    const req = flaky(5, clock);
    const o: OnlineOptions = { url: URL, offlineMs: 4000, now: clock.now, sleep: clock.sleep, log: (l) => lines.push(l) };
    await expect(untilOnline('fetching the result of shard s/1', o, req.op)).resolves.toBe('answer');
    expect(req.calls()).toBe(6);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/the cluster at nats:\/\/10\.0\.0\.7:4222 did not answer while fetching the result of shard s\/1 \(timeout\): trying again/);
  });

  it('a server that stays away fails the request after the bound, saying which server, how long and what was in flight (never the bare "timeout")', async () => {
    const clock = fakeTime();
    const req = flaky(Infinity, clock);
    const e = await untilOnline('storing the result of attack-batch/2/ab', { url: URL, offlineMs: 4000, now: clock.now, sleep: clock.sleep }, req.op).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(AdvlabError);
    expect((e as Error).message).toMatch(/^Lost the cluster at nats:\/\/10\.0\.0\.7:4222 while storing the result of attack-batch\/2\/ab: timeout \(tried 10 times over \d+ s, the last \d+ s without an answer; ADVLAB_CLUSTER_OFFLINE_MS 4000\)$/);
    // Bounded: it gave up one retry after the bound, not later.
    expect(req.calls()).toBe(Math.ceil(4000 / RETRY_MS) + 2);
  });

  it('a reconnect starts a fresh window: a server back after 3 s whose JetStream needs 3 s more does not fail a 4 s bound', async () => {
    const clock = fakeTime();
    const t0 = clock.now();
    let reconnectedAt: number | null = null;
    let calls = 0;
    const op = async () => {
      calls++;
      if (clock.now() - t0 >= 3000 && reconnectedAt === null) reconnectedAt = clock.now();
      if (clock.now() - t0 < 6000) throw new Error(calls % 2 ? 'timeout' : 'no responders');
      return 42;
    };
    const o = { url: URL, offlineMs: 4000, now: clock.now, sleep: clock.sleep, reconnectedAt: () => reconnectedAt };
    await expect(untilOnline('listening for the events of run r', o, op)).resolves.toBe(42);
    // Without the reconnect the same request fails at the bound.
    const clock2 = fakeTime();
    const t1 = clock2.now();
    const op2 = async () => {
      if (clock2.now() - t1 < 6000) throw new Error('timeout');
      return 42;
    };
    await expect(untilOnline('listening for the events of run r', { url: URL, offlineMs: 4000, now: clock2.now, sleep: clock2.sleep }, op2)).rejects.toThrow(/Lost the cluster at .* while listening for the events of run r: timeout/);
  });

  it('a request whose own tries are slow (10 s NATS timeouts) still ends within the bound plus one try', async () => {
    const clock = fakeTime(10_000);
    const t0 = clock.now();
    const req = flaky(Infinity, clock);
    await expect(untilOnline('sending shard x', { url: URL, offlineMs: 15_000, now: clock.now, sleep: clock.sleep }, req.op)).rejects.toThrow(/Lost the cluster/);
    expect(clock.now() - t0).toBeLessThanOrEqual(15_000 + 10_000 + RETRY_MS);
  });

  it('the request\'s own error (an AdvlabError: bad input, not found) is thrown at once, not retried', async () => {
    let calls = 0;
    const clock = fakeTime();
    const e = await untilOnline('fetching the model m', { url: URL, offlineMs: 4000, now: clock.now, sleep: clock.sleep }, async () => {
      calls++;
      throw new AdvlabError('NOT_FOUND', 'The model m is not in the cluster\'s Object Store');
    }).then(() => null, (x: unknown) => x);
    expect((e as AdvlabError).code).toBe('NOT_FOUND');
    expect(calls).toBe(1);
  });

  it('a connection closed on purpose (a worker stopping) stops the retries at once, saying so', async () => {
    const clock = fakeTime();
    const req = flaky(Infinity, clock);
    const e = await untilOnline('storing the result of s/0', { url: URL, offlineMs: 60_000, now: clock.now, sleep: clock.sleep, closed: () => true }, req.op).then(() => null, (x: unknown) => x);
    expect((e as Error).message).toBe('The connection to the cluster at nats://10.0.0.7:4222 was closed while storing the result of s/0: timeout');
    expect(req.calls()).toBe(1);
  });

  it('a cancelled job stops retrying at once (CancelledError)', async () => {
    const clock = fakeTime();
    let cancelled = false;
    let calls = 0;
    const op = async () => {
      calls++;
      if (calls === 3) cancelled = true;
      throw new Error('timeout');
    };
    await expect(untilOnline('sending shard x', { url: URL, offlineMs: 60_000, now: clock.now, sleep: clock.sleep, cancelled: () => cancelled }, op)).rejects.toBeInstanceOf(CancelledError);
    expect(calls).toBe(3);
  });
});

describe('ConnectionWatch', () => {
  it('follows the connection: disconnected since the first disconnect, reconnected at the reconnect, and says how long it was down', async () => {
    const events: { type: string }[] = [];
    let push!: () => void;
    const status = () => ({
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (events.length) yield events.shift()!;
          await new Promise<void>((ok) => (push = ok));
        }
      },
    });
    let t = 0;
    const seen: [string, number][] = [];
    const w = new ConnectionWatch({ status } as never, (e, ms) => seen.push([e, ms]), () => t);
    const send = async (type: string) => {
      events.push({ type });
      push?.();
      await new Promise((ok) => setTimeout(ok, 5));
    };
    await new Promise((ok) => setTimeout(ok, 5));
    t = 100;
    await send('disconnect');
    expect(w.disconnectedAt).toBe(100);
    t = 400;
    await send('disconnect'); // a failed reconnect attempt: still down since 100
    expect(w.disconnectedAt).toBe(100);
    t = 1600;
    await send('reconnect');
    expect(w.disconnectedAt).toBeNull();
    expect(w.reconnectedAt).toBe(1600);
    expect(seen).toEqual([['disconnect', 0], ['reconnect', 1500]]);
  });
});
