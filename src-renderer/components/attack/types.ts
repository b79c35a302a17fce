import type { JobParamsOf } from '../../../src-main/api/jobs';

/** What the Attack view's tabs share: the inputs above the tabs. */
export interface AttackInputs {
  model: string;
  dataset: string;
  n: number;
  /** Which n (first after offset, or random by seed) and the offset: undefined until jobs.schemas gives their defaults. */
  pick?: JobParamsOf<'attack'>['pick'];
  offset?: number;
  seed: number;
  /** What computes logits and gradients (auto: ONNX Runtime where the model allows): undefined until jobs.schemas gives the default. */
  engine?: JobParamsOf<'attack'>['engine'];
}
