/**
 * The experiment store: one folder per session under a root.
 *
 *   <root>/<id>/manifest.json          schema-versioned, validated on read (schema.ts)
 *   <root>/<id>/metrics/<series>.jsonl append-only rows
 *   <root>/<id>/artifacts/...          PNG, WAV, model/model.json + weights, CSV/JSON tables
 *   <root>/<id>/notes.md               optional, free text
 *   <root>/.trash/<id>/                deleted sessions (restorable until purged)
 *
 * Listing reads only manifests (list-index.ts, filtered by list-filter.ts). A folder that cannot be read
 * is listed as 'damaged' with the reason and never stops the others from loading; a manifest left
 * 'running' by a dead process is listed as 'incomplete' without being rewritten. Deleting moves a
 * session into the trash (trash.ts).
 */
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdvlabError, badFile, badInput } from '../errors';
import { exportSessionArchive, importSessionArchive, type ExportResult, type ImportOptions, type ImportResult } from './archive';
import { isTempFile, mapLimit, walkFiles, writeFileAtomic } from '../core/fs-atomic';
import { assertSessionId, newSessionId } from './ids';
import { compileFilter, type SessionFilter } from './list-filter';
import { ListIndex, type ListedEntry, type SessionSummary } from './list-index';
import { commitManifest, listedStatus, loadManifest, MANIFEST_FILE, processIdentity, readManifest, updateManifest, withLock } from './manifest-io';
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
} from './schema';
import { isInTrash, listTrash, moveToTrash, purgeTrash, restoreFromTrash, type TrashEntry } from './trash';
import { checkSessionTags, normalizeTags, SessionWriter, toJsonObject } from './writer';

export const NOTES_FILE = 'notes.md';
/** `<session>/.sealed.json`: the artifacts sealed (SessionStore.seal) and the process that sealed them. */
export const SEAL_FILE = '.sealed.json';

/** The seal file's content, or null when there is none (or it cannot be read as one: an unreadable seal seals nothing it cannot name). */
async function readSealFile(dir: string): Promise<{ artifacts: string[] } | null> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, SEAL_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const raw = JSON.parse(text) as { artifacts?: unknown };
    return { artifacts: Array.isArray(raw.artifacts) ? raw.artifacts.filter((a): a is string => typeof a === 'string') : [] };
  } catch {
    return null;
  }
}

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

export class SessionStore {
  readonly root: string;
  private readonly now: () => Date;
  private readonly heartbeatMs: number;
  private readonly foreignStaleMs: number;
  /** The listing's parsed manifests, cached in memory and in <root>/.index.json (list-index.ts). */
  private readonly index: ListIndex;

