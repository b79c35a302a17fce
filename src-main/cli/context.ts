/**
 * What every CLI command receives (CliContext) and what it is (Command), apart from the entry point
 * (index.ts) so that command modules import them without importing the CLI that imports them.
 */
import type { parseArgs, ParseArgsConfig } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobInfo } from '../api/contract';
import type { JobKind, JobParamsOf } from '../api/jobs';
import type { createApp } from '../host/app';
import type { Output } from './output';

/** The built renderer, next to the bundle that runs the CLI (out/main -> out/renderer). */
export const RENDERER_DIR = join(dirname(fileURLToPath(import.meta.url)), '../renderer');

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  data: { type: 'string' },
  sessions: { type: 'string' },
  backend: { type: 'string' },
  'max-jobs': { type: 'string' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type CommonFlags = { json?: boolean; data?: string; sessions?: string; backend?: string; 'max-jobs'?: string; workers?: string; help?: boolean };

export interface CliContext {
  out: Output;
  argv: string[];
  app: () => ReturnType<typeof createApp>;
  /** Runs a job in a worker, streaming progress to stderr; Ctrl-C cancels it. */
  runJob<K extends JobKind>(kind: K, params: JobParamsOf<K>): Promise<JobInfo<K>>;
  parse<O extends NonNullable<ParseArgsConfig['options']>>(options: O, allowPositionals?: boolean): ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof COMMON_OPTIONS; allowPositionals: boolean; strict: true }>>;
}

export type Command = { summary: string; usage: string; run(c: CliContext): Promise<number> };
