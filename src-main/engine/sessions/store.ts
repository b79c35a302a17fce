/**
 * The experiment store: one folder per session under a root.
 *
 *   <root>/<id>/manifest.json          schema-versioned, validated on read (schema.ts)
 *   <root>/<id>/metrics/<series>.jsonl append-only rows
 *   <root>/<id>/artifacts/...          PNG, WAV, model/model.json + weights, CSV/JSON tables
 *   <root>/<id>/notes.md               optional, free text
 *   <root>/.trash/<id>/                deleted sessions (restorable until purged)
 *
 * Listing reads only manifests. A folder that cannot be read is listed as 'damaged' with the reason and
 * never stops the others from loading; a manifest left 'running' by a dead process is listed as
 * 'incomplete' without being rewritten.
 */
import { constants as fsConstants, Dirent, promises as fsp, readFile as readFileCb } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdvlabError, badFile, badInput } from '../errors';
import { cleanStaleImports, exportSessionArchive, importSessionArchive, type ExportResult, type ImportOptions, type ImportResult } from './archive';
import { isTempFile, mapLimit, walkFiles, writeFileAtomic } from './fs-atomic';
import { assertSessionId, dateFromId, isSessionId, newSessionId } from './ids';
import { commitManifest, listedStatus, loadManifest, MANIFEST_FILE, readManifest, updateManifest } from './manifest-io';
import { parseMetricLines, type MetricSeries } from './metrics';
import { firstSymlink, inferArtifactKind, safeRelativePath } from './paths';
import {
  SERIES_PATTERN,
  SESSION_SCHEMA_VERSION,
  type ArtifactKind,
  type DatasetRef,
  type ListedStatus,
  type ModelRef,
  type SessionEnvironment,
  type SessionKind,
  type SessionManifest,
  type SummaryMetrics,
} from './schema';
import { normalizeTags, SessionWriter, toJsonObject } from './writer';

export const TRASH_DIR = '.trash';
/** The persisted list cache (see SessionStore.loadIndex); a dot file, so never taken for a session. */
export const INDEX_FILE = '.index.json';
const INDEX_VERSION = 1;
export const NOTES_FILE = 'notes.md';

