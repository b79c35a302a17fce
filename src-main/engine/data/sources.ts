/**
 * The datasets `advlab data get` can download, with every file's digest pinned here, and installing
 * one into a data folder atomically.
 *
 * What is pinned, and how it was obtained (nothing here was made up; where no sha256 could be
 * measured from a byte-identical copy, the distributor's own md5 is checked instead):
 * - MNIST t10k-images/t10k-labels (.gz): sha256 measured on our copies (../shared/data/mnist), whose
 *   md5s equal the ones published for the original distribution (9fb629c4..., ec29112d...: torchvision's
 *   MNIST resources list): byte-identical to upstream.
 * - MNIST train-images/train-labels (.gz): our copies are not upstream's (they are the first 10,000
 *   training images, rebuilt), so no sha256 could be measured: the md5s torchvision publishes for the
 *   original files are checked (f68b3c2d..., d53e105e...).
 * - Fashion-MNIST (.gz): the md5s in Zalando's README (also shipped in Debian's dataset-fashion-mnist,
 *   /usr/share/doc/dataset-fashion-mnist/README.md.gz). Debian's .gz files are recompressed (their
 *   md5s differ), so no sha256 of upstream's .gz files could be measured here.
 * - CIFAR-10, binary version (cifar-10-binary.tar.gz): the md5 on the dataset's page,
 *   c32a1d4ab5d03f1284b67883e8d87530 (the often-quoted c58f3010... is the Python version's, which the
 *   loader does not read). No copy was available here to measure its sha256. After extraction the
 *   six batch files are checked for their exact sizes (30,730,000 bytes each).
 * - FSDD: GitHub's tarball of the commit our copy came from (26eb9aaf..., see
 *   ../shared/data/fsdd/SOURCE.md). GitHub generates archives on the fly, so their bytes are not
 *   a stable thing to pin and none is published; instead the extracted recordings are checked: the
 *   sha256 of the list "sha256  name" of the 3,000 WAV files (sorted by name) must be
 *   FSDD_CONTENT_SHA256, measured on our copy.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { type JobContext, silentContext } from '../context';
import { AdvlabError, badFile, badInput } from '../errors';
import { CIFAR_RECORD_BYTES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES } from './cifar';
import { fetchVerified, type FetchResult, type RemoteFile } from './download';
import { isStarterDataDir } from './starter';
import { extractTarGz } from './tar';

/** The datasets `advlab data get` knows (the data-get job's schema takes its names from here). */
export const DOWNLOADABLE = ['mnist', 'fashion-mnist', 'cifar10', 'fsdd'] as const;
export type DownloadableName = (typeof DOWNLOADABLE)[number];

export interface DatasetSource {
  name: DownloadableName;
  title: string;
  license: string;
  homepage: string;
  /** The folder created in the data folder, named as the loaders look for it. */
  folder: string;
  files: RemoteFile[];
  /** How the verified downloads become the folder's content (written into `dest`, a folder inside a temporary one). */
  assemble: 'copy' | 'cifar-tar' | 'fsdd-tar';
  /** Roughly how much is downloaded, for the panel (MB). */
  approxMB: number;
}

const MNIST_URLS = ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'http://yann.lecun.com/exdb/mnist/'];
const FASHION_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';
export const FSDD_COMMIT = '26eb9aaf76e81b692f806f9140c2d2777410d7a1';
/** sha256 of "sha256  name\n" per recording, sorted by name, over FSDD's 3,000 WAV files at FSDD_COMMIT (measured on ../shared/data/fsdd). */
export const FSDD_CONTENT_SHA256 = '1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959';
export const FSDD_RECORDINGS = 3000;

const TORCHVISION = "md5 published for the original MNIST file (torchvision's MNIST resources)";
const MEASURED_MNIST = 'sha256 measured on a byte-identical copy (its md5 equals the published one)';
const ZALANDO = "md5 published in Fashion-MNIST's README (zalandoresearch/fashion-mnist)";

const mnistFile = (name: string, d: { sha256?: string; md5?: string }, source: string): RemoteFile => ({ name, urls: MNIST_URLS.map((u) => u + name), ...d, digestSource: source });

