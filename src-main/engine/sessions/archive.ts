/**
 * One-file session archives: a zip (fflate) holding the session folder under its id, files stored
 * byte for byte. Import checks every entry name before anything is decompressed (no absolute paths,
 * no '..', no backslashes, one top-level folder), checks the manifest and its schema version, and
 * unpacks into a hidden staging folder that is renamed into place only when complete.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { unzipSync, zipSync, type UnzipFileInfo, type Zippable } from 'fflate';
import { AdvlabError, badFile } from '../errors';
import { pathExists, walkFiles, writeFileAtomic } from '../core/fs-atomic';
import { isSessionId, randomSuffix } from './ids';
import { commitManifest, MANIFEST_FILE, parseManifestText } from './manifest-io';
import { safeRelativePath } from './paths';
import { isInTrash } from './trash';

export interface ExportResult {
  file: string;
  /** Files stored (excluding folders). */
  files: number;
  /** Size of the archive. */
  bytes: number;
}

export interface ImportOptions {
  /** Refuse archives whose entries would unpack to more than this many bytes (default 2 GiB). */
  maxBytes?: number;
  /** Refuse archives with more entries than this (default 200,000). */
  maxEntries?: number;
}

export interface ImportResult {
  /** The id the session now has in the store. */
  id: string;
  /** Its id in the archive. */
  originalId: string;
  /** True when the archive's id was taken and a suffix was added (the manifest's id was rewritten). */
  renamed: boolean;
  files: number;
}

/** Already-compressed formats are stored; text and raw weights are deflated. */
const STORE_EXT = new Set(['png', 'jpg', 'jpeg', 'gif', 'webp', 'mp3', 'flac', 'ogg', 'opus', 'zip', 'gz']);

