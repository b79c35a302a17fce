/**
 * Crash-safe file writes: a temp file in the same folder, fsync, rename over the target, fsync the
 * folder. A reader sees either the old file or the new one, never half of one; a crash leaves at most a
 * hidden `.<name>.<random>.tmp` next to the target, which readers ignore.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/** True for the temp files `writeFileAtomic` creates (left behind only by a crash). */
export function isTempFile(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/** Writes `data` to `file` atomically (see the module comment). The folder must exist. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fsp.open(tmp, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  await handle.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}

/** Makes a rename or create in `dir` durable. Best effort: Windows cannot open folders for fsync. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Not supported on this platform/filesystem; the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Whether `p` exists (any kind of entry). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Runs async tasks with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Files under `dir` (recursively) as '/'-separated paths relative to it, sorted. Missing dir: []. */
export async function walkFiles(dir: string, opts: { skipTemp?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const visit = async (abs: string, rel: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(abs, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return;
      throw e;
    }
    for (const ent of entries) {
      const childRel = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) await visit(path.join(abs, ent.name), childRel);
      else if (ent.isFile() && !(opts.skipTemp && isTempFile(ent.name))) out.push(childRel);
    }
  };
  await visit(dir, '');
  return out.sort();
}
