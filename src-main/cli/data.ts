/**
 * `advlab data get NAME` (a 'data-get' job: progress with bytes and ETA on stderr, Ctrl-C cancels and
 * keeps what was downloaded) and `advlab data list` (what is installed where, in search order).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdvlabError, badInput } from '../engine/errors';
import { datasetSource, downloadStatus, listDatasets } from '../engine/data';
import { appDataDir } from '../paths';
import type { CliContext, Command } from './context';

const USAGE = [
  'advlab data get mnist|fashion-mnist|cifar10|fsdd [--mirror URL] [--to DIR (default: the app data folder)] [--force] [--json]',
  '       advlab data list [--json]',
].join('\n');

function sourceNote(dir: string): { installed?: string; downloadedFrom?: string } {
  try {
    const j = JSON.parse(readFileSync(join(dir, '.advlab-source.json'), 'utf8')) as { installed?: string; files?: { url?: string }[] };
    return { installed: j.installed, downloadedFrom: j.files?.[0]?.url };
  } catch {
    return {};
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export const dataCmd: Command = {
  summary: 'get datasets (MNIST, Fashion-MNIST, CIFAR-10, FSDD: verified, resumable downloads) and list what is installed where',
  usage: USAGE,
  async run(c: CliContext) {
    const { values: v, positionals } = c.parse({ mirror: { type: 'string' }, to: { type: 'string' }, force: { type: 'boolean' } }, true);
    const [sub, ...rest] = positionals;
    const target = appDataDir();
    if (sub === 'get') {
      if (rest.length !== 1) throw badInput(`advlab data get takes one dataset name\nusage: ${USAGE}`);
      const src = datasetSource(rest[0]);
      const info = await c.runJob('data-get', { dataset: src.name, ...(v.mirror ? { mirror: v.mirror } : {}), ...(v.to ? { dir: resolve(v.to) } : {}), force: v.force ?? false });
      if (info.state === 'failed') throw new AdvlabError((info.error?.code as 'INTERNAL') ?? 'INTERNAL', info.error?.message ?? 'download failed', info.error?.details ?? {});
      if (info.state === 'cancelled') {
        c.out.result({ cancelled: true, dataset: src.name }, `cancelled: run the same command again to resume ${src.name}`);
        return 130;
      }
      const r = info.result!;
      c.out.result({ ...r }, r.alreadyInstalled ? `${r.dataset} is already installed in ${r.dir} (--force replaces it)` : `installed ${r.dataset} in ${r.dir}: ${r.files.length} file(s), ${mb(r.bytes)}, verified (${[...new Set(r.files.map((f) => f.verified))].join(', ')}) in ${r.seconds.toFixed(1)} s`);
      return 0;
    }
    if (sub === 'list') {
      if (rest.length) throw badInput(`advlab data list takes no argument\nusage: ${USAGE}`);
      const dataDirs = c.app().core.opts.dataDirs;
      const datasets = (await listDatasets(dataDirs)).map((d) => ({ name: d.name, starter: d.starter ?? false, dir: d.dir, dataDir: d.dataDir, used: d.used, kind: d.kind, splits: Object.fromEntries(Object.entries(d.splits).map(([k, s]) => [k, s?.count ?? 0])), problems: d.problems, ...sourceNote(d.dir) }));
      const downloads = downloadStatus(target, dataDirs);
      const result = { dataDirs, target, datasets, downloads };
      const lines = [
        `data folders, in search order: ${dataDirs.join(', ') || '(none)'}`,
        `advlab data get installs into: ${target}`,
        'datasets:',
        ...(datasets.length ? datasets.map((d) => `  ${d.name}${d.starter ? ' (starter sample)' : ''}${d.used ? '' : ' (shadowed)'}: ${d.dir} (${Object.entries(d.splits).map(([k, n]) => `${k} ${n}`).join(', ')})${d.installed ? `, downloaded ${d.installed}` : ''}${d.problems.length ? `; problems: ${d.problems.join('; ')}` : ''}`) : ['  (none)']),
        'downloadable:',
        ...downloads.map((s) => `  ${s.name.padEnd(14)} ~${s.approxMB} MB  ${s.installed.length ? `installed: ${s.installed.join(', ')}` : 'not installed'}${s.partialBytes ? `; ${mb(s.partialBytes)} downloaded so far (get resumes)` : ''}  [${s.license}]`),
      ];
      c.out.result(result, lines.join('\n'));
      return 0;
    }
    throw badInput(`${sub === undefined ? 'advlab data needs a subcommand' : `Unknown data subcommand "${sub}"`}: get or list\nusage: ${USAGE}`);
  },
};
