#!/usr/bin/env node
// `npm start`: the Electron app where Electron's binary is installed; otherwise says so in one line
// and starts the browser host (`advlab serve --open`) instead. Extra arguments go to either.
import { existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const electronDir = join(root, 'node_modules', 'electron');
const pathFile = join(electronDir, 'path.txt');
const exe = existsSync(pathFile) ? join(electronDir, 'dist', readFileSync(pathFile, 'utf8').trim()) : null;

const run = (cmd, argv) => {
  const child = spawn(cmd, argv, { cwd: root, stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
};

if (exe && existsSync(exe)) {
  run(exe, [root, ...args]);
} else {
  console.log('Electron\'s binary is not installed (run "npm run native" with internet access): starting the browser host instead.');
  run(process.execPath, [join(root, 'bin', 'advlab.mjs'), 'serve', '--open', ...args]);
}
