/** Evaluation: robust accuracy against epsilon, loss surfaces, gradient-masking checks (distances: attacks/distances.ts). */
export { robustAccuracyCurve, robustAccuracyFromDistances, fixedEpsilon, type AttackFactory, type CurvePoint } from './robustness';
export { lossSurface, type LossSurface, type LossSurfaceOptions } from './loss-surface';
export { gradientMaskingChecks, inputGradientNorms, surfaceRoughness, trainSurrogate, type MaskingCheck, type MaskingCheckOptions, type MaskingReport, type CheckStatus, type SurfaceRoughness } from './masking';
export { runEnsemble, resultOf, ensembleAttacks, EVALUATE_CHECKS, toBase64, fromBase64, type EnsembleAttack, type EnsembleState, type EnsembleOptions, type EnsembleHooks, type EnsembleResult, type EnsemblePerExample, type EnsembleVersion, type EnsembleNorm, type WaterfallStep } from './ensemble';
export { type EnsembleOutcome } from './masking';
export { minNormComparison, budgetParams, fabSteps, MINNORM_ATTACKS, MINNORM_CHOICES, type GivenAttack, type MinNormOptions, type MinNormResult, type MinNormAttackResult } from './minnorm';
