/**
 * Which files the API may make a job read. A job's path-valued params (a dataset folder, a model.json
 * or its folder, a WAV, a recipe file, and the same keys among a recipe's overrides) must resolve
 * inside an allowed root: the data folders, the session store, the uploads folder beside it, or a
 * file or folder the user chose through the app's own file dialog. Anything else is FORBIDDEN, with a
 * message naming the path and the allowed roots (never a file's contents, never another folder).
 *
 * The check is made at the API's door, jobs.start in ApiCore, so Electron's IPC and the browser
 * host's HTTP both get it. The CLI does not: it runs for a local user who types paths at a shell and
 * can read those files anyway (its ApiCore is built with `paths: 'any'`).
 *
 * Paths are judged by where they really are: the lexical path first (so a path outside the roots is
 * refused whether or not it exists: no probing), then its realpath (so a symlink inside a root that
 * leads out of it counts as outside). A path that does not exist is judged by its deepest existing folder.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AdvlabError } from '../engine/errors';
import { knownDataset } from '../engine/data';
import { starterDir } from '../engine/data/starter';
import { isSessionId } from '../engine/sessions';
import type { JobStart } from './jobs';

/** How a param's value names a file: what it may be besides a path. */
type RefKind = 'model' | 'dataset' | 'wav' | 'recipe' | 'path';

/** The path-valued params of each job kind (the keys a recipe's overrides may carry too). */
const PATH_PARAMS: Record<string, RefKind> = {
  model: 'model',
  transferTo: 'model',
  surrogate: 'model',
  init: 'model',
  dataset: 'dataset',
  wav: 'wav',
  recipe: 'recipe',
  path: 'path',
  corpus: 'path',
  out: 'path',
};

/** A value that can only be a path (as the engine reads it): absolute, relative with a folder, or a dot path. */
function looksLikePath(v: string): boolean {
  return path.isAbsolute(v) || v.startsWith('.') || v.includes('/') || v.includes('\\');
}

/** realpath of `p`, or of its deepest existing ancestor joined with the rest when `p` does not exist. */
export async function realpathLoose(p: string): Promise<string> {
  let head = p;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await fsp.realpath(head), ...rest.reverse());
    } catch {
      const up = path.dirname(head);
      if (up === head) return p;
      rest.push(path.basename(head));
      head = up;
    }
  }
}

/** `p` is `root` or lies under it (both absolute). */
export const inside = (root: string, p: string): boolean => {
  const r = path.relative(root, p);
  return r === '' || (!r.startsWith('..') && !path.isAbsolute(r));
};

/**
 * The folder a dataset param names, or null when it names none to check: a known name is looked up
 * in the data folders only, under the registry's folder names; a path is that folder; a bare folder
 * name is the first data folder holding it (as the engine finds it), judged by where it really is (a
 * link in a data folder leading out of it is outside). The door and the job's re-check (jobs/confine.ts) share it.
 */
export function datasetFolderOf(value: string, dataDirs: readonly string[]): string | null {
  if (knownDataset(value)) return null;
  if (looksLikePath(value)) return path.resolve(value);
  const found = dataDirs.map((d) => path.join(d, value)).find((d) => existsSync(d));
  return found ?? null;
}

/** The file a recipe param names, or null for an id (a file of the app's own recipes folder): a path, or a .json name, is read as a file. */
export function recipeFileOf(value: string): string | null {
  if (!looksLikePath(value) && !value.endsWith('.json')) return null;
  return path.resolve(value);
}

export interface PathGuardOptions {
  dataDirs: readonly string[];
  sessionsRoot: string;
  /** The uploads folder beside the sessions root (listening/uploads.ts uploadsDir). */
  uploadsDir: string;
}

export class PathGuard {
  /** Files and folders the user chose through the app's file dialog (realpaths). */
  private readonly chosen = new Set<string>();

  constructor(private readonly opts: PathGuardOptions) {}

  /** Remembers a path the user chose through the app's own dialog: jobs may read it (and, for a folder, what it holds). */
  async choose(file: string): Promise<void> {
    this.chosen.add(await realpathLoose(path.resolve(file)));
  }

