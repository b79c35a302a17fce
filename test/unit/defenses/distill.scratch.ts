import { it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { resolveDataDirs } from '../../../src-main/engine/data';
import { SessionStore } from '../../../src-main/engine/sessions';
import { getCaseStudy } from '../../../src-main/engine/defenses';
import '../../../src-main/engine/defenses/distillation';
import '../../../src-main/engine/defenses/thermometer';

it('scratch', async () => {
  await initBackend('wasm');
  const which = process.env.STUDY ?? 'distillation';
  const params = JSON.parse(process.env.PARAMS ?? '{}');
  const store = new SessionStore(mkdtempSync(join(tmpdir(), 'kd-scr-')));
  const writer = await store.create({ kind: 'recipe', name: 'scratch', params: {}, environment: { backend: 'wasm', tfjsVersion: '4.22.0', advlabVersion: 'x', node: process.version, platform: 'linux', cpus: 2, hostname: 'h' } });
  let last = 0;
  const ctx = new LocalContext((p) => { const now = Date.now(); if (now - last > 5000) { last = now; console.log(`[${((performance.now())/1000).toFixed(0)}s] ${p.phase} ${p.step}/${p.total} ${JSON.stringify(p.metrics ?? {})}`); } });
  const origLog = ctx.log.bind(ctx);
  ctx.log = (m: string) => { console.log(`[${(performance.now()/1000).toFixed(0)}s] ${m}`); origLog(m); };
  const t0 = performance.now();
  const out = await getCaseStudy(which)!.run(params, { dataDirs: resolveDataDirs(), writer, ctx, quick: true });
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, ...out }, null, 1));
  console.log('session', writer.dir);
});
