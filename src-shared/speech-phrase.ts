/**
 * A target phrase for the speech models, one rule for every place that reads one: the engine's default
 * alphabet (engine/audio/decode.ts) is built from SPEECH_SYMBOLS, the audio jobs normalise a target with
 * normalizePhrase, and the Audio view's forms (the attack and the universal perturbation) check it with
 * phraseError before a job starts. The job checks it again against its model's own alphabet, where it also
 * knows the clip's length. No dependencies: the renderer imports it too.
 */

/** The speech alphabet's symbols in class order: space, apostrophe, a-z (the CTC blank is the class after them). */
export const SPEECH_SYMBOLS: readonly string[] = Object.freeze([' ', "'", ...'abcdefghijklmnopqrstuvwxyz']);

/** Lower-cases, trims and collapses runs of white space to single spaces. */
export function normalizePhrase(text: string): string {
  return text.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** Why `text` cannot be a speech model's target phrase, as a whole sentence for a form, or null when it can. */
export function phraseError(text: string): string | null {
  const phrase = normalizePhrase(text);
  if (phrase === '') return 'enter a target phrase';
  const bad = [...new Set([...phrase].filter((ch) => !SPEECH_SYMBOLS.includes(ch)))];
  if (bad.length === 0) return null;
  const digits = bad.some((ch) => /\d/.test(ch)) ? ' (write numbers as words: “nine nine nine”)' : '';
  return `not in the model's alphabet (space, apostrophe, a-z): ${bad.map((ch) => `“${ch}”`).join(' ')}${digits}`;
}
