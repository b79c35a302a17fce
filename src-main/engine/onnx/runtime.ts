/**
 * ONNX Runtime sessions for the exported graphs, run synchronously.
 *
 * onnxruntime-node's public `InferenceSession.run` is the native binding's synchronous `run` deferred
 * by a setImmediate and wrapped in a Promise: the computation blocks the calling thread either way.
 * We call the binding directly, so a Classifier's `logits` and `vjp` stay synchronous like tfjs's (and
 * work inside tf.tidy and tf.customGrad). Only model loading is asynchronous. The package is pinned
 * (package.json) because `onnxruntime-node/dist/binding` is not its documented entry point; the unit
 * tests load it, so an upgrade that moves it fails there, not in a job.
 *
 * Only the CPU execution provider is used. It ships inside the npm package (bin/napi-v6/<platform>/
 * <arch>); the package's postinstall, which downloads CUDA binaries, is not approved in package.json's
 * allowScripts and is not needed.
 *
 * Threads: ONNX Runtime runs each session on its own intra-op pool of `intraOpNumThreads` native
 * threads (default: every core, os.availableParallelism(); ADVLAB_ORT_THREADS overrides), inside the job's
 * worker thread; they sleep rather than spin between parallel sections (defaultSpinning). A job on
 * ONNX therefore does not use the wasm worker pool: it would compete with ORT's own threads for the
 * same cores. Sessions are released with `dispose` (the job disposes its classifier when it ends).
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

const requireCjs = createRequire(import.meta.url);

/** The element types the exported graphs pass: float32, bool (masks, one byte each), int64 and uint8 (indices). */
export type OrtData = Float32Array | Uint8Array | BigInt64Array;
export type OrtType = 'float32' | 'bool' | 'int64' | 'uint8';

interface OrtTensor {
  readonly data: OrtData;
  readonly dims: readonly number[];
}
interface OrtTensorCtor {
  new (type: OrtType, data: OrtData, dims: readonly number[]): OrtTensor;
}
interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: Record<string, unknown>): Promise<void> | void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, OrtTensor>;
  dispose(): void;
}
interface OrtModules {
  Tensor: OrtTensorCtor;
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
  version: string;
}

let modules: OrtModules | null = null;
let loadError: Error | null = null;

/** The onnxruntime-node modules, loaded once; throws (with the cause) when the native library cannot load. */
export function ort(): OrtModules {
  if (modules) return modules;
  if (loadError) throw loadError;
  try {
    const common = requireCjs('onnxruntime-common') as { Tensor: OrtTensorCtor };
    const b = requireCjs('onnxruntime-node/dist/binding') as { binding: OrtModules['binding']; initOrt(): void };
    const version = (requireCjs('onnxruntime-node/package.json') as { version: string }).version;
    modules = { Tensor: common.Tensor, binding: b.binding, initOrt: b.initOrt, version };
    return modules;
  } catch (e) {
    loadError = new Error(`onnxruntime-node could not be loaded: ${(e as Error).message}`);
    throw loadError;
  }
}

/** Whether ONNX Runtime loads here, and its version or the reason it does not. */
export function ortStatus(): { available: true; version: string } | { available: false; reason: string } {
  try {
    return { available: true, version: ort().version };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}

/**
 * Default intra-op threads: every core, or ADVLAB_ORT_THREADS (on a machine shared with other work,
 * fewer threads than cores can be faster: ORT's threads spin while they wait for each other).
 */
export function defaultThreads(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.ADVLAB_ORT_THREADS);
  return Number.isInteger(n) && n >= 1 ? n : availableParallelism();
}

/**
 * Whether ONNX Runtime's pool threads spin (busy-wait for the next parallel section) instead of sleeping.
 * Off unless ADVLAB_ORT_SPINNING=1 (ONNX Runtime's own default is on). On a machine whose cores are shared
 * (the wasm pool, other jobs, other programs) a spinning thread burns the time slices the others need: one
 * cw-mnist training step at batch 128 on 2 threads took 267 ms of CPU time spinning and 216 ms not (1
 * thread: 164 ms), and 667 vs 513 ms wall, under load 16 on 2 cores (BENCHMARKS.md). With one thread
 * there is no pool and nothing spins.
 */
export function defaultSpinning(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.ADVLAB_ORT_SPINNING === '1';
}

/** One loaded graph on the CPU provider. */
export class OrtSession {
  private native: NativeSession | null;

  private constructor(native: NativeSession, readonly threads: number) {
    this.native = native;
  }

  static async create(bytes: Uint8Array, threads = defaultThreads(), spinning = defaultSpinning()): Promise<OrtSession> {
    const m = ort();
    m.initOrt();
    const native = new m.binding.InferenceSession();
    // The binding reads the bytes in place: give it a buffer of its own.
    const copy = bytes.slice();
    await native.loadModel(copy.buffer, copy.byteOffset, copy.byteLength, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // onnxruntime-node flattens `extra` into session config entries: session.intra_op.allow_spinning and
      // session.inter_op.allow_spinning (onnxruntime_session_options_config_keys.h), values '0' or '1'.
      extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' }, inter_op: { allow_spinning: spinning ? '1' : '0' } } },
    });
    return new OrtSession(native, threads);
  }

  /** Runs the graph on float32 inputs; returns the requested (float32) outputs' data. */
  run(feeds: Record<string, { data: Float32Array; dims: readonly number[] }>, outputs: string[]): Record<string, Float32Array> {
    const r = this.runTyped(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { type: 'float32' as const, ...v }])), outputs);
    return Object.fromEntries(outputs.map((o) => [o, r[o].data as Float32Array]));
  }

  /** Runs the graph on inputs of any exported type; returns the requested outputs with their dims. */
  runTyped(feeds: Record<string, { type: OrtType; data: OrtData; dims: readonly number[] }>, outputs: string[]): Record<string, { data: OrtData; dims: readonly number[] }> {
    if (!this.native) throw new Error('ONNX Runtime session used after dispose');
    const { Tensor } = ort();
    const f: Record<string, OrtTensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new Tensor(v.type, v.data, v.dims);
    const fetches: Record<string, null> = {};
    for (const o of outputs) fetches[o] = null;
    const r = this.native.run(f, fetches, {});
    const out: Record<string, { data: OrtData; dims: readonly number[] }> = {};
    for (const o of outputs) out[o] = { data: r[o].data, dims: r[o].dims };
    return out;
  }

  dispose(): void {
    this.native?.dispose();
    this.native = null;
  }
}
