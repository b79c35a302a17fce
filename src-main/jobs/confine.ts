/**
 * The job's side of the API's path check (api/path-guard.ts, issue 14). The door checks a job's
 * paths at jobs.start, but the job opens its files later, in its worker: a symlink inside an allowed
 * folder could be swapped in between to lead outside. So a job let in by the door carries where it may
 * read (WorkerInput.confine: real paths of the allowed roots and chosen files), and the job opens a
 * file through confinedFile, which resolves it again at that moment and refuses (FORBIDDEN) a file
 * that now lies outside. A job with no confinement (the CLI, tests that start jobs directly) reads any path.
 */
import * as path from 'node:path';
import { inside, realpathLoose } from '../api/path-guard';
import { AdvlabError } from '../engine/errors';

let roots: readonly string[] | null = null;

/** Sets where this job may read (the job worker, from its input); null: anywhere. */
export function setConfinement(allowed: readonly string[] | null | undefined): void {
  roots = allowed ? allowed.map((r) => path.resolve(r)) : null;
}

/**
 * The real path to open for `file` (param `param` of the job): `file` resolved now, through every
 * link, and checked against the job's confinement; FORBIDDEN when it now lies outside. Open the
 * returned path, not `file`, so no link can change between this check and the read.
 */
export async function confinedFile(file: string, param: string): Promise<string> {
  const abs = path.resolve(file);
  if (!roots) return abs;
  const real = await realpathLoose(abs);
  if (!roots.some((r) => inside(r, real))) {
    throw new AdvlabError('FORBIDDEN', `${param} "${file}" now leads outside the folders this job may read (it was checked when the job started; a link in its path changed since)`, { param, path: file });
  }
  return real;
}
