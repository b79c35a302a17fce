/** App-wide state: backend info, the current view, jobs and their live progress. */
import type { ApiEvent, AppInfo, JobInfo, ProgressEvent } from '../../src-main/api/contract';
import { api } from './transport';

import type { ViewId } from './views';
export { VIEWS, type ViewId } from './views';

export interface JobView {
  jobId: string;
  kind: string;
  state: JobInfo['state'];
  progress: ProgressEvent | null;
  session?: string;
  result?: unknown;
  error?: { code: string; message: string };
}

type Listener = (e: ApiEvent) => void;

class AppState {
  info = $state.raw<AppInfo | null>(null);
  connectionError = $state<string | null>(null);
  view = $state<ViewId>('datasets');
  /** Replaced (not mutated) on every event: cheap, and safe to hand to charts. */
  jobs = $state.raw<Record<string, JobView>>({});
  /** Bumped whenever the session store changes, so views reload. */
  sessionsVersion = $state(0);
  /** Set by views that want to open something elsewhere (e.g. a session in Sessions). */
  openSession = $state<string | null>(null);
  private listeners = new Set<Listener>();

  running = $derived(Object.values(this.jobs).filter((j) => j.state === 'running'));
  latest = $derived(Object.values(this.jobs).at(-1) ?? null);

  async start(): Promise<void> {
    api.onEvent((e) => this.onEvent(e));
    try {
      this.info = await api.call<AppInfo>('app.info');
      this.connectionError = null;
    } catch (e) {
      this.connectionError = (e as Error).message;
    }
  }

  /** Lets a view follow events (e.g. a chart of one job's metrics). */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async startJob(kind: string, params: unknown): Promise<string> {
    const { jobId } = await api.call<{ jobId: string }>('jobs.start', { kind, params });
    if (!this.jobs[jobId]) this.jobs = { ...this.jobs, [jobId]: { jobId, kind, state: 'running', progress: null } };
    return jobId;
  }

  async cancel(jobId: string): Promise<void> {
    await api.call('jobs.cancel', { jobId });
  }

  private patch(jobId: string, kind: string, p: Partial<JobView>): void {
    const prev = this.jobs[jobId] ?? { jobId, kind, state: 'running' as const, progress: null };
    this.jobs = { ...this.jobs, [jobId]: { ...prev, ...p } };
  }

  private onEvent(e: ApiEvent): void {
    switch (e.type) {
      case 'job.started':
        this.patch(e.jobId, e.kind, { state: 'running' });
        break;
      case 'job.progress':
        this.patch(e.jobId, e.kind, { progress: e });
        break;
      case 'job.session':
        this.patch(e.jobId, this.jobs[e.jobId]?.kind ?? '', { session: e.session });
        break;
      case 'job.finished':
        this.patch(e.jobId, e.kind, { state: 'finished', result: e.result, session: e.session });
        break;
      case 'job.cancelled':
        this.patch(e.jobId, e.kind, { state: 'cancelled', result: e.result, session: e.session });
        break;
      case 'job.failed':
        this.patch(e.jobId, e.kind, { state: 'failed', error: e.error, session: e.session });
        break;
      case 'sessions.changed':
        this.sessionsVersion++;
        break;
    }
    for (const l of this.listeners) l(e);
  }
}

export const app = new AppState();
