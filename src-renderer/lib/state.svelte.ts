/** App-wide state: backend info, the current view, jobs and their live progress. */
import type { ApiEvent, AppInfo, JobInfo, JobState, ProgressEvent, SerializedErrorShape } from '../../src-main/api/contract';
import type { JobKind, JobParamsOf, JobStartInput } from '../../src-main/api/jobs';
import type { JobResultOf } from '../../src-main/jobs/kinds';
import { api } from './transport';

import type { ViewId } from './views';
export { VIEWS, type ViewId } from './views';

/** A job as the views see it; narrowing on `kind` types `result` (its kind's JobResultOf). */
export type JobView<K extends JobKind = JobKind> = {
  [Kind in K]: {
    jobId: string;
    kind: Kind;
    state: JobState;
    progress: ProgressEvent | null;
    session?: string;
    result?: JobResultOf<Kind>;
    error?: SerializedErrorShape;
    /** The params it was started with, for a job started from this page (jobs.list does not report them). */
    params?: JobParamsOf<Kind>;
  };
}[K];

/** The fields events update (kind and jobId are fixed when the job is first seen). */
type JobPatch = { state?: JobState; progress?: ProgressEvent | null; session?: string; result?: unknown; error?: SerializedErrorShape; params?: unknown };

type Listener = (e: ApiEvent) => void;

class AppState {
  info = $state.raw<AppInfo | null>(null);
  connectionError = $state<string | null>(null);
  view = $state<ViewId>('datasets');
  /** Bumped when the nav entry of the view already open is pressed again: the view goes back to its start (e.g. Sessions to its list). */
  renav = $state(0);
  /** Replaced (not mutated) on every event: cheap, and safe to hand to charts. */
  jobs = $state.raw<Record<string, JobView>>({});
  /** Bumped whenever the session store changes, so views reload. */
  sessionsVersion = $state(0);
  /** Set by views that want to open something elsewhere (e.g. a session in Sessions). */
  openSession = $state<string | null>(null);
  /**
   * True once the host's job list (jobs.list, the source of truth) has been read into `jobs`: after a
   * reload, the jobs still running or queued on the host are known from then on, and views follow them again.
   */
  jobsLoaded = $state(false);
  private listeners = new Set<Listener>();
  /**
   * The jobs a view goes back to (JobWatch, Case studies): the ones started from this page, and after a reload
   * the ones the host was still running or queueing. Jobs first seen through events were started elsewhere
   * (a study's cells, the CLI): the status bar shows them, the forms do not take them up.
   */
  private followable = new Set<string>();

  running = $derived(Object.values(this.jobs).filter((j) => j.state === 'running'));
  /** Jobs waiting for a slot (the host runs at most --max-jobs at once), oldest first. */
  queued = $derived(Object.values(this.jobs).filter((j) => j.state === 'queued'));
  latest = $derived(Object.values(this.jobs).at(-1) ?? null);

  async start(): Promise<void> {
    api.onEvent((e) => this.onEvent(e));
    try {
      this.info = await api.call('app.info');
      this.connectionError = null;
    } catch (e) {
      this.connectionError = (e as Error).message;
    }
    await this.loadJobs();
  }

  /** Goes to a view (the nav entries); pressing the open view's entry again bumps `renav`. */
  go(view: ViewId): void {
    if (this.view === view) this.renav++;
    else this.view = view;
  }

