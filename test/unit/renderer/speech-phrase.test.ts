/**
 * The target-phrase rule the Audio view's two forms (the attack and the universal perturbation) check
 * before a job starts, and the engine's default alphabet, come from one place (src-shared/speech-phrase.ts).
 */
import { describe, expect, it } from 'vitest';
import { normalizePhrase, phraseError, SPEECH_SYMBOLS } from '../../../src-shared/speech-phrase';
import { DEFAULT_ALPHABET } from '../../../src-main/engine/audio/decode';
import { normalizeTarget } from '../../../src-main/engine/audio/attack';

describe('the speech target phrase', () => {
  it("is read as the jobs read it, over the engine's default alphabet", () => {
    expect(DEFAULT_ALPHABET.symbols).toEqual(SPEECH_SYMBOLS);
    expect(normalizePhrase('  Open   the Door ')).toBe('open the door');
    expect(normalizeTarget).toBe(normalizePhrase);
  });

  it('one message: empty, characters outside the alphabet (each once), and a hint for digits', () => {
    expect(phraseError('   ')).toBe('enter a target phrase');
    expect(phraseError("Don't  STOP")).toBeNull();
    expect(phraseError('Nine 9 nine!!')).toBe("not in the model's alphabet (space, apostrophe, a-z): “9” “!” (write numbers as words: “nine nine nine”)");
    expect(phraseError('héllo')).toBe("not in the model's alphabet (space, apostrophe, a-z): “é”");
  });
});
