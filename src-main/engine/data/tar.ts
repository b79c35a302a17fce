/**
 * Extracting chosen members of a .tar.gz, streaming (CIFAR-10's tarball is 170 MB): POSIX ustar
 * headers (name + prefix), pax extended headers ('x': a long path; 'g' global headers, as in GitHub's
 * archives, are skipped) and GNU long names ('L'). Only regular files are extracted, and only those
 * `select` maps to a destination: a relative path without '..', so an archive cannot write outside
 * the destination folder.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import type { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { type JobContext, silentContext } from '../context';
import { AdvlabError, badFile } from '../errors';

const BLOCK = 512;

function field(h: Buffer, start: number, len: number): string {
  const s = h.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function octal(h: Buffer, start: number, len: number, file: string): number {
  if (h[start] & 0x80) {
    // base-256 (GNU) for sizes over 8 GB
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + h[i];
    return v;
  }
  const s = field(h, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw badFile(file, `not a tar archive (bad number field "${s}")`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer, file: string): boolean {
  const stored = octal(h, 148, 8, file);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === stored;
}

function paxPath(body: Buffer): string | undefined {
  let pos = 0;
  let path: string | undefined;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(body.subarray(pos, sp).toString());
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = body.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (rec.slice(0, eq) === 'path') path = rec.slice(eq + 1);
    pos += len;
  }
  return path;
}

/** A safe relative destination, or undefined when the path would leave the folder. */
function safeRel(rel: string): string | undefined {
  if (rel === '' || isAbsolute(rel)) return undefined;
  const n = normalize(rel);
  if (n === '..' || n.startsWith(`..${sep}`) || n.split(/[\\/]/).includes('..')) return undefined;
  return n;
}

export interface ExtractOptions {
  /** Maps a member's path in the archive to its path under `destDir`, or undefined to skip it. */
  select: (path: string) => string | undefined;
  ctx?: JobContext;
  /** The writer seam (tests: disk full). */
  openWriter?: (path: string) => Writable;
}

/** Extracts the selected regular files of `archive` (gzip-compressed tar) into `destDir`; returns their destination paths. */
export async function extractTarGz(archive: string, destDir: string, o: ExtractOptions): Promise<string[]> {
  const ctx = o.ctx ?? silentContext;
  const openWriter = o.openWriter ?? ((p: string) => createWriteStream(p));
  const written: string[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let state: 'header' | 'body' | 'pad' | 'end' = 'header';
  let remaining = 0;
  let pad = 0;
  let kind = '';
  let meta: Buffer[] = [];
  let nextPath: string | undefined;
  let out: Writable | undefined;
  let outError: Error | undefined;
  const write = (w: Writable, b: Buffer) => new Promise<void>((ok, fail) => w.write(b, (e) => (e ? fail(e) : ok())));
  const close = (w: Writable) => new Promise<void>((ok, fail) => {
    if (outError) return fail(outError);
    w.once('error', fail);
    w.end(() => ok());
  });
  const fail = (e: unknown): never => {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOSPC' || err.code === 'EDQUOT') throw new AdvlabError('DISK_FULL', `disk full while extracting ${archive} into ${destDir} (${err.code}): free some space and run again`, { file: archive, errno: err.code });
    throw e;
  };
  const gunzip = createReadStream(archive).pipe(createGunzip());
  try {
    for await (const chunk of gunzip) {
      ctx.checkpoint();
      buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
      for (;;) {
        if (state === 'end') break;
        if (state === 'header') {
          if (buf.length < BLOCK) break;
          const h = buf.subarray(0, BLOCK);
          buf = buf.subarray(BLOCK);
          if (h.every((x) => x === 0)) {
            state = 'end';
            break;
          }
          if (!checksumOk(h, archive)) throw badFile(archive, 'not a tar archive, or a damaged one (header checksum mismatch)');
          const size = octal(h, 124, 12, archive);
          kind = String.fromCharCode(h[156] || 0x30);
          const name = field(h, 0, 100);
          const prefix = field(h, 257, 6).startsWith('ustar') ? field(h, 345, 155) : '';
          const path = nextPath ?? (prefix ? `${prefix}/${name}` : name);
          remaining = size;
          pad = (BLOCK - (size % BLOCK)) % BLOCK;
          meta = [];
          if (kind === 'x' || kind === 'L' || kind === 'g') {
            // metadata for the next member (or global): collect it
          } else {
            nextPath = undefined;
            const rel = kind === '0' || kind === '7' ? o.select(path) : undefined;
            if (rel !== undefined) {
              const safe = safeRel(rel);
              if (!safe) throw badFile(archive, `member "${path}" would be written outside ${destDir}`);
              const dest = join(destDir, safe);
              await mkdir(dirname(dest), { recursive: true }).catch(fail);
              out = openWriter(dest);
              outError = undefined;
              out.on('error', (e) => (outError ??= e));
              written.push(dest);
            }
          }
          state = remaining > 0 ? 'body' : 'pad';
          if (remaining === 0 && out) {
            await close(out).catch(fail);
            out = undefined;
          }
          continue;
        }
        if (state === 'body') {
          if (buf.length === 0) break;
          const take = Math.min(remaining, buf.length);
          const part = buf.subarray(0, take);
          buf = buf.subarray(take);
          remaining -= take;
          if (out) await write(out, part).catch((e) => fail(outError ?? e));
          else if (kind === 'x' || kind === 'L') meta.push(Buffer.from(part));
          if (remaining === 0) {
            if (out) {
              await close(out).catch(fail);
              out = undefined;
            }
            if (kind === 'x') nextPath = paxPath(Buffer.concat(meta)) ?? nextPath;
            if (kind === 'L') nextPath = field(Buffer.concat(meta), 0, Buffer.concat(meta).length);
            state = 'pad';
          }
          continue;
        }
        if (state === 'pad') {
          if (buf.length < pad) break;
          buf = buf.subarray(pad);
          pad = 0;
          state = 'header';
        }
      }
    }
  } catch (e) {
    out?.destroy();
    gunzip.destroy();
    if (e instanceof AdvlabError || (e as Error).name === 'CancelledError') throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code.startsWith('Z_')) throw badFile(archive, `not a gzip file, or a damaged one (${(e as Error).message})`);
    throw e;
  }
  if (state !== 'end' && (state !== 'header' || buf.length !== 0)) {
    out?.destroy();
    throw badFile(archive, 'the archive ends in the middle of a member (truncated)');
  }
  return written;
}
