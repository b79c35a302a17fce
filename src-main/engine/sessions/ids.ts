/**
 * Session ids: `20261125-083012-train-3f9a` = UTC date, UTC time, kind, 4 random hex digits. They sort
 * by creation time as plain strings and read well in a file browser.
 */
import { randomBytes } from 'node:crypto';
import { badInput } from '../errors';
import { SESSION_ID_PATTERN } from './schema';

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** A random lowercase hex suffix of `digits` digits. */
export function randomSuffix(digits = 4): string {
  return randomBytes(Math.ceil(digits / 2)).toString('hex').slice(0, digits);
}

/** The kind as it appears in an id: lowercase letters, digits and '-', at most 24 characters. */
export function idKind(kind: string): string {
  const k = kind
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24);
  return k || 'session';
}

/** A new id for a session of `kind` created at `when`. */
export function newSessionId(kind: string, when: Date = new Date()): string {
  const date = `${when.getUTCFullYear()}${pad(when.getUTCMonth() + 1)}${pad(when.getUTCDate())}`;
  const time = `${pad(when.getUTCHours())}${pad(when.getUTCMinutes())}${pad(when.getUTCSeconds())}`;
  return `${date}-${time}-${idKind(kind)}-${randomSuffix()}`;
}

/** The creation time encoded in an id of our form, or null. */
export function dateFromId(id: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-/.exec(id);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  return Number.isFinite(t) ? new Date(t) : null;
}

export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID_PATTERN.test(id);
}

/** Throws BAD_INPUT unless `id` is a well-formed id (this also rules out '..', '/' and '.trash'). */
export function assertSessionId(id: unknown): asserts id is string {
  if (!isSessionId(id)) {
    throw badInput(`Invalid session id ${JSON.stringify(id)}: ids contain only letters, digits, ".", "_" and "-" and do not start with "."`);
  }
}
