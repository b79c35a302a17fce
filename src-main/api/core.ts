/**
 * The API's handlers, shared by both transports. `call` validates the params of a named method,
 * runs its handler and returns an envelope, so that an error's code and fields survive IPC and HTTP.
 */
import { EventEmitter } from 'node:events';
import { AdvlabError, serializeError } from '../engine/errors';
import { isMethod, parseParams, type ApiEvent, type AppInfo, type Envelope, type FilePurpose, type Method, type ParamsArg, type ParsedParamsOf, type ResultOf } from './contract';
import { checkJobStart } from './job-check';
import type { JobService, SettingsService } from './job-service';
import { PathGuard } from './path-guard';
import { parseStudy, startStudy } from './study';
import { SessionStore } from '../engine/sessions';
import { uploadsDir } from '../listening/uploads';

export interface CoreOptions {
  jobs: JobService;
  dataDirs: string[];
  sessionsRoot: string;
  transport: AppInfo['transport'];
  version: string;
  /**
   * 'confined' (the default: IPC and HTTP): a job's paths must lie in the data folders, the store, the
   * uploads folder or a file chosen through the app's dialog (api/path-guard.ts). 'any': the CLI, whose
   * local user types paths at a shell.
   */
  paths?: 'confined' | 'any';
  /**
   * The app's own open dialog (Electron): resolves to the chosen path, or null when cancelled. Without
   * it (the browser host, the CLI) files.choose is UNSUPPORTED.
   */
  chooseFile?: (purpose: FilePurpose) => Promise<string | null>;
  /** The app's settings (host/settings.ts); absent: settings.get/set answer that this host has none. */
  settings?: SettingsService;
}

/** A method's handler: its parsed params in, its ResultOf out (the result map cannot drift from the handlers). */
type Handler<M extends Method> = (params: ParsedParamsOf<M>) => Promise<ResultOf<M>> | ResultOf<M>;
export type Handlers = { [M in Method]: Handler<M> };
/** The methods ApiCore answers itself (app and jobs); the rest come from api/handlers.ts. */
export type CoreMethods = 'app.info' | 'jobs.start' | 'jobs.cancel' | 'jobs.list' | 'files.choose' | 'studies.start' | 'settings.get' | 'settings.set';

export class ApiCore extends EventEmitter<{ event: [ApiEvent] }> {
  private readonly handlers: Handlers;
  /** The check of a job's paths (null with `paths: 'any'`); `paths.choose(file)` allows a file the user chose in a dialog. */
  readonly paths: PathGuard | null;
  /** Where studies.start writes its summary sessions (made on first use). */
  private studyStore: SessionStore | undefined;

  constructor(readonly opts: CoreOptions, extra: (core: ApiCore) => Omit<Handlers, CoreMethods>) {
    super();
    opts.jobs.on('event', (e) => this.emit('event', e));
    this.paths = opts.paths === 'any' ? null : new PathGuard({ dataDirs: opts.dataDirs, sessionsRoot: opts.sessionsRoot, uploadsDir: uploadsDir(opts.sessionsRoot) });
    this.handlers = {
      'app.info': async () => this.info(),
      'jobs.start': async (p) => {
        checkJobStart(p); // the attack's own params schema, before any worker starts
        await this.paths?.checkJob(p); // FORBIDDEN for a path outside the allowed folders
        const { jobId } = opts.jobs.start(p.kind, p.params, this.paths ? { confine: await this.paths.confinement() } : undefined);
        return { jobId };
      },
      'jobs.cancel': (p) => {
        if (!opts.jobs.cancel(p.jobId)) throw new AdvlabError('NOT_FOUND', `No running job ${p.jobId}`);
        return { cancelled: true };
      },
      'jobs.list': () => opts.jobs.list(),
      'files.choose': async (p) => {
        if (!opts.chooseFile) throw new AdvlabError('UNSUPPORTED', `files.choose opens the desktop app's file dialog; over ${opts.transport === 'http' ? 'the browser host' : 'this transport'}, put the file in a data folder (${opts.dataDirs.join(', ') || 'none'}) or upload it`);
        const chosen = await opts.chooseFile(p.purpose);
        if (chosen === null) return { path: null };
        await this.paths?.choose(chosen); // jobs may now read it
        return { path: chosen };
      },
      'studies.start': async (p) => {
        // Each cell goes through jobs.start (this door's checks, paths included); the summary session records how it ended.
        const running = await startStudy(parseStudy(p.study, 'study'), null, {
          start: (params) => this.call('jobs.start', { kind: 'attack', params }),
          jobs: opts.jobs, store: (this.studyStore ??= new SessionStore(opts.sessionsRoot)), version: opts.version,
          where: opts.settings?.get().cluster ? 'cluster' : 'local',
        });
        running.done.catch(() => undefined);
        return { session: running.session, cells: running.cells.length, jobIds: running.jobIds };
      },
      'settings.get': () => this.settings().get(),
      'settings.set': (p) => this.settings().set(p),
      ...extra(this),
    };
  }

  private settings(): SettingsService {
    if (!this.opts.settings) throw new AdvlabError('NOT_FOUND', 'This host keeps no settings');
    return this.opts.settings;
  }

  async info(): Promise<AppInfo> {
    const base = { version: this.opts.version, transport: this.opts.transport, dataDirs: this.opts.dataDirs, sessionsRoot: this.opts.sessionsRoot, platform: `${process.platform}-${process.arch}` };
    try {
      return { ...base, backend: await this.opts.jobs.backend() };
    } catch (e) {
      return { ...base, backend: null, backendError: (e as Error).message };
    }
  }

  /** A typed call (main-side code, tests). */
  call<M extends Method>(method: M, ...params: ParamsArg<M>): Promise<Envelope<ResultOf<M>>>;
  /** A call off the wire (IPC, HTTP): the method name and params are checked here. */
  call(method: unknown, rawParams: unknown): Promise<Envelope<unknown>>;
  async call(method: unknown, rawParams?: unknown): Promise<Envelope<unknown>> {
    try {
      if (!isMethod(method)) throw new AdvlabError('BAD_INPUT', `Unknown API method ${JSON.stringify(method)}`);
      const params = parseParams(method, rawParams);
      const handler = this.handlers[method] as Handler<Method>;
      return { ok: true, result: await handler(params as never) };
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.code === 'BAD_INPUT' && !(e instanceof AdvlabError)) return { ok: false, error: { code: 'BAD_INPUT', message: err.message, details: {} } };
      return { ok: false, error: serializeError(e) };
    }
  }
}
