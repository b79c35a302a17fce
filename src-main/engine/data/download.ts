/**
 * Downloading one file over HTTP(S) into a partial file, resumably, and verifying it against a pinned
 * digest. Used by `advlab data get` (see sources.ts for the pinned files and the install step).
 *
 * - Resumable: a partial file left by an interrupted download is continued with an HTTP Range request
 *   (`Range: bytes=N-`); a 206 answer whose Content-Range starts at N is appended. A server that
 *   ignores Range (answers 200 with the whole file) restarts the file from byte 0, cleanly: the
 *   partial file is truncated and the hashes start again. A 416 (the partial file is not a prefix the
 *   server can continue) also restarts from 0.
 * - Verified: sha256 when the file's sha256 is pinned, else the md5 its publisher gives (see each
 *   file's `digestSource`); a file with neither is refused before any byte is fetched. A mismatch
 *   deletes the partial file, so the next attempt starts over.
 * - Errors say what happened in words: offline (no route, refused, unknown host), HTTP 404, a
 *   checksum mismatch, a connection dropped midway (the partial file is kept: run again to resume;
 *   `retries` resumes automatically first), disk full (ENOSPC from the writer).
 * - The writer is a seam (`openWriter`): tests inject one that fails with ENOSPC after some bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';
import { type JobContext, silentContext } from '../context';
import { AdvlabError, CancelledError } from '../errors';

/** One file to fetch, with its pinned digest. */
export interface RemoteFile {
  /** The file's name: the last part of its URLs, its name in a --mirror and on disk. */
  name: string;
  /** Canonical locations, tried in order (the next one on offline, 404 or a server error). */
  urls: string[];
  /** Pinned sha256 (hex) of the file as downloaded, when it could be measured from a byte-identical copy. */
  sha256?: string;
  /** Pinned md5 (hex) published by the file's distributor, used when no sha256 is pinned. */
  md5?: string;
  /** Where the pinned digest comes from, in words (errors and `advlab data list --json` show it). */
  digestSource: string;
  /**
   * No digest of the file itself is pinned because its bytes are not stable (an archive generated on
   * request): the caller checks what it contains after extraction instead. Without a digest and
   * without this, the file is refused.
   */
  checkedAfterExtraction?: boolean;
}

export interface FetchOptions {
  /** A base URL replacing the canonical locations: the file is fetched from `${mirror}/${name}`. */
  mirror?: string;
  ctx?: JobContext;
  /** Called as bytes arrive (for a progress bar over several files): `received` is the file's bytes on disk (it starts over when a server ignores Range). */
  onBytes?: (delta: number, info: { file: string; received: number; total?: number }) => void;
  /** Opens the partial file for writing ('a': append after a resume, 'w': from byte 0). The seam for disk-full tests. */
  openWriter?: (path: string, flags: 'a' | 'w') => Writable;
  /** Automatic resumes after a dropped connection before giving up. Default 2. */
  retries?: number;
  /** No data for this long ends the attempt as a dropped connection. Default 30 s. */
  idleTimeoutMs?: number;
}

export interface FetchResult {
  bytes: number;
  sha256: string;
  md5: string;
  /** Which digest was checked against the pin ('content': none here, the caller checks the content). */
  verified: 'sha256' | 'md5' | 'content';
  url: string;
  /** Bytes already on disk when this call started (kept from an earlier interrupted download). */
  resumedFrom: number;
}

const MAX_REDIRECTS = 5;

/** The URLs a file is fetched from: the mirror alone when one is given, else its canonical ones. */
export function fileUrls(file: RemoteFile, mirror?: string): string[] {
  if (mirror === undefined) return file.urls;
  return [`${mirror.replace(/\/+$/, '')}/${encodeURIComponent(file.name)}`];
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const OFFLINE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EADDRNOTAVAIL']);
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);

/** An attempt that failed in a way worth trying the next URL (offline, 404, 5xx) or resuming (dropped). */
class AttemptError extends Error {
  constructor(
    readonly kind: 'offline' | 'not-found' | 'http' | 'dropped' | 'restart',
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function diskFull(path: string, e: NodeJS.ErrnoException): AdvlabError {
  return new AdvlabError('DISK_FULL', `disk full while writing ${path} (${e.code}): free some space and run again; the part downloaded so far is kept and the download resumes from it`, { file: path, errno: e.code });
}

async function hashExisting(path: string, bytes: number, hashes: Hash[]): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) for (const h of hashes) h.update(chunk as Buffer);
}

