/**
 * How the renderer reaches the main side. In Electron the preload exposes `window.advlab`; in a
 * browser the page was opened from `advlab serve` with ?token=... and talks HTTP + WebSocket. The rest
 * of the renderer sees only `api`.
 */
import type { AdvlabBridge, ApiEvent, Envelope, ErrorCode, Method, ParamsArg, ResultOf } from '../../src-main/api/contract';

declare global {
  interface Window {
    advlab?: AdvlabBridge;
  }
}

/** An error answer of the API; `code` is one of engine/errors.ts ERROR_CODES. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Transport {
  kind: 'electron' | 'http';
  /** Calls a method; its params and result are typed by the API contract (ParamsOf, ResultOf). */
  call<M extends Method>(method: M, ...params: ParamsArg<M>): Promise<ResultOf<M>>;
  onEvent(listener: (e: ApiEvent) => void): () => void;
  /** A URL the page can use in <img>/<audio> for a session artifact. */
  artifactUrl(session: string, path: string): Promise<string>;
}

function unwrap<T>(env: Envelope<T>): T {
  if (env.ok) return env.result;
  throw new ApiError(env.error.code, env.error.message, env.error.details);
}

function electronTransport(bridge: AdvlabBridge): Transport {
  const urls = new Map<string, string>();
  return {
    kind: 'electron',
    call: async (method, ...params) => unwrap(await bridge.call(method, ...params)),
    onEvent: (listener) => bridge.onEvent(listener),
    async artifactUrl(session, path) {
      const key = `${session}/${path}`;
      const cached = urls.get(key);
      if (cached) return cached;
      const r = unwrap(await bridge.call('sessions.artifact', { id: session, path }));
      const bytes = Uint8Array.from(atob(r.base64), (ch) => ch.charCodeAt(0));
      const url = URL.createObjectURL(new Blob([bytes], { type: r.mime }));
      urls.set(key, url);
      return url;
    },
  };
}

function httpTransport(token: string): Transport {
  const listeners = new Set<(e: ApiEvent) => void>();
  let socket: WebSocket | null = null;
  let retry = 500;
  const connect = () => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${proto}//${location.host}/events?token=${encodeURIComponent(token)}`);
    socket.onmessage = (m) => {
      const e = JSON.parse(String(m.data)) as ApiEvent;
      for (const l of listeners) l(e);
    };
    socket.onopen = () => (retry = 500);
    socket.onclose = () => {
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10_000);
    };
  };
  connect();
  return {
    kind: 'http',
    async call<M extends Method>(method: M, ...[params]: ParamsArg<M>): Promise<ResultOf<M>> {
      const res = await fetch(`/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-advlab-token': token },
        body: JSON.stringify(params ?? {}),
      });
      let env: Envelope<ResultOf<M>>;
      try {
        env = (await res.json()) as Envelope<ResultOf<M>>; // the host answers the envelope of this method
      } catch {
        throw new ApiError('INTERNAL', `The host answered ${res.status} without a JSON body`);
      }
      return unwrap(env);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    artifactUrl: async (session, path) =>
      `/files/${encodeURIComponent(session)}/${path.split('/').map(encodeURIComponent).join('/')}?token=${encodeURIComponent(token)}`,
  };
}

function findToken(): string {
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    sessionStorage.setItem('advlab-token', fromUrl);
    return fromUrl;
  }
  return sessionStorage.getItem('advlab-token') ?? '';
}

export const api: Transport = window.advlab ? electronTransport(window.advlab) : httpTransport(findToken());
