/**
 * Known datasets, recognised by their files in a list of data folders, and loading them by name
 * with a train/test split, an optional reproducible subset, and a record of what was chosen.
 *
 * - 'mnist': <data>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 * - 'fashion-mnist': <data>/fashion-mnist/... the same four names (Debian's dataset-fashion-mnist
 *   installs them to /usr/share/datasets/fashion-mnist)
 * - 'cifar10': <data>/cifar-10-batches-bin/ or <data>/cifar10/ with data_batch_1..5.bin, test_batch.bin
 * - any other name: an image folder <data>/<name>/ (or a path to one), see folder.ts
 *
 * A set with both a training and a test file uses them (our MNIST copy: the first 10,000 training
 * images and the 10,000 test images), and a split spec given for it is refused. A set with only one
 * file (an IDX or CIFAR copy of the test files alone, a folder of images without train/ and test/)
 * is split by a declared split spec, recorded in source.split:
 * - 'first:N' or 'first:P%': the first N (or P%) images are train, the rest test
 *   (default for IDX and CIFAR files: first:80%, i.e. 8000 / 2000 for a 10,000-image test file);
 * - 'last:N' or 'last:P%': the last N (or P%) images are train, the first ones test (for MNIST's test
 *   file alone: hold out its first, cleaner images, the ones Carlini & Wagner attacked);
 * - 'random:N' or 'random:P%', optionally ':SEED': a seeded permutation's first N are train
 *   (default for image folders, whose files are ordered by class: random:80%, seed 0).
 * A model trained on such a split records it; see LoadDatasetOptions.modelSplitSpec for how it is
 * honoured once the set has its own train and test files.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { type JobContext, silentContext } from '../context';
import { AdvlabError, badInput } from '../errors';
import { CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES, loadCifarBatchFiles, readCifarClassNames } from './cifar';
import { folderReference, readFolderImages, scanImageFolder, type FolderEntry, type FolderScan } from './folder';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, loadIdxPair, readIdxHeader } from './idx';
import { gatherFloat } from './raw';
import { isStarterDataDir, starterDataDir, starterName } from './starter';
import { chooseIndices, permutation, subsetIndices, type ImageChoice } from './select';
import type { ImageSet } from './types';

export type SplitName = 'train' | 'test';
export type DatasetKind = 'idx' | 'cifar10' | 'image-folder';
export type KnownDatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';

export interface KnownDataset {
  name: KnownDatasetName;
  kind: 'idx' | 'cifar10';
  title: string;
  /** Folder names looked for inside each data folder (a data folder with one of these names also counts). */
  dirNames: string[];
  classNames: string[];
  /** What the folder should contain, for error messages. */
  expects: string;
}

const IDX_EXPECTS = 'train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] and/or t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz]';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const KNOWN_DATASETS: readonly KnownDataset[] = [
  { name: 'mnist', kind: 'idx', title: 'MNIST handwritten digits', dirNames: ['mnist'], classNames: MNIST_CLASSES, expects: IDX_EXPECTS },
  {
    name: 'fashion-mnist',
    kind: 'idx',
    title: 'Fashion-MNIST (Zalando)',
    dirNames: ['fashion-mnist', 'fashion_mnist'],
    classNames: FASHION_MNIST_CLASSES,
    expects: IDX_EXPECTS,
  },
  {
    name: 'cifar10',
    kind: 'cifar10',
    title: 'CIFAR-10 (binary version)',
    dirNames: ['cifar-10-batches-bin', 'cifar10', join('cifar10', 'cifar-10-batches-bin'), 'cifar-10'],
    classNames: [], // from batches.meta.txt, else the standard ten
    expects: 'data_batch_1.bin .. data_batch_5.bin and/or test_batch.bin (+ batches.meta.txt)',
  },
];

const ALIASES: Record<string, KnownDatasetName> = { fashion_mnist: 'fashion-mnist', fashionmnist: 'fashion-mnist', 'cifar-10': 'cifar10' };

/** The known dataset a name refers to (case-insensitive, a few aliases), or undefined. */
export function knownDataset(name: string): KnownDataset | undefined {
  const n = name.toLowerCase();
  const canonical = ALIASES[n] ?? n;
  return KNOWN_DATASETS.find((d) => d.name === canonical);
}