function get(url: string, headers: Record<string, string>, idleTimeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new AdvlabError('BAD_INPUT', `not a URL: ${url}`, { url }));
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      reject(new AdvlabError('BAD_INPUT', `only http and https URLs can be downloaded, got ${url}`, { url }));
      return;
    }
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', headers: { 'user-agent': 'advlab', ...headers } }, resolve);
    req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no answer for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (OFFLINE.has(code)) reject(new AttemptError('offline', `cannot reach ${u.host} (${code}): offline, or the host is down`, { url, errno: code }));
      else reject(new AttemptError('dropped', `connection to ${u.host} failed (${code || e.message})`, { url, errno: code }));
    });
    req.end();
  });
}

/** Follows redirects; answers with the final response (any status). */
async function open(url: string, headers: Record<string, string>, idleTimeoutMs: number): Promise<{ res: IncomingMessage; url: string }> {
  let current = url;
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    const res = await get(current, headers, idleTimeoutMs);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current).toString();
      continue;
    }
    return { res, url: current };
  }
  throw new AttemptError('http', `${url}: more than ${MAX_REDIRECTS} redirects`, { url });
}

function writeChunk(w: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => w.write(chunk, (e) => (e ? reject(e) : resolve())));
}

function closeWriter(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.destroyed) return resolve();
    w.once('error', reject);
    w.end(() => resolve());
  });
}

/**
 * One attempt from one URL: continues `part` from its current size (Range) or restarts it, and
 * returns the hashes of the whole file once the body ended. Throws AttemptError for what the caller
 * may retry, AdvlabError (DISK_FULL) and CancelledError for what it must not.
 */
async function attempt(url: string, part: string, o: Required<Pick<FetchOptions, 'idleTimeoutMs'>> & FetchOptions, name: string, ctx: JobContext) {
  let start = sizeOf(part);
  const { res, url: finalUrl } = await open(url, start > 0 ? { range: `bytes=${start}-` } : {}, o.idleTimeoutMs);
  const status = res.statusCode ?? 0;
  if (status === 404 || status === 410) {
    res.resume();
    throw new AttemptError('not-found', `${finalUrl}: HTTP ${status} (not found)`, { url: finalUrl, status });
  }
  if (status === 416) {
    res.resume();
    await rm(part, { force: true });
    throw new AttemptError('restart', `${finalUrl}: the server cannot continue the partial file (HTTP 416): starting over`, { url: finalUrl });
  }
  if (status !== 200 && status !== 206) {
    res.resume();
    throw new AttemptError('http', `${finalUrl}: HTTP ${status}`, { url: finalUrl, status });
  }
  if (status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== start) {
      res.resume();
      await rm(part, { force: true });
      throw new AttemptError('restart', `${finalUrl}: the server answered a range other than the one asked for (${res.headers['content-range'] ?? 'no Content-Range'}): starting over`, { url: finalUrl });
    }
  } else if (start > 0) {
    ctx.log(`${name}: the server ignored the Range request (HTTP 200): restarting from byte 0`);
    start = 0;
  }
  const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
  const total = length !== undefined ? start + length : undefined;
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  await hashExisting(part, start, [sha, md5]);
  o.onBytes?.(0, { file: name, received: start, total });
  const writer = (o.openWriter ?? ((p, flags) => createWriteStream(p, { flags })))(part, start > 0 ? 'a' : 'w');
  let writerError: NodeJS.ErrnoException | undefined;
  writer.on('error', (e: NodeJS.ErrnoException) => (writerError ??= e));
  let received = start;
  res.setTimeout?.(o.idleTimeoutMs, () => res.destroy(Object.assign(new Error('idle'), { code: 'ETIMEDOUT' })));
  try {
    for await (const chunk of res) {
      if (ctx.cancelled) {
        res.destroy();
        throw new CancelledError();
      }
      const b = chunk as Buffer;
      try {
        await writeChunk(writer, b);
      } catch (e) {
        res.destroy();
        const err = (writerError ?? e) as NodeJS.ErrnoException;
        if (err.code === 'ENOSPC' || err.code === 'EDQUOT') throw diskFull(part, err);
        throw new AdvlabError('INTERNAL', `cannot write ${part}: ${err.message}`, { file: part, errno: err.code });
      }
      sha.update(b);
      md5.update(b);
      received += b.length;
      o.onBytes?.(b.length, { file: name, received, total });
    }
  } catch (e) {
    writer.destroy();
    if (e instanceof AdvlabError || e instanceof CancelledError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (DROPPED.has(code) || (e as Error).message === 'aborted') {
      throw new AttemptError('dropped', `the connection to ${new URL(finalUrl).host} dropped after ${received}${total !== undefined ? ` of ${total}` : ''} bytes`, { url: finalUrl, received, total });
    }
    throw e;
  }
  try {
    await closeWriter(writer);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOSPC' || err.code === 'EDQUOT') throw diskFull(part, err);
    throw new AdvlabError('INTERNAL', `cannot write ${part}: ${err.message}`, { file: part, errno: err.code });
  }
  if (total !== undefined && received < total) {
    throw new AttemptError('dropped', `the connection to ${new URL(finalUrl).host} dropped after ${received} of ${total} bytes`, { url: finalUrl, received, total });
  }
  return { bytes: received, sha256: sha.digest('hex'), md5: md5.digest('hex'), url: finalUrl };
}

