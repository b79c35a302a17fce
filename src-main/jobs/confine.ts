/**
 * The job's side of the API's path check (api/path-guard.ts, issue 14). The door checks a job's
 * paths at jobs.start, but the job opens its files later, in its worker: a symlink inside an allowed
 * folder could be swapped in between to lead outside. So a job let in by the door carries where it may
 * read (WorkerInput.confine: real paths of the allowed roots and chosen files), and the job opens a
 * file through confinedFile, which resolves it again at that moment and refuses (FORBIDDEN) a file
 * that now lies outside. A job with no confinement (the CLI, tests that start jobs directly) reads any path.
 */
import * as path from 'node:path';
import { datasetFolderOf, inside, realpathLoose, recipeFileOf } from '../api/path-guard';
import { loadDataset, type ImageSet, type LoadDatasetOptions } from '../engine/data';
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

/**
 * A dataset param checked again where the job loads it: the folder it names (a path, or a bare folder
 * name in the data folders; a known dataset's name names none, as at the door: api/path-guard.ts
 * datasetFolderOf) must lie inside the job's confinement now. Returns `value`, which the engine looks
 * up as before (its name and session references do not change).
 */
export async function confinedDataset(value: string, dataDirs: readonly string[], param = 'dataset'): Promise<string> {
  const folder = datasetFolderOf(value, dataDirs);
  if (folder !== null) await confinedFile(folder, param);
  return value;
}

/** loadDataset for a job: its dataset param re-checked against the job's confinement first (confinedDataset). */
export async function loadConfinedDataset(value: string, opts: LoadDatasetOptions, param = 'dataset'): Promise<ImageSet> {
  return loadDataset(await confinedDataset(value, opts.dataDirs, param), opts);
}

/** A recipe param checked again where the job reads it: a recipe file (a path or a .json name) must lie inside the confinement now; an id is the app's own. */
export async function confinedRecipe(value: string, param = 'recipe'): Promise<string> {
  const file = recipeFileOf(value);
  if (file !== null) await confinedFile(file, param);
  return value;
}
