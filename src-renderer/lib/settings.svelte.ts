/** The Settings view's state: the app's saved settings and what is in effect (settings.get / settings.set). */
import type { SettingsReport } from '../../src-main/api/contract';
import { api } from './transport';

export class SettingsState {
  report = $state.raw<SettingsReport | null>(null);
  /** The pool size field (a number input: null when empty = the default, one per core). */
  workers = $state<number | null>(null);
  error = $state<string | null>(null);
  saving = $state(false);
  saved = $state(false);

  async load(): Promise<void> {
    try {
      this.show(await api.call('settings.get'));
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  async save(): Promise<void> {
    this.error = null;
    this.saved = false;
    this.saving = true;
    try {
      this.show(await api.call('settings.set', { workers: typeof this.workers === 'number' && !Number.isNaN(this.workers) ? this.workers : null }));
      this.saved = true;
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.saving = false;
    }
  }

  private show(r: SettingsReport): void {
    this.report = r;
    this.workers = r.saved.workers;
  }
}
