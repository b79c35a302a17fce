/**
 * Hex digests (a file's SHA-256, a commit) in session tables: 40 to 128 hex digits are shown cut to their
 * first 12 (the full value in the cell's title, copied on click), so a digest column does not push its
 * table sideways.
 */
const DIGEST = /^[0-9a-f]{40,128}$/i;
const SHOWN = 12;

/** The value's short form when it is a hex digest; null for anything else. */
export function shortDigest(v: unknown): string | null {
  return typeof v === 'string' && DIGEST.test(v) ? `${v.slice(0, SHOWN)}…` : null;
}
