/**
 * The starter pack shipped with the app (resources/starter, see its README.md and ATTRIBUTION.md):
 * small samples of MNIST, Fashion-MNIST and FSDD under data/, and models trained by AdvLab itself
 * under models/<name>/ (model.json, weights.bin, MODEL_CARD.md, starter.json), so that a fresh
 * install can attack something in its first minute.
 *
 * - The sample sets hold test images only (the first 1,000 of each test set): all of them are the
 *   test split, and there is no train split (train on a downloaded set: `advlab data get`).
 * - Its data folder is searched last: a real dataset of the same name in any data folder takes
 *   precedence. `starter:NAME` names the starter copy explicitly (`--dataset starter:mnist`), and
 *   `starter:MODEL` a starter model (`--model starter:cw-mnist`).
 * - Read-only: nothing in the app writes or deletes there.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const STARTER_PREFIX = 'starter:';

/**
 * The resources/starter folder next to the source tree or the built bundle, or $ADVLAB_STARTER;
 * undefined when absent or when ADVLAB_STARTER is set empty (no starter pack).
 */
export function starterDir(): string | undefined {
  const env = process.env.ADVLAB_STARTER;
  if (env !== undefined) return env === '' || !existsSync(env) ? undefined : resolve(env);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'resources', 'starter');
    if (existsSync(join(candidate, 'data'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** The starter pack's data folder (a data folder like any other, searched last), or undefined. */
export function starterDataDir(): string | undefined {
  const d = starterDir();
  return d ? join(d, 'data') : undefined;
}

/** True when `dir` is the starter pack's data folder. */
export function isStarterDataDir(dir: string | undefined): boolean {
  const s = starterDataDir();
  return !!dir && !!s && resolve(dir) === s;
}

/** `starter:NAME` -> NAME, else undefined. */
export function starterName(ref: string): string | undefined {
  return ref.startsWith(STARTER_PREFIX) ? ref.slice(STARTER_PREFIX.length) : undefined;
}

/** What models/<name>/starter.json says about a starter model (the card's numbers, for listings). */
export interface StarterModel {
  /** 'cw-mnist', 'small-cnn-fashion', ... : referenced as starter:<name>. */
  name: string;
  title: string;
  arch: string;
  dataset: string;
  /** Clean accuracy on the test set named in the card (image models). */
  testAccuracy?: number;
  kind: 'image' | 'speech';
  /** ISO date the model was trained. */
  trained: string;
  modelJson: string;
  card: string;
}

/** The starter models, sorted by name; [] without a starter pack. */
export function starterModels(): StarterModel[] {
  const root = starterDir();
  if (!root) return [];
  const dir = join(root, 'models');
  let names: string[] = [];
  try {
    names = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return [];
  }
  const out: StarterModel[] = [];
  for (const name of names) {
    try {
      const meta = JSON.parse(readFileSync(join(dir, name, 'starter.json'), 'utf8')) as Omit<StarterModel, 'name' | 'modelJson' | 'card'>;
      out.push({ ...meta, name, modelJson: join(dir, name, 'model.json'), card: join(dir, name, 'MODEL_CARD.md') });
    } catch {
      // not a starter model folder
    }
  }
  return out;
}
