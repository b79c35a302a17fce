/**
 * What every long-running engine function receives: a way to report progress and to notice
 * cancellation. Engine code calls `ctx.checkpoint()` once per step (batch, iteration); it throws
 * CancelledError when the job was cancelled, so a job stops within one step. A cancelled function
 * always ends by throwing CancelledError, never by returning a flag; what it had done worth keeping
 * rides on the error (see keepPartial).
 */
import { CancelledError } from './errors';
import { withCount } from '../../src-shared/progress-label';
import type { ShardExecutor } from './shards/types';

export interface Progress {
  /** Steps done so far and in all (batches, iterations, examples: whatever the job counts). */
  step: number;
  total: number;
  /** A short phase name: 'epoch 2/5', 'binary search 3/9'. */
  phase?: string;
  /** Numbers worth charting live: loss, accuracy, dbx, tau, ... */
  metrics?: Record<string, number>;
  /** Free text for the status bar. */
  message?: string;
}

export interface JobContext {
  progress(p: Progress): void;
  /** Throws CancelledError if the job was cancelled. Call once per step. */
  checkpoint(): void;
  readonly cancelled: boolean;
  log(message: string): void;
  /**
   * Where this job may send shards of its work (engine/shards/types.ts): the local worker pool or a
   * cluster. Absent: the work runs here, in order, as one shard after another would.
   */
  readonly shards?: ShardExecutor;
}

/**
 * For a caller that keeps the work a cancelled function had done (to save it, then end cancelled
 * itself): the function's result, or the partial result its CancelledError carries (typed as that
 * function documents) together with that error. Other errors, and a cancel that carries nothing,
 * propagate.
 */
export async function keepPartial<T>(work: Promise<T>): Promise<{ value: T; cancel: CancelledError | null }> {
  try {
    return { value: await work, cancel: null };
  } catch (e) {
    if (e instanceof CancelledError && e.partial !== undefined) return { value: e.partial as T, cancel: e };
    throw e;
  }
}

/** A context for tests and scripts: records progress, cancellable by hand. */
export class LocalContext implements JobContext {
  readonly events: Progress[] = [];
  readonly logs: string[] = [];
  private _cancelled = false;
  constructor(private readonly onProgress?: (p: Progress) => void) {}
  progress(p: Progress): void {
    this.events.push(p);
    this.onProgress?.(p);
  }
  checkpoint(): void {
    if (this._cancelled) throw new CancelledError();
  }
  get cancelled(): boolean {
    return this._cancelled;
  }
  cancel(): void {
    this._cancelled = true;
  }
  log(message: string): void {
    this.logs.push(message);
  }
}

/** A context that ignores progress and is never cancelled. */
export const silentContext: JobContext = {
  progress() {},
  checkpoint() {},
  cancelled: false,
  log() {},
};

/** Where a child's work sits in its parent's progress, and how its phase and log lines are named. */
export interface ChildOptions {
  /** The child covers the parent's steps [from, from + span) of `total`: its own step/total maps linearly onto them. */
  from: number;
  span: number;
  total: number;
  /**
   * Count the parent's steps in the child's own units (step = from * child total + span * child step,
   * total = total * child total): 'the i-th of n equal parts' shown as whole counts. Default false.
   */
  childUnits?: boolean;
  /** Round the parent's step to a whole number (for totals like 1000). Default false. */
  round?: boolean;
  /** Names the child's work: the parent sees the phase 'label: inner phase' (or the label alone). */
  label?: string;
  /** Append the child's own count to the phase ('label: epoch 1/3 (40/120)'), for parents whose step/total are weighted units. Default false. */
  count?: boolean;
  /** Prefixes the child's log lines: 'logPrefix: line'. Default none. */
  logPrefix?: string;
}

/**
 * A context for one part of a job: its progress maps into [from, from + span) of the parent's steps
 * (clamped, so a parent whose parts are laid out in order never goes back), its phase is prefixed
 * with the label, and cancellation is the parent's, read live: a cancel made after the child was
 * created is seen by the child (never copy a context with `{ ...ctx }`: that freezes `cancelled`).
 */
export function childContext(parent: JobContext, o: ChildOptions): JobContext {
  return {
    progress(p: Progress) {
      const done = p.total > 0 ? Math.min(p.total, Math.max(0, p.step)) : 0;
      // In the child's units the step stays a whole count (from * its total + span * its step).
      const inChildUnits = o.childUnits === true && p.total > 0;
      const step = inChildUnits ? o.from * p.total + o.span * done : o.from + (p.total > 0 ? (o.span * done) / p.total : 0);
      const total = inChildUnits ? o.total * p.total : o.total;
      const joined = o.label ? (p.phase ? `${o.label}: ${p.phase}` : o.label) : p.phase;
      const phase = joined !== undefined && o.count ? withCount(joined, p) : joined;
      parent.progress({
        step: o.round ? Math.round(step) : step,
        total,
        ...(phase !== undefined ? { phase } : {}),
        ...(p.metrics ? { metrics: p.metrics } : {}),
        ...(p.message ? { message: p.message } : {}),
      });
    },
    checkpoint: () => parent.checkpoint(),
    get cancelled() {
      return parent.cancelled;
    },
    log: (m: string) => parent.log(o.logPrefix ? `${o.logPrefix}: ${m}` : m),
    ...(parent.shards ? { shards: parent.shards } : {}),
  };
}

/** A context that reports nothing (no progress, no log lines) but is cancelled with its parent. */
export function quietContext(parent: JobContext): JobContext {
  return {
    progress() {},
    checkpoint: () => parent.checkpoint(),
    get cancelled() {
      return parent.cancelled;
    },
    log() {},
    ...(parent.shards ? { shards: parent.shards } : {}),
  };
}
