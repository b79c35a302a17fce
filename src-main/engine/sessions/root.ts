/** Where sessions live. */
import * as path from 'node:path';

export interface SessionsRootOptions {
  /** `--sessions <dir>` from the command line: wins over everything. */
  cliSessions?: string;
  /** Environment to read ADVLAB_SESSIONS from (default process.env). */
  env?: Record<string, string | undefined>;
  /** The app's data folder (Electron's userData, or ~/.advlab for the CLI): sessions go in `<appDataDir>/sessions`. */
  appDataDir: string;
}

/** `--sessions`, else $ADVLAB_SESSIONS, else `<appDataDir>/sessions`; empty values are ignored. Absolute. */
export function resolveSessionsRoot(opts: SessionsRootOptions): string {
  const env = opts.env ?? process.env;
  const cli = opts.cliSessions?.trim();
  if (cli) return path.resolve(cli);
  const fromEnv = env.ADVLAB_SESSIONS?.trim();
  if (fromEnv) return path.resolve(fromEnv);
  return path.resolve(opts.appDataDir, 'sessions');
}
