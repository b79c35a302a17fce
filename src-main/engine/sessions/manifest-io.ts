/**
 * Reading and writing manifest.json. Every manifest write in the store goes through `commitManifest`
 * (validate, then write atomically); every change to an existing one goes through `updateManifest`
 * (read the file, apply the change, commit), serialised per folder within this process so that a
 * rename from the UI and a heartbeat from the job never lose each other's change.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdvlabError } from '../errors';
import { writeFileAtomic } from '../core/fs-atomic';
import { jsonDepth, jsonSyntaxProblem, MAX_JSON_DEPTH } from '../core/json-depth';
import { checkManifest, type ListedStatus, type ManifestProblem, type SessionManifest } from './schema';

export const MANIFEST_FILE = 'manifest.json';

export type ManifestRead = { ok: true; manifest: SessionManifest } | { ok: false; problem: ManifestProblem; missing?: boolean };

/**
 * Reads and validates `<dir>/manifest.json`; never throws for content problems. `label` names the file
 * in messages (e.g. "<id>/manifest.json").
 */
export async function readManifest(
  dir: string,
  label: string,
  readText: (file: string) => Promise<string> = (file) => fsp.readFile(file, 'utf8'),
): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readText(path.join(dir, MANIFEST_FILE));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, missing: true, problem: { reason: `${label}: missing (no manifest in this session folder)`, unsupported: false } };
    return { ok: false, problem: { reason: `${label}: cannot be read (${(e as Error).message})`, unsupported: false } };
  }
  return parseManifestText(text, label);
}

export function parseManifestText(text: string, label: string): ManifestRead {
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) return { ok: false, problem: { reason: `${label}: nested deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`, unsupported: false } };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const what = text.trim() === '' ? 'empty file' : `not valid JSON (${jsonSyntaxProblem(e)})`;
    return { ok: false, problem: { reason: `${label}: ${what}`, unsupported: false } };
  }
  return checkManifest(raw, label);
}

/** Like readManifest but throws: BAD_FILE for a damaged manifest, UNSUPPORTED for a newer schema. */
export async function loadManifest(dir: string): Promise<SessionManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  const read = await readManifest(dir, file);
  if (read.ok) return read.manifest;
  if (read.problem.unsupported) throw new AdvlabError('UNSUPPORTED', read.problem.reason, { file });
  throw new AdvlabError('BAD_FILE', read.problem.reason, { file });
}

/** Validates and writes a whole manifest atomically. The one place a manifest reaches the disk. */
export async function commitManifest(dir: string, manifest: SessionManifest): Promise<SessionManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  const check = checkManifest(manifest, file);
  if (!check.ok) throw new AdvlabError('INTERNAL', `Refusing to write an invalid manifest: ${check.problem.reason}`, { file });
  await writeFileAtomic(file, `${JSON.stringify(check.manifest, null, 2)}\n`);
  return check.manifest;
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier task queued for the same key has settled. */
export function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(key, tail);
  void tail.then(() => {
    if (locks.get(key) === tail) locks.delete(key);
  });
  return run;
}

/**
 * Read-modify-write of a manifest: `mutate` gets a copy of the current manifest and returns the new one;
 * `updated` is set to `now`. Refuses (BAD_FILE / UNSUPPORTED) to touch a damaged or newer manifest.
 */
export function updateManifest(dir: string, mutate: (m: SessionManifest) => SessionManifest, now: Date = new Date()): Promise<SessionManifest> {
  return withLock(path.resolve(dir), async () => {
    const current = await loadManifest(dir);
    const next = mutate(structuredClone(current));
    next.updated = now.toISOString();
    return commitManifest(dir, next);
  });
}

/** Whether a process with this pid exists on this machine (EPERM: it exists but is not ours). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When a process started, as an opaque token that differs between two processes that had the same
 * pid: on Linux field 22 of /proc/<pid>/stat (clock ticks after boot, with the boot time so that it
 * stays unique across reboots). Undefined where there is no /proc (macOS, Windows) or the process is
 * gone; liveness then falls back to the pid and the heartbeat (listedStatus).
 */
export function processStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux' || !Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may hold spaces or ')': the fields after it follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[22 - 3];
    if (!ticks || !/^\d+$/.test(ticks)) return undefined;
    return `${bootId() ?? 'boot'}:${ticks}`;
  } catch {
    return undefined;
  }
}

let boot: string | null | undefined;
function bootId(): string | null {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      boot = null;
    }
  }
  return boot;
}

/** What a session's manifest records of the process writing it (store.create): pid, host and, where known, start time. */
export function processIdentity(): { pid: number; hostname: string; startTime?: string } {
  const startTime = processStartTime(process.pid);
  return { pid: process.pid, hostname: os.hostname(), ...(startTime ? { startTime } : {}) };
}

/**
 * Whether the process a manifest recorded is still the one writing it: its pid is alive and, when the
 * manifest has a start time and this platform can read one, the live process started at that time
 * (a pid reused by another process after a crash is not the writer).
 */
export function isWriterAlive(proc: { pid: number; startTime?: string }): boolean {
  if (!isPidAlive(proc.pid)) return false;
  if (proc.startTime === undefined) return true;
  const now = processStartTime(proc.pid);
  return now === undefined || now === proc.startTime;
}

/** Without a start time to compare (macOS, Windows, old manifests), a live pid whose heartbeat is older than this is not the writer. */
export const PID_ONLY_STALE_MS = 24 * 3600_000;

export interface LivenessOptions {
  /** For sessions written on another host (or without a pid): a heartbeat older than this means the writer is gone. */
  foreignStaleMs: number;
  now: number;
  /** writer (pid + start time) -> alive, shared across one listing. */
  pidCache?: Map<string, boolean>;
}

/**
 * The status a listing shows. A manifest saying 'running' is 'incomplete' when its writer is gone:
 * on this host, when the recorded pid is not alive, or is alive but started at another time than
 * the recorded one (the pid was reused), or, where no start time can be compared, when its
 * heartbeat (`updated`) is older than PID_ONLY_STALE_MS; on another host, when the heartbeat is
 * older than `foreignStaleMs`. The manifest itself is never rewritten here.
 */
export function listedStatus(m: Pick<SessionManifest, 'status' | 'process' | 'updated'>, opts: LivenessOptions): ListedStatus {
  if (m.status !== 'running') return m.status;
  const proc = m.process;
  const beat = Date.parse(m.updated);
  const fresh = (ms: number) => Number.isFinite(beat) && opts.now - beat <= ms;
  if (proc && proc.hostname === os.hostname()) {
    const key = `${proc.pid}/${proc.startTime ?? ''}`;
    let alive = opts.pidCache?.get(key);
    if (alive === undefined) {
      alive = isWriterAlive(proc);
      opts.pidCache?.set(key, alive);
    }
    if (!alive) return 'incomplete';
    const compared = proc.startTime !== undefined && processStartTime(proc.pid) !== undefined;
    return compared || proc.pid === process.pid || fresh(PID_ONLY_STALE_MS) ? 'running' : 'incomplete';
  }
  return fresh(opts.foreignStaleMs) ? 'running' : 'incomplete';
}
