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
  /** The cluster form (the secret is typed again for each change: settings.get never returns it). */
  clusterUrl = $state('');
  clusterCredentials = $state<'token' | 'user' | 'creds'>('token');
  clusterToken = $state('');
  clusterUser = $state('');
  clusterPass = $state('');
  clusterCreds = $state('');
  clusterError = $state<string | null>(null);
  clusterSaved = $state(false);

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

  /** Saves the cluster (the main process connects once first and refuses one it cannot reach), or clears it (null). */
  async saveCluster(clear = false): Promise<void> {
    this.clusterError = null;
    this.clusterSaved = false;
    this.saving = true;
    try {
      const url = this.clusterUrl.trim();
      const cluster = clear ? null : {
        url,
        ...(this.clusterCredentials === 'token' ? { token: this.clusterToken } : {}),
        ...(this.clusterCredentials === 'user' ? { user: this.clusterUser.trim(), pass: this.clusterPass } : {}),
        ...(this.clusterCredentials === 'creds' ? { creds: this.clusterCreds.trim() } : {}),
      };
      this.show(await api.call('settings.set', { cluster }));
      this.clusterToken = this.clusterPass = '';
      this.clusterSaved = true;
    } catch (e) {
      this.clusterError = (e as Error).message;
    } finally {
      this.saving = false;
    }
  }

  private show(r: SettingsReport): void {
    this.report = r;
    this.workers = r.saved.workers;
    if (r.cluster) {
      this.clusterUrl = r.cluster.url;
      this.clusterCredentials = r.cluster.credentials;
      if (r.cluster.user) this.clusterUser = r.cluster.user;
    }
  }
}
