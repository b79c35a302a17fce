/** Reading session artifacts as bytes through the API (works over IPC and HTTP alike, and under either CSP). */
import { api } from '../../lib/transport';

export async function artifactBytes(session: string, path: string): Promise<Uint8Array<ArrayBuffer>> {
  const r = await api.call('sessions.artifact', { id: session, path });
  const bin = atob(r.base64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export async function artifactJson<T>(session: string, path: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await artifactBytes(session, path))) as T;
}

export const wavBlob = (bytes: Uint8Array<ArrayBuffer> | ArrayBuffer) => new Blob([bytes], { type: 'audio/wav' });
