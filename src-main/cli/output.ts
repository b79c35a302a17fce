/** CLI output: human text on stderr/stdout, or with --json exactly one JSON object as the last stdout line. */
import { serializeError } from '../engine/errors';
import type { ProgressEvent } from '../api/contract';
import { progressText } from '../../src-shared/progress-label';

export class Output {
  private lastProgress = 0;
  constructor(readonly json: boolean) {}

  /** Human-readable lines go to stderr when --json is set, so stdout stays machine-readable. */
  info(line: string): void {
    (this.json ? process.stderr : process.stdout).write(line + '\n');
  }

  progress(e: ProgressEvent): void {
    const now = Date.now();
    if (now - this.lastProgress < 1000 && e.fraction < 1) return;
    this.lastProgress = now;
    const pct = (100 * e.fraction).toFixed(0).padStart(3);
    const metrics = Object.entries(e.metrics ?? {}).slice(0, 4).map(([k, v]) => `${k}=${fmt(v)}`).join(' ');
    const eta = e.etaSeconds != null && e.fraction < 1 ? ` eta ${e.etaSeconds.toFixed(0)}s` : '';
    process.stderr.write(`[${pct}%] ${progressText(e)} ${metrics}${eta}\n`);
  }

  result(obj: Record<string, unknown>, human?: string): void {
    if (this.json) process.stdout.write(JSON.stringify(obj) + '\n');
    else process.stdout.write((human ?? JSON.stringify(obj, null, 2)) + '\n');
  }

  /** Prints the error (as the final JSON object with --json) and returns the exit code. */
  error(e: unknown): number {
    const err = serializeError(e);
    if (this.json) process.stdout.write(JSON.stringify({ error: err }) + '\n');
    process.stderr.write(`advlab: ${err.message}\n`);
    return err.code === 'BAD_INPUT' || err.code === 'NOT_FOUND' || err.code === 'UNSUPPORTED' || err.code === 'BAD_FILE' ? 2 : 1;
  }
}

/**
 * Exits once everything written to stdout and stderr has reached the reader. process.exit right
 * after a write drops what a pipe has not taken yet (a pipe holds 64 KiB: `advlab sessions list
 * --json | wc -c` stopped at 65,536); a write's callback runs after all earlier writes are flushed.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  const flushed = (s: NodeJS.WriteStream) => new Promise<void>((r) => {
    if (s.destroyed || !s.writable) return r();
    s.write('', () => r()); // an error (EPIPE: the reader went away) also ends the wait
  });
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}