/**
 * Downloads `file` into `part` (continuing what is there), verifies it against its pinned digest
 * and leaves it at `part`. Throws NETWORK (offline, HTTP errors, dropped after the retries: the part
 * is kept for the next run), NOT_FOUND (404 everywhere), BAD_FILE (checksum mismatch: the part is
 * deleted), DISK_FULL, CANCELLED (the part is kept).
 */
export async function fetchVerified(file: RemoteFile, part: string, opts: FetchOptions = {}): Promise<FetchResult> {
  if (!file.sha256 && !file.md5 && !file.checkedAfterExtraction) {
    throw new AdvlabError('UNSUPPORTED', `${file.name}: no digest is pinned for this file, so a download could not be verified: refusing to fetch it`, { file: file.name });
  }
  const ctx = opts.ctx ?? silentContext;
  const o = { ...opts, idleTimeoutMs: opts.idleTimeoutMs ?? 30_000, retries: opts.retries ?? 2 };
  const urls = fileUrls(file, opts.mirror);
  const resumedFrom = sizeOf(part);
  const failures: string[] = [];
  let notFound = 0;
  for (const url of urls) {
    let tries = 0;
    let restarts = 0;
    for (;;) {
      ctx.checkpoint();
      let r: Awaited<ReturnType<typeof attempt>>;
      try {
        r = await attempt(url, part, o, file.name, ctx);
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        if (e.kind === 'restart' && restarts++ < 1) continue;
        if (e.kind === 'dropped' && tries++ < o.retries) {
          ctx.log(`${file.name}: ${e.message}; resuming (attempt ${tries + 1} of ${o.retries + 1})`);
          continue;
        }
        if (e.kind === 'not-found') notFound++;
        failures.push(e.message);
        if (e.kind === 'dropped') {
          // Keep the part: the next run resumes from it. Other URLs would not continue someone else's bytes.
          throw new AdvlabError('NETWORK', `${file.name}: ${e.message}; ${sizeOf(part)} bytes are kept in ${part}: run again to resume`, { file: file.name, part, ...e.details });
        }
        break;
      }
      if (!file.sha256 && !file.md5) return { bytes: r.bytes, sha256: r.sha256, md5: r.md5, verified: 'content', url: r.url, resumedFrom };
      const verified = file.sha256 ? 'sha256' : 'md5';
      const expected = (file.sha256 ?? file.md5)!.toLowerCase();
      const got = verified === 'sha256' ? r.sha256 : r.md5;
      if (got !== expected) {
        await rm(part, { force: true });
        throw new AdvlabError(
          'BAD_FILE',
          `${file.name}: checksum mismatch: expected ${verified} ${expected} (${file.digestSource}), got ${got} for the ${r.bytes} bytes from ${r.url}; the download was discarded`,
          { file: file.name, expected, got, algorithm: verified, url: r.url, bytes: r.bytes },
        );
      }
      return { bytes: r.bytes, sha256: r.sha256, md5: r.md5, verified, url: r.url, resumedFrom };
    }
  }
  if (notFound === urls.length) {
    throw new AdvlabError('NOT_FOUND', `${file.name}: not found (${failures.join('; ')})`, { file: file.name, urls });
  }
  throw new AdvlabError('NETWORK', `${file.name}: could not be downloaded: ${failures.join('; ')}`, { file: file.name, urls });
}
