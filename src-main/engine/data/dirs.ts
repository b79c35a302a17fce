/**
 * Where datasets are looked for, in order: --data DIR, $ADVLAB_DATA, the app's own data folder
 * (where `advlab data get` installs), then /usr/share/datasets (where Debian's dataset-* packages
 * install; $ADVLAB_SYSTEM_DATA replaces it), and for a running app the starter pack's samples last
 * (appDataDirs). A folder the user named (--data or ADVLAB_DATA) must exist; the default ones are
 * skipped when absent.
 */
import { mkdirSync, statSync } from 'node:fs';
import { delimiter, resolve } from 'node:path';
import { AdvlabError, badInput } from '../errors';

export const SYSTEM_DATA_DIRS = ['/usr/share/datasets'];

export interface DataDirOptions {
  /** --data: one folder or several (each may also hold several separated by the path delimiter). */
  cliData?: string | string[];
  /**
   * ADVLAB_DATA: either its value (a string, or undefined when unset) or an environment to read
   * it from. When the `env` key is absent, process.env is used.
   */
  env?: string | Record<string, string | undefined>;
  /** The app's own data folder (e.g. Electron's userData/data); skipped when absent. */
  appDataDir?: string;
  /** Overrides the system folders (tests); defaults to SYSTEM_DATA_DIRS. */
  systemDirs?: string[];
}

function isDir(p: string): boolean | 'not-dir' {
  try {
    return statSync(p).isDirectory() ? true : 'not-dir';
  } catch {
    return false;
  }
}

function split(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(delimiter)).filter((s) => s.trim() !== '');
}

/** The ordered, de-duplicated list of existing data folders (absolute paths). */
export function resolveDataDirs(opts: DataDirOptions = {}): string[] {
  const envValue = 'env' in opts ? (typeof opts.env === 'string' || opts.env === undefined ? opts.env : opts.env.ADVLAB_DATA) : process.env.ADVLAB_DATA;
  const out: string[] = [];
  const add = (p: string, origin: string, explicit: boolean) => {
    const abs = resolve(p);
    const ok = isDir(abs);
    if (ok === true) {
      if (!out.includes(abs)) out.push(abs);
    } else if (explicit) {
      if (ok === 'not-dir') throw badInput(`${origin} ${abs} is not a folder`, { file: abs });
      throw new AdvlabError('NOT_FOUND', `${origin} ${abs}: no such folder`, { file: abs });
    }
  };
  for (const d of split(opts.cliData)) add(d, '--data', true);
  for (const d of split(envValue)) add(d, 'ADVLAB_DATA', true);
  if (opts.appDataDir) add(opts.appDataDir, 'app data folder', false);
  for (const d of opts.systemDirs ?? SYSTEM_DATA_DIRS) add(d, 'system data folder', false);
  return out;
}

/**
 * The data folders of a running app (Electron, `advlab serve`, the CLI): resolveDataDirs with the app's
 * own data folder created first (so that a dataset `advlab data get` installs there is found without
 * a restart), the system folders from $ADVLAB_SYSTEM_DATA when set (empty: none; tests of a fresh
 * machine), and the starter pack's data folder last (resources/starter/data, when shipped), so that
 * any real dataset of the same name takes precedence over its sample.
 */
export function appDataDirs(opts: DataDirOptions & { starterDataDir?: string }): string[] {
  if (opts.appDataDir) {
    try {
      mkdirSync(opts.appDataDir, { recursive: true });
    } catch {
      // unwritable: it is skipped like an absent one
    }
  }
  const sys = process.env.ADVLAB_SYSTEM_DATA;
  const dirs = resolveDataDirs({ ...opts, ...(opts.systemDirs === undefined && sys !== undefined ? { systemDirs: split(sys) } : {}) });
  const starter = opts.starterDataDir && isDir(opts.starterDataDir) === true ? resolve(opts.starterDataDir) : undefined;
  return starter && !dirs.includes(starter) ? [...dirs, starter] : dirs;
}
