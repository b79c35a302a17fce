/**
 * How a session's files are displayed, from saved data alone (the Sessions view, `sessions.view`, the
 * HTML report and the CSV export all follow these rules). A job kind that writes its session this way
 * is displayed with no code in the viewer:
 *
 * - `manifest.summary`: the headline numbers (accuracy, success rate, mean L2, WER, ...). The listing
 *   shows the first few of KEY_METRICS that are present; comparisons tabulate every key.
 * - `metrics/<series>.jsonl`: one chart per series (and per family: loss / rates in [0, 1] / other
 *   values). The x axis is the first of X_KEYS that is numeric in the rows (`step`, `iteration`,
 *   `eps`, `epoch`, ...), else the row number. Bookkeeping columns (IGNORED_COLUMNS) are not drawn.
 *   A series with none of X_KEYS whose rows hold text (one row per check, per answer, ...) is shown
 *   as a table instead.
 *   Series with the same name are overlaid when sessions are compared.
 * - `artifacts/examples.json`: the per-example rows (an array of flat objects, or `{ rows: [...] }`);
 *   shown as a table and exported as CSV. Cells that are a path of an image or audio artifact
 *   (relative to `artifacts/`, e.g. "grid/adv-3.png") are shown as that image or player. Artifacts
 *   named `<folder>/<index>-<variant>.<png|wav>` (e.g. `examples/7-adv.png`) are attached to the row
 *   whose `index` is 7, as a column `<variant>`.
 * - Any other JSON artifact holding rows (an array of objects, or an object with one array of objects
 *   such as `points`, `perExample`, `examples`) is shown as a table too; CSV/TSV artifacts likewise.
 * - `artifacts/confusion.json` `{ classNames, confusion[true][predicted] }`: a heat map.
 * - `artifacts/loss-surface.json` `{ alphas, betas, loss[i][j] }` or `{ surfaces: [that, ...] }`
 *   (optionally with `predicted[i][j]`, `directions`): a heat map per surface.
 * - `artifacts/report.json` with a `claim` and a `table` of { what, measured, reference, unit } rows (a
 *   recipe session): the claim, the verdict and the evidence next to the paper's numbers.
 * - `artifacts/**.png|jpg|gif|webp`: image galleries, one per folder (`grid/` first), in name order,
 *   captioned with the manifest's artifact description.
 * - `artifacts/**.wav`: audio players with a waveform (16-bit PCM, float32 or 8/24/32-bit PCM).
 * - Everything else is listed with its size (model files are never embedded in reports).
 */

export const EXAMPLES_FILE = 'examples.json';
/** A case study's report: `{ title, claim, finding, claimReproduced, criterion, table: [{ what, measured, reference, unit }], notes }`. */
export const CLAIM_FILE = 'report.json';
export const CONFUSION_FILE = 'confusion.json';
export const LOSS_SURFACE_FILE = 'loss-surface.json';
export const GRID_DIR = 'grid';

/** Candidate x columns of a metric series, in order of preference. */
export const X_KEYS = ['step', 'iteration', 'iter', 'eps', 'epsilon', 'epoch', 'index', 'alpha', 't'] as const;

/** Columns never drawn as a line (counters and timings). */
export const IGNORED_COLUMNS = new Set([
  'step', 'iteration', 'iter', 'epoch', 'batch', 'index', 'size', 'batches', 'images', 'seconds', 'ms', 'elapsedSeconds', 'time', 't',
]);

/** Summary keys shown first in listings, in order of preference. */
export const KEY_METRICS = [
  'testAccuracy', 'accuracy', 'successRate', 'robustAccuracy', 'meanL2', 'medianL2', 'meanLinf', 'wer', 'cer', 'distortionDb',
  'meanDistortionDb', 'snrDb', 'transferRate', 'detectionRate', 'cleanAccuracy', 'meanL0', 'valAccuracy', 'testLoss',
] as const;

/** Summary keys that are bookkeeping rather than results (never chosen as key metrics). */
export const BOOKKEEPING_KEY = /(seconds|perSecond|PerExample|Images$|^n$|^index$|^label$|^epochsRun$|sha256|^trainImages$|^testImages$)/i;

export const IMAGE_EXT = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'svg'];
export const AUDIO_EXT = ['wav', 'mp3', 'ogg', 'flac', 'opus'];

export function extOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot < 0 ? '' : base.slice(dot + 1).toLowerCase();
}

export function isImagePath(path: string): boolean {
  return IMAGE_EXT.includes(extOf(path));
}

export function isAudioPath(path: string): boolean {
  return AUDIO_EXT.includes(extOf(path));
}
