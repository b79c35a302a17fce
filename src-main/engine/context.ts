/**
 * What every long-running engine function receives: a way to report progress and to notice
 * cancellation. Engine code calls `ctx.checkpoint()` once per step (batch, iteration); it throws
 * CancelledError when the job was cancelled, so a job stops within one step.
 */
import { CancelledError } from './errors';

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
