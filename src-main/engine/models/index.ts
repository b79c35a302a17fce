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
  type OptimizerName, type EarlyStopOptions, type TrainOptions, type ResolvedTrainOptions, type BatchInfo, type Batch, type LossFn,
  type TrainHooks, type BatchRow, type EpochRow, type TrainResult, type EvalOptions, type EvalResult, type Images,
  trainClassifier, evaluate, predictLogits, softLabels, crossEntropyLoss, distillationLoss, mulberry32,
} from './train';
