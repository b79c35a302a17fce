/**
 * Views take up running jobs again (src-renderer/lib/state.svelte.ts, job-watch.svelte.ts): the host's
 * job list (jobs.list) is the source of truth after a reload, and a view left and opened again follows
 * the job it started, shows its progress and gets its result when it ends, also when it ended meanwhile.
 * Runs on Svelte's client runtime (the 'runes' project); the transport is an in-memory host.
 */
import { flushSync } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiEvent, JobInfo, ProgressEvent } from '../../../src-main/api/contract';

let listed: JobInfo[] = [];
let emit: (e: ApiEvent) => void = () => undefined;
let nextId = 1;
/** jobs.list answers once this resolves (a slow answer: events come first). */
let listGate: Promise<void> = Promise.resolve();

vi.mock('../../../src-renderer/lib/transport', () => ({
  api: {
    call: async (method: string) => {
      if (method === 'app.info') return { transport: 'http' };
      if (method === 'jobs.list') {
        await listGate;
        return listed;
      }
      if (method === 'jobs.start') return { jobId: `started-${nextId++}` };
      throw new Error(`unexpected ${method}`);
    },
    onEvent: (l: (e: ApiEvent) => void) => {
      emit = l;
      return () => undefined;
    },
  },
}));

const { app } = await import('../../../src-renderer/lib/state.svelte');
const { JobWatch } = await import('../../../src-renderer/lib/job-watch.svelte');
type Watch = InstanceType<typeof JobWatch>;

function progress(jobId: string, step: number): ProgressEvent {
  return { type: 'job.progress', jobId, kind: 'train', step, total: 10, fraction: step / 10, elapsedSeconds: step, etaSeconds: 10 - step };
}

async function settle(): Promise<void> {
  flushSync();
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
  flushSync();
}

const roots: (() => void)[] = [];
/** A view's watch: made inside an effect root (as a component makes it), with an onEnd listener registered by an effect. */
function view(kinds: Parameters<typeof app.followed>[0]): { watch: Watch; ends: ApiEvent[]; leave: () => void } {
  let watch!: Watch;
  const ends: ApiEvent[] = [];
  const leave = $effect.root(() => {
    watch = new JobWatch({ kinds });
    $effect(() => watch.onEnd((e) => ends.push(e)));
  });
  roots.push(leave);
  flushSync();
  return { watch, ends, leave };
}

afterEach(() => {
  for (const r of roots.splice(0)) r();
  listed = [];
  app.jobs = {};
  app.jobsLoaded = false;
});

