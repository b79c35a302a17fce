/**
 * The sessions of one or more kinds, newest first, and the one a result panel shows: the newest
 * finished one until the user (or `show`) picks another. Reloaded whenever the session store changes
 * (app.sessionsVersion). The audio panels each hold one instead of writing their own list / pick /
 * refresh glue.
 *
 * Create it while a component initialises (it follows the store for that component's lifetime).
 */
import type { SessionSummary } from '../../src-main/engine/sessions';
import { app } from './state.svelte';
import { api } from './transport';

export class KindSessions {
  /** The sessions of the kinds, newest first (each list as the store returns it, merged by creation time). */
  sessions = $state.raw<SessionSummary[]>([]);
  /** The session shown ('' = none yet). */
  selected = $state('');
  /** Why the last reload failed. */
  error = $state<string | null>(null);

  private readonly kinds: readonly string[];

  constructor(kinds: readonly string[]) {
    this.kinds = kinds;
    $effect(() => {
      void app.sessionsVersion;
      void this.refresh();
    });
  }

  /** Reloads the list; selects the newest finished session when none is selected yet. */
  async refresh(): Promise<void> {
    try {
      const lists = await Promise.all(this.kinds.map((kind) => api.call('sessions.list', { filter: { kind } })));
      this.sessions = lists.length === 1 ? lists[0] : lists.flat().sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
      if (!this.selected) this.selected = this.sessions.find((s) => s.status === 'finished')?.id ?? '';
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  /** Reloads the list, then selects `id` (a panel calls it when its job ends). */
  async show(id: string): Promise<void> {
    await this.refresh();
    this.selected = id;
  }
}
