/** How the CLI and the status bar print a job's progress. */

/**
 * "phase step/total"; just the phase when its label already ends with its own count ("epoch 2/10
 * (120/938)"), as a recipe's phases do: the recipe's step/total are weighted units, not work items.
 */
export function progressText(e: { phase?: string; step: number; total: number }): string {
  const phase = e.phase ?? '';
  return /\(\d+\/\d+\)$/.test(phase) ? phase : `${phase} ${e.step}/${e.total}`.trim();
}