export interface SessionStoreOptions {
  /** Called after any change to a session (create, write, rename, tag, notes, delete, restore, import). */
  onChange?: (id: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
  /** How often appendMetric refreshes the manifest's `updated` heartbeat (default 30 s). */
  heartbeatMs?: number;
  /**
   * A 'running' session from another host (or without a recorded pid) is listed as incomplete when its
   * heartbeat is older than this (default 6 h). Sessions from this host are judged by their pid.
   */
  foreignStaleMs?: number;
}

export interface CreateSessionOptions {
  kind: SessionKind;
  /** Default: "<kind> <UTC date time>". */
  name?: string;
  params: Record<string, unknown>;
  datasets?: DatasetRef[];
  models?: ModelRef[];
  tags?: string[];
  environment: SessionEnvironment;
}

export interface SessionFilter {
  /** Exact kind. */
  kind?: string;
  /** Case-insensitive substring of a model reference's id, path or arch. */
  model?: string;
  /** Dataset name, case-insensitive. */
  dataset?: string;
  /** A tag, case-insensitive. */
  tag?: string;
  /** A listed status, including 'incomplete' and 'damaged'. */
  status?: string;
  /** Created at or after this ISO time. */
  since?: string;
  /** Created at or before this ISO time; a bare date (YYYY-MM-DD) includes that whole UTC day. */
  until?: string;
  /** Case-insensitive substring of id, name, kind, status, tags, dataset and model names. */
  text?: string;
}

export interface SessionSummary {
  id: string;
  /** 'unknown' when the manifest could not be read. */
  kind: string;
  name: string;
  status: ListedStatus;
  created: string;
  updated: string;
  finished?: string;
  tags: string[];
  summary: SummaryMetrics;
  datasets: string[];
  /** Model ids (or paths when there is no id). */
  models: string[];
  /** Why the session is listed as damaged: the file and the problem. */
  damaged?: string;
  /** Damaged only because it was written with a newer schema version. */
  unsupported?: boolean;
}

export interface ArtifactInfo {
  path: string;
  kind: ArtifactKind;
  description?: string;
  /** Size on disk, or null when a listed file is missing. */
  bytes: number | null;
  sha256?: string;
  /** Listed in the manifest (false: found on disk only, e.g. written by another tool). */
  listed: boolean;
}

export interface SessionDetails {
  id: string;
  dir: string;
  status: ListedStatus;
  manifest: SessionManifest;
  /** Names of metrics/<series>.jsonl files. */
  series: string[];
  artifacts: ArtifactInfo[];
  notes: string | null;
}

export interface TrashEntry {
  id: string;
  deletedAt: string;
}

/** What listing keeps of one folder: enough to summarise and filter it, nothing more. */
interface Parsed {
  /** Summary fields that do not depend on liveness; `status` is the stored one. */
  base: SessionSummary;
  createdMs: number;
  /** For the model filter. */
  models: { id?: string; path?: string; arch?: string }[];
  /** For the liveness check of a stored 'running'. */
  liveness?: Pick<SessionManifest, 'status' | 'process' | 'updated'>;
  damaged: boolean;
}

interface ListedEntry {
  summary: SessionSummary;
  parsed: Parsed;
}

export class SessionStore {
  readonly root: string;
  private readonly now: () => Date;
  private readonly heartbeatMs: number;
  private readonly foreignStaleMs: number;
  /**
   * Folder name -> what its manifest said, keyed by the manifest's inode, size and mtime. Atomic
   * writes replace the file (a new inode), so any change is seen; only changed manifests are re-read.
   */
  private readonly listCache = new Map<string, { key: string; parsed: Parsed }>();
  /**
   * The list cache persisted as <root>/.index.json, so that a new process (the app starting, a CLI
   * call) stats each manifest instead of reading and validating all of them. Only entries whose key
   * still matches are used; a missing or damaged index is ignored and rewritten.
   */
  private indexLoaded = false;
  private indexDirty = false;
  /** Artifacts that exist but must not be read through this store yet (the key of an open listening test). */
  private readonly sealed = new Map<string, Set<string>>();

  constructor(
    root: string,
    private readonly options: SessionStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.now = options.now ?? (() => new Date());
    this.heartbeatMs = options.heartbeatMs ?? 30_000;
    this.foreignStaleMs = options.foreignStaleMs ?? 6 * 3600_000;
  }

  /** The folder of a session (whether or not it exists). */
  dir(id: string): string {
    assertSessionId(id);
    return path.join(this.root, id);
  }

