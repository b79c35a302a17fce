/**
 * Image datasets: IDX (MNIST family), CIFAR-10 binary batches, folders of PNG/JPEG images, the
 * known-dataset registry with train/test splits, reproducible subsets and batching to tensors.
 */
export type { ImageSet } from './types';
export { imageCount } from './types';
export {
  loadDataset,
  listDatasets,
  knownDataset,
  parseSplitSpec,
  splitIndices,
  trainCount,
  KNOWN_DATASETS,
  MNIST_CLASSES,
  FASHION_MNIST_CLASSES,
  type LoadDatasetOptions,
  type DatasetListing,
  type DatasetFiles,
  type DatasetKind,
  type KnownDataset,
  type KnownDatasetName,
  type SplitName,
  type SplitSpec,
} from './registry';
export { appDataDirs, resolveDataDirs, SYSTEM_DATA_DIRS, type DataDirOptions } from './dirs';
export { subset, subsetIndices, chooseIndices, selectExamples, batchTensors, classCounts, mulberry32, permutation, type Pick, type ImageChoice } from './select';
export {
  parseIdxImages,
  parseIdxLabels,
  readIdxHeader,
  loadIdxPair,
  loadIdxImageSet,
  isGzip,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  type IdxImages,
} from './idx';
export {
  parseCifarBatch,
  readCifarClassNames,
  loadCifarBatchFiles,
  loadCifarImageSet,
  CIFAR10_CLASSES,
  CIFAR_RECORD_BYTES,
  CIFAR_TRAIN_FILES,
  CIFAR_TEST_FILE,
  CIFAR_META_FILE,
} from './cifar';
export { loadImageFolder, scanImageFolder, decodeImage, jpegComponents, type DecodedImage, type FolderScan } from './folder';
export { clearDataCache, dataCacheStats, combineHashes } from './cache';
export { fetchVerified, fileUrls, type RemoteFile, type FetchOptions, type FetchResult } from './download';
export { extractTarGz } from './tar';
export { DATASET_SOURCES, DOWNLOADABLE, datasetSource, describeSources, downloadDir, downloadStatus, type DownloadStatus, installDataset, wavFolderDigest, FSDD_COMMIT, FSDD_CONTENT_SHA256, type DatasetSource, type DownloadableName, type InstallOptions, type InstallResult } from './sources';

export { STARTER_PREFIX, isStarterDataDir, starterDataDir, starterDir, starterModels, starterName, type StarterModel } from './starter';
