/**
 * Timing of list() over 5,000 sessions. Skipped unless ADVLAB_BENCH=1:
 *   ADVLAB_BENCH=1 npx vitest run test/unit/sessions/list-bench.test.ts
 */
import { rmSync } from 'node:fs';
import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkManifest, SessionStore } from '../../../src-main/engine/sessions';
import { fakeManifest, mapLimitForTests, tempRoot, writeFakeSession } from './helpers';

const N = Number(process.env.ADVLAB_BENCH_N ?? 5000);

describe.skipIf(!process.env.ADVLAB_BENCH)('list() speed', () => {
  it(`lists ${N} sessions`, async () => {
    const root = tempRoot('advlab-bench-');
    try {
      const t0 = Date.parse('2026-01-01T00:00:00Z');
      const ms: ReturnType<typeof fakeManifest>[] = [];
      for (let i = 0; i < N; i++) {
        const created = new Date(t0 + i * 60_000).toISOString();
        const id = `${created.replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}-attack-${i.toString(16).padStart(4, '0')}`;
        // A realistic manifest: ~20 params, 3 refs, 12 artifacts, ~3 KB.
        ms.push(
          fakeManifest(id, {
            kind: 'attack',
            created,
            updated: created,
            finished: created,
            process: { pid: process.pid, hostname: os.hostname() },
            params: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`param${k}`, k % 2 ? k * 0.1 : `value-${k}`])),
            tags: ['bench', `t${i % 10}`],
            models: [{ id: 'm', arch: 'cw-mnist', sha256: 'c'.repeat(64) }],
            summary: { successRate: 0.9, meanL2: 1.23, examples: 100 },
            artifacts: Array.from({ length: 12 }, (_, k) => ({ path: `adv/${k}.png`, kind: 'image' as const, bytes: 800, sha256: 'd'.repeat(64) })),
          }),
        );
      }
      const w0 = performance.now();
      await mapLimitForTests(ms, 32, (m) => writeFakeSession(root, m));
      const writeMs = performance.now() - w0;
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      // Cold: a new store each time (no cache; the OS page cache is warm after the first).
      const cold: number[] = [];
      for (let r = 0; r < 3; r++) {
        const t = performance.now();
        expect(await new SessionStore(root).list()).toHaveLength(N);
        cold.push(performance.now() - t);
      }
      // Warm: the same store again (stat each manifest, re-read none).
      const store = new SessionStore(root);
      await store.list();
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        const list = await store.list();
        times.push(performance.now() - t);
        expect(list).toHaveLength(N);
      }
      const tf = performance.now();
      const filtered = await store.list({ tag: 't3', text: 'attack' });
      const filterMs = performance.now() - tf;
      expect(filtered).toHaveLength(N / 10);
      const raw = JSON.parse(JSON.stringify(ms[0]));
      const tz = performance.now();
      for (let i = 0; i < N; i++) checkManifest(raw, 'x');
      const zodMs = performance.now() - tz;
      console.log(
        `sessions=${N} write=${writeMs.toFixed(0)} ms; list cold (new store): first ${cold[0].toFixed(0)} ms, median ${median(cold).toFixed(0)} ms; ` +
          `warm (cached) median ${median(times).toFixed(0)} ms; filtered warm ${filterMs.toFixed(0)} ms; zod validation alone ${zodMs.toFixed(0)} ms`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
