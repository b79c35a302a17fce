/**
 * Handlers of the session-review methods (sessions.view, .report, .csv, .export, .import, .trash),
 * spread into the API's handler table by src-main/api/handlers.ts.
 *
 * Archives cross the API as base64. An import larger than one request (the browser host accepts 5 MB
 * bodies) is sent in parts: `{ data, upload: { id, part, parts } }`, parts 0..parts-1 in any order;
 * the call that completes the set imports the archive.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdvlabError, badInput } from '../engine/errors';
import { MAX_IMPORT_BYTES, MAX_IMPORT_HELD_BYTES, MAX_IMPORT_UPLOADS } from '../engine/limits';
import type { ImportResult, SessionStore, TrashEntry } from '../engine/sessions';
import { sessionCsv, type CsvResult } from './csv';
import { buildReport } from './html';
import type { SessionView } from '../../src-shared/report/model';
import { buildSessionView } from './view';

/** Archives larger than this are refused over the API (use `advlab sessions export`). */
export const MAX_EXPORT_BYTES = 256 * 1024 * 1024;
/** Largest archive accepted by sessions.import (all parts together): engine/limits.ts. */
export { MAX_IMPORT_BYTES, MAX_IMPORT_HELD_BYTES, MAX_IMPORT_UPLOADS };
const UPLOAD_TTL_MS = 15 * 60_000;

export interface ImportParams {
  /** The archive's bytes (or one part of them), base64. */
  data: string;
  /** The original file name, for messages. */
  filename?: string;
  upload?: { id: string; part: number; parts: number };
}

export type ImportCallResult = (ImportResult & { complete: true }) | { complete: false; received: number; parts: number };

export interface ExportCallResult {
  filename: string;
  base64: string;
  bytes: number;
  files: number;
}

/** A report over sessions.report: the HTML page, and which sessions it left out. */
export interface ReportCallResult {
  html: string;
  bytes: number;
  filename: string;
  title: string;
  omitted: string[];
}