describe('views follow running jobs again', () => {
  it('after a reload: a view made before jobs.list answered follows the job the host still runs, from its last progress', async () => {
    listed = [
      { jobId: 'old', kind: 'train', state: 'finished', started: '2026-01-01T00:00:00Z', ended: '2026-01-01T00:01:00Z', session: 's-old', result: { session: 's-old' } } as JobInfo,
      { jobId: 'run', kind: 'train', state: 'running', started: '2026-01-01T00:02:00Z', session: 's-run', last: progress('run', 4) } as JobInfo,
    ];
    const v = view(['train']);
    expect(v.watch.jobId).toBeNull();
    await app.start();
    await settle();
    expect(v.watch.jobId).toBe('run');
    expect(v.watch.active).toBe(true);
    expect(v.watch.job?.progress?.step).toBe(4);
    expect(v.watch.job?.session).toBe('s-run');
    // Its result arrives when it ends.
    emit(progress('run', 10));
    emit({ type: 'job.finished', jobId: 'run', kind: 'train', result: { session: 's-run' } as never, session: 's-run' });
    await settle();
    expect(v.watch.job?.state).toBe('finished');
    expect(v.ends.map((e) => e.type)).toEqual(['job.finished']);
  });

  it('after a reload, a progress event that comes before jobs.list answers keeps what the list knows (the session a case study\'s card needs)', async () => {
    listed = [{ jobId: 'run', kind: 'recipe', state: 'running', started: '2026-01-01T00:02:00Z', session: 's-recipe', last: { ...progress('run', 2), kind: 'recipe' } } as JobInfo];
    let open!: () => void;
    listGate = new Promise((r) => (open = r));
    const starting = app.start();
    await settle();
    emit({ ...progress('run', 5), kind: 'recipe' });
    await settle();
    expect(app.jobs.run?.session).toBeUndefined(); // the event alone does not say
    open();
    await starting;
    await settle();
    listGate = Promise.resolve();
    expect(app.jobs.run?.session).toBe('s-recipe');
    expect(app.jobs.run?.progress?.step).toBe(5); // the event is newer than the list's last progress
    expect(app.jobs.run?.state).toBe('running');
    expect(app.followed(['recipe']).map((j) => j.jobId)).toEqual(['run']);
  });

  it('a job that ended before the page was opened is not taken up; the finished one listed keeps its result', async () => {
    listed = [{ jobId: 'old', kind: 'train', state: 'finished', started: '2026-01-01T00:00:00Z', session: 's-old', result: { session: 's-old' } } as JobInfo];
    await app.start();
    const v = view(['train']);
    await settle();
    expect(v.watch.jobId).toBeNull();
    expect(app.jobs.old?.state).toBe('finished');
    expect(v.ends).toEqual([]);
  });

  it('a view left while its job ran and opened again after the job ended shows it and gets its end (result and session)', async () => {
    await app.start();
    const first = view(['attack', 'sweep']);
    expect(await first.watch.start('sweep', { model: 'm', dataset: 'mnist', attack: 'fgsm', epsilons: [0.1] })).toBe(true);
    const id = first.watch.jobId!;
    emit({ type: 'job.started', jobId: id, kind: 'sweep' });
    first.leave(); // the user opens another view
    emit({ type: 'job.finished', jobId: id, kind: 'sweep', result: { curve: [] } as never, session: 's-sweep' });
    await settle();
    expect(first.ends).toEqual([]); // that view is gone

    const again = view(['attack', 'sweep']);
    await settle();
    expect(again.watch.jobId).toBe(id);
    expect(again.watch.active).toBe(false);
    expect(again.ends).toEqual([{ type: 'job.finished', jobId: id, kind: 'sweep', result: { curve: [] }, session: 's-sweep' }]);
    // Reported once, not again on the next event of another job.
    emit({ type: 'job.progress', jobId: 'other', kind: 'train', step: 1, total: 2, fraction: 0.5, elapsedSeconds: 1, etaSeconds: 1 });
    await settle();
    expect(again.ends).toHaveLength(1);
    // A new start follows the new job only.
    await again.watch.start('attack', { model: 'm', dataset: 'mnist', attack: 'fgsm' });
    expect(again.watch.jobId).not.toBe(id);
    expect(again.watch.active).toBe(true);
  });

  it('a view opened while its job runs follows it live (its Cancel and progress)', async () => {
    await app.start();
    const first = view(['train']);
    await first.watch.start('train', { dataset: 'mnist', arch: 'small-cnn' });
    const id = first.watch.jobId!;
    first.leave();
    const again = view(['train']);
    expect(again.watch.jobId).toBe(id);
    emit(progress(id, 3));
    await settle();
    expect(again.watch.job?.progress?.step).toBe(3);
    expect(app.job(id, 'train')?.params).toEqual({ dataset: 'mnist', arch: 'small-cnn' });
  });

  it('a job first seen through events (started elsewhere: a study cell, the CLI) is not taken up by a form', async () => {
    await app.start();
    emit({ type: 'job.started', jobId: 'cell-1', kind: 'attack' });
    emit({ type: 'job.progress', jobId: 'cell-1', kind: 'attack', step: 1, total: 4, fraction: 0.25, elapsedSeconds: 1, etaSeconds: 3 });
    await settle();
    expect(app.jobs['cell-1']?.state).toBe('running'); // the status bar shows it
    const v = view(['attack']);
    await settle();
    expect(v.watch.jobId).toBeNull();
  });

  it('pressing the open view\'s nav entry again bumps renav; another view changes the view only', () => {
    app.view = 'sessions';
    const before = app.renav;
    app.go('sessions');
    expect(app.renav).toBe(before + 1);
    app.go('train');
    expect(app.view).toBe('train');
    expect(app.renav).toBe(before + 1);
  });
});
