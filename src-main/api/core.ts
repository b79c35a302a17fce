/**
 * The API's handlers, shared by both transports. `call` validates the params of a named method,
 * runs its handler and returns an envelope, so that an error's code and fields survive IPC and HTTP.
 */
import { EventEmitter } from 'node:events';
import { AdvlabError, serializeError } from '../engine/errors';
import { isMethod, parseParams, type ApiEvent, type AppInfo, type Envelope, type Method, type ParamsArg, type ParsedParamsOf, type ResultOf } from './contract';
import { checkJobStart } from './job-check';
import type { JobService, SettingsService } from './job-service';

export interface CoreOptions {
  jobs: JobService;
  dataDirs: string[];
  sessionsRoot: string;
  transport: AppInfo['transport'];
  version: string;
  /** The app's settings (host/settings.ts); absent: settings.get/set answer that this host has none. */
  settings?: SettingsService;
}

/** A method's handler: its parsed params in, its ResultOf out (the result map cannot drift from the handlers). */
type Handler<M extends Method> = (params: ParsedParamsOf<M>) => Promise<ResultOf<M>> | ResultOf<M>;
export type Handlers = { [M in Method]: Handler<M> };
/** The methods ApiCore answers itself (app and jobs); the rest come from api/handlers.ts. */
export type CoreMethods = 'app.info' | 'jobs.start' | 'jobs.cancel' | 'jobs.list' | 'settings.get' | 'settings.set';

export class ApiCore extends EventEmitter<{ event: [ApiEvent] }> {
  private readonly handlers: Handlers;

  constructor(readonly opts: CoreOptions, extra: (core: ApiCore) => Omit<Handlers, CoreMethods>) {
    super();
    opts.jobs.on('event', (e) => this.emit('event', e));
    this.handlers = {
      'app.info': async () => this.info(),
      'jobs.start': (p) => {
        checkJobStart(p); // the attack's own params schema, before any worker starts
        const { jobId } = opts.jobs.start(p.kind, p.params);
        return { jobId };
      },
      'jobs.cancel': (p) => {
        if (!opts.jobs.cancel(p.jobId)) throw new AdvlabError('NOT_FOUND', `No running job ${p.jobId}`);
        return { cancelled: true };
      },
      'jobs.list': () => opts.jobs.list(),
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
