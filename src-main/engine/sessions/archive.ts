/**
 * One-file session archives: a zip (fflate) holding the session folder under its id, files stored
 * byte for byte. Import reads the zip's central directory itself and checks every entry before
 * anything is decompressed (no absolute paths, no '..', no backslashes, one top-level folder, no
 * file/folder clashes, total size and entry count), checks the manifest and its schema version, then
 * inflates each entry off the event loop, capped at its declared size, verifying its size, CRC-32
 * and the artifact sha256 the manifest records, into a hidden staging folder (`.import-<pid>-*`)
 * that is renamed into place only when complete; a staging folder left by a killed import is
 * removed by cleanStaleImports.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { crc32, createInflateRaw, inflateRaw } from 'node:zlib';
import { zipSync, type Zippable } from 'fflate';
import { AdvlabError, badFile } from '../errors';
import { pathExists, walkFiles, writeFileAtomic } from '../core/fs-atomic';
import { isSessionId, randomSuffix } from './ids';
import { commitManifest, isPidAlive, MANIFEST_FILE, parseManifestText } from './manifest-io';

const inflateRawAsync = promisify(inflateRaw);
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
  /** Refuse archives whose entries would unpack to more than this many bytes (default MAX_ARCHIVE_BYTES, 2 GiB). */
  maxBytes?: number;
  /** Refuse archives with more entries than this (default MAX_ARCHIVE_ENTRIES, 200,000). */
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

/** Default cap on what an archive may unpack to, in bytes (2 GiB), checked before anything is inflated. */
export const MAX_ARCHIVE_BYTES = 2 * 1024 ** 3;
/** Default cap on the entries of an archive. */
export const MAX_ARCHIVE_ENTRIES = 200_000;
/** Largest manifest.json read from an archive, in bytes. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Entries are inflated, checked and written in chunks of this size. */
const CHUNK = 256 * 1024;
/** Staging folders of imports: `.import-<pid>-<random>` under the store's root. */
const STAGING_PREFIX = '.import-';
/** A staging folder older than this is stale whatever its pid says (an import never takes a day). */
const STAGING_MAX_AGE_MS = 24 * 3600_000;

/** One file or folder of a zip, as its central directory describes it. */
interface ZipEntry {
  name: string;
  /** The path checked by safeRelativePath, without a trailing '/'. */
  rel: string;
  folder: boolean;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  local: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/** Reads the central directory: every entry's name, method, CRC-32 and sizes, nothing inflated. */
function readCentralDirectory(zip: Buffer, archive: string): ZipEntry[] {
  const bad = (problem: string) => badFile(archive, `not a readable zip archive (${problem})`);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end of central directory record');
  if (zip.readUInt16LE(eocd + 4) !== 0 || zip.readUInt16LE(eocd + 6) !== 0) throw bad('multi-volume archives are not supported');
  let count = zip.readUInt16LE(eocd + 10);
  let cdSize = zip.readUInt32LE(eocd + 12);
  let cdOffset = zip.readUInt32LE(eocd + 16);
  if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && eocd >= 20 && zip.readUInt32LE(eocd - 20) === SIG_ZIP64_LOCATOR) {
    const at = Number(zip.readBigUInt64LE(eocd - 12));
    if (at + 56 > zip.length || zip.readUInt32LE(at) !== SIG_ZIP64_EOCD) throw bad('damaged zip64 end of central directory');
    count = Number(zip.readBigUInt64LE(at + 32));
    cdSize = Number(zip.readBigUInt64LE(at + 40));
    cdOffset = Number(zip.readBigUInt64LE(at + 48));
  }
  if (cdOffset + cdSize > zip.length) throw bad('the central directory lies beyond the end of the file (truncated?)');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdOffset + cdSize || zip.readUInt32LE(p) !== SIG_CENTRAL) throw bad(`central directory entry ${i + 1} of ${count} is damaged`);
    const flags = zip.readUInt16LE(p + 8);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) throw bad(`central directory entry ${i + 1} of ${count} runs past the end of the central directory`);
    const nameBytes = zip.subarray(p + 46, p + 46 + nameLen);
    let name: string;
    try {
      name = flags & 0x800 ? utf8.decode(nameBytes) : nameBytes.toString('latin1');
    } catch {
      throw bad(`entry ${i + 1} has a name that is not valid UTF-8`);
    }
    let compressedSize = zip.readUInt32LE(p + 20);
    let size = zip.readUInt32LE(p + 24);
    let local = zip.readUInt32LE(p + 42);
    // zip64 extra field: the 64-bit values of the fields saturated above, in this order.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen;) {
      const id = zip.readUInt16LE(e);
      const len = zip.readUInt16LE(e + 2);
      if (e + 4 + len > p + 46 + nameLen + extraLen) throw bad(`entry "${name}" has an extra field that runs past its record`);
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => {
          if (q + 8 > e + 4 + len) throw bad(`entry "${name}" has a short zip64 field`);
          const v = Number(zip.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    if (flags & 0x1) throw badFile(archive, `entry "${name}" is encrypted; session archives are not`);
    const folder = name.endsWith('/');
    entries.push({ name, rel: '', folder, method: zip.readUInt16LE(p + 10), crc: zip.readUInt32LE(p + 16), compressedSize, size, local });
    p = end;
  }
  return entries;
}

