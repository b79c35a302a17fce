/**
 * The survival re-check of every adversarial WAV an audio job saves (engine/audio/survival.ts): the
 * file as written in the session is read back, the model is loaded afresh from its file, and the second
 * copy's transcript is compared with the one reported in memory. The session keeps the check as
 * survival.json (one row per re-checked file) and its summary says whether the clip survived.
 */
import type { JobContext } from '../../engine/context';
import { recheckSaved, type SurvivalCheck } from '../../engine/audio';
import type { SessionWriter } from '../../engine/sessions';

/** The summary fields a re-check adds to an audio session. */
export interface SurvivalSummary {
  /** Every re-checked file transcribed on its second copy as reported in memory. */
  survived: boolean;
  /** The first re-checked file's second-copy transcript (the adversarial clip's, for an attack). */
  secondCopyTranscript: string;
  /** How many files were re-checked and how many survived. */
  survivalChecked: number;
  survivalPassed: number;
}

/**
 * Re-checks the named artifacts (each already written by `writer`) against their in-memory transcripts,
 * writes survival.json and returns the summary fields.
 */
export async function recheckArtifacts(writer: SessionWriter, modelFile: string, items: { path: string; inMemory: string }[], ctx: JobContext): Promise<SurvivalSummary> {
  const rows: (SurvivalCheck & { artifact: string })[] = [];
  // No cancel check here: a cancelled job that keeps what it found re-checks that too (one transcription per file).
  for (const it of items) {
    const check = await recheckSaved(writer.artifactPath(it.path), modelFile, it.inMemory);
    rows.push({ ...check, artifact: it.path });
    if (!check.survived) ctx.log(`${it.path} did not survive the re-check: in memory "${check.inMemory}", read back with a freshly loaded model "${check.secondCopy}"`);
  }
  await writer.writeArtifact('survival.json', JSON.stringify(rows.map(({ file: _f, ...r }) => r), null, 1), 'table',
    'survival re-check: each adversarial WAV read back from disk and transcribed by the model loaded afresh from its file');
  return {
    survived: rows.every((r) => r.survived),
    secondCopyTranscript: rows[0]?.secondCopy ?? '',
    survivalChecked: rows.length,
    survivalPassed: rows.filter((r) => r.survived).length,
  };
}
