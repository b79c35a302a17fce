/** The cluster's wire format: typed arrays byte for byte (views into larger buffers too), non-finite numbers kept, anything else refused. */
import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload, sha256Hex } from '../../../src-main/jobs/cluster/codec';

describe('cluster codec', () => {
  it('round-trips JSON, typed arrays (views included) and non-finite numbers', () => {
    const big = new Float32Array(100).map((_, i) => i / 7);
    const value = {
      a: 1, s: 'x', n: null, t: true, nan: NaN, inf: -Infinity, list: [1, { deep: new Int32Array([3, -4, 5]) }],
      view: big.subarray(3, 11), u8: new Uint8Array([1, 2, 255]), f64: new Float64Array([Math.PI, NaN]),
      nested: { targets: null, empty: new Float32Array(0) },
    };
    const back = decodePayload<typeof value>(encodePayload(value));
    expect(back.view).toBeInstanceOf(Float32Array);
    expect(Array.from(back.view)).toEqual(Array.from(big.subarray(3, 11)));
    expect(back.list[1]).toEqual({ deep: new Int32Array([3, -4, 5]) });
    expect(back.nan).toBeNaN();
    expect(back.inf).toBe(-Infinity);
    expect(Array.from(back.u8)).toEqual([1, 2, 255]);
    expect(back.f64[0]).toBe(Math.PI);
    expect(back.f64[1]).toBeNaN();
    expect(back.nested.empty).toBeInstanceOf(Float32Array);
    expect(back.nested.empty.length).toBe(0);
    expect(back).toMatchObject({ a: 1, s: 'x', n: null, t: true, nested: { targets: null } });
  });

  it('decodes from a Node Buffer inside a larger pool (as the NATS client hands them out) without reading outside it', () => {
    const value = { adversarial: new Float32Array([0.25, 0.5, 0.75]), iterations: new Int32Array([7, 8, 9]) };
    const bytes = encodePayload(value);
    const pool = Buffer.alloc(bytes.length + 64, 0x7f);
    pool.set(bytes, 32);
    const back = decodePayload<typeof value>(pool.subarray(32, 32 + bytes.length));
    expect(Array.from(back.adversarial)).toEqual([0.25, 0.5, 0.75]);
    expect(Array.from(back.iterations)).toEqual([7, 8, 9]);
  });

  it('is deterministic (same value, same bytes and sha256) and refuses what cannot travel', () => {
    const v = { x: new Float32Array([1, 2, 3]), y: [1, 2] };
    expect(sha256Hex(encodePayload(v))).toBe(sha256Hex(encodePayload({ x: new Float32Array([1, 2, 3]), y: [1, 2] })));
    expect(() => encodePayload({ f: () => 1 })).toThrow(/function at \$\.f/);
    expect(() => encodePayload({ d: new Date() })).toThrow(/Date/);
    expect(() => encodePayload({ b: new DataView(new ArrayBuffer(4)) })).toThrow(/DataView/);
    expect(() => decodePayload(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/bad magic/);
    const bytes = encodePayload(v);
    expect(() => decodePayload(bytes.subarray(0, bytes.length - 8))).toThrow(/truncated/);
  });
});
