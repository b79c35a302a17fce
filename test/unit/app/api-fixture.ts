/**
 * The ApiCore the API tests call: real handlers over a session store, and a job service that records
 * what it was asked to start and starts nothing (so what the door refuses never reaches a job).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import type { JobInfo } from '../../../src-main/api/contract';
import type { JobService } from '../../../src-main/api/job-service';
import { SessionStore } from '../../../src-main/engine/sessions';

/** A job service that records what it was asked to start and starts nothing. */
export class RecordingJobs extends EventEmitter implements JobService {
  readonly started: { kind: string; params: unknown }[] = [];
  start(kind: string, params: unknown) {
    this.started.push({ kind, params });
    return { jobId: `job-${this.started.length}`, done: new Promise<JobInfo>(() => undefined) } as never;
  }
  cancel() { return false; }
  list() { return []; }
  wait() { return undefined; }
  backend() { return Promise.reject(new Error('no backend in this test')); }
}

/**
 * An ApiCore over `store` (default: a new store in a temporary folder) and `dataDirs`, as the
 * browser host builds it (transport http); `paths` as the app ('confined', the default) or the CLI ('any').
 */
export function recordingCore(o: { dataDirs: string[]; store?: SessionStore; paths?: 'confined' | 'any' }): { core: ApiCore; jobs: RecordingJobs; store: SessionStore } {
  const jobs = new RecordingJobs();
  const store = o.store ?? new SessionStore(mkdtempSync(join(tmpdir(), 'advlab-door-')));
  const core = new ApiCore(
    { jobs, dataDirs: o.dataDirs, sessionsRoot: store.root, transport: 'http', version: 'test', ...(o.paths ? { paths: o.paths } : {}) },
    () => apiHandlers({ store, dataDirs: o.dataDirs }),
  );
  return { core, jobs, store };
}
