/** Where AdvLab keeps its own files when no directory is given: the same place for the app and the CLI. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function appDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ADVLAB_HOME) return env.ADVLAB_HOME;
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'AdvLab');
  if (process.platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'AdvLab');
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'advlab');
}

export const ADVLAB_VERSION = '0.1.0';
