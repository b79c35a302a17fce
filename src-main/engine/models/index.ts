/** Models: architectures, training and evaluation, save/load in the tfjs LayersModel format. */
export { type Classifier, fromLayersModel } from './classifier';
export {
  ARCHITECTURE_NAMES, type ArchName, type ArchitectureInfo, type BuildOptions, type LayerSpec,
  buildModel, isArchName, listArchitectures, paramCount, deriveSeed,
} from './architectures';
export {
  MODEL_JSON, WEIGHTS_BIN, ModelMetaSchema, type ModelMeta, type SavedModel, type LoadedModel,
  saveModel, loadModel, modelSha256, resolveModelJson, checkInputShape, modelInputShape, modelPathOf, setModelPath, writeFileAtomic,
} from './io';
export {
  type OptimizerName, type EarlyStopOptions, type TrainOptions, type ResolvedTrainOptions, type Batch,
  type TrainHooks, type BatchRow, type EpochRow, type TrainResult, trainClassifier, mulberry32,
} from './train';
export { type BatchInfo } from './batches';
export { type AugmentOptions, augmentBatch, augments, elasticField, parseAugment, shiftImage, warpImage } from './augment';
export { type LossFn, crossEntropyLoss, distillationLoss } from './losses';
export {
  type EvalOptions, type EvalResult, type Images, type ModelLike,
  argmaxAt, softmaxAt, softmax, batchLogits, evaluate, predictLogits, softLabels,
} from './predict';
