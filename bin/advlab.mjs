#!/usr/bin/env node
// The `advlab` command. Runs the built CLI (out/main/cli.js); builds it first if this checkout has
// not been built yet, so `npx advlab ...` works right after `npm ci`.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'out', 'main', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('advlab: first run in this checkout, building (electron-vite build)...\n');
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0 || !existsSync(cli)) {
    process.stderr.write('advlab: the build failed; run "npm run build" to see why\n');
    process.exit(1);
  }
}
const { run } = await import(pathToFileURL(cli).href);
await run(process.argv.slice(2));
