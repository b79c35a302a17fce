/**
 * The dataset select of the Attack and Evaluate views follows the model: picking a model picks the test split of
 * the dataset it was trained on. Models and datasets load separately, so a model can be picked (or the first one
 * chosen) before the dataset list has arrived: its dataset is then taken as asked, and checked when the list comes.
 */

/** The dataset after picking a model trained on `modelDataset`; `datasets` is null while the list is still loading. */
export function datasetForModel(modelDataset: string | undefined, datasets: readonly { name: string }[] | null, current: string): string {
  if (!modelDataset) return current;
  if (datasets === null) return modelDataset;
  return datasets.some((d) => d.name === modelDataset) ? modelDataset : current;
}

/** The dataset once the list has loaded: the one asked for when it is there, else the list's first (or none). */
export function datasetOnceListed(current: string, datasets: readonly { name: string }[]): string {
  return datasets.some((d) => d.name === current) ? current : (datasets[0]?.name ?? '');
}