  /**
   * Reads the host's jobs (jobs.list) into `jobs`: the ones running or queued there (their last progress,
   * their session) and the ones that ended. What events already told about a job is kept (it is newer).
   */
  async loadJobs(): Promise<void> {
    try {
      const listed = await api.call('jobs.list');
      const known: Record<string, JobView> = {};
      // jobs.list puts the running jobs first; oldest first here, as events add them.
      for (const j of [...listed].sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : 0))) {
        if (isActive(j.state)) this.followable.add(j.jobId);
        known[j.jobId] = fromInfo(j);
      }
      // Per job: events seen while the list was on its way are newer, but a progress event does not carry the
      // session or the result, so what the list knows fills what they left out (a case study's card finds its
      // job after a reload through the session).
      const merged: Record<string, JobView> = { ...known };
      for (const [id, v] of Object.entries(this.jobs)) merged[id] = known[id] ? mergeJobViews(known[id], v) : v;
      this.jobs = merged;
    } catch {
      // The connection error (if any) is shown by start(); events still fill `jobs`.
    }
    this.jobsLoaded = true;
  }

  /** The jobs of `kinds` a view may take up again (started from this page, or running at a reload), oldest first. */
  followed<K extends JobKind>(kinds: readonly K[]): JobView<K>[] {
    // A job whose kind is one of `kinds` is a JobView of that kind (as job() narrows one).
    return Object.values(this.jobs).filter((j) => (kinds as readonly JobKind[]).includes(j.kind) && this.followable.has(j.jobId)) as JobView<K>[];
  }

  /** The latest of them (undefined: none). */
  lastFollowed<K extends JobKind>(kinds: readonly K[]): JobView<K> | undefined {
    return this.followed(kinds).at(-1);
  }

  /** Lets a view follow events (e.g. a chart of one job's metrics). */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts a job of `kind` with that kind's params (api/jobs.ts); refused (rejected) when they are invalid. */
  async startJob<K extends JobKind>(kind: K, params: JobParamsOf<K>): Promise<string> {
    // { kind: K, params: JobParamsOf<K> } is one member of the jobs.start union; TS cannot see that for a generic K.
    const { jobId } = await api.call('jobs.start', { kind, params } as JobStartInput);
    this.followable.add(jobId);
    this.patch(jobId, kind, this.jobs[jobId] ? { params } : { state: 'running', params });
    return jobId;
  }

  /** A job of the given kind (undefined when the job is of another kind or unknown): its result is typed. */
  job<K extends JobKind>(jobId: string | null | undefined, kind: K): JobView<K> | undefined {
    const j = jobId ? this.jobs[jobId] : undefined;
    return j && j.kind === kind ? (j as JobView<K>) : undefined;
  }

  async cancel(jobId: string): Promise<void> {
    await api.call('jobs.cancel', { jobId });
  }

  private patch(jobId: string, kind: JobKind, p: JobPatch): void {
    const prev = this.jobs[jobId] ?? { jobId, kind, state: 'running' as const, progress: null };
    // Results come from the events of this job, whose kind is prev.kind.
    this.jobs = { ...this.jobs, [jobId]: { ...prev, ...p } as JobView };
  }

  private onEvent(e: ApiEvent): void {
    switch (e.type) {
      case 'job.queued':
        this.patch(e.jobId, e.kind, { state: 'queued' });
        break;
      case 'job.started':
        this.patch(e.jobId, e.kind, { state: 'running' });
        break;
      case 'job.progress':
        this.patch(e.jobId, e.kind, { progress: e });
        break;
      case 'job.session':
        if (this.jobs[e.jobId]) this.patch(e.jobId, this.jobs[e.jobId].kind, { session: e.session });
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

/** A job as jobs.list reports it, as the views see it. */
/** `newer` over `listed`, field by field: a field `newer` leaves undefined keeps the listed value. */
export function mergeJobViews(listed: JobView, newer: JobView): JobView {
  const out: Record<string, unknown> = { ...listed };
  for (const [k, v] of Object.entries(newer)) if (v !== undefined && v !== null) out[k] = v;
  return out as JobView;
}

function fromInfo(j: JobInfo): JobView {
  return { jobId: j.jobId, kind: j.kind, state: j.state, progress: j.last ?? null, session: j.session, result: j.result, error: j.error } as JobView;
}

export const app = new AppState();

/** A job that still occupies its form: running, or queued behind the job limit (both can be cancelled). */
export function isActive(state: JobState | undefined): boolean {
  return state === 'running' || state === 'queued';
}
