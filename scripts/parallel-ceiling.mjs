#!/usr/bin/env node
// The hardware ceiling of a 2-thread pool (issue 17), without AdvLab's code: the same tfjs-wasm compute
// (a conv2d 3x3, 16 -> 32 channels on 8 x 28 x 28, summed, ITERS times) on 1 worker thread alone, then on
// K worker threads at once, then on K separate processes at once, alternately (ROUNDS times). Throughput
// ratio = K x alone / together. The pool's speedup cannot beat it.
//   node scripts/parallel-ceiling.mjs [ITERS=300] [ROUNDS=3] [K=2]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const [iters = 300, rounds = 3, k = 2] = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const self = fileURLToPath(import.meta.url);

async function compute(iters, send, wait) {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  const x = tf.randomNormal([8, 28, 28, 16], 0, 1, 'float32', 1), f = tf.randomNormal([3, 3, 16, 32], 0, 1, 'float32', 2);
  const step = () => tf.tidy(() => tf.sum(tf.conv2d(x, f, 1, 'same')).dataSync());
  for (let i = 0; i < 20; i++) step();
  send({ ready: true });
  await wait();
  const t = performance.now();
  for (let i = 0; i < iters; i++) step();
  send({ ms: performance.now() - t });
}

if (process.argv.includes('--child')) {
  await compute(iters, (m) => process.send(m), () => new Promise((r) => process.once('message', r)));
  process.exit(0);
} else if (!isMainThread) {
  await compute(workerData.iters, (m) => parentPort.postMessage(m), () => new Promise((r) => parentPort.once('message', r)));
} else {
  // Starts n runners (threads or processes), lets them warm up, starts them together; the wall time until all finish.
  const run = (n, mode) => new Promise((resolve) => {
    const rs = [];
    let ready = 0, done = 0, t0 = 0;
    for (let i = 0; i < n; i++) {
      const r = mode === 'thread' ? new Worker(self, { workerData: { iters } }) : fork(self, [String(iters), '--child']);
      const onMessage = (m) => {
        if (m.ready) {
          if (++ready === n) { t0 = performance.now(); rs.forEach((x) => (mode === 'thread' ? x.postMessage('go') : x.send('go'))); }
        } else if (++done === n) {
          const wall = performance.now() - t0;
          rs.forEach((x) => (mode === 'thread' ? x.terminate() : x.kill()));
          resolve(wall);
        }
      };
      r.on('message', onMessage);
      rs.push(r);
    }
  });
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  for (let i = 0; i < rounds; i++) {
    const one = await run(1, 'thread');
    const threads = await run(k, 'thread');
    const procs = await run(k, 'process');
    console.log(`round ${i + 1}: 1 thread ${one.toFixed(0)} ms; ${k} threads ${threads.toFixed(0)} ms (${(k * one / threads).toFixed(2)}x); ${k} processes ${procs.toFixed(0)} ms (${(k * one / procs).toFixed(2)}x); load ${load()}`);
  }
}
