/**
 * The handle a running job writes its session through. All writes of one writer run in order (a
 * queue), so un-awaited appends still land in call order. Once finish/cancel/fail has been called the
 * writer is closed and further writes fail with CONFLICT.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AdvlabError, badInput, serializeError } from '../errors';
import { MAX_SESSION_TAG_BYTES, MAX_SESSION_TAGS, MAX_TAG_CHARS } from '../limits';
import { writeFileAtomic } from '../core/fs-atomic';
import { updateManifest } from './manifest-io';
import { formatMetricRow } from './metrics';
import { inferArtifactKind, safeRelativePath } from './paths';
import {
  SERIES_PATTERN,
  type ArtifactEntry,
  type ArtifactKind,
  type DatasetRef,
  type ModelRef,
  type SessionEnvironment,
  type SessionManifest,
  type SummaryMetrics,
} from './schema';

/**
 * What `update` may change. `params` and `summary` are merged key by key into what is there; the other
 * fields replace the stored value. Status changes only through finish / cancel / fail.
 */
export interface SessionPatch {
  name?: string;
  tags?: string[];
  params?: Record<string, unknown>;
  datasets?: DatasetRef[];
  models?: ModelRef[];
  summary?: SummaryMetrics;
  environment?: SessionEnvironment;
}

export interface ArtifactWrite {
  /** Relative to the session's artifacts/ folder, '/' separated: 'adv/0001.png', 'model/model.json'. */
  path: string;
  data: Uint8Array | string;
  /** Inferred from the extension when omitted (files under model/ are 'model'). */
  kind?: ArtifactKind;
  description?: string;
}

export interface WriterHooks {
  now: () => Date;
  /** Rewrite the manifest's `updated` from appendMetric at most this often (ms). */
  heartbeatMs: number;
  onChange?: (id: string) => void;
}

/** Non-finite numbers become null (JSON has no NaN); undefined entries are dropped. */
export function cleanSummary(summary: Record<string, unknown> | undefined): SummaryMetrics {
  const out: SummaryMetrics = {};
  for (const [k, v] of Object.entries(summary ?? {})) {
    if (v === undefined) continue;
    if (typeof v === 'number') out[k] = Number.isFinite(v) ? v : null;
    else if (typeof v === 'string' || typeof v === 'boolean' || v === null) out[k] = v;
    else throw badInput(`Summary metric "${k}" must be a number, string, boolean or null; got ${typeof v}`);
  }
  return out;
}

/** A deep copy that is plain JSON (throws BAD_INPUT for cycles, BigInt, functions at top level). */
export function toJsonObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badInput(`${what} must be an object`);
  try {
    return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  } catch (e) {
    throw badInput(`${what} is not JSON-serialisable (${(e as Error).message})`);
  }
}

export function normalizeTags(tags: readonly string[]): string[] {
  // A Set, not out.includes: linear in the number of tags.
  const out = new Set<string>();
  for (const raw of tags) {
    if (typeof raw !== 'string') throw badInput('Tags must be strings');
    const t = raw.trim();
    if (!t) continue;
    if (t.length > MAX_TAG_CHARS) throw badInput(`Tag "${t.slice(0, 20)}..." is longer than ${MAX_TAG_CHARS} characters`);
    out.add(t);
  }
  return [...out];
}

/**
 * Refuses a session's whole tag list (after a change) over MAX_SESSION_TAGS tags or MAX_SESSION_TAG_BYTES
 * bytes of UTF-8 together, naming the bound: many calls of sessions.tag, each within MAX_TAGS, cannot
 * grow a manifest without end. Returns the list.
 */
export function checkSessionTags(tags: readonly string[], session = 'A session'): string[] {
  if (tags.length > MAX_SESSION_TAGS) throw badInput(`${session} would have ${tags.length} tags: at most ${MAX_SESSION_TAGS} per session (MAX_SESSION_TAGS); remove some first`, { tags: tags.length, limit: MAX_SESSION_TAGS });
  let bytes = 0;
  for (const t of tags) bytes += Buffer.byteLength(t, 'utf8');
  if (bytes > MAX_SESSION_TAG_BYTES) throw badInput(`${session}'s tags would total ${bytes} bytes: at most ${MAX_SESSION_TAG_BYTES} per session (MAX_SESSION_TAG_BYTES); remove some first`, { bytes, limit: MAX_SESSION_TAG_BYTES });
  return [...tags];
}

