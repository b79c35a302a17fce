/**
 * Picks the tensor backend once per process: tfjs-node when it is installed and loads, else wasm
 * (with the Conv2D gradient it lacks), else the pure JS cpu backend. `--backend` / ADVLAB_BACKEND
 * override the choice; an override that cannot be honoured is an error, never a silent fallback.
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmConvGradients } from './conv-grad';
import { badInput } from './errors';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  /** What was asked for: 'auto' or a backend name. */
  requested: BackendName | 'auto';
  tfjsVersion: string;
  /** Why backends earlier in the order were skipped. */
  skipped: { name: BackendName; reason: string }[];
  wasm?: { simd: boolean; threads: boolean; threadsCount: number };
  /** True when our Conv2D gradient replaced tfjs's (wasm only). */
  conv2dGradient: 'tfjs' | 'forward-conv';
}

/** Accepts 'node' and 'tfjs-node' as names for tfjs-node's 'tensorflow' backend. */
export function parseBackendName(value: string | undefined): BackendName | 'auto' {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  const v = value.toLowerCase();
  if (v === 'node' || v === 'tfjs-node') return 'tensorflow';
  if ((BACKENDS as readonly string[]).includes(v)) return v as BackendName;
  throw badInput(`Unknown backend "${value}": choose one of auto, ${BACKENDS.join(', ')} (or node)`);
}

let chosen: Promise<BackendInfo> | null = null;

async function tryTensorflow(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-node');
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return `@tensorflow/tfjs-node did not load (${msg}); run "npm run native" on a machine with internet to install libtensorflow`;
  }
  return (await tf.setBackend('tensorflow')) ? null : 'tfjs-node loaded but its backend failed to initialise';
}

async function tryWasm(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return 'the wasm backend failed to initialise';
    registerWasmConvGradients();
    return null;
  } catch (e) {
    return `the wasm backend did not load (${(e as Error).message})`;
  }
}

async function tryCpu(): Promise<string | null> {
  return (await tf.setBackend('cpu')) ? null : 'the cpu backend failed to initialise';
}

const attempts: Record<BackendName, () => Promise<string | null>> = { tensorflow: tryTensorflow, wasm: tryWasm, cpu: tryCpu };

async function choose(requested: BackendName | 'auto'): Promise<BackendInfo> {
  const order: BackendName[] = requested === 'auto' ? [...BACKENDS] : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    const reason = await attempts[name]();
    if (reason === null) {
      await tf.ready();
      const info: BackendInfo = { name, requested, tfjsVersion: tf.version.tfjs, skipped, conv2dGradient: name === 'wasm' ? 'forward-conv' : 'tfjs' };
      if (name === 'wasm') {
        const env = tf.env();
        info.wasm = {
          simd: Boolean(await env.getAsync('WASM_HAS_SIMD_SUPPORT')),
          threads: Boolean(await env.getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
          threadsCount: threadsCount(),
        };
      }
      return info;
    }
    skipped.push({ name, reason });
  }
  const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new Error(requested === 'auto' ? `No tensor backend could start (${why})` : `Backend "${requested}" could not start: ${why}`);
}

function threadsCount(): number {
  try {
    // getThreadsCount exists on the wasm backend module from tfjs 4.x.
    const backend = tf.backend() as unknown as { wasm?: { _getThreadsCount?: () => number } };
    return backend.wasm?._getThreadsCount?.() ?? 1;
  } catch {
    return 1;
  }
}

/**
 * Initialises the backend once. Later calls return the first choice; asking for a different
 * backend after that is an error (a job never switches backends midway).
 */
export function initBackend(requested: string | undefined = process.env.ADVLAB_BACKEND): Promise<BackendInfo> {
  const want = parseBackendName(requested);
  if (chosen) {
    return chosen.then((info) => {
      if (want !== 'auto' && want !== info.name) throw new Error(`Backend already initialised as "${info.name}"; cannot switch to "${want}"`);
      return info;
    });
  }
  chosen = choose(want);
  chosen.catch(() => { chosen = null; });
  return chosen;
}

export { tf };
