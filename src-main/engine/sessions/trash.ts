/**
 * The trash of a store root: deleting a session moves its folder to <root>/.trash/<id>, restorable
 * until purged; the folder's mtime records when it was deleted (purgeTrash goes by it). Plain
 * functions over the root; SessionStore checks the session first and announces the change.
 */
import { Dirent, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AdvlabError, badInput } from '../errors';
import { pathExists } from '../core/fs-atomic';
import { assertSessionId, isSessionId } from './ids';

export const TRASH_DIR = '.trash';

export interface TrashEntry {
  id: string;
  deletedAt: string;
}

/** Whether the trash holds a session `id` (its id is then not free for a new session). */
export function isInTrash(root: string, id: string): Promise<boolean> {
  return pathExists(path.join(root, TRASH_DIR, id));
}

/** Moves the session folder `dir` into the trash, stamped with the time of deletion (`now()` once moved). */
export async function moveToTrash(root: string, id: string, dir: string, now: () => Date): Promise<void> {
  const trash = path.join(root, TRASH_DIR);
  await fsp.mkdir(trash, { recursive: true });
  const target = path.join(trash, id);
  if (await pathExists(target)) throw new AdvlabError('CONFLICT', `The trash already holds a session ${id} (${target}); purge or restore it first`, { id });
  await fsp.rename(dir, target);
  // The folder's mtime records when it was deleted (purgeTrash goes by it).
  const t = now();
  await fsp.utimes(target, t, t).catch(() => {});
}

/** Brings a deleted session back from the trash. */
export async function restoreFromTrash(root: string, id: string): Promise<void> {
  assertSessionId(id);
  const from = path.join(root, TRASH_DIR, id);
  if (!(await pathExists(from))) throw new AdvlabError('NOT_FOUND', `Session ${id} is not in the trash (${path.join(root, TRASH_DIR)})`, { id });
  const to = path.join(root, id);
  if (await pathExists(to)) throw new AdvlabError('CONFLICT', `A session ${id} already exists in ${root}`, { id });
  await fsp.rename(from, to);
}

/** Sessions in the trash, most recently deleted first. */
export async function listTrash(root: string): Promise<TrashEntry[]> {
  const trash = path.join(root, TRASH_DIR);
  let ents: Dirent[];
  try {
    ents = await fsp.readdir(trash, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: { id: string; ms: number }[] = [];
  for (const e of ents) {
    if (!e.isDirectory() || !isSessionId(e.name)) continue;
    const st = await fsp.stat(path.join(trash, e.name));
    out.push({ id: e.name, ms: st.mtimeMs });
  }
  return out.sort((a, b) => b.ms - a.ms).map((e) => ({ id: e.id, deletedAt: new Date(e.ms).toISOString() }));
}

/** Permanently removes trashed sessions deleted at least `olderThanMs` before `now()`; returns their ids. */
export async function purgeTrash(root: string, olderThanMs: number, now: () => Date): Promise<string[]> {
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw badInput('purgeTrash: olderThanMs must be a number >= 0');
  const cutoff = now().getTime() - olderThanMs;
  const removed: string[] = [];
  for (const e of await listTrash(root)) {
    if (Date.parse(e.deletedAt) <= cutoff) {
      await fsp.rm(path.join(root, TRASH_DIR, e.id), { recursive: true, force: true });
      removed.push(e.id);
    }
  }
  return removed;
}