export interface ReviewHandlers {
  'sessions.view': (p: { id: string }) => Promise<SessionView>;
  'sessions.report': (p: { ids: string[] }) => Promise<ReportCallResult>;
  'sessions.csv': (p: { id: string }) => Promise<CsvResult>;
  'sessions.export': (p: { id: string }) => Promise<ExportCallResult>;
  'sessions.import': (p: ImportParams) => Promise<ImportCallResult>;
  'sessions.trash': () => Promise<TrashEntry[]>;
  'sessions.emptyTrash': (p: { olderThanDays: number }) => Promise<{ purged: string[] }>;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advlab-archive-'));
  try {
    return await fn(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

function decodeBase64(data: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) throw badInput(`${what}: the data is not base64`);
  return Buffer.from(data, 'base64');
}

/**
 * Writes the archive bytes to a temporary file inside the store and imports it. The file lives in a
 * staging folder `<root>/.import-<pid>-upload-<random>/` (removed after the import, and by the
 * store's stale-import cleanup should this process be killed), so an upload never lands outside the
 * store; the client's filename gives only the file's sanitised last segment, never a folder.
 */
export async function importArchiveBytes(store: SessionStore, bytes: Buffer, filename = 'archive.zip'): Promise<ImportResult> {
  if (bytes.length > MAX_IMPORT_BYTES) throw tooLarge(filename, `${bytes.length} bytes is over the ${MAX_IMPORT_BYTES}-byte import limit (MAX_IMPORT_BYTES)`);
  await fsp.mkdir(store.root, { recursive: true });
  const staging = path.join(store.root, `.import-${process.pid}-upload-${randomBytes(6).toString('hex')}`);
  await fsp.mkdir(staging);
  try {
    // Only a label for the file: at most 200 characters (a name has 255), and '', '.' or '..' name no file.
    const name = path.basename(filename).replace(/[^A-Za-z0-9._-]/g, '_').slice(-200);
    const file = path.join(staging, /^\.*$/.test(name) ? 'archive.zip' : name);
    await fsp.writeFile(file, bytes);
    return await store.importArchive(file);
  } finally {
    await fsp.rm(staging, { recursive: true, force: true }).catch(() => {});
  }
}

function tooLarge(filename: string, problem: string): AdvlabError {
  return new AdvlabError('TOO_LARGE', `${filename}: ${problem}`, { filename });
}

/**
 * Refuses to let a session's sealed artifacts (the answer key of an open listening test) leave
 * through an archive: CONFLICT until the test ends (the store's own check, which exportArchive makes too).
 */
export async function assertNothingSealed(store: SessionStore, id: string): Promise<void> {
  await store.assertNothingSealed(id);
}

/** Zips a session (store.exportArchive) and returns the bytes; never while an artifact is sealed. */
export async function exportArchiveBytes(store: SessionStore, id: string): Promise<{ bytes: Buffer; files: number }> {
  await assertNothingSealed(store, id);
  return withTempDir(async (dir) => {
    const r = await store.exportArchive(id, path.join(dir, `${id}.zip`));
    if (r.bytes > MAX_EXPORT_BYTES) throw new AdvlabError('UNSUPPORTED', `Session ${id} zips to ${r.bytes} bytes, too large to send to the window: use "advlab sessions export ${id} --out FILE.zip"`, { id });
    return { bytes: await fsp.readFile(r.file), files: r.files };
  });
}

/** The upload bounds reviewHandlers enforces (the engine/limits.ts constants; tests pass smaller ones). */
export interface UploadLimits {
  importBytes: number;
  heldBytes: number;
}

/** `emit` (optional) tells every client that the store changed, after an import. */
export function reviewHandlers(
  store: SessionStore,
  emit?: (e: { type: 'sessions.changed' }) => void,
  limits: UploadLimits = { importBytes: MAX_IMPORT_BYTES, heldBytes: MAX_IMPORT_HELD_BYTES },
): ReviewHandlers {
  const uploads = new Map<string, { parts: (Buffer | undefined)[]; received: number; bytes: number; started: number; filename?: string }>();
  /** Bytes held by every upload in progress (the sum of their `bytes`). */
  let held = 0;
  const drop = (k: string) => {
    held -= uploads.get(k)?.bytes ?? 0;
    uploads.delete(k);
  };
  const expire = () => {
    const now = Date.now();
    for (const [k, u] of uploads) if (now - u.started > UPLOAD_TTL_MS) drop(k);
  };
  return {
    'sessions.view': (p) => buildSessionView(store, p.id),
    'sessions.report': async (p) => {
      const r = await buildReport(store, p.ids);
      return { html: r.html, bytes: r.bytes, filename: r.filename, title: r.title, omitted: r.omitted };
    },
    'sessions.csv': (p) => sessionCsv(store, p.id),
    'sessions.export': async (p) => {
      const { bytes, files } = await exportArchiveBytes(store, p.id);
      return { filename: `${p.id}.zip`, base64: bytes.toString('base64'), bytes: bytes.length, files };
    },
    'sessions.import': async (p) => {
      const chunk = decodeBase64(p.data, p.filename ?? 'archive');
      const imported = async (bytes: Buffer, filename?: string): Promise<ImportCallResult> => {
        const r = await importArchiveBytes(store, bytes, filename);
        emit?.({ type: 'sessions.changed' });
        return { ...r, complete: true };
      };
      if (!p.upload) return imported(chunk, p.filename);
      expire();
      const { id, part, parts } = p.upload;
      if (!(Number.isInteger(parts) && parts >= 1 && Number.isInteger(part) && part >= 0 && part < parts)) throw badInput(`upload part ${part} of ${parts} is out of range`);
      let u = uploads.get(id);
      if (!u) {
        if (uploads.size >= MAX_IMPORT_UPLOADS) throw new AdvlabError('CONFLICT', `Too many archive uploads in progress (at most ${MAX_IMPORT_UPLOADS}, MAX_IMPORT_UPLOADS); finish or wait for one`);
        u = { parts: new Array(parts).fill(undefined), received: 0, bytes: 0, started: Date.now(), filename: p.filename };
        uploads.set(id, u);
      }
      if (u.parts.length !== parts) throw badInput(`upload ${id} was started with ${u.parts.length} parts, not ${parts}`);
      // Every byte held counts: a resent part replaces the copy it resends, and is counted instead of it.
      const before = u.parts[part]?.length ?? 0;
      const bytes = u.bytes - before + chunk.length;
      const total = held - before + chunk.length;
      const name = u.filename ?? 'archive';
      if (bytes > limits.importBytes) {
        drop(id);
        throw tooLarge(name, `upload ${id} would hold ${bytes} bytes, over the ${limits.importBytes}-byte import limit (MAX_IMPORT_BYTES); the upload is dropped`);
      }
      if (total > limits.heldBytes) {
        throw tooLarge(name, `the archive uploads in progress would hold ${total} bytes together, over ${limits.heldBytes} (MAX_IMPORT_HELD_BYTES): finish or wait for one`);
      }
      if (!u.parts[part]) u.received++;
      u.parts[part] = chunk;
      u.bytes = bytes;
      held = total;
      // A count, not u.parts.filter(...) per call: that made an upload of n parts cost n^2.
      const received = u.received;
      if (received < parts) return { complete: false, received, parts };
      drop(id);
      return imported(Buffer.concat(u.parts as Buffer[]), u.filename);
    },
    'sessions.trash': () => store.listTrash(),
    'sessions.emptyTrash': async (p) => {
      const purged = await store.purgeTrash(p.olderThanDays * 86_400_000);
      if (purged.length) emit?.({ type: 'sessions.changed' });
      return { purged };
    },
  };
}
