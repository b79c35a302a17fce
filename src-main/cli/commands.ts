/** CLI commands beyond doctor and serve: each builds a job's params and runs it like the GUI does. */
import { resolve } from 'node:path';
import type { Command, CliContext } from './index';
import { AdvlabError, badInput } from '../engine/errors';
import type { JobInfo } from '../api/contract';

function num(v: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n))) throw badInput(`--${flag} must be ${opts.int ? 'an integer' : 'a number'}, got "${v}"`);
  if (opts.min !== undefined && n < opts.min) throw badInput(`--${flag} must be at least ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw badInput(`--${flag} must be at most ${opts.max}, got ${n}`);
  return n;
}

/** Turns a finished job into the command's exit code; failures become errors with their code. */
function finished(info: JobInfo): Record<string, unknown> {
  if (info.state === 'failed') throw new AdvlabError((info.error?.code as 'INTERNAL') ?? 'INTERNAL', info.error?.message ?? 'job failed', info.error?.details ?? {});
  if (info.state === 'cancelled') return { cancelled: true, session: info.session, ...(info.result as Record<string, unknown> | undefined) };
  return info.result as Record<string, unknown>;
}

const train: Command = {
  summary: 'train a classifier on an image dataset (writes a session with the model)',
  usage: 'advlab train --dataset NAME --arch cw-mnist|small-cnn|cw-cifar|mlp [--epochs N] [--batch-size N] [--lr X] [--optimizer adam|sgd|momentum] [--limit N] [--test-limit N] [--validation-split X] [--early-stop N] [--seed N] [--split first:8000] [--name TEXT] [--tag T]... [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({
      dataset: { type: 'string' }, arch: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' },
      lr: { type: 'string' }, optimizer: { type: 'string' }, limit: { type: 'string' }, 'test-limit': { type: 'string' },
      'validation-split': { type: 'string' }, 'early-stop': { type: 'string' }, seed: { type: 'string' }, split: { type: 'string' },
      name: { type: 'string' }, tag: { type: 'string', multiple: true },
    });
    if (!v.dataset) throw badInput('--dataset is required (mnist, fashion-mnist, cifar10 or a folder name)');
    if (!v.arch) throw badInput('--arch is required (cw-mnist, small-cnn, cw-cifar, mlp)');
    const params = {
      dataset: v.dataset, arch: v.arch,
      epochs: num(v.epochs, 'epochs', { int: true, min: 1 }),
      batchSize: num(v['batch-size'], 'batch-size', { int: true, min: 1 }),
      learningRate: num(v.lr, 'lr', { min: 0 }),
      optimizer: v.optimizer,
      limit: num(v.limit, 'limit', { int: true, min: 10 }),
      testLimit: num(v['test-limit'], 'test-limit', { int: true, min: 10 }),
      validationSplit: num(v['validation-split'], 'validation-split', { min: 0, max: 0.5 }),
      earlyStopPatience: num(v['early-stop'], 'early-stop', { int: true, min: 0 }),
      seed: num(v.seed, 'seed', { int: true, min: 0 }),
      split: v.split, name: v.name, tags: v.tag,
    };
    const r = finished(await c.runJob('train', JSON.parse(JSON.stringify(params))));
    const out = { session: r.session, model: r.model, testAccuracy: r.testAccuracy ?? null, seconds: r.seconds, backend: r.backend, arch: r.arch, dataset: r.dataset, epochsRun: r.epochsRun, imagesPerSecond: r.imagesPerSecond, trainImages: r.trainImages, testImages: r.testImages, cancelled: r.cancelled ?? false };
    c.out.result(out, `trained ${out.arch} on ${out.dataset}: test accuracy ${typeof out.testAccuracy === 'number' ? (100 * out.testAccuracy).toFixed(2) + '%' : 'n/a'} in ${Number(out.seconds).toFixed(1)} s (${out.backend}); session ${out.session}`);
    return out.cancelled ? 130 : 0;
  },
};

const sessions: Command = {
  summary: 'list, show, rename, tag, delete, restore, export and import sessions',
  usage: 'advlab sessions list [--kind K] [--status S] [--tag T] [--dataset D] [--model M] [--text Q] | show ID | rename ID NAME | tag ID [--add T]... [--remove T]... | delete ID | restore ID | export ID --out FILE.zip | import FILE.zip   [--sessions DIR] [--json]',
  async run(c: CliContext) {
    const { values: v, positionals } = c.parse({
      kind: { type: 'string' }, status: { type: 'string' }, tag: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' },
      text: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, add: { type: 'string', multiple: true },
      remove: { type: 'string', multiple: true }, out: { type: 'string' }, html: { type: 'string' },
    }, true);
    const [sub, id, ...rest] = positionals;
    const store = c.app().store;
    const need = (what: string) => { if (!id) throw badInput(`advlab sessions ${sub} needs ${what}`); return id; };
    switch (sub) {
      case undefined:
      case 'list': {
        const list = await store.list({ kind: v.kind, status: v.status, tag: v.tag, dataset: v.dataset, model: v.model, text: v.text, since: v.since, until: v.until });
        c.out.result({ sessions: list, count: list.length }, list.map((s) => `${s.id}  ${s.status.padEnd(10)} ${s.kind.padEnd(12)} ${s.name}${s.damaged ? `  (${s.damaged})` : ''}`).join('\n') || '(no sessions)');
        return 0;
      }
      case 'show': {
        const d = await store.show(need('a session id'));
        c.out.result(d as unknown as Record<string, unknown>);
        return 0;
      }
      case 'rename': {
        const name = rest.join(' ').trim();
        if (!name) throw badInput('advlab sessions rename ID NAME: the new name is missing');
        const m = await store.rename(need('a session id'), name);
        c.out.result({ id: m.id, name: m.name }, `renamed ${m.id} to "${m.name}"`);
        return 0;
      }
      case 'tag': {
        const tags = await store.tag(need('a session id'), v.add ?? [], v.remove ?? []);
        c.out.result({ id, tags }, `${id}: ${tags.join(', ') || '(no tags)'}`);
        return 0;
      }
      case 'delete': {
        await store.delete(need('a session id'));
        c.out.result({ deleted: id, restorable: true }, `moved ${id} to the trash (advlab sessions restore ${id} brings it back)`);
        return 0;
      }
      case 'restore': {
        await store.restore(need('a session id'));
        c.out.result({ restored: id }, `restored ${id}`);
        return 0;
      }
      case 'export': {
        const sid = need('a session id');
        if (!v.out) throw badInput('advlab sessions export ID --out FILE.zip');
        const r = await store.exportArchive(sid, resolve(v.out));
        c.out.result({ ...r } as Record<string, unknown>, `exported ${sid} to ${resolve(v.out)}`);
        return 0;
      }
      case 'import': {
        const file = need('an archive file');
        const r = await store.importArchive(resolve(file));
        c.out.result({ ...r } as Record<string, unknown>, `imported ${JSON.stringify(r)}`);
        return 0;
      }
      default:
        throw badInput(`Unknown sessions subcommand "${sub}"\nusage: ${sessions.usage}`);
    }
  },
};

function later(issue: number, what: string): Command {
  return {
    summary: `${what} (arrives with issue #${issue})`,
    usage: `not available yet: ${what} arrives with issue #${issue}`,
    async run() {
      throw new AdvlabError('UNSUPPORTED', `${what} is not built yet: it arrives with issue #${issue}`);
    },
  };
}

export const commands: Record<string, Command> = {
  train,
  sessions,
  attack: later(4, 'image attacks'),
  bench: later(4, 'the benchmark suite'),
  recipe: later(5, 'defense case-study recipes'),
  audio: later(6, 'speech-to-text training and audio attacks'),
};
