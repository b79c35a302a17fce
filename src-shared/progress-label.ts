/**
 * Progress labels. A context that remaps progress into a share of a larger whole (a recipe's phases)
 * reports weighted units as step/total, so it puts the work's own count at the end of the label
 * ("adversarial training: epoch 1/10 (120/9380)"); the CLI and the status bar then print the label
 * alone. No dependencies: the renderer imports it too.
 */

type Counted = { phase?: string; step: number; total: number; message?: string };

const COUNT_SUFFIX = /\(\d+\/\d+\)$/;

/** `label (step/total)` when `p` is a count (whole numbers) and the label does not end with one already. */
export function withCount(label: string, p: Counted): string {
  if (!(p.total > 0) || !Number.isInteger(p.step) || !Number.isInteger(p.total) || COUNT_SUFFIX.test(label)) return label;
  return `${label} (${p.step}/${p.total})`;
}

/**
 * How the CLI and the status bar print progress: "phase step/total", or the phase alone when it ends with its own
 * count. A job whose step/total are not counts (seconds of audio synthesized, say) prints its message instead of
 * "3629.883875/5400", or the numbers rounded when it sends none.
 */
export function progressText(e: Counted): string {
  const phase = e.phase ?? '';
  if (COUNT_SUFFIX.test(phase)) return phase;
  if (Number.isInteger(e.step) && Number.isInteger(e.total)) return `${phase} ${e.step}/${e.total}`.trim();
  if (e.message) return `${phase} ${e.message}`.trim();
  return `${phase} ${Math.round(e.step)}/${Math.round(e.total)}`.trim();
}
