/**
 * The app's settings (Settings view, settings.get / settings.set): saved as JSON in the app data
 * folder (written atomically), read when the app starts. Today: the shard pool's size, and the
 * cluster jobs send their shards to (URL and credentials; the file is then readable by its owner
 * only, and settings.get never returns the secret). A --workers flag or ADVLAB_WORKERS (a --queue
 * flag) wins over the saved value for the run it was given to; otherwise a change applies at once
 * (the pool grows or shrinks, running shards finish first; jobs started from then on use the cluster).
 */
import { chmodSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { clusterAuthSchema, type AppSettings, type ClusterAuth, type ClusterReport, type SettingsReport } from '../api/contract';
import type { SettingsService } from '../api/job-service';
import { writeFileAtomic } from '../engine/core/fs-atomic';
import { MAX_POOL_WORKERS } from '../engine/limits';
import { defaultPoolSize } from '../jobs/pool';

const savedSchema = z.object({
  workers: z.number().int().min(1).max(MAX_POOL_WORKERS).nullable().catch(null).default(null),
  cluster: clusterAuthSchema.nullable().catch(null).default(null),
});
type Saved = z.infer<typeof savedSchema>;

/** The cluster setting: a --queue flag (wins for its run), how to apply a change, and how to check one before saving it. */
export interface ClusterSettingHooks {
  override: ClusterAuth | undefined;
  /** The saved cluster is reported but not used (CLI job commands use one only with --queue). */
  ignoreSaved?: boolean;
  apply: (cluster: ClusterAuth | undefined) => void;
  /** Throws (BAD_INPUT, saying why) when the cluster cannot be reached with these credentials. */
  check: (cluster: ClusterAuth) => Promise<void>;
}

function clusterReport(c: ClusterAuth, from: ClusterReport['from']): ClusterReport {
  const credentials = c.token !== undefined ? 'token' : c.creds !== undefined ? 'creds' : 'user';
  return { url: c.url, credentials, ...(credentials === 'user' ? { user: c.user } : {}), from };
}

/** Where --workers came from when it was given on the command line or in the environment. */
export type WorkersOverride = { value: number; from: 'flag' | 'env' } | null;

export class AppSettingsFile implements SettingsService {
  private saved: Saved;

  /** `file`: the settings.json to read and write (undefined: settings last until the host stops). */
  constructor(private readonly file: string | undefined, private readonly override: WorkersOverride, private readonly apply: (workers: number) => void, private readonly clusterHooks?: ClusterSettingHooks) {
    this.saved = AppSettingsFile.readAll(file);
  }

  /** The saved settings in `file` (defaults when it is missing or unreadable: a bad settings file never stops the app). */
  static read(file: string | undefined): AppSettings {
    return { workers: AppSettingsFile.readAll(file).workers };
  }

  private static readAll(file: string | undefined): Saved {
    if (!file) return { workers: null, cluster: null };
    try {
      return savedSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      return { workers: null, cluster: null };
    }
  }

  /** The cluster in effect: the --queue flag's, else the saved one (unless ignoreSaved), else none. */
  cluster(): ClusterAuth | undefined {
    return this.clusterHooks?.override ?? (this.clusterHooks?.ignoreSaved ? undefined : this.saved.cluster ?? undefined);
  }

  /** The pool size in effect: the flag or variable, else the saved value, else one per core. */
  workers(): number {
    return this.override?.value ?? this.saved.workers ?? defaultPoolSize();
  }

  get(): SettingsReport {
    const from = this.override?.from ?? (this.saved.workers !== null ? 'settings' : 'default');
    const override = this.clusterHooks?.override;
    const saved = this.clusterHooks?.ignoreSaved ? null : this.saved.cluster;
    const cluster = override ? clusterReport(override, 'flag') : saved ? clusterReport(saved, 'settings') : undefined;
    return { saved: { workers: this.saved.workers }, persistent: this.file !== undefined, workers: { value: this.workers(), from, default: defaultPoolSize(), max: MAX_POOL_WORKERS }, ...(cluster ? { cluster } : {}) };
  }

  async set(patch: Partial<AppSettings> & { cluster?: ClusterAuth | null }): Promise<SettingsReport> {
    // A new cluster is tried first: saving one that cannot be reached would fail every job later.
    if (patch.cluster) await this.clusterHooks?.check(patch.cluster);
    const next: Saved = {
      ...this.saved,
      ...(patch.workers !== undefined ? { workers: patch.workers } : {}),
      ...(patch.cluster !== undefined ? { cluster: patch.cluster } : {}),
    };
    if (this.file) {
      await mkdir(dirname(this.file), { recursive: true });
      const { cluster, ...rest } = next; // no cluster: no key (the file stays as it was before clusters)
      await writeFileAtomic(this.file, JSON.stringify(cluster ? next : rest, null, 2) + '\n');
      if (next.cluster) chmodSync(this.file, 0o600); // it holds the cluster's secret
    }
    this.saved = next;
    if (!this.override) this.apply(this.workers());
    if (patch.cluster !== undefined && !this.clusterHooks?.override) this.clusterHooks?.apply(this.cluster());
    return this.get();
  }
}
