/**
 * The fuzzing suite's shared harness (issue 14): a seeded PRNG (the engine's mulberry32), byte and
 * JSON mutators, a per-input runner that classifies each input as accepted, refused (an AdvlabError
 * whose message names the file or problem) or a failure (any other throw, a message that names
 * nothing, an input over its time limit, memory growth over its bound), a count line per target,
 * and the folder checks (a listing of a temp parent, a hash of a session folder).
 *
 * ADVLAB_FUZZ_SEED overrides the seed (default: a fixed one, so CI is reproducible; the seed is
 * printed). ADVLAB_FUZZ_N scales every target's input count (1 = the default count).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { mulberry32 } from '../../src-main/engine/core/random';
import { AdvlabError } from '../../src-main/engine/errors';

export const DEFAULT_SEED = 20261204;
export const SEED = process.env.ADVLAB_FUZZ_SEED ? Number(process.env.ADVLAB_FUZZ_SEED) >>> 0 : DEFAULT_SEED;
const SCALE = process.env.ADVLAB_FUZZ_N ? Math.max(0.01, Number(process.env.ADVLAB_FUZZ_N)) : 1;
/** A target's input count, scaled by ADVLAB_FUZZ_N. */
export const count = (n: number) => Math.max(1, Math.round(n * SCALE));

/** Resident memory an input may add over the target's baseline before it counts as a failure. */
export const MAX_RSS_GROWTH = 768 * 1024 * 1024;

export class Rng {
  readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** A target's own PRNG: the suite seed mixed with the target's name, so targets do not share a stream. */
export function rngFor(target: string): Rng {
  let h = SEED ^ 0x9e3779b9;
  for (const c of target) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return new Rng(h >>> 0);
}

const INTERESTING_U32 = [0, 1, 2, 7, 8, 16, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One random byte-level mutation of `src` (a copy). `fields` are offsets worth hitting (header fields). */
export function mutateBytes(rng: Rng, src: Buffer, fields: number[] = []): Buffer {
  const b = Buffer.from(src);
  const at = () => (fields.length && rng.chance(0.6) ? rng.pick(fields) : rng.int(Math.max(1, b.length)));
  switch (rng.int(8)) {
    case 0: { // flip bits
      const n = 1 + rng.int(8);
      for (let i = 0; i < n && b.length; i++) b[at() % b.length] ^= 1 << rng.int(8);
      return b;
    }
    case 1: { // an interesting byte
      if (b.length) b[at() % b.length] = rng.pick([0, 1, 0x7f, 0x80, 0xfe, 0xff]);
      return b;
    }
    case 2: { // an interesting 32-bit value, LE or BE
      const p = at();
      if (p + 4 > b.length) return b;
      const v = rng.pick(INTERESTING_U32);
      if (rng.chance(0.5)) b.writeUInt32LE(v >>> 0, p);
      else b.writeUInt32BE(v >>> 0, p);
      return b;
    }
    case 3: { // an interesting 16-bit value
      const p = at();
      if (p + 2 > b.length) return b;
      b.writeUInt16LE(rng.pick([0, 1, 2, 3, 0xfffe, 0xffff, 0x8000, 0x7fff, 64, 24]), p);
      return b;
    }
    case 4: // truncate
      return b.subarray(0, rng.int(b.length + 1));
    case 5: { // cut a range out
      const s = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, s), b.subarray(Math.min(b.length, s + 1 + rng.int(64)))]);
    }
    case 6: { // insert random bytes
      const s = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, s), rng.bytes(1 + rng.int(32)), b.subarray(s)]);
    }
    default: { // duplicate a range (repeated chunks)
      const s = rng.int(b.length + 1);
      const piece = b.subarray(s, s + 1 + rng.int(128));
      return Buffer.concat([b.subarray(0, s), piece, piece, b.subarray(s)]);
    }
  }
}

/** Several mutations in a row. */
export function mutateBytesN(rng: Rng, src: Buffer, fields: number[] = []): Buffer {
  let b = src;
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) b = mutateBytes(rng, b, fields);
  return b;
}

const WEIRD_STRINGS = ['', '..', '../..', '../../etc/passwd', '/etc/passwd', 'C:\\Windows', 'a/../../b', '%2e%2e/x', '\u0000', 'x\u0000y', '\ud800', 'ñ', '<script>alert(1)</script>', 'a'.repeat(5000), 'file:///etc/passwd', 'http://evil.example/', '__proto__', 'constructor', ' ', '\n'];
const WEIRD_NUMBERS = [0, -1, 1, 0.5, -0.5, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 1e9, 1e-300, 7, 255, 65536];

/** A random JSON-ish value (nested at most `depth` levels). */
export function randomValue(rng: Rng, depth = 2): unknown {
  switch (rng.int(depth > 0 ? 8 : 6)) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.pick(WEIRD_NUMBERS);
    case 3: return rng.pick(WEIRD_STRINGS);
    case 4: return rng.bytes(1 + rng.int(12)).toString('latin1');
    case 5: return rng.int(1000) - 500;
    case 6: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth - 1));
    default: return Object.fromEntries(Array.from({ length: rng.int(3) }, () => [rng.pick(['x', 'id', 'path', 'name', '__proto__', 'kind']), randomValue(rng, depth - 1)]));
  }
}

