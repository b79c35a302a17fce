/** An image classification dataset held in memory: NHWC float pixels in [0, 1]. */
export interface ImageSet {
  /** 'mnist', 'fashion-mnist', 'cifar10', or the folder name of an image folder. */
  name: string;
  /** n * h * w * c values in [0, 1], NHWC order. */
  images: Float32Array;
  /** Class index per image, length n. */
  labels: Uint8Array;
  /** [h, w, c] of one image. */
  shape: [number, number, number];
  classNames: string[];
  /**
   * Where it came from: files read and a content hash (sha256 hex) over them, for session manifests;
   * `indices`, when loadDataset picked images of the split (LoadDatasetOptions.choice), is each
   * image's index in the split, in the split's own numbering (absent: image k is the split's k-th).
   */
  source: { files: string[]; sha256: string; split?: string; indices?: Int32Array };
}

export function imageCount(set: ImageSet): number {
  return set.labels.length;
}
