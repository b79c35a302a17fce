/** Whether Electron's binary is installed (npm installs the package without it here; see README). */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface ElectronBinary {
  present: boolean;
  path?: string;
  reason?: string;
}

export function findElectronBinary(): ElectronBinary {
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  } catch {
    return { present: false, reason: 'the electron package is not installed' };
  }
  const pathFile = join(dir, 'path.txt');
  if (!existsSync(pathFile)) return { present: false, reason: 'Electron\'s binary was not downloaded (run "npm run native" with internet access)' };
  const exe = join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(exe) ? { present: true, path: exe } : { present: false, reason: `Electron's binary is missing at ${exe}` };
}
