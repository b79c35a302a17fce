/**
 * The listing behind SessionStore.list: what each session folder's manifest says (enough to summarise
 * and filter it), cached by the manifest's inode, size and mtime. Atomic writes replace the file (a
 * new inode), so any change is seen; only changed manifests are re-read. The cache is persisted as
 * <root>/.index.json, so that a new process (the app starting, a CLI call) stats each manifest instead
 * of reading and validating all of them. Only entries whose key still matches are used; a missing or
 * damaged index is ignored and rewritten. A folder that cannot be read is listed as 'damaged' with the
 * reason and never stops the others from loading.
 */
import { Dirent, promises as fsp, readFile as readFileCb } from 'node:fs';
import * as path from 'node:path';
import { mapLimit, writeFileAtomic } from '../core/fs-atomic';
import { dateFromId, isSessionId } from './ids';
import { cleanStaleImports } from './archive';
import { MANIFEST_FILE, readManifest } from './manifest-io';
import type { ListedStatus, SessionManifest, SummaryMetrics } from './schema';

/** The persisted list cache; a dot file, so never taken for a session. */
export const INDEX_FILE = '.index.json';
const INDEX_VERSION = 1;

/** One row of SessionStore.list (what sessions.list returns per session). */
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

/** What listing keeps of one folder: enough to summarise and filter it, nothing more. */
export interface Parsed {
  /** Summary fields that do not depend on liveness; `status` is the stored one. */
  base: SessionSummary;
  createdMs: number;
  /** For the model filter. */
  models: { id?: string; path?: string; arch?: string }[];
  /** For the liveness check of a stored 'running'. */
  liveness?: Pick<SessionManifest, 'status' | 'process' | 'updated'>;
  damaged: boolean;
}

export interface ListedEntry {
  summary: SessionSummary;
  parsed: Parsed;
}

/** The parsed manifests of one store root, cached in memory and in <root>/.index.json. */
export class ListIndex {
  /** Folder name -> what its manifest said, keyed by the manifest's inode, size and mtime. */
  private readonly cache = new Map<string, { key: string; parsed: Parsed }>();
  private loaded = false;
  private dirty = false;

  constructor(private readonly root: string) {}

  /**
   * What every session folder says (in parallel, from the cache where the manifest is unchanged).
   * Folders gone since the last scan are forgotten; the index file is rewritten when anything changed.
   */
  async scan(): Promise<Parsed[]> {
    const names = await this.sessionFolders();
    if (!this.loaded) await this.load();
    const parsed = await mapLimit(names, 32, (name) => this.parse(name));
    const present = new Set(names);
    for (const name of this.cache.keys()) {
      if (!present.has(name)) {
        this.cache.delete(name);
        this.dirty = true;
      }
    }
    if (this.dirty) await this.save();
    return parsed;
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
  private async parse(name: string): Promise<Parsed> {
    const dir = path.join(this.root, name);
    const label = `${name}/${MANIFEST_FILE}`;
    if (!isSessionId(name)) return this.damaged(name, dir, `${name}: folder name is not a valid session id (letters, digits, ".", "_" and "-" only)`, false);
    let key = '';
    try {
      const st = await fsp.stat(path.join(dir, MANIFEST_FILE));
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      const hit = this.cache.get(name);
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
      this.cache.set(name, { key, parsed });
      if (!parsed.damaged) this.dirty = true;
    }
    return parsed;
  }

  /** Takes the entries of <root>/.index.json whose key still matches; a missing or damaged index is ignored. */
  private async load(): Promise<void> {
    this.loaded = true;
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
      if (!this.cache.has(name)) this.cache.set(name, { key: e.key, parsed: p });
    }
  }

  private async save(): Promise<void> {
    this.dirty = false;
    const entries: Record<string, { key: string; parsed: Parsed }> = {};
    for (const [name, e] of this.cache) if (!e.parsed.damaged) entries[name] = e;
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
