/**
 * The 'surface-rows' shard: one batch of a loss surface's grid points (engine/eval/loss-surface.ts)
 * on a saved model. The worker rebuilds the classifier (cached, sha256-checked) and runs surfaceBatch,
 * the function lossSurface runs in place, on the same points: the same values.
 */
import * as tf from '@tensorflow/tfjs';
import type { JobContext } from '../context';
import { badInput } from '../errors';
import { oneHotRow, surfaceBatch, type SurfaceRowsResult, type SurfaceRowsTask } from '../eval/loss-surface';
import { classifierFromSpec } from './classifiers';

export async function runSurfaceRows(task: SurfaceRowsTask, ctx: JobContext): Promise<SurfaceRowsResult> {
  ctx.checkpoint();
  const classifier = await classifierFromSpec(task.classifier);
  const [h, w, c] = classifier.inputShape;
  const per = h * w * c;
  if (task.x.length !== per || task.d1.length !== per || task.d2.length !== per) throw badInput(`A surface shard's image and directions must have ${per} values each`);
  if (task.alphas.length !== task.betas.length) throw badInput('A surface shard needs one beta per alpha');
  if (!Number.isInteger(task.label) || task.label < 0 || task.label >= classifier.numClasses) throw badInput(`Label ${task.label} is not a class of the model`);
  const x = tf.tensor4d(task.x, [1, h, w, c]), d1 = tf.tensor4d(task.d1, [1, h, w, c]), d2 = tf.tensor4d(task.d2, [1, h, w, c]);
  const onehot = oneHotRow(task.label, classifier.numClasses);
  try {
    const out = surfaceBatch(classifier, x, d1, d2, onehot, task.alphas, task.betas, task.objective, task.clip);
    ctx.progress({ step: 1, total: 1 });
    return out;
  } finally {
    x.dispose(); d1.dispose(); d2.dispose(); onehot.dispose();
  }
}