/** Zips `dir` (every file except crash-left temp files) as `<id>/...` into `file`, atomically. */
export async function exportSessionArchive(dir: string, id: string, file: string): Promise<ExportResult> {
  const target = path.resolve(file);
  const outDir = path.dirname(target);
  try {
    if (!(await fsp.stat(outDir)).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new AdvlabError('NOT_FOUND', `Cannot write ${target}: folder ${outDir} does not exist`, { file: target });
  }
  const rels = await walkFiles(dir, { skipTemp: true });
  const zippable: Zippable = {};
  for (const rel of rels) {
    const abs = path.join(dir, ...rel.split('/'));
    const [data, st] = await Promise.all([fsp.readFile(abs), fsp.stat(abs)]);
    const ext = rel.slice(rel.lastIndexOf('.') + 1).toLowerCase();
    zippable[`${id}/${rel}`] = [new Uint8Array(data.buffer, data.byteOffset, data.byteLength), { level: STORE_EXT.has(ext) ? 0 : 6, mtime: st.mtime }];
  }
  const zipped = zipSync(zippable);
  await writeFileAtomic(target, zipped);
  return { file: target, files: rels.length, bytes: zipped.byteLength };
}

/** Unpacks a session archive into `<root>/<id>` (or `<id>-<suffix>` when the id is taken). */
export async function importSessionArchive(root: string, file: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const archive = path.resolve(file);
  const maxBytes = opts.maxBytes ?? 2 * 1024 ** 3;
  const maxEntries = opts.maxEntries ?? 200_000;
  let data: Buffer;
  try {
    data = await fsp.readFile(archive);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AdvlabError('NOT_FOUND', `${archive}: no such file`, { file: archive });
    throw badFile(archive, `cannot be read (${(e as Error).message})`);
  }
  if (data.length < 22 || data[0] !== 0x50 || data[1] !== 0x4b) throw badFile(archive, 'not a zip archive (a session archive is a .zip written by "export")');

  let top: string | null = null;
  let entries = 0;
  let total = 0;
  const check = (info: UnzipFileInfo): boolean => {
    const name = info.name;
    let rel: string;
    try {
      rel = safeRelativePath(name.endsWith('/') ? name.slice(0, -1) : name, 'entry');
    } catch (e) {
      throw badFile(archive, `refused: entry ${JSON.stringify(name)} would be written outside the session folder (${(e as Error).message})`);
    }
    const first = rel.split('/')[0];
    if (top === null) top = first;
    else if (first !== top) throw badFile(archive, `refused: entries under more than one top-level folder ("${top}" and "${first}"); a session archive holds one session folder`);
    if (name.endsWith('/')) return false; // folder entry
    if (rel === first) throw badFile(archive, `refused: entry "${name}" is a file at the top level; a session archive holds one session folder`);
    if (info.compression !== 0 && info.compression !== 8) throw badFile(archive, `entry "${name}" uses zip compression method ${info.compression}; only stored and deflate are supported`);
    if (++entries > maxEntries) throw badFile(archive, `refused: more than ${maxEntries} entries`);
    total += info.originalSize;
    if (total > maxBytes) throw badFile(archive, `refused: unpacks to more than ${maxBytes} bytes`);
    return true;
  };

  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), { filter: check });
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw badFile(archive, `not a readable zip archive (${(e as Error).message})`);
  }
  const actual = Object.values(files).reduce((s, f) => s + f.byteLength, 0);
  if (actual > maxBytes) throw badFile(archive, `refused: unpacks to more than ${maxBytes} bytes`);
  if (top === null) throw badFile(archive, 'empty archive: no session folder inside');
  const folder: string = top;
  if (!isSessionId(folder)) throw badFile(archive, `top-level folder "${folder}" is not a valid session id`);

  const manifestBytes = files[`${folder}/${MANIFEST_FILE}`];
  if (!manifestBytes) throw badFile(archive, `no ${folder}/${MANIFEST_FILE} inside: not a session archive`);
  const read = parseManifestText(Buffer.from(manifestBytes).toString('utf8'), `${archive} (${folder}/${MANIFEST_FILE})`);
  if (!read.ok) {
    throw new AdvlabError(read.problem.unsupported ? 'UNSUPPORTED' : 'BAD_FILE', `Cannot import ${read.problem.reason}`, { file: archive });
  }
  const manifest = read.manifest;
  if (manifest.id !== folder) throw badFile(archive, `${folder}/${MANIFEST_FILE} says id "${manifest.id}" but the folder is "${folder}"`);

  // Pick a free id: never overwrite a session, nor one in the trash.
  const taken = async (id: string): Promise<boolean> =>
    (await pathExists(path.join(root, id))) || (await isInTrash(root, id));
  let id = folder;
  for (let i = 0; await taken(id); i++) {
    if (i > 50) throw new AdvlabError('CONFLICT', `${archive}: could not find a free id for session ${folder}`);
    id = `${folder.slice(0, 190)}-${randomSuffix(4)}`;
  }

  const staging = path.join(root, `.import-${randomSuffix(8)}`);
  await fsp.mkdir(staging);
  try {
    for (const [name, bytes] of Object.entries(files)) {
      const rel = name.slice(folder.length + 1);
      if (rel === MANIFEST_FILE && id !== folder) continue; // rewritten below with the new id
      const abs = path.join(staging, ...rel.split('/'));
      await fsp.mkdir(path.dirname(abs), { recursive: true });
      await fsp.writeFile(abs, bytes, { flag: 'wx' });
    }
    if (id !== folder) await commitManifest(staging, { ...manifest, id });
    await fsp.mkdir(path.join(staging, 'metrics'), { recursive: true });
    await fsp.mkdir(path.join(staging, 'artifacts'), { recursive: true });
    // Final check right before the rename: rename onto an existing empty folder would succeed on POSIX.
    if (await taken(id)) throw new AdvlabError('CONFLICT', `${archive}: session ${id} appeared in ${root} during the import; try again`);
    await fsp.rename(staging, path.join(root, id));
  } catch (e) {
    await fsp.rm(staging, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  return { id, originalId: folder, renamed: id !== folder, files: Object.keys(files).length };
}
