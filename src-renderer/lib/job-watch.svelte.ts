/**
 * One job as a view follows it: start it, follow its progress events, collect its metrics as series
 * (step -> value) for live charts, and call back when it ends. The Train, Attack and Audio views each
 * hold one instead of writing their own subscribe / collect / finish glue.
 *
 * Create it while a component initialises (it follows events for that component's lifetime).
 */
import { untrack } from 'svelte';
import type { ApiEvent } from '../../src-main/api/contract';
import type { JobKind, JobParamsOf } from '../../src-main/api/jobs';
import { app, isActive, type JobView } from './state.svelte';

export type Point = { x: number; y: number };

/** The event that ends a job. */
export type JobEnd = Extract<ApiEvent, { type: 'job.finished' | 'job.cancelled' | 'job.failed' }>;

export interface JobWatchOptions {
  /** The metrics collected as series; default: every metric the job reports. */
  metrics?: readonly string[];
  /**
   * The job kinds the watch's form starts. The latest job of one of them started from this page (app.followed) is
   * followed again when the watch is made (its view or tab was left and opened again), and after a reload once
   * the host's job list is read (app.jobsLoaded): a running one shows its progress, keeps the form busy and can
   * be cancelled; one that ended meanwhile is reported to onEnd listeners as if its end had just come. Its
   * series restart from there.
   */
  kinds?: readonly JobKind[];
}

export class JobWatch {
  /** The job being followed (the latest one started). */
  jobId = $state<string | null>(null);
  /** Why the last start was refused (a request error: bad params, unknown model, ...). */
  startError = $state<string | null>(null);
  /** Metric name -> points (x = progress step), reassigned on every event: safe to hand to charts. */
  series = $state.raw<Record<string, Point[]>>({});
  job = $derived(this.jobId ? (app.jobs[this.jobId] ?? null) : null);
  running = $derived(this.job?.state === 'running');
  /** Running or queued: the form's Run stays disabled and Cancel is offered. */
  active = $derived(isActive(this.job?.state));

  private readonly metrics: readonly string[] | undefined;
  private readonly endListeners = new Set<(e: JobEnd) => void>();
  /** The followed job was taken up again (not started by this watch): its end may have come before its listeners. */
  private resumed = false;

  constructor(options: JobWatchOptions = {}) {
    this.metrics = options.metrics;
    const kinds = options.kinds;
    if (kinds) {
      this.resume(kinds);
      // After a reload the host's jobs arrive after the views are made.
      $effect(() => {
        if (app.jobsLoaded) untrack(() => this.resume(kinds));
      });
    }
    $effect(() => app.subscribe((e) => this.onEvent(e)));
  }

  /** Follows the latest job of `kinds` started from this page (or running at a reload), unless the watch already follows one. */
  private resume(kinds: readonly JobKind[]): void {
    if (this.jobId) return;
    const j = app.lastFollowed(kinds);
    if (!j) return;
    this.jobId = j.jobId;
    this.resumed = true;
    const end = endOf(j);
    if (end) for (const l of this.endListeners) l(end);
  }

  /** Starts a job and follows it; false (with startError set) when the request was refused. */
  async start<K extends JobKind>(kind: K, params: JobParamsOf<K>): Promise<boolean> {
    this.startError = null;
    this.resumed = false;
    this.series = Object.fromEntries((this.metrics ?? []).map((k) => [k, []]));
    try {
      this.jobId = await app.startJob(kind, params);
      return true;
    } catch (e) {
      this.startError = (e as Error).message;
      return false;
    }
  }

  cancel(): void {
    if (this.jobId) void app.cancel(this.jobId);
  }

  /**
   * Calls `listener` when the job this watch follows ends (finished, cancelled or failed); returns the
   * unsubscribe. A job taken up again that had already ended is reported at once.
   */
  onEnd(listener: (e: JobEnd) => void): () => void {
    this.endListeners.add(listener);
    // Registered from an $effect: what this reads must not become that effect's dependencies.
    untrack(() => {
      const end = this.resumed && this.jobId ? endOf(app.jobs[this.jobId]) : null;
      if (end) listener(end);
    });
    return () => this.endListeners.delete(listener);
  }

  private onEvent(e: ApiEvent): void {
    if (!('jobId' in e) || e.jobId !== this.jobId) return;
    if (e.type === 'job.progress' && e.metrics) {
      const next = { ...this.series };
      for (const [k, v] of Object.entries(e.metrics)) {
        if (this.metrics && !this.metrics.includes(k)) continue;
        if (typeof v === 'number' && Number.isFinite(v)) next[k] = [...(next[k] ?? []), { x: e.step, y: v }];
      }
      this.series = next;
    } else if (e.type === 'job.finished' || e.type === 'job.cancelled' || e.type === 'job.failed') {
      for (const l of this.endListeners) l(e);
    }
  }
}

/** The end event of a job that has ended, rebuilt from what the app knows of it (null while it runs or waits). */
function endOf(j: JobView | undefined): JobEnd | null {
  if (!j) return null;
  if (j.state === 'finished') return { type: 'job.finished', jobId: j.jobId, kind: j.kind, result: j.result, session: j.session } as JobEnd;
  if (j.state === 'cancelled') return { type: 'job.cancelled', jobId: j.jobId, kind: j.kind, result: j.result, session: j.session } as JobEnd;
  if (j.state === 'failed' && j.error) return { type: 'job.failed', jobId: j.jobId, kind: j.kind, error: j.error, session: j.session };
  return null;
}