/** Where an entry's data lies in the archive (after its local header). */
function entryData(zip: Buffer, e: ZipEntry, archive: string): Buffer {
  if (e.local + 30 > zip.length || zip.readUInt32LE(e.local) !== SIG_LOCAL) throw badFile(archive, `entry "${e.name}": damaged local header`);
  const start = e.local + 30 + zip.readUInt16LE(e.local + 26) + zip.readUInt16LE(e.local + 28);
  if (start + e.compressedSize > zip.length) throw badFile(archive, `entry "${e.name}": its data runs past the end of the archive (truncated?)`);
  return zip.subarray(start, start + e.compressedSize);
}

/**
 * Inflates (or copies) one entry into `dest` in small chunks, off the event loop (zlib streams run in
 * its thread pool), never past the size the entry declares: a zip bomb stops there. Then checks the
 * size, the CRC-32 and, when given, the sha256 the manifest records.
 */
async function extractEntry(zip: Buffer, e: ZipEntry, archive: string, dest: string, sha256?: string): Promise<void> {
  const raw = entryData(zip, e, archive);
  let size = 0;
  let crc = 0;
  const hash = sha256 ? createHash('sha256') : null;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > e.size) return done(badFile(archive, `refused: entry "${e.name}" inflates to more than the ${e.size} bytes it declares (a zip bomb?)`, { entry: e.name }));
      crc = crc32(chunk, crc);
      hash?.update(chunk);
      done(null, chunk);
    },
  });
  const source = Readable.from((function* () {
    for (let at = 0; at < raw.length; at += CHUNK) yield raw.subarray(at, at + CHUNK);
  })());
  const out = createWriteStream(dest, { flags: 'wx' });
  try {
    if (e.method === 8) await pipeline(source, createInflateRaw({ chunkSize: CHUNK }), counter, out);
    else await pipeline(source, counter, out);
  } catch (err) {
    if (err instanceof AdvlabError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // e.g. names that differ only in case on a case-insensitive file system
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ENAMETOOLONG') throw badFile(archive, `refused: entry "${e.name}" cannot be written here (${code}: it clashes with another entry or is too long)`);
    if (code?.startsWith('Z_')) throw badFile(archive, `entry "${e.name}" cannot be inflated (${(err as Error).message})`, { entry: e.name });
    throw err;
  }
  if (size !== e.size) throw badFile(archive, `entry "${e.name}" holds ${size} bytes but declares ${e.size}`, { entry: e.name });
  if ((crc >>> 0) !== e.crc) throw badFile(archive, `entry "${e.name}" fails its CRC-32 check (corrupt archive)`, { entry: e.name });
  if (hash && hash.digest('hex') !== sha256) throw badFile(archive, `entry "${e.name}" does not match the sha256 its manifest records (altered after export?)`, { entry: e.name });
}

