/**
 * The few ONNX protobuf messages the exporter writes (onnx/onnx.proto, IR version 8), encoded by hand:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto and the type and
 * shape messages. Protobuf's wire format is small (varints, length-delimited fields, little-endian
 * floats); writing it here avoids a protobufjs dependency and its install script. Field numbers are
 * the ones in onnx.proto; ONNX Runtime checks every model we write when it loads it.
 */

/** A growable byte buffer with protobuf's primitive writers. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      this.buf[this.len++] = byte;
    } while (x !== 0n);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  tag(field: number, wire: 0 | 2 | 5): void {
    this.varint((field << 3) | wire);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

/** One message under construction: fields appended in any order (protobuf allows it). */
export class Message {
  private readonly w = new Writer();

  int(field: number, v: number | bigint): this {
    this.w.tag(field, 0);
    this.w.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.w.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.w.bytes(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.w.tag(field, 2);
    this.w.varint(b.length);
    this.w.bytes(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  message(field: number, m: Message): this {
    return this.bytes(field, m.finish());
  }

  /** A packed repeated int64 field. */
  packedInts(field: number, values: readonly number[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** onnx.proto TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7, BOOL: 9 } as const;

/** onnx.proto AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** An integer (INT), a string, integers (INTS), { float } (FLOAT) or { floats } (FLOATS). */
export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] };

/** AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20. */
export function attribute(name: string, value: AttributeValue): Message {
  const m = new Message().string(1, name);
  if (typeof value === 'string') return m.bytes(4, utf8.encode(value)).int(20, AttributeType.STRING);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer (write { float: ${value} })`);
    return m.int(3, value).int(20, AttributeType.INT);
  }
  if ('float' in value) return m.float(2, value.float).int(20, AttributeType.FLOAT);
  if (Array.isArray(value)) {
    for (const v of value) m.int(8, v);
    return m.int(20, AttributeType.INTS);
  }
  for (const v of value.floats) m.float(7, v);
  return m.int(20, AttributeType.FLOATS);
}

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5. */
export function node(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttributeValue> = {}): Message {
  const m = new Message();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, name).string(4, opType);
  for (const [k, v] of Object.entries(attrs)) m.message(5, attribute(k, v));
  return m;
}

/** TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian, as ONNX requires). */
export function tensor(name: string, dims: readonly number[], data: Float32Array | BigInt64Array | Uint8Array): Message {
  const m = new Message();
  for (const d of dims) m.int(1, d);
  m.int(2, data instanceof Float32Array ? DataType.FLOAT : data instanceof Uint8Array ? DataType.UINT8 : DataType.INT64);
  m.string(8, name);
  return m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/**
 * ValueInfoProto (name 1, type 2) of a tensor (float unless elemType says otherwise): TypeProto.tensor_type
 * 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1 | dim_param 2. A string dimension is symbolic (the batch).
 */
export function valueInfo(name: string, dims: readonly (number | string)[], elemType: number = DataType.FLOAT): Message {
  const shape = new Message();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  const tensorType = new Message().int(1, elemType).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** GraphProto: node 1, name 2, initializer 5, input 11, output 12. */
export function graph(name: string, nodes: Message[], initializers: Message[], inputs: Message[], outputs: Message[]): Message {
  const g = new Message();
  for (const n of nodes) g.message(1, n);
  g.string(2, name);
  for (const t of initializers) g.message(5, t);
  for (const i of inputs) g.message(11, i);
  for (const o of outputs) g.message(12, o);
  return g;
}

/** ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8 (domain 1, version 2). */
export function model(g: Message, opset: number, producer: string): Uint8Array {
  return new Message()
    .int(1, 8)
    .string(2, producer)
    .string(3, '1')
    .message(7, g)
    .message(8, new Message().string(1, '').int(2, opset))
    .finish();
}