// ---------------------------------------------------------------------------------------------
// Split specs

export interface SplitSpec {
  kind: 'first' | 'last' | 'random';
  /** Number of training examples, or a fraction of the pool (0..1) when given as a percentage. */
  count?: number;
  fraction?: number;
  /** Seed of the permutation for 'random'. */
  seed: number;
  /** The spec as written, normalised. */
  text: string;
}

/** Parses 'first:8000', 'first:80%', 'last:8000', 'random:80%', 'random:500:7' (seed 7). */
export function parseSplitSpec(text: string): SplitSpec {
  const m = /^\s*(first|last|random)\s*:\s*(\d+(?:\.\d+)?)(%?)\s*(?::\s*(\d+))?\s*$/i.exec(text);
  if (!m) throw badInput(`split spec "${text}" not understood: use first:N, first:P%, last:N, last:P%, random:N or random:P% (optionally random:P%:SEED)`);
  const kind = m[1].toLowerCase() as 'first' | 'last' | 'random';
  if (kind !== 'random' && m[4] !== undefined) throw badInput(`split spec "${text}": a seed only applies to random splits`);
  const seed = m[4] === undefined ? 0 : Number(m[4]);
  const v = Number(m[2]);
  if (m[3] === '%') {
    if (!(v > 0 && v < 100)) throw badInput(`split spec "${text}": the percentage must be between 0 and 100`);
    return { kind, fraction: v / 100, seed, text: `${kind}:${v}%${kind === 'random' && seed ? `:${seed}` : ''}` };
  }
  if (!Number.isInteger(v) || v < 1) throw badInput(`split spec "${text}": the training count must be a whole number >= 1`);
  return { kind, count: v, seed, text: `${kind}:${v}${kind === 'random' && seed ? `:${seed}` : ''}` };
}

/** Number of training examples a spec takes from a pool of `total`; both sides must be non-empty. */
export function trainCount(spec: SplitSpec, total: number): number {
  const n = spec.count ?? Math.round((spec.fraction ?? 0) * total);
  if (n < 1 || n >= total) {
    throw badInput(`split ${spec.text} leaves an empty ${n < 1 ? 'train' : 'test'} side: the pool has ${total} images`, { total, train: n });
  }
  return n;
}

/** The pool indices (ascending) of one side of a declared split. */
export function splitIndices(spec: SplitSpec, total: number, split: SplitName): Int32Array {
  const n = trainCount(spec, total);
  if (spec.kind === 'first' || spec.kind === 'last') {
    const cut = spec.kind === 'first' ? n : total - n;
    const [a, b] = (split === 'train') === (spec.kind === 'first') ? [0, cut] : [cut, total];
    return Int32Array.from({ length: b - a }, (_, i) => a + i);
  }
  const p = permutation(total, spec.seed);
  return (split === 'train' ? p.slice(0, n) : p.slice(n)).sort();
}

// ---------------------------------------------------------------------------------------------
// Locating datasets

type PoolRole = SplitName | 'all';

interface OpenPool {
  count: number;
  shape: [number, number, number];
  read(indices: ArrayLike<number>, ctx: JobContext): Promise<{ images: Float32Array; labels: Uint8Array; files: string[]; sha256: string }>;
}

interface Pool {
  role: PoolRole;
  /** 't10k', 'train', 'data_batch_1-5', 'test_batch', 'train/', 'all': for descriptions. */
  label: string;
  files: string[];
  /** Number of examples, read from headers or file sizes only. */
  peek(): Promise<number>;
  open(): Promise<OpenPool>;
}

