/**
 * The Classifier for a saved model, with whatever its metadata says must happen to inputs first.
 * A defense that changes the input (thermometer encoding) lives here so that every attack, eval and
 * job sees the whole defended pipeline, images in [0, 1] in, logits out.
 *
 * - meta.preprocessing.thermometerLevels = L: the network takes [h, w, c * L]; the Classifier takes
 *   [h, w, c] images and thermometer-encodes them first (Buckman et al. 2018). By default with the
 *   real encoding, whose input gradient is zero, as the defense is deployed; `gradient: 'bpda'` gives
 *   the same forward values with the BPDA gradient (Athalye et al. 2018), for adaptive attacks.
 * - meta.preprocessing.distillationTemperature: informational; a distilled network is deployed at
 *   T = 1, its logits used as they are.
 * - anything else: the network as it is (fromLayersModel).
 */
import { resolve } from 'node:path';
import { badFile } from '../errors';
import type { ClassifierSpec } from '../shards/types';
import { thermometerClassifier } from './preprocessing';
import type { LoadedModel } from './io';
import { setModelPath } from './io';
import { fromLayersModel, type Classifier } from './classifier';

export interface ClassifierOptions {
  /** Which gradient a preprocessing step exposes: 'real' (the deployed defense) or 'bpda'. Default 'real'. */
  gradient?: 'real' | 'bpda';
}

/**
 * The Classifier of a loaded model, carrying its spec (the absolute model.json, the files' sha256 and
 * the gradient option) so that shards of its attacks can rebuild it in another worker.
 */
export function classifierFor(loaded: LoadedModel, options: ClassifierOptions = {}): Classifier {
  const levels = loaded.meta.preprocessing?.thermometerLevels;
  const spec: ClassifierSpec = { kind: 'saved', modelJson: resolve(loaded.modelJson), sha256: loaded.sha256, gradient: options.gradient ?? 'real' };
  if (levels === undefined) {
    const plain: Classifier = { ...fromLayersModel(loaded.model), spec };
    setModelPath(plain, loaded.modelJson);
    return plain;
  }
  let clf: Classifier;
  try {
    clf = thermometerClassifier(loaded.model, levels, options.gradient ?? 'real');
  } catch (e) {
    throw badFile(loaded.modelJson, `userDefinedMetadata.preprocessing.thermometerLevels = ${levels} does not fit the network: ${(e as Error).message}`);
  }
  const declared = loaded.meta.inputShape;
  if (declared && declared.some((d, i) => d !== clf.inputShape[i])) {
    throw badFile(loaded.modelJson,
      `userDefinedMetadata.inputShape [${declared.join(', ')}] does not match the network input with ${levels} thermometer levels (images of [${clf.inputShape.join(', ')}])`);
  }
  const specified: Classifier = { ...clf, spec };
  setModelPath(specified, loaded.modelJson);
  return specified;
}