/** Every path (array of keys) to a value inside `v`. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

/** One structural mutation of a JSON value (a deep copy): replace, delete, add a key, scale a number, tweak a string. */
export function mutateJson(rng: Rng, src: unknown): unknown {
  const root = { v: structuredClone(src) } as Record<string, unknown>;
  const all = paths(root.v).map((p) => ['v', ...p]);
  const p = rng.pick(all);
  let parent: any = root;
  for (const k of p.slice(0, -1)) parent = parent[k];
  const key = p[p.length - 1];
  const cur = parent[key];
  switch (rng.int(6)) {
    case 0:
      parent[key] = randomValue(rng);
      break;
    case 1:
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else if (key !== 'v') delete parent[key];
      break;
    case 2:
      if (cur && typeof cur === 'object' && !Array.isArray(cur)) (cur as Record<string, unknown>)[rng.pick(['extra', 'x', 'id', 'path', '__proto__'])] = randomValue(rng);
      else if (Array.isArray(cur)) cur.push(randomValue(rng));
      else parent[key] = randomValue(rng);
      break;
    case 3:
      if (typeof cur === 'number') parent[key] = rng.pick([cur * 1000, cur * 1e6, -cur, cur + 1, cur - 1, cur + 0.5, 2 ** 31, 0, NaN]);
      else parent[key] = rng.pick(WEIRD_NUMBERS);
      break;
    case 4:
      if (typeof cur === 'string') parent[key] = rng.pick([cur + rng.pick(WEIRD_STRINGS), rng.pick(WEIRD_STRINGS) + cur, cur.slice(0, rng.int(cur.length + 1)), cur.repeat(1 + rng.int(50)), `../${cur}`]);
      else parent[key] = rng.pick(WEIRD_STRINGS);
      break;
    default:
      if (Array.isArray(cur) && cur.length) cur.push(...cur.slice(0, 1 + rng.int(cur.length)));
      else parent[key] = Array.isArray(cur) ? [] : [cur];
  }
  return root.v;
}

export interface Outcome {
  tried: number;
  accepted: number;
  refused: number;
  failures: string[];
  worstMs: number;
  peakRssGrowth: number;
}

/**
 * Runs one fuzz target: `n` inputs from `make(i)`, each passed to `run`. `run` resolves when the
 * input was accepted, or throws: an AdvlabError is a refusal, and `check(err)` (when given) must
 * return null or say what is wrong with it (e.g. the message names no file). Anything else, an
 * input slower than `maxMs` or resident memory over the baseline by MAX_RSS_GROWTH is a failure.
 */
export async function fuzz<T>(target: string, n: number, opts: {
  make: (rng: Rng, i: number) => T;
  run: (input: T, i: number) => Promise<void> | void;
  check?: (err: AdvlabError, input: T) => string | null;
  describe?: (input: T) => string;
  maxMs: number;
}): Promise<Outcome> {
  const rng = rngFor(target);
  const out: Outcome = { tried: 0, accepted: 0, refused: 0, failures: [], worstMs: 0, peakRssGrowth: 0 };
  const base = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const input = opts.make(rng, i);
    const label = () => `#${i} ${opts.describe ? opts.describe(input) : ''}`.trim();
    const start = performance.now();
    let problem: string | null = null;
    try {
      await opts.run(input, i);
      out.accepted++;
    } catch (e) {
      if (e instanceof AdvlabError) {
        out.refused++;
        problem = opts.check?.(e, input) ?? null;
      } else {
        problem = `threw ${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 300)}`;
      }
    }
    out.tried++;
    const ms = performance.now() - start;
    out.worstMs = Math.max(out.worstMs, ms);
    if (ms > opts.maxMs) problem = `${problem ? `${problem}; ` : ''}took ${ms.toFixed(0)} ms (limit ${opts.maxMs} ms)`;
    const growth = process.memoryUsage().rss - base;
    out.peakRssGrowth = Math.max(out.peakRssGrowth, growth);
    if (growth > MAX_RSS_GROWTH) problem = `${problem ? `${problem}; ` : ''}resident memory grew by ${(growth / 2 ** 20).toFixed(0)} MB`;
    if (problem) out.failures.push(`${label()}: ${problem}`);
  }
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`[fuzz ${target}] seed=${SEED} tried=${out.tried} accepted=${out.accepted} refused=${out.refused} failures=${out.failures.length} worst=${out.worstMs.toFixed(0)}ms rss+${(out.peakRssGrowth / 2 ** 20).toFixed(0)}MB time=${s}s`);
  for (const f of out.failures.slice(0, 20)) console.log(`[fuzz ${target}] FAIL ${f}`);
  return out;
}

/** Every entry under `dir` (recursive, not following symlinks) as "rel type size", sorted; `skip` names top-level entries left out. */
export function listing(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      if (!rel && skip.includes(name)) continue;
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(a);
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(a, r);
      } else out.push(`${r} ${st.isSymbolicLink() ? 'link' : 'file'} ${st.size}`);
    }
  };
  walk(dir, '');
  return out;
}

/** sha256 over every file's relative path and bytes under `dir`. */
export function hashTree(dir: string): string {
  const h = createHash('sha256');
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      const a = path.join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(a);
      if (st.isDirectory()) walk(a, r);
      else h.update(`${r}\0`).update(readFileSync(a)).update('\0');
    }
  };
  walk(dir, '');
  return h.digest('hex');
}
