/** Evaluation: distortion statistics, robust accuracy against epsilon, loss surfaces. */
export { distances, describeValues, distortionStats, percentileSorted, L0_TOLERANCE, type Distances, type Stats, type DistortionStats } from './stats';
export { robustAccuracyCurve, robustAccuracyFromDistances, fixedEpsilon, type AttackFactory, type CurvePoint } from './robustness';
export { lossSurface, type LossSurface, type LossSurfaceOptions } from './loss-surface';
export { gradientMaskingChecks, inputGradientNorms, surfaceRoughness, trainSurrogate, type MaskingCheck, type MaskingCheckOptions, type MaskingReport, type CheckStatus, type SurfaceRoughness } from './masking';
