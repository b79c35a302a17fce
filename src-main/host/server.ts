/**
 * The browser host: the built renderer and the same API over HTTP + WebSocket, on 127.0.0.1 only,
 * protected by a per-launch token. This is how a headless workstation uses AdvLab and how the e2e
 * tests drive the UI.
 *   POST /api/<method>         body: params JSON, header x-advlab-token   -> envelope JSON
 *   GET  /files/<id>/<path>?token=...                                     -> a session artifact
 *   WS   /events?token=...                                                -> ApiEvent JSON messages
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants, createReadStream, existsSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { basename, extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiCore } from '../api/core';
import type { Envelope } from '../api/contract';
import { jsonDepth, MAX_JSON_DEPTH } from '../engine/core/json-depth';
import { mimeOf } from '../engine/core/mime';
import { AdvlabError, httpStatusOf, isErrorCode, type ErrorCode } from '../engine/errors';

export interface HostOptions {
  core: ApiCore;
  rendererDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  token?: string;
  /** Resolves a session artifact to a file path (or throws NOT_FOUND). */
  artifactPath?: (id: string, rel: string) => string | Promise<string>;
}

export interface Host {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}


/** Extensions of artifacts a browser may show inline: raster images and audio, which cannot run script (types from mime.ts). */
const INLINE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.bmp', '.wav', '.mp3', '.flac', '.ogg', '.opus']);

/**
 * Headers for a session artifact. Anything a session holds may come from elsewhere (an imported
 * archive), so nothing is sniffed, nothing may run (a sandboxed, script-less, opaque-origin
 * document that cannot read the page's token), and anything but a raster image or audio (SVG, HTML,
 * JSON, ...) is a download, never shown inline.
 */
export function artifactHeaders(file: string): Record<string, string> {
  const inline = INLINE_EXTENSIONS.has(extname(file).toLowerCase());
  return {
    'content-type': mimeOf(file),
    'content-disposition': `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(basename(file))}`,
    'content-security-policy': "default-src 'none'; sandbox",
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  };
}

/** Largest API request body read, in bytes; a larger one is answered 413 without being kept. */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** A body this far over MAX_BODY_BYTES is no longer drained (so the client can read its 413): the connection is cut. */
const MAX_DISCARD_BYTES = 8 * MAX_BODY_BYTES;
export { jsonDepth, MAX_JSON_DEPTH };

/** HTTP status for an error code (engine/errors.ts ERROR_CODES): the caller's mistakes are 4xx, ours 500. */
export const statusOf = httpStatusOf;

/** An error envelope the host answers itself (before ApiCore sees the request). */
function refusal(code: ErrorCode, message: string, details: Record<string, unknown> = {}): string {
  const envelope: Envelope<never> = { ok: false, error: { code, message, details } };
  return JSON.stringify(envelope);
}

function sameToken(a: string | null | undefined, b: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json', close = false): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...(close ? { connection: 'close' } : {}) });
  res.end(body);
}

/** A body over MAX_BODY_BYTES: TOO_LARGE, whose HTTP status (413) comes from the error-code table like every other. */
function tooLarge(size: number): AdvlabError {
  return new AdvlabError('TOO_LARGE', `Request body of ${size} bytes is over the ${MAX_BODY_BYTES}-byte limit (MAX_BODY_BYTES)`, { limit: MAX_BODY_BYTES });
}

/**
 * Reads a request body of at most MAX_BODY_BYTES. A larger one (declared or sent) is refused with
 * 413: the rest is read and dropped, so the client gets the answer, up to MAX_DISCARD_BYTES.
 */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES && declared <= MAX_BODY_BYTES) chunks.push(c);
      else {
        chunks.length = 0;
        if (size > MAX_DISCARD_BYTES) {
          reject(tooLarge(size));
          req.destroy();
        }
      }
    });
    req.on('end', () => (size > MAX_BODY_BYTES || declared > MAX_BODY_BYTES ? reject(tooLarge(Math.max(size, declared))) : resolveBody(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/** decodeURIComponent for a URL path part; a malformed %-escape is the caller's mistake (400). */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new AdvlabError('BAD_INPUT', `Malformed %-escape in the URL path: "${part.slice(0, 80)}"`);
  }
}

/**
 * JSON for the client without stack traces: an error's details ({ name, stack }, as serializeError
 * writes them for INTERNAL errors) lose their stack wherever they sit (an API error, a failed job in
 * jobs.list, a job.failed event). Each stack dropped is logged to stderr instead.
 */
const loggedStacks = new Set<string>(); // a failed job listed again and again is logged once
function clientJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
    if (key === 'stack' && typeof v === 'string' && typeof this.name === 'string') {
      if (!loggedStacks.has(v)) {
        if (loggedStacks.size >= 1000) loggedStacks.clear();
        loggedStacks.add(v);
        process.stderr.write(`advlab serve: ${this.name}: ${v}\n`);
      }
      return undefined;
    }
    return v;
  });
}

