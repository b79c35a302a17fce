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
 *
 * That leaves the job's own model: its loading and its own code (the thermometer encoding and its BPDA
 * gradient, other layers than the small model's) made each thread's first shard of a job slower than
 * the next ones, and the first job after the app started 1.49-1.61x faster on 2 threads where warm
 * jobs got 1.85-1.91x (C&W, 5 Dec). So when a job has resolved its model, before it loads its data,
 * every pool thread prepares it (prepareClassifiers): loads it into the thread's classifier cache
 * (engine/shards/classifiers.ts, where the job's shards find it) and runs the same few attack steps
 * on two images of its input shape, while the job thread loads the dataset. A preparation changes no
 * result: the cache holds the model the shard would load, sha256-checked the same way.
 */
import * as tf from '@tensorflow/tfjs';
import { attackOneBatch, parseAttackParams } from '../attacks/base';
import { getAttack } from '../attacks/registry';
import { silentContext } from '../context';
import { badInput } from '../errors';
import { fromLayersModel, type Classifier } from '../models/classifier';
import { classifierFromSpec } from './classifiers';
import type { ClassifierSpec } from './types';

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

function checkAttacks(attacks: readonly string[]): void {
  for (const id of attacks) {
    if (!Object.hasOwn(WARM_UP_ATTACKS, id)) throw badInput(`No warm-up for attack "${id}" (warm-up attacks: ${Object.keys(WARM_UP_ATTACKS).join(', ')})`);
  }
}

/** The warm-up attacks for a few steps on `count` seeded images of the classifier's input shape; leaves no tensor behind. */
async function attackBriefly(classifier: Classifier, attacks: readonly string[], count: number): Promise<void> {
  const before = tf.memory().numTensors;
  const [h, w, c] = classifier.inputShape;
  const images = tf.tidy(() => tf.randomUniform([count, h, w, c], 0, 1, 'float32', 7).dataSync() as Float32Array);
  const labels = Int32Array.from({ length: count }, (_, i) => i % classifier.numClasses);
  const targets = Int32Array.from(labels, (l) => (l + 1) % classifier.numClasses);
  for (const id of attacks) {
    const def = getAttack(id);
    const p = parseAttackParams(def, WARM_UP_ATTACKS[id], classifier);
    // Targeted when the attack is (C&W), untargeted otherwise: the goal's own code paths.
    await attackOneBatch(def, p, classifier, images, labels, def.id === 'cw-l2' ? targets : null, silentContext, () => {});
  }
  const left = tf.memory().numTensors - before;
  if (left !== 0) throw new Error(`The warm-up left ${left} tensor(s) behind`);
}

/**
 * Runs `attacks` (ids of WARM_UP_ATTACKS; an unknown id is a BAD_INPUT error naming the accepted ones)
 * for a few steps each on a small in-memory classifier, in this thread; leaves no tensor behind.
 */
export async function warmUpEngine(attacks: readonly string[] = DEFAULT_WARM_UP): Promise<WarmUpReport> {
  checkAttacks(attacks);
  const t0 = performance.now();
  const model = warmUpModel();
  try {
    await attackBriefly(fromLayersModel(model), attacks, WARM_UP_IMAGES);
  } finally {
    model.dispose();
  }
  return { attacks: [...attacks], ms: performance.now() - t0 };
}

/** Images per preparation batch: the model's own code paths, not a workload. */
const PREPARE_IMAGES = 2;

export interface PrepareReport {
  /** The specs' sha256, in order. */
  models: string[];
  ms: number;
}

/**
 * Prepares a job's models in this thread before its shards come: each is loaded into the thread's
 * classifier cache (classifierFromSpec: sha256-checked, kept for the shards) and runs `attacks` for a
 * few steps on PREPARE_IMAGES seeded images of its input shape (its own forward and gradient code
 * compiled). A model that cannot be loaded is an error here and again in the shard that needs it.
 */
export async function prepareClassifiers(specs: readonly ClassifierSpec[], attacks: readonly string[] = DEFAULT_WARM_UP): Promise<PrepareReport> {
  checkAttacks(attacks);
  const t0 = performance.now();
  for (const spec of specs) await attackBriefly(await classifierFromSpec(spec), attacks, PREPARE_IMAGES);
  return { models: specs.map((s) => s.sha256), ms: performance.now() - t0 };
}
