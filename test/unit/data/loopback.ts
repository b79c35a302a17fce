/**
 * A loopback HTTP server for download tests, serving fixture files in several ways chosen by the
 * first path segment: /good/ (honours Range), /norange/ (ignores Range: always 200 and the whole
 * file), /truncated/ (the first half, with an honest Content-Length), /corrupt/ (one byte flipped),
 * /drop-once/ (the first request for a file dies halfway through, later ones behave), /drop/ (every
 * request dies halfway). Anything else is a 404. `requests` records what was asked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface Loopback {
  base: string;
  requests: { path: string; range?: string; served: number }[];
  close(): Promise<void>;
}

export async function startLoopback(files: Record<string, Buffer>): Promise<Loopback> {
  const requests: Loopback['requests'] = [];
  const dropped = new Set<string>();
  const server: Server = createServer((req, res) => {
    const [, mode, ...rest] = (req.url ?? '/').split('/');
    const name = decodeURIComponent(rest.join('/'));
    const body = files[name];
    const range = req.headers.range;
    const rec = { path: req.url ?? '', range, served: 0 };
    requests.push(rec);
    if (!body || !['good', 'norange', 'truncated', 'corrupt', 'drop-once', 'drop'].includes(mode)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    let data = body;
    if (mode === 'truncated') data = body.subarray(0, Math.floor(body.length / 2));
    if (mode === 'corrupt') {
      data = Buffer.from(body);
      data[Math.floor(data.length / 3)] ^= 0xff;
    }
    const dropNow = mode === 'drop' || (mode === 'drop-once' && !dropped.has(name));
    let start = 0;
    const m = range && mode !== 'norange' ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': data.length, ...(mode === 'norange' ? {} : { 'accept-ranges': 'bytes' }) });
    }
    const rest_ = data.subarray(start);
    if (dropNow) {
      dropped.add(name);
      const half = Math.floor(rest_.length / 2);
      rec.served = half;
      res.write(rest_.subarray(0, half), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    rec.served = rest_.length;
    res.end(rest_);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

/** A port nothing listens on (a server opened then closed): connecting is refused, as when offline. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

/** A ustar archive of the given members (and a pax global header first, as GitHub's archives have), gzipped. */
export function tarGz(members: { path: string; data: Buffer }[], opts: { level?: number; paxGlobal?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, type: string) => {
    const h = Buffer.alloc(512);
    let prefix = '';
    let n = name;
    if (Buffer.byteLength(n) > 100) {
      const cut = n.lastIndexOf('/', 154);
      prefix = n.slice(0, cut);
      n = n.slice(cut + 1);
    }
    h.write(n, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(size.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const add = (name: string, data: Buffer, type: string) => {
    blocks.push(header(name, data.length, type), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  };
  if (opts.paxGlobal) {
    const rec = 'comment=0123456789abcdef\n';
    const len = rec.length + 3;
    add('pax_global_header', Buffer.from(`${len} ${rec}`), 'g');
  }
  for (const m of members) add(m.path, m.data, '0');
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: opts.level ?? 6 });
}