export async function startHost(opts: HostOptions): Promise<Host> {
  const token = opts.token ?? randomBytes(18).toString('base64url');
  const rendererDir = resolve(opts.rendererDir);
  let port = opts.port ?? 0;

  const hostAllowed = (req: IncomingMessage) => {
    const h = req.headers.host ?? '';
    return h === `127.0.0.1:${port}` || h === `localhost:${port}`;
  };

  const serveStatic = (res: ServerResponse, pathname: string) => {
    const rel = normalize(decodePathPart(pathname)).replace(/^([/\\])+/, '');
    const file = resolve(rendererDir, rel || 'index.html');
    if (!file.startsWith(rendererDir + sep) && file !== rendererDir) return send(res, 403, JSON.stringify({ error: 'Forbidden path' }));
    const target = existsSync(file) && statSync(file).isFile() ? file : join(rendererDir, 'index.html');
    if (!existsSync(target)) return send(res, 500, `The renderer is not built (${rendererDir} has no index.html): run "npm run build"`, 'text/plain; charset=utf-8');
    res.writeHead(200, { 'content-type': mimeOf(target), 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    createReadStream(target).pipe(res);
  };

  const server: Server = createServer(async (req, res) => {
    try {
      if (!hostAllowed(req)) return send(res, 403, JSON.stringify({ error: `Host header "${req.headers.host}" not allowed` }));
      let url: URL;
      try {
        url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      } catch {
        throw new AdvlabError('BAD_INPUT', 'Malformed request URL');
      }
      const given = (req.headers['x-advlab-token'] as string | undefined) ?? url.searchParams.get('token');
      if (url.pathname.startsWith('/api/')) {
        if (!sameToken(given, token)) return send(res, 401, refusal('UNAUTHORIZED', 'Invalid or missing AdvLab token: open the URL that "advlab serve" printed'));
        if (req.method !== 'POST') return send(res, 405, refusal('BAD_INPUT', 'Use POST for API calls'));
        const method = url.pathname.slice('/api/'.length);
        const text = await readBody(req);
        let params: unknown = {};
        if (text.trim()) {
          if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
            return send(res, 400, refusal('BAD_INPUT', `JSON body for ${method} is nested deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`, { limit: MAX_JSON_DEPTH }));
          }
          try {
            params = JSON.parse(text);
          } catch {
            return send(res, 400, refusal('BAD_INPUT', `Malformed JSON body for ${method}`));
          }
        }
        const envelope = await opts.core.call(method, params);
        return send(res, envelope.ok ? 200 : statusOf(envelope.error.code), clientJson(envelope));
      }
      if (url.pathname.startsWith('/files/')) {
        if (!sameToken(given, token)) return send(res, 401, JSON.stringify({ error: 'Invalid or missing AdvLab token' }));
        if (!opts.artifactPath) return send(res, 404, JSON.stringify({ error: 'No session store' }));
        const [, , id, ...rest] = url.pathname.split('/');
        const file = await opts.artifactPath(decodePathPart(id ?? ''), rest.map(decodePathPart).join('/'));
        let handle: FileHandle;
        try {
          handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW); // never a link swapped in after the check
        } catch {
          return send(res, 404, refusal('NOT_FOUND', 'No such artifact'));
        }
        res.writeHead(200, artifactHeaders(file));
        await pipeline(handle.createReadStream(), res).catch(() => res.destroy());
        return;
      }
      if (url.pathname === '/' || url.pathname === '/index.html') {
        if (!sameToken(given, token)) {
          return send(res, 401, '<!doctype html><meta charset="utf-8"><title>AdvLab</title><p>This AdvLab host needs its token: open the full URL that <code>advlab serve</code> printed.</p>', 'text/html; charset=utf-8');
        }
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'Method not allowed' }));
      return serveStatic(res, url.pathname);
    } catch (e) {
      const err = e as Error & { code?: unknown; details?: Record<string, unknown> };
      const code: ErrorCode = isErrorCode(err.code) ? err.code : 'INTERNAL';
      const status = statusOf(code);
      if (status >= 500) process.stderr.write(`advlab serve: ${req.method} ${req.url}: ${err.stack ?? err}\n`);
      const details = typeof err.details?.limit === 'number' ? { limit: err.details.limit } : {};
      if (!res.headersSent) send(res, status, refusal(code, err.message, details), 'application/json', status === 413);
      else res.end();
    }
  });

  const wss = new WebSocketServer({ noServer: true });
  const clients = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`) {
      // Browsers always send Origin on a WebSocket: only the app's own pages may open one.
      socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    } catch {
      socket.write('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    if (url.pathname !== '/events' || !hostAllowed(req) || !sameToken(url.searchParams.get('token'), token)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
    });
  });
  const forward = (e: unknown) => {
    const text = clientJson(e);
    for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(text);
  };
  opts.core.on('event', forward);

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new AdvlabError('CONFLICT', `Port ${port} on 127.0.0.1 is already in use (another "advlab serve"?): choose another with --port, or 0 for a free one`, { port }));
      else reject(e);
    });
    server.listen(port, '127.0.0.1', () => resolveListen());
  });
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : port;

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      opts.core.off('event', forward);
      for (const ws of clients) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
