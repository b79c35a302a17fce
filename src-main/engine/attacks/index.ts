/** Image attacks: one contract (runAttack), one file per attack, a registry for the UI. */
export * from './types';
export {
  runAttack,
  evaluateAdversarials,
  parseAttackParams,
  parseGoal,
  resolveTargets,
  resolveAttack,
  summarize,
  toImageData,
  toLabels,
  type ImageBatch,
  type LabelArray,
  type Judged,
} from './base';
export { ATTACKS, ATTACK_IDS, getAttack, attackCatalog, type AttackInfo } from './registry';
export { transferAttack, type TransferResult } from './transfer';
export { fgsm, type FgsmParams } from './fgsm';
export { pgd, pgdL2, pgdMargin, bim, gradientDescentAttack, defaultStepSize, type GradientSettings, type PgdParams, type PgdL2Params, type PgdMarginParams, type BimParams } from './pgd';
export { cwL2, carliniWagnerL2, type CwParams } from './cw';
export { ddn, decoupledDirectionNorm, type DdnParams } from './ddn';
export { distances, describeValues, distortionStats, percentileSorted, L0_TOLERANCE, type Distances, type Stats, type DistortionStats } from './distances';
export { crossEntropy, logitMargin, maxOther, notClassCrossEntropy, probability, ascentObjective, type AscentLoss } from './losses';
