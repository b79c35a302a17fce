/**
 * The API's handlers, shared by both transports. `call` validates the params of a named method,
 * runs its handler and returns an envelope, so that an error's code and fields survive IPC and HTTP.
 */
import { EventEmitter } from 'node:events';
import { AdvlabError, serializeError } from '../engine/errors';
import type { JobRunner } from '../jobs/runner';
import { isMethod, parseParams, type ApiEvent, type AppInfo, type Envelope, type Method, type ParsedParamsOf } from './contract';

export interface CoreOptions {
  runner: JobRunner;
  dataDirs: string[];
  sessionsRoot: string;
  transport: AppInfo['transport'];
  version: string;
}

type Handler<M extends Method> = (params: ParsedParamsOf<M>) => Promise<unknown> | unknown;
export type Handlers = { [M in Method]: Handler<M> };

export class ApiCore extends EventEmitter<{ event: [ApiEvent] }> {
  private readonly handlers: Handlers;

  constructor(readonly opts: CoreOptions, extra: (core: ApiCore) => Omit<Handlers, 'app.info' | 'jobs.start' | 'jobs.cancel' | 'jobs.list'>) {
    super();
    opts.runner.on('event', (e) => this.emit('event', e));
    this.handlers = {
      'app.info': async () => this.info(),
      'jobs.start': (p) => {
        const { jobId } = opts.runner.start(p.kind, p.params);
        return { jobId };
      },
      'jobs.cancel': (p) => {
        if (!opts.runner.cancel(p.jobId)) throw new AdvlabError('NOT_FOUND', `No running job ${p.jobId}`);
        return { cancelled: true };
      },
      'jobs.list': () => opts.runner.list(),
      ...extra(this),
    };
  }

  async info(): Promise<AppInfo> {
    const base = { version: this.opts.version, transport: this.opts.transport, dataDirs: this.opts.dataDirs, sessionsRoot: this.opts.sessionsRoot, platform: `${process.platform}-${process.arch}` };
    try {
      return { ...base, backend: await this.opts.runner.backend() };
    } catch (e) {
      return { ...base, backend: null, backendError: (e as Error).message };
    }
  }

  async call(method: unknown, rawParams: unknown): Promise<Envelope<unknown>> {
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
