/**
 * The survival re-check of a saved adversarial clip: "it works in memory, it fails on a second copy".
 *
 * An adversarial example found in memory may depend on things that do not travel with the file: samples
 * finer than 16 bits (lost when the file is written), values beyond full scale (clipped), or state in
 * the model instance that found it. The re-check takes only what a second user would have, the WAV file
 * as written and the model's file, and repeats the transcription with nothing shared:
 *  1. the WAV file is read back from disk and decoded (wav.ts);
 *  2. the model is loaded afresh from its model.json into a new SpeechModel instance;
 *  3. that instance transcribes the decoded clip (resampled to its rate, as any transcription is);
 *  4. the clip survived when this second copy's transcript equals the one the attack reported in memory.
 * The new instance is disposed before returning.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SpeechModel } from './model';
import { readWav } from './wav';

export interface SurvivalCheck {
  /** The second copy transcribed as the attack reported in memory. */
  survived: boolean;
  /** What the attack reported in memory. */
  inMemory: string;
  /** What the second copy (file read back, model loaded afresh) transcribes. */
  secondCopy: string;
  /** The WAV file re-read, and the sha256 of its bytes. */
  file: string;
  fileSha256: string;
  /** The model file the fresh instance was loaded from. */
  modelFile: string;
  seconds: number;
}

/** Re-checks a written WAV file (see the module docstring); `inMemory` is the transcript the attack reported. */
export async function recheckSaved(file: string, modelFile: string, inMemory: string): Promise<SurvivalCheck> {
  const t0 = performance.now();
  const bytes = await readFile(file);
  const wav = readWav(bytes, file);
  const fresh = await SpeechModel.load(modelFile);
  try {
    const secondCopy = (await fresh.transcribe(wav.samples, wav.sampleRate)).text;
    return {
      survived: secondCopy === inMemory,
      inMemory,
      secondCopy,
      file,
      fileSha256: createHash('sha256').update(bytes).digest('hex'),
      modelFile,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    fresh.dispose();
  }
}
