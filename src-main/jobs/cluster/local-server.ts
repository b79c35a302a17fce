/**
 * A nats-server with JetStream on this machine, for the cluster tests and `advlab bench --suite
 * cluster`: loopback only, a random free port, a temporary store folder and a random token (no
 * anonymous access). It can be stopped (SIGTERM, then SIGKILL) and started again on the same port
 * and store, as a server that goes away mid-job. The binary: $NATS_SERVER or nats-server on the PATH
 * (Debian: apt-get install nats-server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER = process.env.NATS_SERVER ?? 'nats-server';

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export interface LocalNatsServer {
  url: string;
  port: number;
  token: string;
  storeDir: string;
  /** Stops the server (SIGTERM, SIGKILL after 5 s); the store stays for a restart. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Stops it and removes the store. */
  dispose(): Promise<void>;
}

export async function startLocalNatsServer(): Promise<LocalNatsServer> {
  const port = await freePort();
  const token = randomBytes(12).toString('hex');
  const storeDir = mkdtempSync(join(tmpdir(), 'advlab-nats-'));
  let child: ChildProcess | null = null;
  const start = async () => {
    const c = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir, '--auth', token], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let log = '';
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`nats-server did not start within 15 s:\n${log}`)), 15_000);
      c.stderr!.on('data', (d: Buffer) => {
        log += String(d);
        if (/Server is ready/.test(log)) {
          clearTimeout(timer);
          ok();
        }
      });
      c.once('error', (e) => {
        clearTimeout(timer);
        fail(new Error(`Cannot start ${NATS_SERVER} (${e.message}): install it (Debian: apt-get install nats-server) or set NATS_SERVER`));
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`nats-server exited (${code}) before it was ready:\n${log}`));
      });
    });
    c.stderr!.resume();
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((ok) => c.once('exit', ok));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    token,
    storeDir,
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