/** Reads a small entry (the manifest) into memory, with the same checks, capped at MAX_MANIFEST_BYTES. */
async function readEntry(zip: Buffer, e: ZipEntry, archive: string): Promise<Buffer> {
  if (e.size > MAX_MANIFEST_BYTES) throw badFile(archive, `refused: entry "${e.name}" declares ${e.size} bytes; a manifest has at most ${MAX_MANIFEST_BYTES} (MAX_MANIFEST_BYTES)`);
  const raw = entryData(zip, e, archive);
  let data: Buffer;
  try {
    data = e.method === 0 ? raw : await inflateRawAsync(raw, { maxOutputLength: Math.max(1, e.size) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw badFile(archive, `refused: entry "${e.name}" inflates to more than the ${e.size} bytes it declares (a zip bomb?)`, { entry: e.name });
    throw badFile(archive, `entry "${e.name}" cannot be inflated (${(err as Error).message})`, { entry: e.name });
  }
  if (data.length !== e.size) throw badFile(archive, `entry "${e.name}" holds ${data.length} bytes but declares ${e.size}`, { entry: e.name });
  if ((crc32(data) >>> 0) !== e.crc) throw badFile(archive, `entry "${e.name}" fails its CRC-32 check (corrupt archive)`, { entry: e.name });
  return data;
}

/**
 * Removes import staging folders left by an import that was killed midway: those whose process is
 * gone, or older than a day. A live import's folder (in this or another process) is left alone.
 */
export async function cleanStaleImports(root: string, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const pid = Number(/^\.import-(\d+)-/.exec(name)?.[1]);
    const abs = path.join(root, name);
    let old = false;
    try {
      old = now - (await fsp.lstat(abs)).mtimeMs > STAGING_MAX_AGE_MS;
    } catch {
      continue;
    }
    if (isPidAlive(pid) && !old) continue;
    await fsp.rm(abs, { recursive: true, force: true }).catch(() => {});
    removed.push(name);
  }
  return removed;
}

/**
 * Unpacks a session archive into `<root>/<id>` (or `<id>-<suffix>` when the id is taken). Everything
 * the central directory says is checked before anything is inflated (names, one top folder, no
 * file/folder clashes, methods, entry count and total size); then each entry is inflated off the
 * event loop, capped at its declared size, and checked against its size and CRC-32, and each
 * artifact against the sha256 the manifest records for it.
 */
export async function importSessionArchive(root: string, file: string, opts: ImportOptions = {}): Promise<ImportResult> {
  const archive = path.resolve(file);
  const maxBytes = opts.maxBytes ?? MAX_ARCHIVE_BYTES;
  const maxEntries = opts.maxEntries ?? MAX_ARCHIVE_ENTRIES;
  let data: Buffer;
  try {
    const st = await fsp.stat(archive);
    if (!st.isFile()) throw badFile(archive, 'is not a regular file');
    if (st.size > maxBytes + 64 * 1024 * 1024) throw badFile(archive, `refused: ${st.size} bytes is more than an archive unpacking to at most ${maxBytes} bytes can hold`);
    data = await fsp.readFile(archive);
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AdvlabError('NOT_FOUND', `${archive}: no such file`, { file: archive });
    throw badFile(archive, `cannot be read (${(e as Error).message})`);
  }
  if (data.length < 22 || data[0] !== 0x50 || data[1] !== 0x4b) throw badFile(archive, 'not a zip archive (a session archive is a .zip written by "export")');

  const all = readCentralDirectory(data, archive);
  let top: string | null = null;
  let total = 0;
  const entries: ZipEntry[] = [];
  const fileRels = new Set<string>();
  const folderRels = new Set<string>();
  for (const e of all) {
    try {
      e.rel = safeRelativePath(e.folder ? e.name.slice(0, -1) : e.name, 'entry');
    } catch (err) {
      throw badFile(archive, `refused: entry ${JSON.stringify(e.name)} would be written outside the session folder (${(err as Error).message})`);
    }
    const parts = e.rel.split('/');
    const first = parts[0];
    if (top === null) top = first;
    else if (first !== top) throw badFile(archive, `refused: entries under more than one top-level folder ("${top}" and "${first}"); a session archive holds one session folder`);
    for (let i = 1; i < parts.length; i++) folderRels.add(parts.slice(0, i).join('/'));
    if (e.folder) {
      folderRels.add(e.rel);
      continue;
    }
    if (e.rel === first) throw badFile(archive, `refused: entry "${e.name}" is a file at the top level; a session archive holds one session folder`);
    if (e.method !== 0 && e.method !== 8) throw badFile(archive, `entry "${e.name}" uses zip compression method ${e.method}; only stored and deflate are supported`);
    if (e.method === 0 && e.compressedSize !== e.size) throw badFile(archive, `entry "${e.name}" is stored but declares ${e.compressedSize} bytes stored and ${e.size} unpacked`);
    if (fileRels.has(e.rel)) throw badFile(archive, `refused: entry "${e.name}" appears twice`);
    fileRels.add(e.rel);
    if (entries.push(e) > maxEntries) throw badFile(archive, `refused: more than ${maxEntries} entries`);
    total += e.size;
    if (total > maxBytes) throw badFile(archive, `refused: unpacks to more than ${maxBytes} bytes`);
  }
  for (const rel of fileRels) {
    if (folderRels.has(rel)) throw badFile(archive, `refused: "${rel}" is both a file and a folder in the archive`);
  }
  if (top !== null) {
    // The import creates these two folders: a file in their place would clash with them.
    for (const sub of ['metrics', 'artifacts']) {
      if (fileRels.has(`${top}/${sub}`)) throw badFile(archive, `refused: entry "${top}/${sub}" is a file, but a session's ${sub}/ is a folder`);
    }
  }
  if (top === null) throw badFile(archive, 'empty archive: no session folder inside');
  const folder: string = top;
  if (!isSessionId(folder)) throw badFile(archive, `top-level folder "${folder}" is not a valid session id`);

  const manifestEntry = entries.find((e) => e.rel === `${folder}/${MANIFEST_FILE}`);
  if (!manifestEntry) throw badFile(archive, `no ${folder}/${MANIFEST_FILE} inside: not a session archive`);
  const manifestBytes = await readEntry(data, manifestEntry, archive);
  const read = parseManifestText(manifestBytes.toString('utf8'), `${archive} (${folder}/${MANIFEST_FILE})`);
  if (!read.ok) {
    throw new AdvlabError(read.problem.unsupported ? 'UNSUPPORTED' : 'BAD_FILE', `Cannot import ${read.problem.reason}`, { file: archive });
  }
  const manifest = read.manifest;
  if (manifest.id !== folder) throw badFile(archive, `${folder}/${MANIFEST_FILE} says id "${manifest.id}" but the folder is "${folder}"`);
  const recorded = new Map<string, string>();
  for (const a of manifest.artifacts) if (a.sha256) recorded.set(`${folder}/artifacts/${a.path}`, a.sha256);

  // Pick a free id: never overwrite a session, nor one in the trash.
  const taken = async (id: string): Promise<boolean> =>
    (await pathExists(path.join(root, id))) || (await isInTrash(root, id));
  let id = folder;
  for (let i = 0; await taken(id); i++) {
    if (i > 50) throw new AdvlabError('CONFLICT', `${archive}: could not find a free id for session ${folder}`);
    id = `${folder.slice(0, 190)}-${randomSuffix(4)}`;
  }

  await cleanStaleImports(root);
  const staging = path.join(root, `${STAGING_PREFIX}${process.pid}-${randomSuffix(8)}`);
  await fsp.mkdir(staging);
  try {
    for (const rel of [...folderRels].filter((r) => r !== folder)) await fsp.mkdir(path.join(staging, ...rel.split('/').slice(1)), { recursive: true });
    for (const e of entries) {
      const rel = e.rel.slice(folder.length + 1);
      if (rel === MANIFEST_FILE && id !== folder) continue; // rewritten below with the new id
      const abs = path.join(staging, ...rel.split('/'));
      await fsp.mkdir(path.dirname(abs), { recursive: true });
      await extractEntry(data, e, archive, abs, recorded.get(e.rel));
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
  return { id, originalId: folder, renamed: id !== folder, files: entries.length };
}