interface Located {
  name: string;
  kind: DatasetKind;
  dir: string;
  dataDir?: string;
  classNames: string[];
  shape?: [number, number, number];
  pools: Partial<Record<PoolRole, Pool>>;
  problems: string[];
  defaultSpec: string;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function candidateDirs(def: KnownDataset, dataDir: string): string[] {
  const out: string[] = [];
  if (def.dirNames.includes(basename(dataDir))) out.push(dataDir);
  for (const n of def.dirNames) {
    const p = join(dataDir, n);
    if (!out.includes(p) && isDirectory(p)) out.push(p);
  }
  return out;
}

function findIdxFile(dir: string, prefix: string, what: 'images' | 'labels'): string | undefined {
  const d = what === 'images' ? 3 : 1;
  for (const base of [`${prefix}-${what}-idx${d}-ubyte`, `${prefix}-${what}.idx${d}-ubyte`]) {
    for (const ext of ['.gz', '']) {
      const p = join(dir, base + ext);
      if (existsSync(p)) return p;
    }
  }
  return undefined;
}

function locateIdx(def: KnownDataset, dir: string): Located | undefined {
  const loc: Located = { name: def.name, kind: 'idx', dir, classNames: def.classNames, pools: {}, problems: [], defaultSpec: 'first:80%' };
  for (const [role, prefix] of [
    ['train', 'train'],
    ['test', 't10k'],
  ] as const) {
    const images = findIdxFile(dir, prefix, 'images');
    const labels = findIdxFile(dir, prefix, 'labels');
    if (images && labels) {
      loc.pools[role] = {
        role,
        label: prefix,
        files: [images, labels],
        async peek() {
          const [hi, hl] = await Promise.all([readIdxHeader(images), readIdxHeader(labels)]);
          if (hi.magic !== IDX_IMAGES_MAGIC) throw new AdvlabError('BAD_FILE', `${images}: not an IDX images file`, { file: images });
          if (hl.magic !== IDX_LABELS_MAGIC) throw new AdvlabError('BAD_FILE', `${labels}: not an IDX labels file`, { file: labels });
          if (hi.dims[0] !== hl.dims[0]) {
            throw new AdvlabError('BAD_FILE', `${labels}: has ${hl.dims[0]} labels but ${basename(images)} has ${hi.dims[0]} images`, { file: labels });
          }
          loc.shape = [hi.dims[1], hi.dims[2], 1];
          return hi.dims[0];
        },
        async open() {
          const pair = await loadIdxPair(images, labels, def.classNames.length);
          return {
            count: pair.part.count,
            shape: pair.shape,
            read: async (indices) => ({ ...gatherFloat([pair.part], pair.shape, indices), files: pair.files, sha256: pair.sha256 }),
          };
        },
      };
    } else if (images || labels) {
      const missing = images ? `${prefix}-labels-idx1-ubyte[.gz]` : `${prefix}-images-idx3-ubyte[.gz]`;
      loc.problems.push(`${images ?? labels} has no matching ${missing} beside it`);
    }
  }
  return loc.pools.train || loc.pools.test || loc.problems.length ? loc : undefined;
}

function locateCifar(def: KnownDataset, dir: string): Located | undefined {
  const train = CIFAR_TRAIN_FILES.map((f) => join(dir, f)).filter((p) => existsSync(p));
  const test = [join(dir, CIFAR_TEST_FILE)].filter((p) => existsSync(p));
  if (train.length === 0 && test.length === 0) return undefined;
  const loc: Located = { name: def.name, kind: 'cifar10', dir, classNames: [], shape: [32, 32, 3], pools: {}, problems: [], defaultSpec: 'first:80%' };
  try {
    loc.classNames = readCifarClassNames(dir).classNames;
  } catch (e) {
    loc.problems.push((e as Error).message);
    return loc;
  }
  const pool = (role: SplitName, files: string[], label: string): Pool => ({
    role,
    label,
    files,
    async peek() {
      let n = 0;
      for (const f of files) {
        const size = statSync(f).size;
        if (size % CIFAR_RECORD_BYTES !== 0) {
          throw new AdvlabError('BAD_FILE', `${f}: length ${size} bytes is not a multiple of ${CIFAR_RECORD_BYTES}`, { file: f });
        }
        n += size / CIFAR_RECORD_BYTES;
      }
      return n;
    },
    async open() {
      const b = await loadCifarBatchFiles(files, loc.classNames.length);
      return {
        count: b.parts.reduce((a, p) => a + p.count, 0),
        shape: b.shape,
        read: async (indices) => ({ ...gatherFloat(b.parts, b.shape, indices), files: b.files, sha256: b.sha256 }),
      };
    },
  });
  if (train.length) {
    const nums = train.map((f) => basename(f).replace(/^data_batch_(\d)\.bin$/, '$1'));
    loc.pools.train = pool('train', train, nums.length === 5 ? 'data_batch_1-5' : `data_batch_${nums.join(',')}`);
    if (train.length < 5) loc.problems.push(`only ${train.length} of the 5 training batches are present (${nums.map((n) => `data_batch_${n}.bin`).join(', ')})`);
  }
  if (test.length) loc.pools.test = pool('test', test, 'test_batch');
  return loc;
}

function locateFolder(dir: string, dataDir?: string): Located {
  const scan: FolderScan = scanImageFolder(dir);
  const loc: Located = {
    name: basename(scan.root),
    kind: 'image-folder',
    dir: scan.root,
    dataDir,
    classNames: scan.classNames,
    pools: {},
    problems: [],
    defaultSpec: 'random:80%',
  };
  let ref: Awaited<ReturnType<typeof folderReference>> | undefined;
  const pool = (role: PoolRole, entries: FolderEntry[], label: string): Pool => ({
    role,
    label,
    files: [role === 'all' ? scan.root : join(scan.root, role)],
    async peek() {
      return entries.length;
    },
    async open() {
      ref ??= await folderReference(scan);
      const r = ref;
      loc.shape = r.shape;
      return {
        count: entries.length,
        shape: r.shape,
        read: async (indices, ctx) => ({ ...(await readFolderImages(entries, indices, r, ctx)), files: [scan.root] }),
      };
    },
  });
  if (scan.layout === 'flat') loc.pools.all = pool('all', scan.pools.all!, 'images');
  else {
    loc.pools.train = pool('train', scan.pools.train!, 'train/');
    loc.pools.test = pool('test', scan.pools.test!, 'test/');
  }
  return loc;
}

function locateKnown(def: KnownDataset, dir: string): Located | undefined {
  return def.kind === 'idx' ? locateIdx(def, dir) : locateCifar(def, dir);
}

function hasPool(loc: Located): boolean {
  return !!(loc.pools.train || loc.pools.test || loc.pools.all);
}

function looksLikePath(name: string): boolean {
  return isAbsolute(name) || name.startsWith('.') || name.includes('/') || name.includes('\\');
}

/** Finds a dataset by name: a known dataset in the data folders, a path to an image folder, or <data>/<name>/. */
function locate(name: string, dataDirs: string[]): Located {
  const def = knownDataset(name);
  if (def) {
    const problems: string[] = [];
    for (const dataDir of dataDirs) {
      for (const dir of candidateDirs(def, dataDir)) {
        const loc = locateKnown(def, dir);
        if (loc && hasPool(loc)) return { ...loc, dataDir };
        if (loc) problems.push(...loc.problems);
        else problems.push(`${dir} exists but has none of the expected files`);
      }
    }
    const where = dataDirs.length ? dataDirs.join(', ') : '(no data folders)';
    throw new AdvlabError(
      'NOT_FOUND',
      `dataset "${def.name}" not found in ${where}: expected a folder ${def.dirNames[0]}/ with ${def.expects}` +
        (problems.length ? `. Problems: ${problems.join('; ')}` : ''),
      { dataset: def.name, dataDirs, problems },
    );
  }
  if (looksLikePath(name)) return locateFolder(resolve(name));
  for (const dataDir of dataDirs) {
    const dir = join(dataDir, name);
    if (isDirectory(dir)) return locateFolder(dir, dataDir);
  }
  throw new AdvlabError(
    'NOT_FOUND',
    `dataset "${name}" not found: it is not one of ${KNOWN_DATASETS.map((d) => d.name).join(', ')} and no folder ${name}/ exists in ${dataDirs.join(', ') || '(no data folders)'}`,
    { dataset: name, dataDirs },
  );
}

/** The data folders for an explicit `starter:NAME`: the starter pack's alone. */
function starterOnly(name: string): string[] {
  const d = starterDataDir();
  if (!d) throw new AdvlabError('NOT_FOUND', `dataset "starter:${name}": this installation has no starter pack (resources/starter)`, { dataset: `starter:${name}` });
  return [d];
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface LoadDatasetOptions {
  /** Folders to look in, in order (see resolveDataDirs). */
  dataDirs: string[];
  split: SplitName;
  /** Keep only this many examples of the split, chosen reproducibly with `seed` (see subsetIndices). */
  limit?: number;
  /** Seed of the `limit` subset; 0 by default. */
  seed?: number;
  /**
   * Which images of the split (first n after an offset, or a seeded random n; see chooseIndices),
   * in place of `limit`/`seed`; their indices in the split go in source.indices. offset + n beyond
   * the split is refused before any image is read.
   */
  choice?: ImageChoice;
  /** How to split a set that has only one file (see parseSplitSpec); refused for a set with both. */
  splitSpec?: string;
  /**
   * The split spec a model was trained with (from its metadata), used when splitSpec is not given:
   * for a set with one file it acts as splitSpec. For a set that now has its own train and test
   * files it is not refused: the model was trained on a split of the test file (the one file the set
   * had then), so that split of the test file is used still, and source.split says so; never the
   * whole test file, which holds the images the model was trained on.
   */
  modelSplitSpec?: string;
  ctx?: JobContext;
}

/**
 * Loads one split of a dataset as an ImageSet. source.files lists the files read, source.sha256
 * hashes them (see combineHashes), source.split says in words which examples these are, e.g.
 * "mnist train images (10000, its own train files)", or for a set with one file
 * "mnist t10k images 0-7999 as train (split first:80%, the default for a set with only test files)".
 */
export async function loadDataset(name: string, opts: LoadDatasetOptions): Promise<ImageSet> {
  if (opts.split !== 'train' && opts.split !== 'test') throw badInput(`split must be 'train' or 'test', got "${String(opts.split)}"`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw badInput(`limit must be a whole number >= 1, got ${opts.limit}`);
  if (opts.choice && (opts.limit !== undefined || opts.seed !== undefined)) throw badInput('give either choice or limit/seed, not both');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw badInput(`seed must be a whole number, got ${seed}`);
  const ctx = opts.ctx ?? silentContext;
  const explicitStarter = starterName(name);
  const loc = locate(explicitStarter ?? name, explicitStarter !== undefined ? starterOnly(explicitStarter) : opts.dataDirs);
  const split = opts.split;

  if (isStarterDataDir(loc.dataDir) && !loc.pools.train && loc.pools.test) {
    // The starter pack's sample: the first images of the test set, all of them the test split.
    if (opts.splitSpec !== undefined) throw badInput(`the starter sample of ${loc.name} holds test images only; a split spec ("${opts.splitSpec}") does not apply to it`, { dataset: loc.name });
    const pool = loc.pools.test;
    const opened = await pool.open();
    if (split === 'train') {
      throw badInput(
        `the starter sample of ${loc.name} (${loc.dir}) holds only the first ${opened.count} test images, for attacking starter models; ` +
          `to train, get the full set: advlab data get ${loc.name}`,
        { dataset: loc.name, starter: true },
      );
    }
    if (opts.modelSplitSpec !== undefined) ctx.log(`${loc.name}: using the starter sample (test images only); the model's split ${opts.modelSplitSpec} does not apply to it`);
    const indices = Int32Array.from({ length: opened.count }, (_, i) => i);
    const description = `${loc.name} starter sample: ${pool.label} images 0-${opened.count - 1} (the first ${opened.count} test images, resources/starter)`;
    return finish(loc, opened, indices, description, opts, seed, ctx);
  }

  if (loc.pools.train && loc.pools.test) {
    if (opts.splitSpec !== undefined) {
      throw badInput(
        `${loc.name} in ${loc.dir} has its own train and test files; ` +
          `a split spec ("${opts.splitSpec}") applies only to a set with one file: leave it out`,
        { dataset: loc.name, splitSpec: opts.splitSpec },
      );
    }
    if (opts.modelSplitSpec !== undefined) {
      // The model was trained on a declared split of this set's test file, when the set had no train
      // file (our MNIST copy had only t10k). Its own train file would be images it never saw, but the
      // test file holds the images it was trained on: keep drawing from the test file by its split.
      const pool = loc.pools.test!;
      const spec = parseSplitSpec(opts.modelSplitSpec);
      const opened = await pool.open();
      const why = `, recorded with the model: it was trained on a split of the ${pool.label} file before ${loc.name} had its own ${loc.pools.train.label} files`;
      const r = declaredSplit(loc, pool, opened, spec, split, why);
      ctx.log(`${loc.name} has its own train and test files, but the model was trained with split ${spec.text} of its ${pool.label} file: using that split's ${split} side (${r.indices.length} images)`);
      return finish(loc, opened, r.indices, r.description, opts, seed, ctx);
    }
    const pool = loc.pools[split]!;
    const opened = await pool.open();
    const indices = Int32Array.from({ length: opened.count }, (_, i) => i);
    const description = `${loc.name} ${pool.label} images (${opened.count}, its own ${split} ${loc.kind === 'image-folder' ? 'folder' : 'files'})`;
    return finish(loc, opened, indices, description, opts, seed, ctx);
  }
  const pool = (loc.pools.train ?? loc.pools.test ?? loc.pools.all)!;
  const given = opts.splitSpec ?? opts.modelSplitSpec;
  const spec = parseSplitSpec(given ?? loc.defaultSpec);
  const opened = await pool.open();
  const why = given !== undefined ? '' : `, the default for a set with ${pool.role === 'all' ? 'no train/test folders' : `only ${pool.role} files`}`;
  const r = declaredSplit(loc, pool, opened, spec, split, why);
  return finish(loc, opened, r.indices, r.description, opts, seed, ctx);
}

/** One side of a declared split of one pool, and its description ("mnist t10k images 0-7999 as train (split first:80%...)"). */
function declaredSplit(loc: Located, pool: Pool, opened: OpenPool, spec: SplitSpec, split: SplitName, why: string): { indices: Int32Array; description: string } {
  const indices = splitIndices(spec, opened.count, split);
  const description =
    spec.kind !== 'random'
      ? `${loc.name} ${pool.label} images ${indices[0]}-${indices[indices.length - 1]} as ${split} (split ${spec.text}${why})`
      : `${loc.name} ${pool.label}: ${indices.length} of ${opened.count} images as ${split} (split ${spec.text}, seeded permutation, seed ${spec.seed}${why})`;
  return { indices, description };
}

async function finish(
  loc: Located,
  opened: OpenPool,
  indices: Int32Array,
  description: string,
  opts: LoadDatasetOptions,
  seed: number,
  ctx: JobContext,
): Promise<ImageSet> {
  let chosen = indices;
  let picked: Int32Array | undefined;
  if (opts.choice) {
    const c = chooseIndices(indices.length, opts.choice);
    picked = c.indices;
    chosen = picked.map((k) => indices[k]);
    description += `; ${c.note}`;
  } else if (opts.limit !== undefined && opts.limit < indices.length) {
    const pick = subsetIndices(indices.length, opts.limit, seed);
    chosen = pick.map((k) => indices[k]);
    description += `; subset of ${chosen.length} of ${indices.length} (seed ${seed})`;
  }
  const r = await opened.read(chosen, ctx);
  return {
    name: loc.name,
    images: r.images,
    labels: r.labels,
    shape: opened.shape,
    classNames: [...loc.classNames],
    source: { files: r.files, sha256: r.sha256, split: description, ...(picked ? { indices: picked } : {}) },
  };
}

// ---------------------------------------------------------------------------------------------
// Listing (for `advlab doctor` and the Datasets view)

export interface DatasetFiles {
  role: PoolRole;
  label: string;
  count: number;
  files: string[];
}

export interface DatasetListing {
  name: string;
  kind: DatasetKind;
  title?: string;
  dir: string;
  dataDir: string;
  /** True for the copy loadDataset(name, { dataDirs }) uses: the first found in folder order. */
  used: boolean;
  classNames: string[];
  shape?: [number, number, number];
  /** The files (or folders) present, with example counts read from headers and file sizes. */
  files: DatasetFiles[];
  /** True when train and test come from separate files; false when they are a declared split of one. */
  nativeSplit: boolean;
  /** The split spec applied when none is given (sets with one file only). */
  defaultSplitSpec?: string;
  /** Example counts of each split as loadDataset would give them by default. */
  splits: Partial<Record<SplitName, { count: number; from: string }>>;
  /** Anything wrong that was noticed without parsing everything (missing partner files, bad headers). */
  problems: string[];
  /** A sample of the starter pack (resources/starter): test images only, read-only, searched last. */
  starter?: boolean;
}

async function describeLocated(loc: Located, dataDir: string, used: boolean, title?: string): Promise<DatasetListing> {
  const listing: DatasetListing = {
    name: loc.name,
    kind: loc.kind,
    title,
    dir: loc.dir,
    dataDir,
    used,
    classNames: [...loc.classNames],
    files: [],
    nativeSplit: !!(loc.pools.train && loc.pools.test),
    splits: {},
    problems: [...loc.problems],
  };
  for (const role of ['train', 'test', 'all'] as const) {
    const pool = loc.pools[role];
    if (!pool) continue;
    try {
      const count = await pool.peek();
      listing.files.push({ role, label: pool.label, count, files: pool.files });
    } catch (e) {
      listing.problems.push((e as Error).message);
    }
  }
  if (loc.kind === 'image-folder') {
    try {
      loc.shape = (await folderReference(scanImageFolder(loc.dir))).shape;
    } catch (e) {
      listing.problems.push((e as Error).message);
    }
  }
  listing.shape = loc.shape;
  if (isStarterDataDir(dataDir) && !loc.pools.train && listing.files.length === 1 && listing.files[0].role === 'test') {
    listing.starter = true;
    listing.splits.test = { count: listing.files[0].count, from: `${listing.files[0].label} (the starter sample: the first ${listing.files[0].count} test images)` };
  } else if (listing.nativeSplit) {
    for (const f of listing.files) if (f.role !== 'all') listing.splits[f.role] = { count: f.count, from: `${f.label} (${f.role} files)` };
  } else if (listing.files.length === 1) {
    const f = listing.files[0];
    listing.defaultSplitSpec = loc.defaultSpec;
    const spec = parseSplitSpec(loc.defaultSpec);
    try {
      const n = trainCount(spec, f.count);
      listing.splits.train = { count: n, from: `${spec.text} of ${f.label} (${f.count})` };
      listing.splits.test = { count: f.count - n, from: `rest of ${f.label} after ${spec.text}` };
    } catch (e) {
      listing.problems.push((e as Error).message);
    }
  }
  return listing;
}

/**
 * Every known dataset and image folder found in the data folders, with counts and splits. Never
 * throws for a damaged dataset: what is wrong goes into its `problems`.
 */
export async function listDatasets(dataDirs: string[]): Promise<DatasetListing[]> {
  const out: DatasetListing[] = [];
  const usedNames = new Set<string>();
  for (const dataDir of dataDirs) {
    const claimed = new Set<string>();
    for (const def of KNOWN_DATASETS) {
      for (const dir of candidateDirs(def, dataDir)) {
        claimed.add(resolve(dir));
        const loc = locateKnown(def, dir);
        if (!loc) continue;
        const used = hasPool(loc) && !usedNames.has(def.name);
        if (used) usedNames.add(def.name);
        out.push(await describeLocated(loc, dataDir, used, def.title));
      }
    }
    if (KNOWN_DATASETS.some((d) => d.dirNames.includes(basename(dataDir)))) continue; // a dataset's own folder
    let names: string[] = [];
    try {
      names = readdirSync(dataDir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
        .map((d) => d.name)
        .sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const dir = resolve(join(dataDir, n));
      if (claimed.has(dir) || knownDataset(n)) continue;
      let loc: Located;
      try {
        loc = locateFolder(dir, dataDir);
      } catch {
        continue; // not an image folder
      }
      const used = !usedNames.has(loc.name);
      usedNames.add(loc.name);
      out.push(await describeLocated(loc, dataDir, used));
    }
  }
  return out;
}
