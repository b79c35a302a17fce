/**
 * The Classifier for a saved model, with whatever its metadata says must happen to inputs first.
 * A defense that changes the input (thermometer encoding) lives here so that every attack, eval and
 * job sees the whole defended pipeline, images in [0, 1] in, logits out.
 */
import type { LoadedModel } from './io';
import { fromLayersModel, type Classifier } from './classifier';

export function classifierFor(loaded: LoadedModel): Classifier {
  return fromLayersModel(loaded.model);
}
