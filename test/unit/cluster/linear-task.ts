/** The cluster tests' small attack shard: FGSM on 2 grey images through a saved, seeded linear model in `dir`. */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { modelSha256, saveModel } from '../../../src-main/engine/models/io';
import type { AttackBatchTask } from '../../../src-main/engine/attacks/base';

export async function linearModelTask(dir: string): Promise<AttackBatchTask> {
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })] });
  await saveModel(model, join(dir, 'model'), { arch: 'test-linear' });
  model.dispose();
  const modelJson = join(dir, 'model', 'model.json');
  return {
    classifier: { kind: 'saved', modelJson, sha256: await modelSha256(modelJson), gradient: 'real' },
    attack: 'fgsm', params: { eps: 0.1 }, images: new Float32Array(2 * 784).fill(0.5), shape: [2, 28, 28, 1], labels: new Int32Array([1, 2]), targets: null, batch: 0,
  };
}