  /**
   * Where the jobs this guard let in may read, as real paths: the roots and the chosen files. It goes
   * with each job (JobStartOptions.confine), whose worker checks again where each file really is when
   * it opens it (jobs/confine.ts): a link swapped after the check at the door leads nowhere outside.
   */
  async confinement(): Promise<string[]> {
    // Plus the starter pack's models: a `starter:NAME` model ref passes the door as a ref, and its job opens the
    // shipped file under resources/starter/models (read-only; its data folder is among dataDirs already).
    const starter = starterDir();
    const roots = [...this.opts.dataDirs, this.opts.sessionsRoot, this.opts.uploadsDir, ...(starter ? [path.join(starter, 'models')] : [])].map((r) => path.resolve(r));
    return [...new Set([...roots, ...(await Promise.all(roots.map(realpathLoose))), ...this.chosen])];
  }

  /** The allowed roots as the user knows them: named in a refusal. */
  private describeRoots(): string {
    const parts = [
      `the data folders (${this.opts.dataDirs.join(', ') || 'none'})`,
      `the session store (${this.opts.sessionsRoot})`,
      `the uploads folder (${this.opts.uploadsDir})`,
    ];
    return `${parts.join(', ')} or a file chosen through the app's file dialog`;
  }

  /** Throws FORBIDDEN unless `file` (absolute) is inside an allowed root, lexically and by its realpath. */
  async assertAllowed(file: string, param: string): Promise<void> {
    const roots = [...this.opts.dataDirs, this.opts.sessionsRoot, this.opts.uploadsDir].map((r) => path.resolve(r));
    const chosen = [...this.chosen];
    const allowed = (p: string, rootList: string[]) => rootList.some((r) => inside(r, p));
    const refuse = () => {
      throw new AdvlabError('FORBIDDEN', `${param} "${file}" is outside the folders the API may read: ${this.describeRoots()}. Put the file in a data folder, upload it, or choose it in the app`, {
        param,
        path: file,
      });
    };
    // Lexically first: a path outside every root is refused whether or not it exists.
    const realRoots = await Promise.all(roots.map(realpathLoose));
    if (!allowed(file, [...roots, ...realRoots, ...chosen])) refuse();
    // Then where it really is: a symlink inside a root that leads out of it is outside.
    if (!allowed(await realpathLoose(file), [...realRoots, ...chosen])) refuse();
  }

  /** The absolute path a value of a param would be read from, or null when it names no file (a session id, a known dataset). */
  private fileOf(kind: RefKind, value: string): string | null {
    switch (kind) {
      case 'model':
        if (!looksLikePath(value) && isSessionId(value) && existsSync(path.join(this.opts.sessionsRoot, value))) return null;
        // A bare name that is no session and no file: the job says NOT_FOUND (as it does for a typo'd id).
        if (!looksLikePath(value) && !existsSync(value)) return null;
        return path.resolve(value);
      case 'dataset':
        return datasetFolderOf(value, this.opts.dataDirs);
      case 'recipe':
        return recipeFileOf(value);
      case 'wav':
      case 'path':
        return path.resolve(value);
    }
  }

  /** Checks every path-valued param of a job (and of a recipe's overrides): FORBIDDEN for the first outside the roots. */
  async checkJob(start: JobStart): Promise<void> {
    const params = start.params as Record<string, unknown>;
    const values: [string, RefKind, string][] = [];
    for (const [key, kind] of Object.entries(PATH_PARAMS)) {
      if (typeof params[key] === 'string') values.push([key, kind, params[key] as string]);
    }
    if (start.kind === 'recipe') {
      for (const [key, kind] of Object.entries(PATH_PARAMS)) {
        const v = start.params.overrides[key];
        if (typeof v === 'string') values.push([`overrides.${key}`, kind, v]);
      }
    }
    for (const [param, kind, value] of values) {
      const file = this.fileOf(kind, value);
      if (file !== null) await this.assertAllowed(file, param);
    }
  }
}