export const DATASET_SOURCES: readonly DatasetSource[] = [
  {
    name: 'mnist',
    title: 'MNIST handwritten digits (60,000 train + 10,000 test)',
    license: 'CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J.C. Burges)',
    homepage: 'http://yann.lecun.com/exdb/mnist/',
    folder: 'mnist',
    assemble: 'copy',
    approxMB: 11.1,
    files: [
      mnistFile('train-images-idx3-ubyte.gz', { md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873' }, TORCHVISION),
      mnistFile('train-labels-idx1-ubyte.gz', { md5: 'd53e105ee54ea40749a09fcbcd1e9432' }, TORCHVISION),
      mnistFile('t10k-images-idx3-ubyte.gz', { sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6' }, MEASURED_MNIST),
      mnistFile('t10k-labels-idx1-ubyte.gz', { sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6' }, MEASURED_MNIST),
    ],
  },
  {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST (Zalando; 60,000 train + 10,000 test)',
    license: 'MIT (Zalando SE)',
    homepage: 'https://github.com/zalandoresearch/fashion-mnist',
    folder: 'fashion-mnist',
    assemble: 'copy',
    approxMB: 29.5,
    files: [
      { name: 'train-images-idx3-ubyte.gz', urls: [FASHION_URL + 'train-images-idx3-ubyte.gz'], md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d', digestSource: ZALANDO },
      { name: 'train-labels-idx1-ubyte.gz', urls: [FASHION_URL + 'train-labels-idx1-ubyte.gz'], md5: '25c81989df183df01b3e8a0aad5dffbe', digestSource: ZALANDO },
      { name: 't10k-images-idx3-ubyte.gz', urls: [FASHION_URL + 't10k-images-idx3-ubyte.gz'], md5: 'bef4ecab320f06d8554ea6380940ec79', digestSource: ZALANDO },
      { name: 't10k-labels-idx1-ubyte.gz', urls: [FASHION_URL + 't10k-labels-idx1-ubyte.gz'], md5: 'bb300cfdad3c16e7a12a480ee83cd310', digestSource: ZALANDO },
    ],
  },
  {
    name: 'cifar10',
    title: 'CIFAR-10, binary version (50,000 train + 10,000 test)',
    license: 'no license stated; cite Krizhevsky 2009 (Learning Multiple Layers of Features from Tiny Images)',
    homepage: 'https://www.cs.toronto.edu/~kriz/cifar.html',
    folder: 'cifar-10-batches-bin',
    assemble: 'cifar-tar',
    approxMB: 162,
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'],
        md5: 'c32a1d4ab5d03f1284b67883e8d87530',
        digestSource: "md5 published on the CIFAR-10 page for the binary version (no sha256 is published, and no copy was at hand to measure one)",
      },
    ],
  },
  {
    name: 'fsdd',
    title: 'Free Spoken Digit Dataset (3,000 recordings, 6 speakers)',
    license: 'CC BY-SA 4.0 (Zohar Jackson and contributors)',
    homepage: 'https://github.com/Jakobovski/free-spoken-digit-dataset',
    folder: 'fsdd',
    assemble: 'fsdd-tar',
    approxMB: 24,
    files: [
      {
        name: `${FSDD_COMMIT}.tar.gz`,
        urls: [`https://github.com/Jakobovski/free-spoken-digit-dataset/archive/${FSDD_COMMIT}.tar.gz`],
        // No digest of the archive itself: GitHub builds it on the fly. The recordings are checked after extraction.
        checkedAfterExtraction: true,
        digestSource: `none for the archive (generated by GitHub); the extracted recordings must hash to ${FSDD_CONTENT_SHA256}`,
      },
    ],
  },
];

/** The source of a downloadable dataset by name (a few aliases), or a BAD_INPUT naming the choices. */
export function datasetSource(name: string): DatasetSource {
  const n = name.toLowerCase().replace('_', '-');
  const canonical = ({ 'cifar-10': 'cifar10', fashionmnist: 'fashion-mnist' } as Record<string, string>)[n] ?? n;
  const s = DATASET_SOURCES.find((d) => d.name === canonical);
  if (!s) throw badInput(`"${name}" cannot be downloaded: choose one of ${DATASET_SOURCES.map((d) => d.name).join(', ')}`, { dataset: name });
  return s;
}

export interface InstallOptions {
  /** The data folder to install into (created if absent). */
  dataDir: string;
  mirror?: string;
  /** Replace an installed copy (moved aside, then removed once the new one is in place). */
  force?: boolean;
  ctx?: JobContext;
  /** Writer seam for tests (downloads and extraction). */
  openWriter?: (path: string, flags: 'a' | 'w') => Writable;
  retries?: number;
  idleTimeoutMs?: number;
  /** Clock for the ETA (tests). */
  now?: () => number;
}

export interface InstallResult {
  dataset: DownloadableName;
  dir: string;
  alreadyInstalled: boolean;
  bytes: number;
  files: { name: string; bytes: number; sha256: string; md5: string; verified: string; url: string; resumedFrom: number }[];
  seconds: number;
}

/** The hidden folders an install uses inside the data folder: never listed as datasets (names start with '.'). */
export function downloadDir(dataDir: string, name: string): string {
  return join(dataDir, `.advlab-download-${name}`);
}

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`;
}

/** Reports bytes over all files of a download: step/total in bytes (never going back), rate and ETA. */
class ByteProgress {
  private readonly received = new Map<string, number>();
  private readonly totals = new Map<string, number>();
  private shown = 0;
  private lastEmit = 0;
  private readonly t0: number;
  private readonly startBytes = new Map<string, number>();
  constructor(
    private readonly ctx: JobContext,
    private readonly label: string,
    private readonly files: string[],
    private readonly now: () => number,
  ) {
    this.t0 = now();
  }
  update(file: string, received: number, total: number | undefined): void {
    if (!this.startBytes.has(file)) this.startBytes.set(file, received);
    else if (received < (this.received.get(file) ?? 0)) this.startBytes.set(file, 0); // restarted
    this.received.set(file, received);
    if (total !== undefined) this.totals.set(file, total);
    const t = this.now();
    const done = [...this.received.values()].reduce((a, b) => a + b, 0);
    const known = this.files.every((f) => this.totals.has(f));
    const total_ = known ? this.files.reduce((a, f) => a + (this.totals.get(f) ?? 0), 0) : undefined;
    if (t - this.lastEmit < 200 && !(total !== undefined && received === total)) return;
    this.lastEmit = t;
    this.shown = Math.max(this.shown, done);
    const fresh = [...this.received.entries()].reduce((a, [f, r]) => a + Math.max(0, r - (this.startBytes.get(f) ?? 0)), 0);
    const secs = Math.max(1e-3, (t - this.t0) / 1000);
    const rate = fresh / secs;
    const eta = total_ !== undefined && rate > 0 ? Math.max(0, (total_ - done) / rate) : undefined;
    const tot = total_ ?? Math.max(this.shown, 1);
    this.ctx.progress({
      step: Math.min(this.shown, tot),
      total: Math.max(tot, this.shown),
      phase: `${this.label}: ${file}`,
      message: `${fmtBytes(done)}${total_ !== undefined ? ` of ${fmtBytes(total_)}` : ''}, ${fmtBytes(rate)}/s${eta !== undefined ? `, ETA ${Math.round(eta)} s` : ''}`,
      metrics: { bytes: done, ...(total_ !== undefined ? { totalBytes: total_ } : {}), bytesPerSecond: Math.round(rate), ...(eta !== undefined ? { etaSeconds: Math.round(eta) } : {}) },
    });
  }
}

/** A file already downloaded and verified: hashed again, returned as a FetchResult when it still matches (else deleted). */
async function verifiedCopy(f: RemoteFile, path: string): Promise<FetchResult | undefined> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  for await (const c of createReadStream(path)) {
    sha.update(c as Buffer);
    md5.update(c as Buffer);
  }
  const r = { bytes: statSync(path).size, sha256: sha.digest('hex'), md5: md5.digest('hex'), url: `file://${path}`, resumedFrom: statSync(path).size };
  if (f.sha256 && r.sha256 === f.sha256) return { ...r, verified: 'sha256' };
  if (!f.sha256 && f.md5 && r.md5 === f.md5) return { ...r, verified: 'md5' };
  if (!f.sha256 && !f.md5 && f.checkedAfterExtraction) return { ...r, verified: 'content' };
  await rm(path, { force: true });
  return undefined;
}

/** The sha256 of "sha256  name\n" over the WAV files of a folder, sorted by name (see FSDD_CONTENT_SHA256). */
export async function wavFolderDigest(dir: string): Promise<{ digest: string; count: number }> {
  const names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.wav')).sort();
  const list = createHash('sha256');
  for (const n of names) {
    const h = createHash('sha256');
    for await (const c of createReadStream(join(dir, n))) h.update(c as Buffer);
    list.update(`${h.digest('hex')}  ${n}\n`);
  }
  return { digest: list.digest('hex'), count: names.length };
}

async function assemble(src: DatasetSource, parts: string[], dest: string, o: InstallOptions, ctx: JobContext): Promise<void> {
  await mkdir(dest, { recursive: true });
  const writer = o.openWriter ? (p: string) => o.openWriter!(p, 'w') : undefined;
  if (src.assemble === 'copy') {
    for (let i = 0; i < parts.length; i++) await rename(parts[i], join(dest, src.files[i].name));
    return;
  }
  if (src.assemble === 'cifar-tar') {
    const want = new Set([...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE, 'batches.meta.txt', 'readme.html']);
    ctx.log(`${src.name}: extracting ${src.files[0].name}`);
    await extractTarGz(parts[0], dest, { ctx, openWriter: writer, select: (p) => { const m = /^cifar-10-batches-bin\/([^/]+)$/.exec(p); return m && want.has(m[1]) ? m[1] : undefined; } });
    for (const f of [...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE]) {
      const p = join(dest, f);
      const size = existsSync(p) ? statSync(p).size : -1;
      if (size !== 10000 * CIFAR_RECORD_BYTES) throw badFile(parts[0], size < 0 ? `has no cifar-10-batches-bin/${f}` : `cifar-10-batches-bin/${f} is ${size} bytes, expected ${10000 * CIFAR_RECORD_BYTES}`);
    }
    return;
  }
  // fsdd-tar
  ctx.log(`${src.name}: extracting ${src.files[0].name} and checking the recordings`);
  await extractTarGz(parts[0], dest, { ctx, openWriter: writer, select: (p) => { const m = /^[^/]+\/recordings\/([^/]+\.wav)$/i.exec(p); return m ? `recordings/${m[1]}` : undefined; } });
  const { digest, count } = await wavFolderDigest(join(dest, 'recordings'));
  if (digest !== FSDD_CONTENT_SHA256) {
    throw new AdvlabError('BAD_FILE', `${parts[0]}: the extracted recordings (${count} WAV files) do not match FSDD at commit ${FSDD_COMMIT}: expected content digest ${FSDD_CONTENT_SHA256}, got ${digest}; nothing was installed`, { file: parts[0], expected: FSDD_CONTENT_SHA256, got: digest, count });
  }
}

/**
 * Downloads a dataset into `dataDir/<folder>`: every file into a hidden download folder (resumable
 * across runs), verified, then assembled in a hidden temporary folder and renamed into place, so a
 * dataset appears whole or not at all. An installed copy is left alone (alreadyInstalled) unless
 * `force`. The download folder goes once the dataset is installed; a failed run keeps it to resume.
 */
export async function installDataset(name: string | DatasetSource, o: InstallOptions): Promise<InstallResult> {
  const src = typeof name === 'string' ? datasetSource(name) : name;
  const ctx = o.ctx ?? silentContext;
  const now = o.now ?? Date.now;
  const t0 = now();
  const final = join(o.dataDir, src.folder);
  if (existsSync(final) && !o.force) {
    ctx.log(`${src.name} is already installed in ${final}`);
    return { dataset: src.name, dir: final, alreadyInstalled: true, bytes: 0, files: [], seconds: 0 };
  }
  try {
    await mkdir(o.dataDir, { recursive: true });
  } catch (e) {
    throw new AdvlabError('BAD_INPUT', `cannot create the data folder ${o.dataDir}: ${(e as Error).message}`, { dataDir: o.dataDir });
  }
  const work = downloadDir(o.dataDir, src.name);
  await mkdir(work, { recursive: true });
  const progress = new ByteProgress(ctx, src.name, src.files.map((f) => f.name), now);
  const results: FetchResult[] = [];
  const parts: string[] = [];
  for (const f of src.files) {
    // A file verified by an earlier, interrupted run is kept under its own name: checked again, not fetched again.
    const done = join(work, f.name);
    const kept = existsSync(done) ? await verifiedCopy(f, done) : undefined;
    if (kept) {
      ctx.log(`${f.name}: verified in an earlier run, not downloaded again`);
      progress.update(f.name, kept.bytes, kept.bytes);
      results.push(kept);
      parts.push(done);
      continue;
    }
    const part = join(work, `${f.name}.part`);
    const r = await fetchVerified(f, part, {
      mirror: o.mirror, ctx, retries: o.retries, idleTimeoutMs: o.idleTimeoutMs, openWriter: o.openWriter,
      onBytes: (_d, info) => progress.update(info.file, info.received, info.total),
    });
    await rename(part, done);
    results.push(r);
    parts.push(done);
  }
  const stage = await mkdtemp(join(o.dataDir, `.advlab-install-${src.name}-`));
  try {
    const dest = join(stage, src.folder);
    await assemble(src, parts, dest, o, ctx);
    await writeFile(join(dest, '.advlab-source.json'), JSON.stringify({
      dataset: src.name, title: src.title, license: src.license, homepage: src.homepage, installed: new Date().toISOString(),
      files: src.files.map((f, i) => ({ name: f.name, url: results[i].url, bytes: results[i].bytes, sha256: results[i].sha256, md5: results[i].md5, verified: results[i].verified, digestSource: f.digestSource })),
    }, null, 2) + '\n');
    let old: string | undefined;
    if (existsSync(final)) {
      old = join(stage, 'previous');
      await rename(final, old);
    }
    try {
      await rename(dest, final);
    } catch (e) {
      if (old) await rename(old, final);
      throw e;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOSPC' || err.code === 'EDQUOT') throw new AdvlabError('DISK_FULL', `disk full while installing ${src.name} into ${o.dataDir}: free some space and run again`, { dataDir: o.dataDir });
    throw e;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  await rm(work, { recursive: true, force: true });
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  return {
    dataset: src.name, dir: final, alreadyInstalled: false, bytes,
    files: src.files.map((f, i) => ({ name: f.name, bytes: results[i].bytes, sha256: results[i].sha256, md5: results[i].md5, verified: results[i].verified, url: results[i].url, resumedFrom: results[i].resumedFrom })),
    seconds: (now() - t0) / 1000,
  };
}

/** What `advlab data list` says about a downloadable dataset's source (JSON-friendly). */
export function describeSources() {
  return DATASET_SOURCES.map((s) => ({
    name: s.name, title: s.title, license: s.license, homepage: s.homepage, folder: s.folder, approxMB: s.approxMB,
    files: s.files.map((f) => ({ name: f.name, urls: f.urls, ...(f.sha256 ? { sha256: f.sha256 } : {}), ...(f.md5 ? { md5: f.md5 } : {}), digestSource: f.digestSource })),
  }));
}

/** One downloadable dataset: where copies are installed (in search order), and what a resumable partial download holds. */
export interface DownloadStatus {
  name: DownloadableName;
  title: string;
  license: string;
  homepage: string;
  approxMB: number;
  /** Folders holding a copy, in the data folders' search order (the first is the one used). */
  installed: string[];
  /** Bytes of an interrupted download in the target folder, resumed by the next get. */
  partialBytes: number;
}

function partialBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((a, n) => a + statSync(join(dir, n)).size, 0);
  } catch {
    return 0;
  }
}

/** Every downloadable dataset with its installed copies among `dataDirs` (and `target`, where gets install); the starter pack's samples do not count. */
export function downloadStatus(target: string, dataDirs: readonly string[]): DownloadStatus[] {
  const dirs = (dataDirs.includes(target) ? [...dataDirs] : [...dataDirs, target]).filter((d) => !isStarterDataDir(d));
  return DATASET_SOURCES.map((s) => ({
    name: s.name, title: s.title, license: s.license, homepage: s.homepage, approxMB: s.approxMB,
    installed: dirs.map((d) => join(d, s.folder)).filter((p) => existsSync(s.name === 'fsdd' ? join(p, 'recordings') : p)),
    partialBytes: partialBytes(downloadDir(target, s.name)),
  }));
}
