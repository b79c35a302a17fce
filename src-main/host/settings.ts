/**
 * The app's settings (Settings view, settings.get / settings.set): saved as JSON in the app data
 * folder (written atomically), read when the app starts. Today: the shard pool's size. A --workers
 * flag or ADVLAB_WORKERS wins over the saved value for the run it was given to; otherwise a change
 * applies at once (the pool grows or shrinks; running shards finish first).
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import type { AppSettings, SettingsReport } from '../api/contract';
import type { SettingsService } from '../api/job-service';
import { writeFileAtomic } from '../engine/core/fs-atomic';
import { MAX_POOL_WORKERS } from '../engine/limits';
import { defaultPoolSize } from '../jobs/pool';

const savedSchema = z.object({ workers: z.number().int().min(1).max(MAX_POOL_WORKERS).nullable().catch(null).default(null) });

/** Where --workers came from when it was given on the command line or in the environment. */
export type WorkersOverride = { value: number; from: 'flag' | 'env' } | null;

export class AppSettingsFile implements SettingsService {
  private saved: AppSettings;

  /** `file`: the settings.json to read and write (undefined: settings last until the host stops). */
  constructor(private readonly file: string | undefined, private readonly override: WorkersOverride, private readonly apply: (workers: number) => void) {
    this.saved = AppSettingsFile.read(file);
  }

  /** The saved settings in `file` (defaults when it is missing or unreadable: a bad settings file never stops the app). */
  static read(file: string | undefined): AppSettings {
    if (!file) return { workers: null };
    try {
      return savedSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      return { workers: null };
    }
  }

  /** The pool size in effect: the flag or variable, else the saved value, else one per core. */
  workers(): number {
    return this.override?.value ?? this.saved.workers ?? defaultPoolSize();
  }

  get(): SettingsReport {
    const from = this.override?.from ?? (this.saved.workers !== null ? 'settings' : 'default');
    return { saved: { ...this.saved }, persistent: this.file !== undefined, workers: { value: this.workers(), from, default: defaultPoolSize(), max: MAX_POOL_WORKERS } };
  }

  async set(patch: Partial<AppSettings>): Promise<SettingsReport> {
    const next: AppSettings = { ...this.saved, ...(patch.workers !== undefined ? { workers: patch.workers } : {}) };
    if (this.file) {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, JSON.stringify(next, null, 2) + '\n');
    }
    this.saved = next;
    if (!this.override) this.apply(this.workers());
    return this.get();
  }
}
