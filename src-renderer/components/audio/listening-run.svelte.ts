/**
 * The listening test in progress, kept outside the view so that leaving the view and coming back
 * does not lose it. Talks to listening.create / .answer / .finish; gives no feedback during the test.
 */
import type { ListeningResult, ListeningTestView } from '../../../src-main/listening/schemas';
import { api } from '../../lib/transport';

export type ClipRole = 'a' | 'b' | 'x';

class ListeningRun {
  test = $state.raw<ListeningTestView | null>(null);
  /** Index of the trial shown (= trials answered so far). */
  current = $state(0);
  result = $state.raw<ListeningResult | null>(null);
  busy = $state(false);
  error = $state<string | null>(null);
  /** Plays of each clip in the current trial. */
  plays = $state<Record<ClipRole, number>>({ a: 0, b: 0, x: 0 });
  private shownAt = 0;

  get trial() {
    return this.test && !this.result ? (this.test.trials[this.current] ?? null) : null;
  }

  async start(params: { sessions: string[]; mode: 'ab' | 'abx'; compare?: 'attack' | 'stages'; repeats: number; seed?: number; targetDbfs: number }): Promise<void> {
    this.error = null;
    this.busy = true;
    try {
      this.test = await api.call('listening.create', params);
      this.result = null;
      this.current = 0;
      this.resetTrial();
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.busy = false;
    }
  }

  played(role: ClipRole): void {
    this.plays = { ...this.plays, [role]: this.plays[role] + 1 };
  }

  /** Whether every clip of the trial has been heard at least once (answers are enabled then). */
  get heardAll(): boolean {
    const t = this.trial;
    if (!t) return false;
    return (Object.keys(t.clips) as ClipRole[]).every((k) => this.plays[k] > 0);
  }

  async answer(answer: 'original' | 'adversarial' | 'A' | 'B'): Promise<void> {
    const test = this.test, t = this.trial;
    if (!test || !t || this.busy) return;
    this.busy = true;
    this.error = null;
    try {
      const plays = Object.fromEntries((Object.keys(t.clips) as ClipRole[]).map((k) => [k, this.plays[k]]));
      const r = await api.call('listening.answer', {
        session: test.session, trial: t.trial, answer, ms: Math.round(performance.now() - this.shownAt), plays,
      });
      this.current = r.answered;
      this.resetTrial();
      if (r.remaining === 0) await this.finishNow();
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.busy = false;
    }
  }

  /** Ends the test (early: the session is marked cancelled and scored on the answered trials). */
  async finishNow(): Promise<void> {
    const test = this.test;
    if (!test) return;
    try {
      this.result = await api.call('listening.finish', { session: test.session });
    } catch (e) {
      this.error = (e as Error).message;
    }
  }

  clear(): void {
    this.test = null;
    this.result = null;
    this.error = null;
    this.current = 0;
  }

  private resetTrial(): void {
    this.plays = { a: 0, b: 0, x: 0 };
    this.shownAt = performance.now();
  }
}

export const listeningRun = new ListeningRun();