  /** Starts a session: creates its folder and a 'running' manifest recording this process. */
  async create(opts: CreateSessionOptions): Promise<SessionWriter> {
    if (typeof opts.kind !== 'string' || !opts.kind.trim() || opts.kind.length > 40) throw badInput('A session kind is a non-empty string of at most 40 characters');
    const created = this.now();
    const params = toJsonObject(opts.params ?? {}, 'params');
    const name = (opts.name ?? '').trim() || `${opts.kind} ${created.toISOString().slice(0, 19).replace('T', ' ')}`;
    if (name.length > 200) throw badInput('A session name has at most 200 characters');
    await fsp.mkdir(this.root, { recursive: true });
    let id = '';
    let dir = '';
    for (let attempt = 0; ; attempt++) {
      if (attempt > 50) throw new AdvlabError('INTERNAL', `Could not find a free session id in ${this.root}`);
      id = newSessionId(opts.kind, created);
      dir = path.join(this.root, id);
      try {
        await fsp.access(path.join(this.root, TRASH_DIR, id));
        continue; // the id is in the trash: pick another
      } catch {
        // free
      }
      try {
        await fsp.mkdir(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    await fsp.mkdir(path.join(dir, 'metrics'));
    await fsp.mkdir(path.join(dir, 'artifacts'));
    const iso = created.toISOString();
    const manifest: SessionManifest = {
      schemaVersion: SESSION_SCHEMA_VERSION,
      id,
      kind: opts.kind.trim(),
      name,
      tags: normalizeTags(opts.tags ?? []),
      status: 'running',
      created: iso,
      updated: iso,
      process: { pid: process.pid, hostname: os.hostname() },
      params,
      datasets: opts.datasets ?? [],
      models: opts.models ?? [],
      summary: {},
      environment: opts.environment,
      artifacts: [],
    };
    let written: SessionManifest;
    try {
      written = await commitManifest(dir, manifest);
    } catch (e) {
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
      if (e instanceof AdvlabError && e.code === 'INTERNAL') throw badInput(e.message.replace('Refusing to write an invalid manifest: ', 'Invalid session: '));
      throw e;
    }
    this.options.onChange?.(id);
    return new SessionWriter(id, dir, written, { now: this.now, heartbeatMs: this.heartbeatMs, onChange: this.options.onChange });
  }

  /**
   * Summaries of every session folder, newest first, filtered. Reads only manifests (in parallel); a
   * damaged folder becomes a 'damaged' entry and never stops the others.
   */
  async list(filter: SessionFilter = {}): Promise<SessionSummary[]> {
    const match = compileFilter(filter);
    const names = await this.sessionFolders();
    const pidCache = new Map<number, boolean>();
    const liveness = { now: this.now().getTime(), foreignStaleMs: this.foreignStaleMs, pidCache };
    if (!this.indexLoaded) await this.loadIndex();
    const parsed = await mapLimit(names, 32, (name) => this.parseFolder(name));
    const present = new Set(names);
    for (const name of this.listCache.keys()) {
      if (!present.has(name)) {
        this.listCache.delete(name);
        this.indexDirty = true;
      }
    }
    if (this.indexDirty) await this.saveIndex();
    const entries: ListedEntry[] = parsed.map((p) => ({
      parsed: p,
      summary: p.liveness ? { ...p.base, status: listedStatus(p.liveness, liveness) } : { ...p.base },
    }));
    return entries
      .filter(match)
      .sort((a, b) => b.parsed.createdMs - a.parsed.createdMs || (a.summary.id < b.summary.id ? 1 : a.summary.id > b.summary.id ? -1 : 0))
      .map((e) => e.summary);
  }

  /** One session in full: manifest, metric series names, artifacts (listed and found on disk), notes. */
  async show(id: string): Promise<SessionDetails> {
    const dir = await this.existingDir(id);
    const manifest = await loadManifest(dir);
    this.assertIdMatches(manifest, id, dir);
    const status = listedStatus(manifest, { now: this.now().getTime(), foreignStaleMs: this.foreignStaleMs });
    let series: string[] = [];
    try {
      series = (await fsp.readdir(path.join(dir, 'metrics')))
        .filter((f) => f.endsWith('.jsonl') && !isTempFile(f))
        .map((f) => f.slice(0, -'.jsonl'.length))
        .sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const onDisk = await walkFiles(path.join(dir, 'artifacts'), { skipTemp: true });
    const sizes = new Map<string, number>();
    await mapLimit(onDisk, 16, async (rel) => {
      const st = await fsp.stat(path.join(dir, 'artifacts', ...rel.split('/')));
      sizes.set(rel, st.size);
    });
    const artifacts: ArtifactInfo[] = manifest.artifacts.map((a) => ({
      path: a.path,
      kind: a.kind,
      ...(a.description !== undefined ? { description: a.description } : {}),
      bytes: sizes.get(a.path) ?? null,
      ...(a.sha256 ? { sha256: a.sha256 } : {}),
      listed: true,
    }));
    const listed = new Set(manifest.artifacts.map((a) => a.path));
    for (const rel of onDisk) {
      if (!listed.has(rel)) artifacts.push({ path: rel, kind: inferArtifactKind(rel), bytes: sizes.get(rel) ?? 0, listed: false });
    }
    return { id, dir, status, manifest, series, artifacts, notes: await this.readNotes(dir) };
  }

  /** The manifest alone (throws BAD_FILE / UNSUPPORTED for a damaged one). */
  async manifest(id: string): Promise<SessionManifest> {
    const dir = await this.existingDir(id);
    const m = await loadManifest(dir);
    this.assertIdMatches(m, id, dir);
    return m;
  }

  /** Rows of metrics/<series>.jsonl; a torn last line is skipped and reported in `skipped`/`torn`. */
  async readMetrics(id: string, series: string): Promise<MetricSeries> {
    if (!SERIES_PATTERN.test(series)) throw badInput(`Invalid metric series name ${JSON.stringify(series)}`);
    const dir = await this.existingDir(id);
    const file = path.join(dir, 'metrics', `${series}.jsonl`);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AdvlabError('NOT_FOUND', `Session ${id} has no metric series "${series}" (${file})`, { id, series });
      throw e;
    }
    return parseMetricLines(series, text);
  }

  /**
   * Keeps an artifact from being read through this store (readArtifact, artifactFile, and so the file
   * server, session views and reports) until `unseal`: e.g. the answer key while a listening test runs.
   * The file stays on disk, so an interrupted test keeps its key.
   */
  seal(id: string, relPath: string): void {
    const rel = safeRelativePath(relPath, 'artifact path');
    (this.sealed.get(id) ?? this.sealed.set(id, new Set()).get(id)!).add(rel);
  }

  unseal(id: string): void {
    this.sealed.delete(id);
  }

  isSealed(id: string, relPath: string): boolean {
    return this.sealed.get(id)?.has(relPath) ?? false;
  }

  /** Absolute path of an existing, unsealed artifact (the path is checked to stay inside artifacts/). */
  async artifactFile(id: string, relPath: string): Promise<string> {
    const dir = await this.existingDir(id);
    const rel = safeRelativePath(relPath, 'artifact path');
    if (this.isSealed(id, rel)) throw new AdvlabError('CONFLICT', `artifacts/${rel} of session ${id} is sealed until its test ends`, { id, path: rel });
    const abs = path.join(dir, 'artifacts', ...rel.split('/'));
    const link = await firstSymlink(dir, `artifacts/${rel}`);
    if (link) throw new AdvlabError('NOT_FOUND', `Session ${id}: ${link} is a symbolic link, and links inside a session folder are never followed`, { id, path: rel });
    try {
      const st = await fsp.stat(abs);
      if (!st.isFile()) throw new Error('not a file');
    } catch {
      throw new AdvlabError('NOT_FOUND', `Session ${id} has no artifact "${rel}"`, { id, path: rel });
    }
    return abs;
  }

  /** The bytes of an artifact. */
  async readArtifact(id: string, relPath: string): Promise<Buffer> {
    // O_NOFOLLOW: a link swapped in after the check is still not followed.
    return fsp.readFile(await this.artifactFile(id, relPath), { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW });
  }

  /** Sets the user-facing title. */
  async rename(id: string, name: string): Promise<SessionManifest> {
    const clean = typeof name === 'string' ? name.trim() : '';
    if (!clean || clean.length > 200) throw badInput('A session name is 1 to 200 characters');
    return this.update(id, (m) => ({ ...m, name: clean }));
  }

  /** Adds and removes tags (case-sensitive, trimmed, no duplicates); returns the new tag list. */
  async tag(id: string, add: string[] = [], remove: string[] = []): Promise<string[]> {
    const toAdd = normalizeTags(add);
    const toRemove = new Set(normalizeTags(remove));
    const m = await this.update(id, (m) => ({ ...m, tags: normalizeTags([...m.tags, ...toAdd]).filter((t) => !toRemove.has(t)) }));
    return m.tags;
  }

  /** Writes notes.md (atomically); empty text removes it. */
  async setNotes(id: string, text: string): Promise<void> {
    if (typeof text !== 'string') throw badInput('Notes must be text');
    const dir = await this.existingDir(id);
    const file = path.join(dir, NOTES_FILE);
    if (text.trim() === '') await fsp.rm(file, { force: true });
    else await writeFileAtomic(file, text);
    this.options.onChange?.(id);
  }

  /** notes.md, or null. */
  async notes(id: string): Promise<string | null> {
    return this.readNotes(await this.existingDir(id));
  }

  /**
   * Moves a session into <root>/.trash/<id>. A session that is still running (its writer alive) is
   * refused with CONFLICT: cancel the job first. Damaged sessions can be deleted.
   */
  async delete(id: string): Promise<void> {
    const dir = await this.existingDir(id);
    const read = await readManifest(dir, path.join(dir, MANIFEST_FILE));
    if (read.ok && listedStatus(read.manifest, { now: this.now().getTime(), foreignStaleMs: this.foreignStaleMs }) === 'running') {
      throw new AdvlabError('CONFLICT', `Session ${id} is still running; cancel its job before deleting it`, { id });
    }
    const trash = path.join(this.root, TRASH_DIR);
    await fsp.mkdir(trash, { recursive: true });
    const target = path.join(trash, id);
    if (await exists(target)) throw new AdvlabError('CONFLICT', `The trash already holds a session ${id} (${target}); purge or restore it first`, { id });
    await fsp.rename(dir, target);
    // The folder's mtime records when it was deleted (purgeTrash goes by it).
    const t = this.now();
    await fsp.utimes(target, t, t).catch(() => {});
    this.options.onChange?.(id);
  }

  /** Brings a deleted session back from the trash. */
  async restore(id: string): Promise<void> {
    assertSessionId(id);
    const from = path.join(this.root, TRASH_DIR, id);
    if (!(await exists(from))) throw new AdvlabError('NOT_FOUND', `Session ${id} is not in the trash (${path.join(this.root, TRASH_DIR)})`, { id });
    const to = path.join(this.root, id);
    if (await exists(to)) throw new AdvlabError('CONFLICT', `A session ${id} already exists in ${this.root}`, { id });
    await fsp.rename(from, to);
    this.options.onChange?.(id);
  }

  /** Sessions in the trash, most recently deleted first. */
  async listTrash(): Promise<TrashEntry[]> {
    const trash = path.join(this.root, TRASH_DIR);
    let ents: Dirent[];
    try {
      ents = await fsp.readdir(trash, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: { id: string; ms: number }[] = [];
    for (const e of ents) {
      if (!e.isDirectory() || !isSessionId(e.name)) continue;
      const st = await fsp.stat(path.join(trash, e.name));
      out.push({ id: e.name, ms: st.mtimeMs });
    }
    return out.sort((a, b) => b.ms - a.ms).map((e) => ({ id: e.id, deletedAt: new Date(e.ms).toISOString() }));
  }

  /** Permanently removes trashed sessions deleted at least `olderThanMs` ago; returns their ids. */
  async purgeTrash(olderThanMs: number): Promise<string[]> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw badInput('purgeTrash: olderThanMs must be a number >= 0');
    const cutoff = this.now().getTime() - olderThanMs;
    const removed: string[] = [];
    for (const e of await this.listTrash()) {
      if (Date.parse(e.deletedAt) <= cutoff) {
        await fsp.rm(path.join(this.root, TRASH_DIR, e.id), { recursive: true, force: true });
        removed.push(e.id);
      }
    }
    return removed;
  }

  /** Writes the session folder (under its id) into one zip file. */
  async exportArchive(id: string, file: string): Promise<ExportResult> {
    const dir = await this.existingDir(id);
    const m = await loadManifest(dir);
    this.assertIdMatches(m, id, dir);
    return exportSessionArchive(dir, id, file);
  }

  /**
   * Adds the session in a zip written by exportArchive. Refuses archives without a valid manifest, of
   * a newer schema, or with paths leaving the session folder; an id already present (or in the trash)
   * gets a new suffix. Never overwrites anything.
   */
  async importArchive(file: string, opts: ImportOptions = {}): Promise<ImportResult> {
    await fsp.mkdir(this.root, { recursive: true });
    const result = await importSessionArchive(this.root, file, opts);
    this.options.onChange?.(result.id);
    return result;
  }

  // -- internals --

  private update(id: string, mutate: (m: SessionManifest) => SessionManifest): Promise<SessionManifest> {
    return this.existingDir(id).then(async (dir) => {
      const m = await updateManifest(dir, mutate, this.now());
      this.options.onChange?.(id);
      return m;
    });
  }

  private async existingDir(id: string): Promise<string> {
    const dir = this.dir(id);
    try {
      const st = await fsp.stat(dir);
      if (st.isDirectory()) return dir;
    } catch {
      // fall through
    }
    const inTrash = await exists(path.join(this.root, TRASH_DIR, id));
    throw new AdvlabError('NOT_FOUND', inTrash ? `Session ${id} is in the trash; restore it first` : `No session ${id} in ${this.root}`, { id });
  }

  private assertIdMatches(m: SessionManifest, id: string, dir: string): void {
    if (m.id !== id) throw badFile(path.join(dir, MANIFEST_FILE), `manifest id "${m.id}" does not match the folder name "${id}"`);
  }

  private async readNotes(dir: string): Promise<string | null> {
    try {
      return await fsp.readFile(path.join(dir, NOTES_FILE), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Folder names directly under the root, skipping dot-folders (.trash, import staging). */
  private async sessionFolders(): Promise<string[]> {
    let ents: Dirent[];
    try {
      ents = await fsp.readdir(this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: string[] = [];
    for (const e of ents) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) out.push(e.name);
      else if (e.isSymbolicLink()) {
        const st = await fsp.stat(path.join(this.root, e.name)).catch(() => null);
        if (st?.isDirectory()) out.push(e.name);
      }
    }
    return out;
  }

  /** Reads (or takes from the cache) what one folder's manifest says. Never throws for content problems. */
  private async parseFolder(name: string): Promise<Parsed> {
    const dir = path.join(this.root, name);
    const label = `${name}/${MANIFEST_FILE}`;
    if (!isSessionId(name)) return this.damaged(name, dir, `${name}: folder name is not a valid session id (letters, digits, ".", "_" and "-" only)`, false);
    let key = '';
    try {
      const st = await fsp.stat(path.join(dir, MANIFEST_FILE));
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      const hit = this.listCache.get(name);
      if (hit && hit.key === key) return hit.parsed;
    } catch {
      // missing or unreadable: readManifest says which
    }
    const read = await readManifest(dir, label, readFileFast);
    let parsed: Parsed;
    if (!read.ok) parsed = await this.damaged(name, dir, read.problem.reason, read.problem.unsupported);
    else if (read.manifest.id !== name) parsed = await this.damaged(name, dir, `${label}: manifest id "${read.manifest.id}" does not match the folder name "${name}"`, false);
    else {
      const m = read.manifest;
      parsed = {
        base: {
          id: m.id,
          kind: m.kind,
          name: m.name,
          status: m.status,
          created: m.created,
          updated: m.updated,
          ...(m.finished ? { finished: m.finished } : {}),
          tags: m.tags,
          summary: m.summary,
          datasets: m.datasets.map((d) => d.name),
          models: m.models.map((r) => r.id ?? r.path ?? ''),
        },
        createdMs: Date.parse(m.created),
        models: m.models.map((r) => ({ id: r.id, path: r.path, arch: r.arch })),
        liveness: { status: m.status, process: m.process, updated: m.updated },
        damaged: false,
      };
    }
    // Summaries share these arrays and objects across listings: freeze them so no caller can alter the cache.
    Object.freeze(parsed.base.tags);
    Object.freeze(parsed.base.summary);
    Object.freeze(parsed.base.datasets);
    Object.freeze(parsed.base.models);
    if (key) {
      this.listCache.set(name, { key, parsed });
      if (!parsed.damaged) this.indexDirty = true;
    }
    return parsed;
  }

  private async loadIndex(): Promise<void> {
    this.indexLoaded = true;
    await cleanStaleImports(this.root); // the store's first listing: remove what a killed import left
    let doc: unknown;
    try {
      doc = JSON.parse(await fsp.readFile(path.join(this.root, INDEX_FILE), 'utf8'));
    } catch {
      return; // none yet, or unreadable: it is rebuilt from the manifests
    }
    const entries = (doc as { version?: unknown; entries?: unknown })?.entries;
    if ((doc as { version?: unknown }).version !== INDEX_VERSION || !entries || typeof entries !== 'object') return;
    for (const [name, e] of Object.entries(entries as Record<string, { key?: unknown; parsed?: Parsed }>)) {
      const p = e?.parsed;
      if (typeof e?.key !== 'string' || !p || typeof p !== 'object' || p.damaged !== false || p.base?.id !== name || !Array.isArray(p.base.tags)) continue;
      for (const o of [p.base.tags, p.base.summary, p.base.datasets, p.base.models]) Object.freeze(o);
      if (!this.listCache.has(name)) this.listCache.set(name, { key: e.key, parsed: p });
    }
  }

  private async saveIndex(): Promise<void> {
    this.indexDirty = false;
    const entries: Record<string, { key: string; parsed: Parsed }> = {};
    for (const [name, e] of this.listCache) if (!e.parsed.damaged) entries[name] = e;
    try {
      await fsp.access(this.root);
      await writeFileAtomic(path.join(this.root, INDEX_FILE), JSON.stringify({ version: INDEX_VERSION, entries }));
    } catch {
      // a read-only or vanished store still lists; the index is only a speed-up
    }
  }

  private async damaged(name: string, dir: string, reason: string, unsupported: boolean): Promise<Parsed> {
    let created = dateFromId(name);
    if (!created) {
      const st = await fsp.stat(dir).catch(() => null);
      created = st ? new Date(st.mtimeMs) : new Date(0);
    }
    const iso = created.toISOString();
    return {
      createdMs: created.getTime(),
      models: [],
      damaged: true,
      base: {
        id: name,
        kind: 'unknown',
        name,
        status: 'damaged',
        created: iso,
        updated: iso,
        tags: [],
        summary: {},
        datasets: [],
        models: [],
        damaged: reason,
        ...(unsupported ? { unsupported: true } : {}),
      },
    };
  }
}

/** fs.readFile's callback form: in Node 20 it is markedly faster than fs.promises.readFile for small files. */
const readFileFast = (file: string): Promise<string> =>
  new Promise((resolve, reject) => readFileCb(file, 'utf8', (err, data) => (err ? reject(err) : resolve(data))));

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

function parseTime(value: string, field: 'since' | 'until'): number {
  const bareDate = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const t = Date.parse(bareDate ? `${value}T00:00:00Z` : value);
  if (!Number.isFinite(t)) throw badInput(`Filter ${field}: "${value}" is not an ISO date or time`);
  return field === 'until' && bareDate ? t + 86_400_000 - 1 : t;
}

function compileFilter(f: SessionFilter): (e: ListedEntry) => boolean {
  const since = f.since ? parseTime(f.since, 'since') : -Infinity;
  const until = f.until ? parseTime(f.until, 'until') : Infinity;
  const lower = (s: string | undefined): string | undefined => (s && s.trim() ? s.trim().toLowerCase() : undefined);
  const kind = f.kind?.trim() || undefined;
  const status = f.status?.trim() || undefined;
  const tag = lower(f.tag);
  const dataset = lower(f.dataset);
  const model = lower(f.model);
  const text = lower(f.text);
  return (e) => {
    const s = e.summary;
    if (e.parsed.createdMs < since || e.parsed.createdMs > until) return false;
    if (status && s.status !== status) return false;
    if (e.parsed.damaged) {
      // Damaged: its kind, tags, datasets and models are unknown, so those filters cannot match.
      if (kind || tag || dataset || model) return false;
      return !text || s.id.toLowerCase().includes(text) || (s.damaged ?? '').toLowerCase().includes(text);
    }
    const models = e.parsed.models;
    if (kind && s.kind !== kind) return false;
    if (tag && !s.tags.some((t) => t.toLowerCase() === tag)) return false;
    if (dataset && !s.datasets.some((d) => d.toLowerCase() === dataset)) return false;
    if (model && !models.some((r) => [r.id, r.path, r.arch].some((v) => v !== undefined && v.toLowerCase().includes(model)))) return false;
    if (text) {
      const hay = [s.id, s.name, s.kind, s.status, ...s.tags, ...s.datasets, ...s.models, ...models.map((r) => r.arch ?? '')].join('\n').toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  };
}
