/**
 * Warming a fresh engine thread before its first shard (issue 17). A new pool thread pays for its
 * first shards twice: V8 compiles the engine's JavaScript (tfjs's kernel dispatch and gradient tape,
 * the layers' apply, the attacks' loops) as it first runs it, on the thread and on V8's helper
 * threads, and the first shard of a cold thread took 1.2-1.8x the CPU of the later ones (measured with
 * `advlab bench --suite parallel`, 5 Dec). Compiling the tfjs-wasm module itself is not the cost: a
 * thread initialises the wasm backend in about 30-40 ms of CPU (measured), so handing threads a
 * compiled WebAssembly.Module would save little.
 *
 * So a pool thread, once its backend is up, runs the registered attacks in WARM_UP_ATTACKS for a few
 * steps on a small convolutional classifier built in memory (conv, ReLU, max-pool, dense: the layers
 * of the bundled models, forward and gradient), through attackOneBatch, the very function an
 * 'attack-batch' shard runs. Nothing of it is kept: its tensors are disposed (checked) and its
 * randomness is seeded, so no later shard sees any trace of it.
 */
import * as tf from '@tensorflow/tfjs';
import { attackOneBatch, parseAttackParams } from '../attacks/base';
import { getAttack } from '../attacks/registry';
import { silentContext } from '../context';
import { badInput } from '../errors';
import { fromLayersModel } from '../models/classifier';

/**
 * The attacks a warm-up may run, each with the few steps it runs: enough to take every code path of
 * a step (PGD's random start and projection; C&W's binary search, Adam and abort-early bookkeeping).
 */
export const WARM_UP_ATTACKS: Readonly<Record<string, Record<string, unknown>>> = {
  pgd: { eps: 0.1, steps: 2, randomStart: true, seed: 0 },
  'cw-l2': { binarySearchSteps: 1, maxIterations: 3 },
};

/** What a pool thread warms up with when nothing says otherwise: every attack of WARM_UP_ATTACKS. */
export const DEFAULT_WARM_UP: readonly string[] = Object.keys(WARM_UP_ATTACKS);

/** Images per warm-up batch, and their side (the kernels and the code they run do not depend on the size). */
const WARM_UP_IMAGES = 4;
const WARM_UP_SIDE = 12;

export interface WarmUpReport {
  /** The attacks it ran, in order. */
  attacks: string[];
  ms: number;
}

/** A small classifier with the bundled models' layers, its weights seeded (the same in every thread). */
function warmUpModel(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [WARM_UP_SIDE, WARM_UP_SIDE, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ units: 10, kernelInitializer: init(4) }),
    ],
  });
}

/**
 * Runs `attacks` (ids of WARM_UP_ATTACKS; an unknown id is a BAD_INPUT error naming the accepted ones)
 * for a few steps each on a small in-memory classifier, in this thread; leaves no tensor behind.
 */
export async function warmUpEngine(attacks: readonly string[] = DEFAULT_WARM_UP): Promise<WarmUpReport> {
  for (const id of attacks) {
    if (!Object.hasOwn(WARM_UP_ATTACKS, id)) throw badInput(`No warm-up for attack "${id}" (warm-up attacks: ${Object.keys(WARM_UP_ATTACKS).join(', ')})`);
  }
  const t0 = performance.now();
  const before = tf.memory().numTensors;
  const model = warmUpModel();
  try {
    const classifier = fromLayersModel(model);
    const images = tf.tidy(() => tf.randomUniform([WARM_UP_IMAGES, WARM_UP_SIDE, WARM_UP_SIDE, 1], 0, 1, 'float32', 7).dataSync() as Float32Array);
    const labels = Int32Array.from({ length: WARM_UP_IMAGES }, (_, i) => i % 10);
    const targets = Int32Array.from(labels, (l) => (l + 1) % 10);
    for (const id of attacks) {
      const def = getAttack(id);
      const p = parseAttackParams(def, WARM_UP_ATTACKS[id], classifier);
      // Targeted when the attack is (C&W), untargeted otherwise: the goal's own code paths.
      await attackOneBatch(def, p, classifier, images, labels, def.id === 'cw-l2' ? targets : null, silentContext, () => {});
    }
  } finally {
    model.dispose();
  }
  const left = tf.memory().numTensors - before;
  if (left !== 0) throw new Error(`The warm-up left ${left} tensor(s) behind`);
  return { attacks: [...attacks], ms: performance.now() - t0 };
}
