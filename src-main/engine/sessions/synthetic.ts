/**
 * A synthetic session store for measuring how listing scales (`advlab bench --suite sessions`) and for
 * the e2e test of a 5,000-session list: manifests only, of every job kind, one a minute from 2025-01-01,
 * with realistic params, references, summaries and artifact lists (~1-3 KB each). Not experiment
 * results: every manifest is tagged "synthetic".
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mulberry32 } from '../core/random';
import { mapLimit } from '../core/fs-atomic';
import type { SessionEnvironment, SessionManifest } from './schema';

export const SYNTHETIC_KINDS = ['train', 'attack', 'sweep', 'loss-surface', 'gradient-check', 'recipe', 'audio-train', 'audio-attack', 'listening', 'import'] as const;
const STATUSES = ['finished', 'finished', 'finished', 'finished', 'cancelled', 'failed'] as const;

const ENV: SessionEnvironment = {
  backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: '0.1.0', node: process.version,
  platform: `${process.platform}-${process.arch}`, cpus: os.cpus().length, hostname: os.hostname(),
};

function summaryFor(kind: string, r: () => number): Record<string, number | string | boolean> {
  switch (kind) {
    case 'train': return { testAccuracy: 0.9 + r() * 0.09, testLoss: r() * 0.3, epochsRun: 10, seconds: 600 * r() };
    case 'audio-train': return { cer: r() * 0.2, wer: r() * 0.4, cerUnseen: r() * 0.3, seconds: 900 * r() };
    case 'audio-attack': return { success: r() > 0.1, dbx: -30 - 20 * r(), iterations: 1000, seconds: 60 * r() };
    case 'listening': return { trials: 20, correct: Math.floor(20 * r()), accuracy: r(), pValue: r() };
    case 'recipe': return { claimReproduced: r() > 0.2, seconds: 3600 * r() };
    case 'gradient-check': return { checksPassed: 8, checksWarned: Math.floor(3 * r()), cleanAccuracy: r() };
    default: return { successRate: r(), meanL2: 1 + r(), robustAccuracy: r(), cleanAccuracy: 0.98, seconds: 100 * r() };
  }
}

/** Writes `n` finished/cancelled/failed sessions (manifest.json only) into `root`. */
export async function writeSyntheticSessions(root: string, n: number, seed = 5): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  const r = mulberry32(seed);
  const manifests: SessionManifest[] = [];
  for (let i = 0; i < n; i++) {
    const created = new Date(t0 + i * 60_000).toISOString();
    const kind = SYNTHETIC_KINDS[i % SYNTHETIC_KINDS.length];
    const id = `${created.replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}-${kind}-${i.toString(16).padStart(4, '0')}`;
    const status = STATUSES[i % STATUSES.length];
    manifests.push({
      schemaVersion: 1, id, kind, name: `${kind} run ${i}`, tags: ['synthetic', `t${i % 10}`, ...(i % 7 === 0 ? ['weekly'] : [])], status,
      created, updated: created, finished: created,
      params: { seed: i, eps: 0.1 + (i % 5) * 0.05, steps: 40, attack: 'pgd', n: 100, batchSize: 100, restarts: 1, loss: 'ce', dataset: i % 3 ? 'mnist' : 'fashion-mnist' },
      datasets: [{ name: i % 3 ? 'mnist' : 'fashion-mnist', split: 'test' }],
      models: kind === 'train' ? [] : [{ id: `model-${i % 20}`, arch: 'cw-mnist' }],
      summary: summaryFor(kind, r),
      environment: ENV,
      artifacts: Array.from({ length: 6 }, (_, k) => ({ path: `examples/${k}-adv.png`, kind: 'image' as const, bytes: 800 + k })),
      ...(status === 'failed' ? { error: { code: 'INTERNAL', message: 'synthetic failure' } } : {}),
    });
  }
  await mapLimit(manifests, 32, async (m) => {
    const dir = path.join(root, m.id);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  });
}
