/**
 * How shard tasks and results travel through NATS: JSON for the structure, raw bytes for typed arrays
 * (images, perturbations, logits are Float32Arrays: base64 or number lists would be 1.3x to 5x the
 * bytes), and every non-finite number kept as such (JSON would turn NaN into null). One buffer:
 *   'ADV1' | u32 LE header length | header (UTF-8 JSON) | padding to 8 | blobs, each padded to 8.
 * The header is { value, blobs: [[type, offset, bytes]] } where a typed array in `value` became
 * { $ta: index } and a non-finite number { $num: 'NaN' | 'Infinity' | '-Infinity' }.
 */
import { createHash } from 'node:crypto';
import { badInput } from '../../engine/errors';

const MAGIC = 'ADV1';
const TYPED = {
  Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Uint8Array, Uint8ClampedArray, Uint16Array, Uint32Array,
} as const;
type TypedName = keyof typeof TYPED;
type Typed = InstanceType<(typeof TYPED)[TypedName]>;

function typedName(v: unknown): TypedName | null {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) return null;
  const name = v.constructor.name;
  return Object.hasOwn(TYPED, name) ? (name as TypedName) : null;
}

const pad8 = (n: number) => (n + 7) & ~7;

export function encodePayload(value: unknown): Uint8Array {
  const blobs: Typed[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : { $num: String(v) };
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') throw badInput(`A shard payload holds a ${typeof v} at ${path}: only JSON and typed arrays travel`);
      return v;
    }
    const name = typedName(v);
    if (name) {
      blobs.push(v as Typed);
      return { $ta: blobs.length - 1 };
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw badInput(`A shard payload holds a ${v.constructor.name} at ${path}: only JSON and typed arrays travel`);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw badInput(`A shard payload holds a ${(v as object).constructor?.name ?? 'class instance'} at ${path}: only JSON and typed arrays travel`);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = walk(x, `${path}.${k}`);
    return out;
  };
  const value2 = walk(value, '$');
  const index: [TypedName, number, number][] = [];
  let offset = 0;
  for (const b of blobs) {
    index.push([typedName(b)!, offset, b.byteLength]);
    offset = pad8(offset + b.byteLength);
  }
  const header = new TextEncoder().encode(JSON.stringify({ value: value2, blobs: index }));
  const start = pad8(8 + header.byteLength);
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, header.byteLength, true);
  out.set(header, 8);
  for (const [i, b] of blobs.entries()) out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), start + index[i][1]);
  return out;
}

export function decodePayload<T = unknown>(bytes: Uint8Array): T {
  if (bytes.byteLength < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) throw badInput('Not a shard payload (bad magic)');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + len > bytes.byteLength) throw badInput('A shard payload is truncated (header)');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) as { value: unknown; blobs: [string, number, number][] };
  const start = pad8(8 + len);
  const arrays = header.blobs.map(([name, off, n]) => {
    if (!Object.hasOwn(TYPED, name)) throw badInput(`A shard payload names an unknown typed array "${name}"`);
    if (start + off + n > bytes.byteLength) throw badInput('A shard payload is truncated (data)');
    const Ctor = TYPED[name as TypedName];
    if (n % Ctor.BYTES_PER_ELEMENT !== 0) throw badInput(`A shard payload's ${name} has ${n} bytes`);
    // A copy, aligned and owned by the result (not bytes.slice: on a Node Buffer, which the NATS client hands out, that is a view).
    const copy = new Uint8Array(n);
    copy.set(bytes.subarray(start + off, start + off + n));
    return new Ctor(copy.buffer, 0, n / Ctor.BYTES_PER_ELEMENT);
  });
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map(walk);
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$ta === 'number') {
      const a = arrays[o.$ta];
      if (!a) throw badInput(`A shard payload refers to a missing array ${o.$ta}`);
      return a;
    }
    if (keys.length === 1 && typeof o.$num === 'string') return Number(o.$num);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = walk(o[k]);
    return out;
  };
  return walk(header.value) as T;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