export class SessionWriter {
  private queue: Promise<unknown> = Promise.resolve();
  private closed: string | null = null;
  private lastManifestWrite: number;
  private current: SessionManifest;

  constructor(
    readonly id: string,
    readonly dir: string,
    initial: SessionManifest,
    private readonly hooks: WriterHooks,
  ) {
    this.current = initial;
    this.lastManifestWrite = hooks.now().getTime();
  }

  /** The manifest as last written by this writer. */
  get manifest(): SessionManifest {
    return structuredClone(this.current);
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  /** Changes manifest fields (see SessionPatch) and bumps `updated`. */
  async update(patch: SessionPatch): Promise<SessionManifest> {
    this.assertOpen();
    const clean = this.cleanPatch(patch);
    return this.enqueue(() => this.commit((m) => applyPatch(m, clean)));
  }

  /** Rewrites `updated` so that other hosts can see the job is alive. */
  async heartbeat(): Promise<SessionManifest> {
    this.assertOpen();
    return this.enqueue(() => this.commit((m) => m));
  }

  /**
   * Appends one row to metrics/<series>.jsonl (a single write of one line). Non-finite numbers are
   * stored as null.
   */
  async appendMetric(series: string, row: Record<string, unknown>): Promise<void> {
    this.assertOpen();
    if (!SERIES_PATTERN.test(series)) throw badInput(`Invalid metric series name ${JSON.stringify(series)}: use letters, digits, ".", "_" and "-"`);
    const line = formatMetricRow(row);
    return this.enqueue(async () => {
      await fsp.appendFile(path.join(this.dir, 'metrics', `${series}.jsonl`), line, 'utf8');
      if (this.hooks.now().getTime() - this.lastManifestWrite >= this.hooks.heartbeatMs) await this.commit((m) => m);
    });
  }

  /** Writes one artifact atomically and lists it in the manifest (replacing an entry with the same path). */
  async writeArtifact(relPath: string, data: Uint8Array | string, kind?: ArtifactKind, description?: string): Promise<ArtifactEntry> {
    return this.writeArtifacts([{ path: relPath, data, kind, description }]).then((e) => e[0]);
  }

  /** Writes several artifacts, then updates the manifest once. */
  async writeArtifacts(items: ArtifactWrite[]): Promise<ArtifactEntry[]> {
    this.assertOpen();
    const prepared = items.map((it) => {
      const rel = safeRelativePath(it.path, 'artifact path');
      if (typeof it.data !== 'string' && !(it.data instanceof Uint8Array)) throw badInput(`Artifact ${rel}: data must be bytes or a string`);
      return { ...it, path: rel };
    });
    return this.enqueue(async () => {
      const entries: ArtifactEntry[] = [];
      for (const it of prepared) {
        const abs = this.resolveArtifact(it.path);
        await fsp.mkdir(path.dirname(abs), { recursive: true });
        await writeFileAtomic(abs, it.data);
        const bytes = typeof it.data === 'string' ? Buffer.from(it.data, 'utf8') : it.data;
        entries.push(artifactEntry(it.path, bytes, it.kind, it.description));
      }
      await this.commit((m) => mergeArtifacts(m, entries));
      return entries;
    });
  }

  /**
   * Lists a file that something else wrote into artifactPath(relPath) (e.g. a tfjs model save),
   * recording its size and sha256.
   */
  async registerArtifact(relPath: string, kind?: ArtifactKind, description?: string): Promise<ArtifactEntry> {
    this.assertOpen();
    const rel = safeRelativePath(relPath, 'artifact path');
    return this.enqueue(async () => {
      const abs = this.resolveArtifact(rel);
      let bytes: Buffer;
      try {
        bytes = await fsp.readFile(abs);
      } catch (e) {
        throw new AdvlabError('NOT_FOUND', `${abs}: cannot register artifact (${(e as Error).message})`, { file: abs });
      }
      const entry = artifactEntry(rel, bytes, kind, description);
      await this.commit((m) => mergeArtifacts(m, [entry]));
      return entry;
    });
  }

  /** The absolute path of an artifact; creates its parent folder so a library can write there directly. */
  artifactPath(relPath: string): string {
    const abs = this.resolveArtifact(safeRelativePath(relPath, 'artifact path'));
    mkdirSync(path.dirname(abs), { recursive: true });
    return abs;
  }

  /** Marks the session finished and merges `summary` into the stored one. Closes the writer. */
  async finish(summary?: Record<string, unknown>): Promise<SessionManifest> {
    return this.close('finished', summary);
  }

  /** Marks the session cancelled, keeping everything written so far. Closes the writer. */
  async cancel(summary?: Record<string, unknown>): Promise<SessionManifest> {
    return this.close('cancelled', summary);
  }

  /** Marks the session failed with the error's code and message. Closes the writer. */
  async fail(error: unknown, summary?: Record<string, unknown>): Promise<SessionManifest> {
    const e =
      error && typeof error === 'object' && 'code' in error && 'message' in error && !(error instanceof Error)
        ? { code: String((error as { code: unknown }).code), message: String((error as { message: unknown }).message) }
        : (({ code, message }) => ({ code, message }))(serializeError(error));
    return this.close('failed', summary, { code: e.code.slice(0, 50), message: e.message.slice(0, 10_000) });
  }

  private async close(status: 'finished' | 'cancelled' | 'failed', summary: Record<string, unknown> | undefined, error?: { code: string; message: string }): Promise<SessionManifest> {
    this.assertOpen();
    const clean = cleanSummary(summary);
    this.closed = status;
    return this.enqueue(() =>
      this.commit((m) => {
        m.status = status;
        m.finished = this.hooks.now().toISOString();
        m.summary = { ...m.summary, ...clean };
        if (error) m.error = error;
        return m;
      }),
    );
  }

  private resolveArtifact(rel: string): string {
    return path.join(this.dir, 'artifacts', ...rel.split('/'));
  }

  private assertOpen(): void {
    if (this.closed) throw new AdvlabError('CONFLICT', `Session ${this.id} is already ${this.closed}; it cannot be written any more`, { id: this.id });
  }

  private cleanPatch(patch: SessionPatch): SessionPatch {
    const out: SessionPatch = { ...patch };
    if (patch.name !== undefined) {
      out.name = patch.name.trim();
      if (out.name.length > 200) throw badInput('A session name has at most 200 characters');
    }
    if (patch.tags) out.tags = checkSessionTags(normalizeTags(patch.tags), `Session ${this.id}`);
    if (patch.params) out.params = toJsonObject(patch.params, 'params');
    if (patch.summary) out.summary = cleanSummary(patch.summary);
    return out;
  }

  private async commit(mutate: (m: SessionManifest) => SessionManifest): Promise<SessionManifest> {
    const now = this.hooks.now();
    this.current = await updateManifest(this.dir, mutate, now);
    this.lastManifestWrite = now.getTime();
    this.hooks.onChange?.(this.id);
    return structuredClone(this.current);
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

function applyPatch(m: SessionManifest, p: SessionPatch): SessionManifest {
  if (p.name !== undefined) m.name = p.name;
  if (p.tags) m.tags = p.tags;
  if (p.params) m.params = { ...m.params, ...p.params };
  if (p.datasets) m.datasets = p.datasets;
  if (p.models) m.models = p.models;
  if (p.summary) m.summary = { ...m.summary, ...p.summary };
  if (p.environment) m.environment = p.environment;
  return m;
}

function artifactEntry(rel: string, bytes: Uint8Array, kind: ArtifactKind | undefined, description: string | undefined): ArtifactEntry {
  const entry: ArtifactEntry = {
    path: rel,
    kind: kind ?? inferArtifactKind(rel),
    bytes: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  if (description !== undefined) entry.description = description;
  return entry;
}

function mergeArtifacts(m: SessionManifest, entries: ArtifactEntry[]): SessionManifest {
  const byPath = new Map(m.artifacts.map((a) => [a.path, a]));
  for (const e of entries) byPath.set(e.path, e);
  m.artifacts = [...byPath.values()];
  return m;
}