  constructor(
    root: string,
    private readonly options: SessionStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.now = options.now ?? (() => new Date());
    this.heartbeatMs = options.heartbeatMs ?? 30_000;
    this.foreignStaleMs = options.foreignStaleMs ?? 6 * 3600_000;
    this.index = new ListIndex(this.root);
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
    const tags = checkSessionTags(normalizeTags(opts.tags ?? []));
    await fsp.mkdir(this.root, { recursive: true });
    let id = '';
    let dir = '';
    for (let attempt = 0; ; attempt++) {
      if (attempt > 50) throw new AdvlabError('INTERNAL', `Could not find a free session id in ${this.root}`);
      id = newSessionId(opts.kind, created);
      dir = path.join(this.root, id);
      if (await isInTrash(this.root, id)) continue; // the id is in the trash: pick another
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
      tags,
      status: 'running',
      created: iso,
      updated: iso,
      process: processIdentity(),
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
    const pidCache = new Map<string, boolean>();
    const liveness = { now: this.now().getTime(), foreignStaleMs: this.foreignStaleMs, pidCache };
    const parsed = await this.index.scan();
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
   * Keeps an artifact from being read (readArtifact, artifactFile, and so the file server, session
   * views and reports) or exported (exportArchive) until `unseal`: e.g. the answer key while a
   * listening test runs. The seal is a file in the session folder (SEAL_FILE: the sealed paths and
   * the sealing process), so every process and every store instance on the folder sees it: the CLI's
   * `sessions export` as much as the app that opened the test. It holds while that process lives
   * (the session's own liveness rule, listedStatus: pid and start time); a test whose process died
   * is no longer sealed, and the file stays on disk with its key.
   */
  async seal(id: string, relPath: string): Promise<void> {
    const rel = safeRelativePath(relPath, 'artifact path');
    const dir = await this.existingDir(id);
    await withLock(path.join(dir, SEAL_FILE), async () => {
      const current = await readSealFile(dir);
      const artifacts = [...new Set([...(current?.artifacts ?? []), rel])];
      await writeFileAtomic(path.join(dir, SEAL_FILE), `${JSON.stringify({ artifacts, process: processIdentity() })}\n`);
    });
  }

  /** Lifts every seal of a session (removes its SEAL_FILE). */
  async unseal(id: string): Promise<void> {
    const dir = this.dir(id);
    await withLock(path.join(dir, SEAL_FILE), () => fsp.rm(path.join(dir, SEAL_FILE), { force: true }));
  }

  /** The artifacts of a session sealed now (by a live process), as paths relative to artifacts/. */
  async sealedArtifacts(id: string): Promise<string[]> {
    const dir = this.dir(id);
    const seal = await readSealFile(dir);
    if (!seal?.artifacts.length) return [];
    // The seal holds while the session's writer lives (its status 'running'); a damaged manifest keeps it.
    const read = await readManifest(dir, path.join(dir, MANIFEST_FILE));
    if (read.ok && listedStatus(read.manifest, { now: this.now().getTime(), foreignStaleMs: this.foreignStaleMs }) !== 'running') return [];
    return seal.artifacts;
  }

  async isSealed(id: string, relPath: string): Promise<boolean> {
    return (await this.sealedArtifacts(id)).includes(relPath);
  }

  /** Absolute path of an existing, unsealed artifact (the path is checked to stay inside artifacts/). */
  async artifactFile(id: string, relPath: string): Promise<string> {
    const dir = await this.existingDir(id);
    const rel = safeRelativePath(relPath, 'artifact path');
    if (await this.isSealed(id, rel)) throw new AdvlabError('CONFLICT', `artifacts/${rel} of session ${id} is sealed until its test ends`, { id, path: rel });
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

  /**
   * Adds and removes tags (case-sensitive, trimmed, no duplicates); returns the new tag list. The
   * result is refused (BAD_INPUT, nothing written) over MAX_SESSION_TAGS tags or MAX_SESSION_TAG_BYTES bytes.
   */
  async tag(id: string, add: string[] = [], remove: string[] = []): Promise<string[]> {
    const toAdd = normalizeTags(add);
    const toRemove = new Set(normalizeTags(remove));
    const m = await this.update(id, (m) => ({ ...m, tags: checkSessionTags(normalizeTags([...m.tags, ...toAdd]).filter((t) => !toRemove.has(t)), `Session ${id}`) }));
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
    await moveToTrash(this.root, id, dir, this.now);
    this.options.onChange?.(id);
  }

  /** Brings a deleted session back from the trash. */
  async restore(id: string): Promise<void> {
    await restoreFromTrash(this.root, id);
    this.options.onChange?.(id);
  }

  /** Sessions in the trash, most recently deleted first. */
  listTrash(): Promise<TrashEntry[]> {
    return listTrash(this.root);
  }

  /** Permanently removes trashed sessions deleted at least `olderThanMs` ago; returns their ids. */
  purgeTrash(olderThanMs: number): Promise<string[]> {
    return purgeTrash(this.root, olderThanMs, this.now);
  }

  /**
   * Writes the session folder (under its id) into one zip file. Refused (CONFLICT) while an artifact
   * is sealed (an open listening test's key, whichever process opened it): an archive would carry it out.
   */
  async exportArchive(id: string, file: string): Promise<ExportResult> {
    const dir = await this.existingDir(id);
    const m = await loadManifest(dir);
    this.assertIdMatches(m, id, dir);
    await this.assertNothingSealed(id);
    return exportSessionArchive(dir, id, file);
  }

  /** CONFLICT, naming the sealed artifacts, while any artifact of the session is sealed. */
  async assertNothingSealed(id: string): Promise<void> {
    const sealed = await this.sealedArtifacts(id);
    if (sealed.length) {
      throw new AdvlabError('CONFLICT', `Session ${id} holds ${sealed.map((a) => `artifacts/${a}`).join(', ')}, sealed until its test ends (a listening test in progress): export it after the test is finished`, { id });
    }
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
    const inTrash = await isInTrash(this.root, id);
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
}
