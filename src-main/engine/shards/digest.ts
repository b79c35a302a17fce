/** A shard's id from its content: the same task is the same shard (an executor may store its result once). */
import { createHash } from 'node:crypto';

/** `<prefix>/<index>/<16 hex of sha256 over the JSON part and the typed arrays' bytes>`. */
export function shardId(prefix: string, index: number, json: unknown, arrays: readonly ArrayBufferView[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(json));
  for (const a of arrays) {
    h.update(String(a.byteLength));
    h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  return `${prefix}/${index}/${h.digest('hex').slice(0, 16)}`;
}
