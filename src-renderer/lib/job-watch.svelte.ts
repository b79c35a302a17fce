/**
 * One job as a view follows it: start it, follow its progress events, collect its metrics as series
 * (step -> value) for live charts, and call back when it ends. The Train, Attack and Audio views each
 * hold one instead of writing their own subscribe / collect / finish glue.
 *
 * Create it while a component initialises (it follows events for that component's lifetime).
 */
import type { ApiEvent } from '../../src-main/api/contract';
import type { JobKind, JobParamsOf } from '../../src-main/api/jobs';
import { app, isActive } from './state.svelte';

export type Point = { x: number; y: number };

/** The event that ends a job. */
export type JobEnd = Extract<ApiEvent, { type: 'job.finished' | 'job.cancelled' | 'job.failed' }>;

export interface JobWatchOptions {
  /** The metrics collected as series; default: every metric the job reports. */
  metrics?: readonly string[];
  /**
   * The job kinds the watch's form starts. A job of one of them still running or queued when the watch is made
   * (its view or tab was left and opened again) is followed again: the form shows it, stays busy and can cancel it.
   * Its series restart from there.
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

  constructor(options: JobWatchOptions = {}) {
    this.metrics = options.metrics;
    const kinds = options.kinds;
    if (kinds) this.jobId = Object.values(app.jobs).filter((j) => kinds.includes(j.kind) && isActive(j.state)).at(-1)?.jobId ?? null;
    $effect(() => app.subscribe((e) => this.onEvent(e)));
  }

  /** Starts a job and follows it; false (with startError set) when the request was refused. */
  async start<K extends JobKind>(kind: K, params: JobParamsOf<K>): Promise<boolean> {
    this.startError = null;
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

  /** Calls `listener` when a job this watch started ends (finished, cancelled or failed); returns the unsubscribe. */
  onEnd(listener: (e: JobEnd) => void): () => void {
    this.endListeners.add(listener);
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
