/**
 * Builds the main side of the app (job runner, session store, API) from the command line and the
 * environment. Electron's main process, `advlab serve` and the CLI commands all start here.
 */
import { parseArgs } from 'node:util';
import { ApiCore } from '../api/core';
import type { AppInfo } from '../api/contract';
import { parseBackendName } from '../engine/backend';
import { resolveDataDirs } from '../engine/data';
import { resolveSessionsRoot, SessionStore } from '../engine/sessions';
import { JobRunner } from '../jobs/runner';
import { ADVLAB_VERSION, appDataDir } from '../paths';
import { apiHandlers } from '../api/handlers';

export interface AppOptions {
  dataDirs: string[];
  sessionsRoot: string;
  backend?: string;
  workerPath?: string;
}

/** Reads --data, --sessions and --backend (and ADVLAB_DATA, ADVLAB_SESSIONS, ADVLAB_BACKEND). */
export function resolveAppOptions(args: string[], env: NodeJS.ProcessEnv = process.env): AppOptions {
  const { values } = parseArgs({ args, strict: false, options: { data: { type: 'string' }, sessions: { type: 'string' }, backend: { type: 'string' } } });
  const backend = (values.backend as string | undefined) ?? env.ADVLAB_BACKEND;
  parseBackendName(backend); // an unknown name is an error now, not in the first job
  const home = appDataDir(env);
  return {
    dataDirs: resolveDataDirs({ cliData: values.data as string | undefined, env: env.ADVLAB_DATA, appDataDir: home }),
    sessionsRoot: resolveSessionsRoot({ cliSessions: values.sessions as string | undefined, env, appDataDir: home }),
    backend,
  };
}

export function createApp(opts: AppOptions & { transport: AppInfo['transport'] }) {
  const runner = new JobRunner({ env: { backend: opts.backend, dataDirs: opts.dataDirs, sessionsRoot: opts.sessionsRoot }, workerPath: opts.workerPath });
  const store = new SessionStore(opts.sessionsRoot);
  const core = new ApiCore(
    { jobs: runner, dataDirs: opts.dataDirs, sessionsRoot: opts.sessionsRoot, transport: opts.transport, version: ADVLAB_VERSION },
    (core) => apiHandlers({ store, dataDirs: opts.dataDirs, emit: (e) => core.emit('event', e) }),
  );
  return { core, runner, store };
}
