/**
 * Errors that cross process boundaries keep their code and fields: the job runner and both
 * transports serialise them as { code, message, details }.
 */
export type ErrorCode =
  | 'BAD_INPUT' // an impossible parameter, a malformed request
  | 'BAD_FILE' // a corrupt, truncated or wrongly shaped file
  | 'NOT_FOUND' // a dataset, model, session or file that is not there
  | 'UNSUPPORTED' // a format or option we do not handle
  | 'CANCELLED' // the user cancelled the job
  | 'CONFLICT' // e.g. a port in use, a session name taken
  | 'INTERNAL';

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

export function serializeError(e: unknown): SerializedError {
  if (isZodError(e)) {
    const issues = e.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`);
    return { code: 'BAD_INPUT', message: `Invalid parameters: ${issues.join('; ')}`, details: { issues } };
  }
  if (e instanceof AdvlabError) return { code: e.code, message: e.message, details: e.details };
  if (e instanceof Error) return { code: 'INTERNAL', message: e.message, details: { name: e.name, stack: e.stack?.split('\n').slice(0, 6).join('\n') } };
  return { code: 'INTERNAL', message: String(e), details: {} };
}

function isZodError(e: unknown): e is Error & { issues: { path: PropertyKey[]; message: string }[] } {
  return e instanceof Error && e.name === 'ZodError' && Array.isArray((e as { issues?: unknown }).issues);
}
