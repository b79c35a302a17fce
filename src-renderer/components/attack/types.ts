/** What the Attack view's tabs share: the inputs above the tabs. */
export interface AttackInputs {
  model: string;
  dataset: string;
  n: number;
  seed: number;
}
