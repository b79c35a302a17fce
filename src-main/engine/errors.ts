/**
 * Errors that cross process boundaries keep their code and fields: the job runner and both
 * transports serialise them as { code, message, details }.
 */
/**
 * Every error code, with the HTTP status the browser host answers it with (the caller's mistakes are
 * 4xx, ours 500). The browser host and the renderer's ApiError read this one list.
 */
export const ERROR_CODES = {
  BAD_INPUT: 400, // an impossible parameter, a malformed request
  BAD_FILE: 400, // a corrupt, truncated or wrongly shaped file
  UNSUPPORTED: 400, // a format or option we do not handle
  UNAUTHORIZED: 401, // a browser-host request without the launch token
  FORBIDDEN: 403, // a request from outside our windows, a path outside the allowed folder
  NOT_FOUND: 404, // a dataset, model, session or file that is not there
  CANCELLED: 409, // the user cancelled the job
  CONFLICT: 409, // e.g. a port in use, a session name taken
  NETWORK: 502, // a download that could not reach its host, got an HTTP error or lost its connection
  DISK_FULL: 507, // no space left while writing (ENOSPC)
  TOO_LARGE: 413, // a payload over what the API sends or accepts (e.g. an artifact too large to send whole)
  INTERNAL: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** HTTP status of an error code; 500 for a code this build does not know. */
export function httpStatusOf(code: string): number {
  return isErrorCode(code) ? ERROR_CODES[code] : 500;
}

export class AdvlabError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'AdvlabError';
    this.code = code;
    this.details = details;
  }
}

/** A file that cannot be read as what it claims to be: the message names the file and the problem. */
export function badFile(file: string, problem: string, details: Record<string, unknown> = {}): AdvlabError {
  return new AdvlabError('BAD_FILE', `${file}: ${problem}`, { file, ...details });
}

export function badInput(message: string, details: Record<string, unknown> = {}): AdvlabError {
  return new AdvlabError('BAD_INPUT', message, details);
}

/**
 * The one way cancellation travels: thrown (by ctx.checkpoint(), within one step of the cancel).
 * Work worth keeping rides on it as `partial` (the model trained so far, the attack's best so far);
 * a function that attaches one documents its type, and its caller takes it with keepPartial().
 */
export class CancelledError extends AdvlabError {
  readonly partial?: unknown;
  constructor(message = 'Cancelled by the user', partial?: unknown) {
    super('CANCELLED', message);
    this.name = 'CancelledError';
    if (partial !== undefined) this.partial = partial;
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
}

/** The parts of a zod issue the formatter reads (zod 4's $ZodIssue has them). */
export interface IssueLike {
  code?: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

export interface IssueFormat {
  /** Name for an issue at the root (empty path): '(params)', 'goal', 'parameters'. */
  root?: string;
  /** The input that was parsed: each message then says what it got ("eps": ... (got -1)). */
  input?: unknown;
  /** The accepted keys, listed after unknown ones. */
  accepted?: readonly string[];
}

/**
 * Zod issues as one line each, the one place they are worded. Without `input`: "path: message".
 * With `input`: unknown keys become `unknown parameter(s) "a", "b"` (with the accepted keys when
 * given), and any other issue `"path": message (got <value>)`.
 */
export function formatIssues(issues: readonly IssueLike[], f: IssueFormat = {}): string[] {
  const root = f.root ?? '(params)';
  return issues.map((i) => {
    const key = i.path.map(String).join('.');
    if (f.input === undefined) return `${key || root}: ${i.message}`;
    if (i.code === 'unrecognized_keys' && i.keys) {
      const accepted = f.accepted ? ` (accepted: ${f.accepted.join(', ')})` : '';
      return `unknown parameter${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}${accepted}`;
    }
    const got = key && f.input !== null && typeof f.input === 'object' ? (f.input as Record<string, unknown>)[String(i.path[0])] : f.input;
    return `${key ? `"${key}"` : root}: ${i.message} (got ${JSON.stringify(got)})`;
  });
}

export function serializeError(e: unknown): SerializedError {
  if (isZodError(e)) {
    const issues = formatIssues(e.issues);
    return { code: 'BAD_INPUT', message: `Invalid parameters: ${issues.join('; ')}`, details: { issues } };
  }
  if (e instanceof AdvlabError) return { code: e.code, message: e.message, details: e.details };
  if (e instanceof Error) return { code: 'INTERNAL', message: e.message, details: { name: e.name, stack: e.stack?.split('\n').slice(0, 6).join('\n') } };
  return { code: 'INTERNAL', message: String(e), details: {} };
}

function isZodError(e: unknown): e is Error & { issues: { path: PropertyKey[]; message: string }[] } {
  return e instanceof Error && e.name === 'ZodError' && Array.isArray((e as { issues?: unknown }).issues);
}
