/**
 * Builds the main side of the app (job runner, session store, API) from the command line and the
 * environment. Electron's main process, `advlab serve` and the CLI commands all start here.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiCore } from '../api/core';
import type { AppInfo } from '../api/contract';
import { parseBackendName } from '../engine/backend';
import { resolveDataDirs } from '../engine/data';
import { resolveSessionsRoot, SessionStore } from '../engine/sessions';
import { badInput } from '../engine/errors';
import { JobRunner, MAX_JOBS_LIMIT } from '../jobs/runner';
import { parseWorkers } from '../jobs/pool';
import { AppSettingsFile, type WorkersOverride } from './settings';
import { ADVLAB_VERSION, appDataDir } from '../paths';
import { apiHandlers } from '../api/handlers';

export interface AppOptions {
  dataDirs: string[];
  sessionsRoot: string;
  backend?: string;
  workerPath?: string;
  /** At most this many jobs run at once; the rest queue (default: the pool's size, jobs/runner.ts defaultMaxJobs). */
  maxJobs?: number;
  /** Threads of the shard pool, from --workers or ADVLAB_WORKERS (wins over the saved setting); default: the saved setting, else one per core. */
  workers?: number;
  /** Where `workers` came from (for Settings); 'flag' when absent and workers is given by a caller. */
  workersFrom?: 'flag' | 'env';
  /** The settings file (the app data folder's settings.json); absent: settings are not saved. */
  settingsFile?: string;
}

/** --max-jobs N / ADVLAB_MAX_JOBS: an integer from 1 to MAX_JOBS_LIMIT, else a BAD_INPUT naming the bounds and the default. */
export function parseMaxJobs(value: string | undefined, from: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_JOBS_LIMIT) {
    throw badInput(`${from} must be an integer from 1 to ${MAX_JOBS_LIMIT} (MAX_JOBS_LIMIT), got "${value}"; the default is the pool's size (--workers)`);
  }
  return n;
}

/** Reads --data, --sessions, --backend, --max-jobs and --workers (and ADVLAB_DATA, ADVLAB_SESSIONS, ADVLAB_BACKEND, ADVLAB_MAX_JOBS, ADVLAB_WORKERS). */
export function resolveAppOptions(args: string[], env: NodeJS.ProcessEnv = process.env): AppOptions {
  const { values } = parseArgs({ args, strict: false, options: { data: { type: 'string' }, sessions: { type: 'string' }, backend: { type: 'string' }, 'max-jobs': { type: 'string' }, workers: { type: 'string' } } });
  const backend = (values.backend as string | undefined) ?? env.ADVLAB_BACKEND;
  parseBackendName(backend); // an unknown name is an error now, not in the first job
  const home = appDataDir(env);
  return {
    dataDirs: resolveDataDirs({ cliData: values.data as string | undefined, env: env.ADVLAB_DATA, appDataDir: home }),
    sessionsRoot: resolveSessionsRoot({ cliSessions: values.sessions as string | undefined, env, appDataDir: home }),
    backend,
    maxJobs: values['max-jobs'] !== undefined ? parseMaxJobs(String(values['max-jobs']), '--max-jobs') : parseMaxJobs(env.ADVLAB_MAX_JOBS, 'ADVLAB_MAX_JOBS'),
    ...workersOption(values.workers !== undefined ? String(values.workers) : undefined, env.ADVLAB_WORKERS),
    settingsFile: join(home, 'settings.json'),
  };
}

/** --workers N, else ADVLAB_WORKERS, with where it came from. */
function workersOption(flag: string | undefined, env: string | undefined): Pick<AppOptions, 'workers' | 'workersFrom'> {
  const fromFlag = parseWorkers(flag, '--workers');
  if (fromFlag !== undefined) return { workers: fromFlag, workersFrom: 'flag' };
  const fromEnv = parseWorkers(env, 'ADVLAB_WORKERS');
  return fromEnv !== undefined ? { workers: fromEnv, workersFrom: 'env' } : {};
}

export function createApp(opts: AppOptions & { transport: AppInfo['transport'] }) {
  const override: WorkersOverride = opts.workers !== undefined ? { value: opts.workers, from: opts.workersFrom ?? 'flag' } : null;
  let runner: JobRunner | undefined;
  const settings = new AppSettingsFile(opts.settingsFile, override, (workers) => runner?.setWorkers(workers));
  runner = new JobRunner({ env: { backend: opts.backend, dataDirs: opts.dataDirs, sessionsRoot: opts.sessionsRoot }, workerPath: opts.workerPath, maxJobs: opts.maxJobs, workers: settings.workers() });
  const store = new SessionStore(opts.sessionsRoot);
  const core = new ApiCore(
    { jobs: runner, dataDirs: opts.dataDirs, sessionsRoot: opts.sessionsRoot, transport: opts.transport, version: ADVLAB_VERSION, settings },
    (core) => apiHandlers({ store, dataDirs: opts.dataDirs, emit: (e) => core.emit('event', e) }),
  );
  return { core, runner, store };
}
