/**
 * The browser host: the built renderer and the same API over HTTP + WebSocket, on 127.0.0.1 only,
 * protected by a per-launch token. This is how a headless workstation uses AdvLab and how the e2e
 * tests drive the UI.
 *   POST /api/<method>         body: params JSON, header x-advlab-token   -> envelope JSON
 *   GET  /files/<id>/<path>?token=...                                     -> a session artifact
 *   WS   /events?token=...                                                -> ApiEvent JSON messages
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiCore } from '../api/core';
import { mimeOf } from '../engine/core/mime';
import { AdvlabError, httpStatusOf, isErrorCode, type ErrorCode } from '../engine/errors';
import type { Envelope } from '../api/contract';

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


const MAX_BODY = 5 * 1024 * 1024;

/** HTTP status for an error code (engine/errors.ts ERROR_CODES): the caller's mistakes are 4xx, ours 500. */
export const statusOf = httpStatusOf;

/** An error envelope the host answers itself (before ApiCore sees the request). */
function refusal(code: ErrorCode, message: string): string {
  const envelope: Envelope<never> = { ok: false, error: { code, message, details: {} } };
  return JSON.stringify(envelope);
}

function sameToken(a: string | null | undefined, b: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new AdvlabError('BAD_INPUT', `Request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
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
    const rel = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
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
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      const given = (req.headers['x-advlab-token'] as string | undefined) ?? url.searchParams.get('token');
      if (url.pathname.startsWith('/api/')) {
        if (!sameToken(given, token)) return send(res, 401, refusal('UNAUTHORIZED', 'Invalid or missing AdvLab token: open the URL that "advlab serve" printed'));
        if (req.method !== 'POST') return send(res, 405, refusal('BAD_INPUT', 'Use POST for API calls'));
        const method = url.pathname.slice('/api/'.length);
        const text = await readBody(req);
        let params: unknown = {};
        if (text.trim()) {
          try {
            params = JSON.parse(text);
          } catch {
            return send(res, 400, refusal('BAD_INPUT', `Malformed JSON body for ${method}`));
          }
        }
        const envelope = await opts.core.call(method, params);
        return send(res, envelope.ok ? 200 : statusOf(envelope.error.code), JSON.stringify(envelope));
      }
      if (url.pathname.startsWith('/files/')) {
        if (!sameToken(given, token)) return send(res, 401, JSON.stringify({ error: 'Invalid or missing AdvLab token' }));
        if (!opts.artifactPath) return send(res, 404, JSON.stringify({ error: 'No session store' }));
        const [, , id, ...rest] = url.pathname.split('/');
        const file = await opts.artifactPath(decodeURIComponent(id), rest.map(decodeURIComponent).join('/'));
        res.writeHead(200, { 'content-type': mimeOf(file), 'cache-control': 'no-cache' });
        createReadStream(file).pipe(res);
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
      const err = e as Error & { code?: unknown };
      const code = isErrorCode(err.code) ? err.code : 'INTERNAL';
      if (!res.headersSent) send(res, statusOf(code), refusal(code, err.message));
      else res.end();
    }
  });

  const wss = new WebSocketServer({ noServer: true });
  const clients = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
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
    const text = JSON.stringify(e);
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
