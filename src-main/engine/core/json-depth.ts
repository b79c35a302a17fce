/** A bound on JSON nesting, for text that comes from outside (API bodies, manifests in archives). */

/**
 * Deepest nesting of arrays and objects accepted in JSON from outside: far above any parameters or
 * manifest AdvLab writes, far below what would overflow a recursive walk (validation, cloning).
 */
export const MAX_JSON_DEPTH = 64;

/** Nesting depth of arrays and objects in JSON text, counted without parsing; stops once past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * What is wrong with JSON text, from JSON.parse's error, without the text itself: V8 quotes the text
 * around the error (`Unexpected token 'T', "TOP-SECRE"... is not valid JSON`), and a file that is not
 * JSON (a key, a password file given as a model) must not have its contents echoed in an error.
 */
export function jsonSyntaxProblem(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/,\s*"[\s\S]*"\s*is not valid JSON\s*$/, '').replace(/"[\s\S]*"/g, '"..."');
}
