/**
 * Per-process cache of parsed data files, keyed by path and the file's mtime and size, so that
 * loading the same dataset twice (train then test, or one job after another) parses each file
 * once. A file that changes on disk is parsed again. Every entry also keeps the sha256 of the
 * file's bytes, from which ImageSet.source.sha256 is built.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { AdvlabError } from '../errors';

export interface Parsed<T> {
  value: T;
  /** sha256 (hex) of the file's bytes as stored on disk (before any decompression). */
  sha256: string;
  /** The absolute path that was read. */
  file: string;
}

interface Entry {
  version: string;
  promise: Promise<Parsed<unknown>>;
}

const entries = new Map<string, Entry>();
let hits = 0;
let misses = 0;

/** Reads `file` and parses it with `parse`, or returns the cached result for the same file version. */
export async function readParsed<T>(file: string, kind: string, parse: (bytes: Buffer, file: string) => T): Promise<Parsed<T>> {
  let version: string;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new AdvlabError('NOT_FOUND', `${file}: not a regular file`, { file });
    version = `${st.mtimeMs}:${st.size}`;
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw new AdvlabError('NOT_FOUND', `${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file });
  }
  const id = `${kind}\0${file}`;
  const hit = entries.get(id);
  if (hit && hit.version === version) {
    hits++;
    return hit.promise as Promise<Parsed<T>>;
  }
  misses++;
  const promise = (async (): Promise<Parsed<T>> => {
    const bytes = await readFile(file);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { value: parse(bytes, file), sha256, file };
  })();
  entries.set(id, { version, promise });
  // A failed parse is not cached: the user may fix the file and try again.
  promise.catch(() => {
    if (entries.get(id)?.promise === promise) entries.delete(id);
  });
  return promise;
}

/** Drops every cached file (frees the memory; the next load parses again). */
export function clearDataCache(): void {
  entries.clear();
  hits = 0;
  misses = 0;
}

/** How many files are cached and how often the cache answered, for diagnostics and tests. */
export function dataCacheStats(): { entries: number; hits: number; misses: number } {
  return { entries: entries.size, hits, misses };
}

/**
 * One hash over several files: the sha256 of the lines `<sha256 hex>  <name>\n`, in order, which is
 * exactly what `sha256sum name1 name2 ... | sha256sum` computes when run in the files' folder.
 * `name` is the file's base name (or its path relative to an image folder's root).
 */
export function combineHashes(items: { name: string; sha256: string }[]): string {
  const h = createHash('sha256');
  for (const it of items) h.update(`${it.sha256}  ${it.name}\n`);
  return h.digest('hex');
}

/** Awaits all promises; if any failed, throws the error of the first in list order (not in time order). */
export async function allInOrder<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
