/**
 * `advlab`: the command line. Every command accepts --json and then prints exactly one JSON object as
 * the last line of stdout (progress and notes go to stderr). Jobs run through the same job runner as
 * the GUI, so a CLI run and a GUI run of the same job write the same session.
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { AdvlabError, badInput, isErrorCode } from '../engine/errors';
import type { JobInfo } from '../api/contract';
import type { JobStartInput } from '../api/jobs';
import { createApp, resolveAppOptions } from '../host/app';
import { DEFAULT_MAX_JOBS, SHUTDOWN_GRACE_MS } from '../jobs/runner';
import { defaultPoolSize } from '../jobs/pool';
import { startHost } from '../host/server';
import { findElectronBinary } from '../electron/binary';
import { datasetEntries } from '../api/handlers';
import { exitWhenFlushed, Output } from './output';
import { COMMON_OPTIONS, RENDERER_DIR, type CliContext, type Command } from './context';
import { commands as extraCommands } from './commands';
import { queueFromArgs } from './cluster';
import { ADVLAB_VERSION } from '../paths';
import { findSynthesizers } from '../engine/audio/corpus-synth';

const builtins: Record<string, Command> = {
  doctor: {
    summary: 'check the engine backend, ONNX Runtime, Electron, data directories, speech synthesizers and the Conv2D gradient',
    usage: 'advlab doctor [--backend auto|tensorflow|wasm|cpu] [--data DIR] [--json]',
    async run(c) {
      c.parse({});
      const app = c.app();
      const info = await c.runJob('diagnostics', { batch: 16, repeats: 2 });
      const electron = findElectronBinary();
      const datasets = await datasetEntries(app.core.opts.dataDirs);
      const synthesizers = (await findSynthesizers()).map((s) => ({ name: s.name, version: s.version, voices: s.voices.length }));
      if (info.state !== 'finished') throw new AdvlabError((info.error?.code as 'INTERNAL') ?? 'INTERNAL', info.error?.message ?? 'diagnostics failed');
      const r = info.result!;
      const backend = r.backend;
      const result = {
        ok: r.gradientCheck.ok,
        version: ADVLAB_VERSION,
        backend: backend.name,
        tfjsVersion: backend.tfjsVersion,
        backendDetails: backend,
        electron,
        node: process.version,
        dataDirs: app.core.opts.dataDirs,
        datasets,
        sessionsRoot: app.core.opts.sessionsRoot,
        conv2dGradientCheck: r.gradientCheck,
        timings: r.timings,
        onnx: r.onnx,
        synthesizers,
      };
      const human = [
        `AdvLab ${ADVLAB_VERSION} on Node ${process.version}`,
        `backend: ${backend.name} (tfjs ${backend.tfjsVersion})`,
        ...backend.skipped.map((s) => `  skipped ${s.name}: ${s.reason}`),
        `electron binary: ${electron.present ? electron.path : `absent (${electron.reason})`}`,
        `data directories: ${app.core.opts.dataDirs.join(', ') || '(none)'}`,
        ...datasets.map((d) => `  ${d.name}: ${d.dir} (${Object.entries(d.splits).map(([k, v]) => `${k} ${v}`).join(', ')})`),
        `sessions: ${app.core.opts.sessionsRoot}`,
        r.onnx.available
          ? `ONNX Runtime: onnxruntime-node ${r.onnx.version}, CPU provider, ${r.onnx.threads} threads (attacks use it where the model allows: --engine auto)`
          : `ONNX Runtime: unavailable (${r.onnx.reason}); attacks run on tfjs`,
        synthesizers.length
          ? `speech synthesizers (advlab audio corpus): ${synthesizers.map((s) => `${s.name} (${s.voices} English voices)`).join(', ')}`
          : 'speech synthesizers: none installed (advlab audio corpus needs espeak-ng, flite or festival with a US English voice)',
        `Conv2D gradient check: ${r.gradientCheck.ok ? 'ok' : 'FAILED'} (max abs diff ${r.gradientCheck.maxAbsDiff.toExponential(2)})`,
        `conv net, batch 16: forward ${r.timings.forwardMs.toFixed(1)} ms, input gradient ${r.timings.inputGradientMs.toFixed(1)} ms, train step ${r.timings.trainStepMs.toFixed(1)} ms`,
      ].join('\n');
      c.out.result(result, human);
      return r.gradientCheck.ok ? 0 : 1;
    },
  },
  serve: {
    summary: 'serve the UI and the API to a browser on 127.0.0.1 (token-protected)',
    usage: 'advlab serve [--port N (0 = random)] [--open] [--data DIR] [--sessions DIR] [--backend NAME] [--json]',
    async run(c) {
      const { values } = c.parse({ port: { type: 'string' }, open: { type: 'boolean' } });
      const port = values.port === undefined ? 0 : Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw badInput(`--port must be an integer from 0 to 65535, got "${values.port}"`);
      const app = c.app();
      const host = await startHost({ core: app.core, rendererDir: RENDERER_DIR, port, artifactPath: (id, rel) => app.store.artifactFile(id, rel) });
      void app.runner.warmPool(); // the backend probe (the status bar asks first) and the pool's threads, warmed up
      c.out.result({ url: host.url, port: host.port, dataDirs: app.core.opts.dataDirs, sessionsRoot: app.core.opts.sessionsRoot }, `AdvLab is serving on ${host.url}`);
      if (values.open) openBrowser(host.url);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      // Interrupted: every job is cancelled as a Cancel would (its session ends 'cancelled' with
      // what it had: the model trained so far, the examples attacked so far), given
      // SHUTDOWN_GRACE_MS to save; a second signal stops at once.
      const running = app.runner.list().filter((j) => j.state === 'running' || j.state === 'queued').length;
      if (running > 0) process.stderr.write(`${signal}: cancelling ${running} job(s); each keeps what it has (up to ${SHUTDOWN_GRACE_MS / 1000} s; ${signal} again to stop now)\n`);
      const again = () => process.exit(signal === 'SIGINT' ? 130 : 143);
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      await app.runner.shutdown(SHUTDOWN_GRACE_MS);
      await host.close();
      return 0;
    },
  },
};

function openBrowser(url: string): void {
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    process.stderr.write(`(no display here: open ${url} in a browser)\n`);
    return;
  }
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'cmd' : 'xdg-open';
  const args = process.platform === 'win32' ? ['/c', 'start', '', url] : [url];
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.on('error', () => process.stderr.write(`(could not open a browser; open ${url} yourself)\n`));
    child.unref();
  } catch {
    process.stderr.write(`(could not open a browser; open ${url} yourself)\n`);
  }
}

export const COMMANDS: Record<string, Command> = { ...builtins, ...extraCommands };

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['usage: advlab <command> [options]', '', 'commands:', ...rows, '', `common options: --json --data DIR --sessions DIR --backend auto|tensorflow|wasm|cpu --max-jobs N (jobs at once, default ${DEFAULT_MAX_JOBS}: the pool's size; the rest queue) --workers N (shard pool threads, default ${defaultPoolSize()}: one per core; ADVLAB_WORKERS)`, 'advlab <command> --help for its options'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const wantsJson = rest.includes('--json');
  const out = new Output(wantsJson);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out.info(usage());
    if (wantsJson) out.result({ commands: Object.keys(COMMANDS) });
    return 0;
  }
  if (name === '--version' || name === 'version') {
    out.result({ version: ADVLAB_VERSION }, ADVLAB_VERSION);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    out.error(badInput(`Unknown command "${name}"\n${usage()}`));
    return 2;
  }
  let appInstance: ReturnType<typeof createApp> | undefined;
  const ctx: CliContext = {
    out,
    argv: rest,
    // The CLI's own commands take any path its local user types; `serve` is a door for a browser, whose job paths are confined.
    // A job command sends its shards to a cluster only with --queue; `serve` (the UI) also uses the one saved in Settings.
    app: () => (appInstance ??= createApp({ ...resolveAppOptions(rest), cluster: queueFromArgs(rest), ignoreSavedCluster: name !== 'serve', transport: 'http', paths: name === 'serve' ? 'confined' : 'any' })),
    parse: (options, allowPositionals = false) => {
      try {
        return parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...options }, allowPositionals, strict: true }) as never;
      } catch (e) {
        throw badInput(`${(e as Error).message}\nusage: ${cmd.usage}`);
      }
    },
    async runJob(kind, params) {
      const app = ctx.app();
      // Through the API's door, as the GUI starts jobs: the kind's schema and the attack's own
      // params are checked there, so a typo is refused (BAD_INPUT, exit 2) before any session exists.
      const started = await app.core.call('jobs.start', { kind, params } as JobStartInput);
      if (!started.ok) throw new AdvlabError(isErrorCode(started.error.code) ? started.error.code : 'INTERNAL', started.error.message, started.error.details);
      const { jobId } = started.result;
      const done = (app.runner.wait(jobId) ?? Promise.resolve(app.runner.list().find((j) => j.jobId === jobId)!)) as Promise<JobInfo<typeof kind>>;
      const onEvent = (e: import('../api/contract').ApiEvent) => {
        if ('jobId' in e && e.jobId !== jobId) return;
        if (e.type === 'job.progress') out.progress(e);
        else if (e.type === 'job.log') out.info(e.message);
      };
      app.runner.on('event', onEvent);
      const onSigint = () => {
        process.stderr.write('\ncancelling (Ctrl-C again to abort)...\n');
        app.runner.cancel(jobId);
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      try {
        return await done;
      } finally {
        process.off('SIGINT', onSigint);
        app.runner.off('event', onEvent);
      }
    },
  };
  if (rest.includes('--help') || rest.includes('-h')) {
    out.info(`${cmd.summary}\nusage: ${cmd.usage}`);
    if (wantsJson) out.result({ command: name, usage: cmd.usage });
    return 0;
  }
  try {
    return await cmd.run(ctx);
  } catch (e) {
    return out.error(e);
  } finally {
    await appInstance?.runner.shutdown();
  }
}

/** Runs the CLI and exits with its code (bin/advlab.mjs calls this). */
export async function run(argv = process.argv.slice(2)): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    process.stderr.write(`advlab: ${(e as Error).stack ?? e}\n`);
    code = 1;
  }
  return exitWhenFlushed(code);
}
