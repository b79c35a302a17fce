/** CLI commands beyond doctor and serve: each builds a job's params and runs it like the GUI does. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command, CliContext } from './context';
import { AdvlabError, badInput } from '../engine/errors';
import { ATTACK_IDS } from '../engine/attacks/registry';
import type { JobInfo } from '../api/contract';
import type { JobResultOf } from '../api/jobs';
import { bench } from './bench';
import { QUEUE_OPTIONS, QUEUE_USAGE, worker } from './cluster';
import { study } from './study';
import { buildReport, sessionCsv, writeOutputFile } from '../report';
import { dataCmd } from './data';

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
  usage: 'advlab train --dataset NAME --arch cw-mnist|small-cnn|cw-cifar|mlp [--epochs N] [--batch-size N] [--lr X] [--optimizer adam|sgd|momentum] [--momentum X] [--nesterov] [--decay X] [--engine auto|onnx|tfjs] [--dropout X] [--limit N] [--test-limit N] [--validation-split X] [--augment shift:K[,rotate:D][,scale:S][,elastic:A[:SIGMA]]] [--early-stop N] [--seed N] [--split first:N|last:N|random:P%[:SEED] (a set with only one file)] [--name TEXT] [--tag T]... [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({
      dataset: { type: 'string' }, arch: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' },
      lr: { type: 'string' }, optimizer: { type: 'string' }, momentum: { type: 'string' }, nesterov: { type: 'boolean' }, decay: { type: 'string' },
      engine: { type: 'string' }, dropout: { type: 'string' }, limit: { type: 'string' }, 'test-limit': { type: 'string' },
      'validation-split': { type: 'string' }, 'early-stop': { type: 'string' }, seed: { type: 'string' }, split: { type: 'string' },
      name: { type: 'string' }, tag: { type: 'string', multiple: true }, augment: { type: 'string' },
    });
    if (!v.dataset) throw badInput('--dataset is required (mnist, fashion-mnist, cifar10 or a folder name)');
    if (!v.arch) throw badInput('--arch is required (cw-mnist, small-cnn, cw-cifar, mlp)');
    const params = {
      dataset: v.dataset, arch: v.arch,
      epochs: num(v.epochs, 'epochs', { int: true, min: 1 }),
      batchSize: num(v['batch-size'], 'batch-size', { int: true, min: 1 }),
      learningRate: num(v.lr, 'lr', { min: 0 }),
      optimizer: v.optimizer,
      momentum: num(v.momentum, 'momentum'),
      nesterov: v.nesterov,
      decay: num(v.decay, 'decay'),
      // engine: checked (and defaulted: auto) by the job's schema.
      engine: v.engine as string | undefined,
      dropout: num(v.dropout, 'dropout', { min: 0, max: 0.95 }),
      limit: num(v.limit, 'limit', { int: true, min: 10 }),
      testLimit: num(v['test-limit'], 'test-limit', { int: true, min: 10 }),
      validationSplit: num(v['validation-split'], 'validation-split', { min: 0, max: 0.5 }),
      // augment: checked by the job's schema (engine/models/augment.ts).
      augment: v.augment,
      earlyStopPatience: num(v['early-stop'], 'early-stop', { int: true, min: 0 }),
      seed: num(v.seed, 'seed', { int: true, min: 0 }),
      split: v.split, name: v.name, tags: v.tag,
    };
    const r = finished(await c.runJob('train', JSON.parse(JSON.stringify(params))));
    const out = { session: r.session, model: r.model, testAccuracy: r.testAccuracy ?? null, seconds: r.seconds, backend: r.backend, engine: r.engine, engineReason: r.engineReason, arch: r.arch, dataset: r.dataset, epochsRun: r.epochsRun, imagesPerSecond: r.imagesPerSecond, trainImages: r.trainImages, testImages: r.testImages, cancelled: r.cancelled ?? false };
    c.out.result(out, `trained ${out.arch} on ${out.dataset}: test accuracy ${typeof out.testAccuracy === 'number' ? (100 * out.testAccuracy).toFixed(2) + '%' : 'n/a'} in ${Number(out.seconds).toFixed(1)} s (${out.backend}; engine ${out.engineReason}); session ${out.session}`);
    return out.cancelled ? 130 : 0;
  },
};

/** Parses key=value pairs: numbers, true/false, else strings. */
function keyValues(pairs: string[] | undefined, flag: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw badInput(`--${flag} takes key=value, got "${pair}"`);
    const key = pair.slice(0, eq), raw = pair.slice(eq + 1);
    out[key] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

const ATTACK_FLAGS: Record<string, string> = {
  eps: 'eps', steps: 'steps', 'step-size': 'stepSize', restarts: 'restarts', loss: 'loss', kappa: 'kappa', c: 'initialConst',
  'search-steps': 'binarySearchSteps', 'max-iterations': 'maxIterations', lr: 'learningRate', objective: 'objective',
};

function attackFlagParams(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(ATTACK_FLAGS)) {
    const raw = v[flag];
    if (raw === undefined) continue;
    out[key] = typeof raw === 'string' && raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return { ...out, ...keyValues(v.param as string[] | undefined, 'param') };
}

const attackFlagOptions = Object.fromEntries(Object.keys(ATTACK_FLAGS).map((f) => [f, { type: 'string' as const }]));
const selectionOptions = {
  model: { type: 'string' }, dataset: { type: 'string' }, n: { type: 'string' }, pick: { type: 'string' }, offset: { type: 'string' }, seed: { type: 'string' }, split: { type: 'string' },
  'split-spec': { type: 'string' }, name: { type: 'string' }, tag: { type: 'string', multiple: true }, engine: { type: 'string' },
} as const;

function selection(v: Record<string, unknown>) {
  if (!v.model) throw badInput('--model is required: a session id of a trained model (advlab sessions list --kind train) or a model.json path');
  if (!v.dataset) throw badInput('--dataset is required (e.g. mnist, fashion-mnist)');
  return {
    model: v.model as string, dataset: v.dataset as string, split: v.split as string | undefined, splitSpec: v['split-spec'] as string | undefined,
    n: num(v.n as string | undefined, 'n', { int: true, min: 1, max: 10000 }), seed: num(v.seed as string | undefined, 'seed', { int: true, min: 0 }),
    // pick and offset: checked (and defaulted: first, 0) by the job's schema.
    pick: v.pick as string | undefined, offset: num(v.offset as string | undefined, 'offset', { int: true }),
    // engine: checked (and defaulted: auto) by the job's schema.
    engine: v.engine as string | undefined,
    name: v.name as string | undefined, tags: v.tag as string[] | undefined,
  };
}

/** Every image attack, from the registry (the help and the error for a missing --attack list them all). */
const ATTACK_LIST = ATTACK_IDS.join(', ');

const attack: Command = {
  summary: `attack a model on dataset images (${ATTACK_LIST})`,
  usage: `advlab attack --model M --dataset D --attack ID [--n 100] [--pick first|random] [--offset K] [--engine auto|onnx|tfjs] [--targeted next|random|least-likely|all|CLASS] [--eps X] [--steps N] [--step-size X] [--restarts N] [--loss ce|margin] [--c X] [--search-steps N] [--max-iterations N] [--lr X] [--kappa X] [--objective margin|ce|naive] [--param key=value]... [--transfer M2] [--seed N (for --pick random)] [--batch-size N (images per batch: per shard with --queue)] ${QUEUE_USAGE} [--json]`,
  async run(c: CliContext) {
    const { values: v } = c.parse({ ...selectionOptions, ...attackFlagOptions, ...QUEUE_OPTIONS, attack: { type: 'string' }, targeted: { type: 'string' }, 'target-seed': { type: 'string' }, transfer: { type: 'string' }, param: { type: 'string', multiple: true }, 'save-examples': { type: 'string' }, 'batch-size': { type: 'string' } });
    if (!v.attack) throw badInput(`--attack is required (${ATTACK_LIST})`);
    const t = v.targeted as string | undefined;
    const goal = t === undefined ? { kind: 'untargeted' } : { kind: 'targeted', target: /^\d+$/.test(t) ? Number(t) : t, ...(v['target-seed'] ? { seed: num(v['target-seed'] as string, 'target-seed', { int: true, min: 0 }) } : {}) };
    const params = { ...selection(v), attack: v.attack, goal, params: attackFlagParams(v), transferTo: v.transfer, saveExamples: num(v['save-examples'] as string | undefined, 'save-examples', { int: true, min: 0 }), batchSize: num(v['batch-size'] as string | undefined, 'batch-size', { int: true, min: 1 }) };
    const r = finished(await c.runJob('attack', JSON.parse(JSON.stringify(params))));
    const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : 'n/a');
    const cases = r.targetCases as { images: number; best: { successRate: number | null; meanL2: number | null }; average: { successRate: number | null; meanL2: number | null }; worst: { successRate: number | null; meanL2: number | null } } | undefined;
    const l2 = (x: number | null) => (x == null ? 'n/a' : x.toFixed(3));
    const caseText = cases ? `\nover each image's targets (${cases.images} images): best case ${pct(cases.best.successRate)} / mean L2 ${l2(cases.best.meanL2)}, average ${pct(cases.average.successRate)} / ${l2(cases.average.meanL2)}, worst ${pct(cases.worst.successRate)} / ${l2(cases.worst.meanL2)}` : '';
    c.out.result(r, `${r.attack} on ${r.n} ${cases ? '(image, target) pairs' : 'images'}: success ${pct(r.successRate)}, mean L2 ${r.meanL2 ?? 'n/a'}, mean Linf ${r.meanLinf ?? 'n/a'}, ${Number(r.msPerExample).toFixed(1)} ms/example (${r.backend}; engine ${r.engineReason}); session ${r.session}${caseText}`);
    return r.cancelled ? 130 : 0;
  },
};

const sweep: Command = {
  summary: 'robust accuracy versus epsilon under a fixed-epsilon attack',
  usage: `advlab sweep --model M --dataset D --epsilons 0,0.1,0.2,0.3 [--attack pgd] [--n 100] [--pick first|random] [--offset K] [--engine auto|onnx|tfjs] [--param key=value]... ${QUEUE_USAGE} [--json]`,
  async run(c: CliContext) {
    const { values: v } = c.parse({ ...selectionOptions, ...QUEUE_OPTIONS, attack: { type: 'string' }, epsilons: { type: 'string' }, param: { type: 'string', multiple: true } });
    if (!v.epsilons) throw badInput('--epsilons is required, e.g. 0,0.05,0.1,0.2,0.3');
    const epsilons = v.epsilons.split(',').map((e) => num(e.trim(), 'epsilons', { min: 0 })!);
    const r = finished(await c.runJob('sweep', JSON.parse(JSON.stringify({ ...selection(v), attack: v.attack, epsilons, params: keyValues(v.param, 'param') }))));
    const curve = r.curve as { eps: number; robustAccuracy: number }[];
    c.out.result(r, curve.map((p) => `eps ${p.eps}: robust accuracy ${(100 * p.robustAccuracy).toFixed(1)}%`).join('\n') + `\nsession ${r.session}`);
    return 0;
  },
};

const lossSurfaceCmd: Command = {
  summary: 'loss surface around one image (gradient/random and random/random directions)',
  usage: 'advlab loss-surface --model M --dataset D [--index 0] [--range 0.3] [--resolution 21] [--objective ce|margin] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({ model: { type: 'string' }, dataset: { type: 'string' }, index: { type: 'string' }, range: { type: 'string' }, resolution: { type: 'string' }, objective: { type: 'string' }, split: { type: 'string' }, 'split-spec': { type: 'string' }, seed: { type: 'string' }, name: { type: 'string' } });
    if (!v.model || !v.dataset) throw badInput('--model and --dataset are required');
    const r = finished(await c.runJob('loss-surface', JSON.parse(JSON.stringify({
      model: v.model, dataset: v.dataset, split: v.split, splitSpec: v['split-spec'], name: v.name,
      index: num(v.index, 'index', { int: true, min: 0 }), range: num(v.range, 'range', { min: 0 }), resolution: num(v.resolution, 'resolution', { int: true, min: 3 }),
      objective: v.objective, seed: num(v.seed, 'seed', { int: true, min: 0 }),
    }))));
    c.out.result(r, `loss surfaces saved in session ${r.session}`);
    return 0;
  },
};

const recipeCmd: Command = {
  summary: 'run a defense case study of the talk end to end (advlab recipe list shows them)',
  usage: `advlab recipe NAME|FILE.json [--quick] [--set key=value]... ${QUEUE_USAGE} [--json]   |   advlab recipe list [--json]`,
  async run(c: CliContext) {
    const { values: v, positionals } = c.parse({ ...QUEUE_OPTIONS, quick: { type: 'boolean' }, set: { type: 'string', multiple: true }, name: { type: 'string' }, tag: { type: 'string', multiple: true } }, true);
    const [name] = positionals;
    if (!name || name === 'list') {
      const { listRecipes } = await import('../engine/defenses/recipes');
      const list = listRecipes().map((r) => ({ id: r.id, title: r.title, claim: r.claim, finding: r.finding }));
      c.out.result({ recipes: list }, list.map((r) => `${r.id.padEnd(24)} ${r.title}`).join('\n'));
      return 0;
    }
    const r = finished(await c.runJob('recipe', { recipe: name, quick: v.quick ?? false, overrides: keyValues(v.set, 'set'), ...(v.name ? { name: v.name } : {}), tags: v.tag ?? [] }));
    const evidence = r.evidence as Record<string, unknown>;
    c.out.result({ session: r.session, recipe: r.recipe, claimReproduced: r.claimReproduced, criterion: r.criterion, evidence, seconds: r.seconds },
      [`${r.recipe}: claim ${r.claimReproduced ? 'REPRODUCED' : 'NOT reproduced'} — ${r.criterion}`, ...Object.entries(evidence).map(([k, x]) => `  ${k}: ${x}`), `session ${r.session}`].join('\n'));
    return 0;
  },
};

const gradientCheckCmd: Command = {
  summary: 'gradient-masking checks on any model (iterative vs single-step, white-box vs transfer, unbounded eps, monotonicity, restarts, loss surface, zero gradients)',
  usage: 'advlab gradient-check --model M --dataset D [--n 100] [--pick first|random] [--offset K] [--engine auto|onnx|tfjs] [--eps X] [--steps 20] [--restarts 5] [--surrogate M2] [--surrogate-train-limit 5000] [--surrogate-epochs 2] [--surface-images 2] [--seed N (for --pick random)] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({
      ...selectionOptions, eps: { type: 'string' }, steps: { type: 'string' }, restarts: { type: 'string' }, surrogate: { type: 'string' },
      'surrogate-train-limit': { type: 'string' }, 'surrogate-epochs': { type: 'string' }, 'surface-images': { type: 'string' },
    });
    const params = {
      ...selection(v), eps: num(v.eps, 'eps', { min: 0, max: 1 }), steps: num(v.steps, 'steps', { int: true, min: 1 }), restarts: num(v.restarts, 'restarts', { int: true, min: 2 }),
      surrogate: v.surrogate, surrogateTrainLimit: num(v['surrogate-train-limit'], 'surrogate-train-limit', { int: true, min: 100 }),
      surrogateEpochs: num(v['surrogate-epochs'], 'surrogate-epochs', { int: true, min: 1 }), surfaceImages: num(v['surface-images'], 'surface-images', { int: true, min: 0 }),
    };
    const r = finished(await c.runJob('gradient-check', JSON.parse(JSON.stringify(params))));
    const checks = r.checks as { name: string; status: string }[];
    c.out.result(r, [...checks.map((k) => `${k.status === 'pass' ? 'pass' : 'WARN'}  ${k.name}`), `${r.checksPassed} passed, ${r.checksWarned} warned (eps ${r.eps}, n ${r.n}); session ${r.session}`].join('\n'));
    return r.cancelled ? 130 : 0;
  },
};

const evaluateCmd: Command = {
  summary: 'the standard robustness evaluation: APGD-CE, APGD-T, FAB-T (standard), Square on the inputs still robust (waterfall, per-example provenance) and the AutoAttack/RobustBench checks; resumable',
  usage: `advlab evaluate --model M --dataset D [--norm linf|l2] [--eps X] [--n 100] [--version standard|quick] [--pick first|random] [--offset K] [--attack-seed N] [--chunk-size 100] [--checkpoint-seconds 60] ${QUEUE_USAGE} [--json]   |   advlab evaluate --resume SESSION [--json]`,
  async run(c: CliContext) {
    const { values: v } = c.parse({
      ...selectionOptions, ...QUEUE_OPTIONS, norm: { type: 'string' }, eps: { type: 'string' }, version: { type: 'string' }, 'attack-seed': { type: 'string' },
      'chunk-size': { type: 'string' }, 'checkpoint-seconds': { type: 'string' }, resume: { type: 'string' },
    });
    const settings = {
      norm: v.norm, eps: num(v.eps, 'eps', { min: 0 }), version: v.version, attackSeed: num(v['attack-seed'], 'attack-seed', { int: true, min: 0 }),
      chunkSize: num(v['chunk-size'], 'chunk-size', { int: true, min: 1 }), checkpointSeconds: num(v['checkpoint-seconds'], 'checkpoint-seconds', { min: 0 }),
    };
    if (v.resume) {
      const flags = v as Record<string, unknown>;
      const extra = ['model', 'dataset', 'n', 'pick', 'offset', 'seed', 'split', 'split-spec', 'norm', 'eps', 'version', 'attack-seed', 'chunk-size', 'checkpoint-seconds'].filter((f) => flags[f] !== undefined);
      if (extra.length) throw badInput(`--resume reuses the interrupted evaluation's settings: give only resume (and name, tags), not ${extra.map((f) => `--${f}`).join(', ')}`);
    }
    const params = v.resume ? { resume: v.resume, name: v.name, tags: v.tag } : { ...selection(v), ...settings };
    const r = finished(await c.runJob('evaluate', JSON.parse(JSON.stringify(params))));
    const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : 'n/a');
    const waterfall = (r.waterfall as { attack: string; robustAccuracy: number; broken: number }[] | undefined) ?? [];
    const checks = (r.checks as { name: string; status: string }[] | undefined) ?? [];
    c.out.result(r, r.cancelled
      ? `cancelled; resume with: advlab evaluate --resume ${r.session}`
      : [...waterfall.map((w) => `${w.attack.padEnd(8)} robust accuracy ${pct(w.robustAccuracy)}${w.attack === 'clean' ? '' : ` (${w.broken} broken)`}`),
        ...checks.map((k) => `${k.status === 'pass' ? 'pass' : 'WARN'}  ${k.name}`), `session ${r.session}`].join('\n'));
    return r.cancelled ? 130 : 0;
  },
};

const minnormCmd: Command = {
  summary: 'minimum-norm attacks compared at equal cost: per-example best distance, AttackBench optimality, distance-versus-budget curves',
  usage: 'advlab minnorm --model M --dataset D [--norm l2|linf] [--attacks cw-l2,ddn,fmn,apgd,fab (default: all but fab; none: only combine the --reference sessions)] [--budget 1000] [--cw 9x1000 (C&W at its own budget: search steps x iterations, as the reference)] [--reference SESSION[,SESSION] (finished minnorm sessions on the same model, images, norm and goal whose attacks join the comparison)] [--no-curves] [--n 100] [--targeted next|random|least-likely|CLASS] [--pick first|random] [--offset K] [--engine auto|onnx|tfjs] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({ ...selectionOptions, norm: { type: 'string' }, attacks: { type: 'string' }, budget: { type: 'string' }, cw: { type: 'string' }, reference: { type: 'string' }, targeted: { type: 'string' }, 'no-curves': { type: 'boolean' } });
    const t = v.targeted as string | undefined;
    const cw = v.cw === undefined ? undefined : /^(\d+)x(\d+)$/.exec(v.cw);
    if (cw === null) throw badInput(`--cw takes search steps x iterations, e.g. 9x1000; got "${v.cw}"`);
    const params = {
      ...selection(v), norm: v.norm, attacks: v.attacks === 'none' ? [] : v.attacks ? v.attacks.split(',').map((a) => a.trim()) : undefined,
      budget: num(v.budget, 'budget', { int: true, min: 1 }), curves: v['no-curves'] ? false : undefined,
      cw: cw ? { binarySearchSteps: Number(cw[1]), maxIterations: Number(cw[2]) } : undefined,
      references: v.reference ? v.reference.split(',').map((id) => id.trim()) : undefined,
      goal: t === undefined ? undefined : { kind: 'targeted', target: /^\d+$/.test(t) ? Number(t) : t },
    };
    const r = finished(await c.runJob('minnorm', JSON.parse(JSON.stringify(params))));
    const rows = (r.attacks as { attack: string; optimality: number; meanDistance: number | null; successRate: number }[]) ?? [];
    c.out.result(r, [...rows.map((a) => `${a.attack.padEnd(9)} optimality ${a.optimality.toFixed(3)}  mean ${r.norm} ${a.meanDistance == null ? 'n/a' : a.meanDistance.toFixed(4)}  success ${(100 * a.successRate).toFixed(1)}%`), `session ${r.session}`].join('\n'));
    return r.cancelled ? 130 : 0;
  },
};

const importModelCmd: Command = {
  summary: 'import a tfjs LayersModel (model.json + weights) so it can be attacked; checks its input shape against a dataset',
  usage: 'advlab import-model --path DIR|model.json [--dataset D] [--test-limit N] [--name TEXT] [--json]',
  async run(c: CliContext) {
    const { values: v } = c.parse({ path: { type: 'string' }, dataset: { type: 'string' }, 'test-limit': { type: 'string' }, name: { type: 'string' }, tag: { type: 'string', multiple: true } });
    if (!v.path) throw badInput('--path is required: a model.json or the folder holding it');
    const r = finished(await c.runJob('import-model', JSON.parse(JSON.stringify({ path: resolve(v.path), dataset: v.dataset, testLimit: num(v['test-limit'], 'test-limit', { int: true, min: 1 }), name: v.name, tags: v.tag }))));
    c.out.result(r, `imported as session ${r.session}${typeof r.testAccuracy === 'number' ? `; test accuracy ${(100 * r.testAccuracy).toFixed(2)}%` : ''}`);
    return 0;
  },
};

const sessions: Command = {
  summary: 'list, show, rename, tag, delete, restore, export (zip, HTML report, CSV), compare and import sessions',
  usage: 'advlab sessions list [--kind K] [--status S] [--tag T] [--dataset D] [--model M] [--text Q] | show ID | rename ID NAME | tag ID [--add T]... [--remove T]... | delete ID | restore ID | trash | empty-trash [--older-than-days N] | export ID [--out FILE.zip] [--html FILE.html] [--csv FILE.csv] | report ID1 ID2... --html FILE.html | import FILE.zip   [--sessions DIR] [--json]',
  async run(c: CliContext) {
    const { values: v, positionals } = c.parse({
      kind: { type: 'string' }, status: { type: 'string' }, tag: { type: 'string' }, dataset: { type: 'string' }, model: { type: 'string' },
      text: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, add: { type: 'string', multiple: true },
      remove: { type: 'string', multiple: true }, out: { type: 'string' }, html: { type: 'string' }, csv: { type: 'string' },
      'older-than-days': { type: 'string' },
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
        if (!v.out && !v.html && !v.csv) throw badInput('advlab sessions export ID --out FILE.zip | --html FILE.html | --csv FILE.csv (one or more)');
        const result: Record<string, unknown> = { id: sid };
        const lines: string[] = [];
        if (v.out) {
          const r = await store.exportArchive(sid, resolve(v.out));
          result.archive = r;
          lines.push(`archive: ${r.file} (${r.files} files, ${r.bytes} bytes)`);
        }
        if (v.html) {
          const r = await buildReport(store, [sid]);
          const w = await writeOutputFile(v.html, r.html);
          result.html = { ...w, images: r.embedded.images, audio: r.embedded.audio, omitted: r.omitted };
          lines.push(`HTML report: ${w.file} (${w.bytes} bytes, ${r.embedded.images} images and ${r.embedded.audio} audio clips embedded${r.omitted.length ? `, ${r.omitted.length} left out` : ''})`);
        }
        if (v.csv) {
          const r = await sessionCsv(store, sid);
          const w = await writeOutputFile(v.csv, r.csv);
          result.csv = { ...w, source: r.source, rows: r.rows, columns: r.columns };
          lines.push(`CSV: ${w.file} (${r.rows} rows from ${r.source})`);
        }
        c.out.result(result, `exported ${sid}\n${lines.map((l) => `  ${l}`).join('\n')}`);
        return 0;
      }
      case 'report': {
        const ids = positionals.slice(1);
        if (!ids.length) throw badInput('advlab sessions report ID1 [ID2...] --html FILE.html: give at least one session id');
        if (!v.html) throw badInput('advlab sessions report ID1 [ID2...] --html FILE.html: --html is required');
        const r = await buildReport(store, ids);
        const w = await writeOutputFile(v.html, r.html);
        c.out.result({ ...w, sessions: r.sessions, title: r.title, images: r.embedded.images, audio: r.embedded.audio, omitted: r.omitted }, `${r.title}\nwritten to ${w.file} (${w.bytes} bytes)`);
        return 0;
      }
      case 'trash': {
        const list = await store.listTrash();
        c.out.result({ trash: list, count: list.length }, list.map((t) => `${t.id}  deleted ${t.deletedAt}`).join('\n') || '(the trash is empty)');
        return 0;
      }
      case 'empty-trash': {
        const days = num(v['older-than-days'], 'older-than-days', { min: 0 }) ?? 0;
        const purged = await store.purgeTrash(days * 86_400_000);
        c.out.result({ purged, count: purged.length }, purged.length ? `purged for good: ${purged.join(', ')}` : '(nothing to purge)');
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

const AUDIO_USAGE = [
  'advlab audio train [--quick] [--epochs N] [--utterances N] [--arch speech-base|speech-small|speech-large] [--corpus DIR|NAME [--fsdd-utterances N]] [--init M] [--augment SPEC] [--batch-size N] [--lr X] [--seed N] [--engine auto|onnx|tfjs] [--name TEXT] [--tag T]... [--json]',
  '          (--init M: continue training M (fine-tuning, or resuming a stopped run from its session\'s artifacts/checkpoint/, saved after every epoch))',
  '          (--augment SPEC: augment the training batches: default | speed=LO-HI | snr=LO-HI | freq=NxW | time=NxW | time-frac=P, comma-separated)',
  '       advlab audio corpus [--out DIR] [--hours H] [--seed S] [--rate 8000|16000] [--concurrency N] [--synth espeak-ng|flite|festival]... [--no-fsdd] [--json]',
  '       advlab audio attack --model M --wav FILE (--target "TEXT" | --untargeted) [--iterations N] [--c X] [--lr X] [--tau0 X] [--alignment-margin K|none] [--seed N] [--engine auto|onnx|tfjs] [--stage2 [--stage2-iterations N] [--alpha X] [--stage2-lr X]] [--name TEXT] [--tag T]... [--json]',
  '          (--alignment-margin K: C&W 2018 Section 4.2\'s per-frame alignment loss with margin K added to CTC (targeted only); none: CTC alone)',
  '       advlab audio transcribe --model M --wav FILE [--beam] [--json]',
  '       advlab audio robust --model M --wav FILE (--target "TEXT" | --untargeted) [attack options as above, without --alignment-margin and --stage2] [--samples N] [--rooms N] [--reverb P] [--snr DB | --no-noise] [--shift-ms MS] [--resample P] [--rir-seconds S] [--check N] [--accept F] [--held-out N] [--no-compare] [--json]',
  '          (expectation over transformations: image-source rooms, noise at an SNR, time shifts, 8k<->16k; evaluated on held-out transformations against the plain attack)',
  '       advlab audio universal --model M --target "TEXT" [--eps X,Y,...] [--train-clips N] [--test-clips N] [--iterations N] [--batch-size N] [--lr X] [--seconds S] [--seed N] [--name TEXT] [--tag T]... [--json]',
  '          (one perturbation for many FSDD clips; held-out success for each Linf bound)',
  '   (M: an audio-train session id or a speech model.json / its folder; every saved adversarial WAV is re-checked from disk with the model loaded afresh)',
].join('\n');

/** A model reference: a session id stays as is, an existing path becomes absolute. */
function modelArg(m: string | undefined): string {
  if (!m) throw badInput('--model is required: an audio-train session id (advlab sessions list --kind audio-train) or a speech model.json path');
  return existsSync(m) ? resolve(m) : m;
}

/** The attack's stage-2 options: --stage2 turns it on, its tuning flags need it. */
function stage2Arg(v: Record<string, unknown>): { iterations?: number; alpha?: number; learningRate?: number } | undefined {
  const tuning = { iterations: num(v['stage2-iterations'] as string | undefined, 'stage2-iterations', { int: true, min: 1 }), alpha: num(v.alpha as string | undefined, 'alpha', { min: 0 }), learningRate: num(v['stage2-lr'] as string | undefined, 'stage2-lr', { min: 0 }) };
  const given = Object.values(tuning).some((x) => x !== undefined);
  if (!v.stage2) {
    if (given) throw badInput('--stage2-iterations, --alpha and --stage2-lr tune the imperceptible second stage: add --stage2');
    return undefined;
  }
  return tuning;
}

/** --alignment-margin K|none: C&W 2018 Section 4.2's alignment loss with margin K, or none (CTC alone); absent: the job's default. */
function alignmentMarginArg(v: string | undefined): number | null | undefined {
  return v === 'none' ? null : num(v, 'alignment-margin', { min: 0 });
}

const audioCmd: Command = {
  summary: 'speech-to-text on FSDD and a synthesized corpus, targeted audio adversarial examples: audio corpus | train | attack | robust | universal | transcribe',
  usage: AUDIO_USAGE,
  async run(c: CliContext) {
    const { values: v, positionals } = c.parse({
      quick: { type: 'boolean' }, epochs: { type: 'string' }, utterances: { type: 'string' }, arch: { type: 'string' }, 'batch-size': { type: 'string' },
      lr: { type: 'string' }, seed: { type: 'string' }, name: { type: 'string' }, tag: { type: 'string', multiple: true },
      model: { type: 'string' }, wav: { type: 'string' }, target: { type: 'string' }, untargeted: { type: 'boolean' }, iterations: { type: 'string' },
      c: { type: 'string' }, tau0: { type: 'string' }, 'alignment-margin': { type: 'string' }, beam: { type: 'boolean' }, engine: { type: 'string' },
      samples: { type: 'string' }, rooms: { type: 'string' }, reverb: { type: 'string' }, snr: { type: 'string' }, 'no-noise': { type: 'boolean' },
      'shift-ms': { type: 'string' }, resample: { type: 'string' }, 'rir-seconds': { type: 'string' }, check: { type: 'string' }, accept: { type: 'string' },
      'held-out': { type: 'string' }, 'no-compare': { type: 'boolean' }, eps: { type: 'string' }, 'train-clips': { type: 'string' }, 'test-clips': { type: 'string' },
      seconds: { type: 'string' },
      stage2: { type: 'boolean' }, 'stage2-iterations': { type: 'string' }, alpha: { type: 'string' }, 'stage2-lr': { type: 'string' },
      corpus: { type: 'string' }, 'fsdd-utterances': { type: 'string' }, init: { type: 'string' }, augment: { type: 'string' },
      out: { type: 'string' }, hours: { type: 'string' }, rate: { type: 'string' }, concurrency: { type: 'string' }, synth: { type: 'string', multiple: true }, 'no-fsdd': { type: 'boolean' },
    }, true);
    const [sub, ...extra] = positionals;
    if (extra.length) throw badInput(`advlab audio ${sub}: unexpected argument "${extra[0]}"\nusage: ${AUDIO_USAGE}`);
    const seed = num(v.seed, 'seed', { int: true, min: 0 });
    switch (sub) {
      case 'train': {
        const params = {
          quick: v.quick ?? false, epochs: num(v.epochs, 'epochs', { int: true, min: 1 }), utterances: num(v.utterances, 'utterances', { int: true, min: 16 }),
          arch: v.arch, batchSize: num(v['batch-size'], 'batch-size', { int: true, min: 1 }), learningRate: num(v.lr, 'lr', { min: 0 }),
          seed, name: v.name, tags: v.tag,
          corpus: v.corpus === undefined ? undefined : existsSync(v.corpus) ? resolve(v.corpus) : v.corpus,
          fsddUtterances: num(v['fsdd-utterances'], 'fsdd-utterances', { int: true, min: 0 }),
          // engine: checked (and defaulted: auto) by the job's schema.
          engine: v.engine,
          init: v.init === undefined ? undefined : existsSync(v.init) ? resolve(v.init) : v.init,
          // augment: parsed and checked by the job's schema (engine/audio/augment.ts).
          augment: v.augment,
        };
        const r = finished(await c.runJob('audio-train', JSON.parse(JSON.stringify(params))));
        const out = {
          session: r.session, model: r.model, cer: r.cer ?? null, wer: r.wer ?? null, cerUnseen: r.cerUnseen ?? null, werUnseen: r.werUnseen ?? null,
          cerVoices: r.cerVoices ?? null, werVoices: r.werVoices ?? null, dataset: r.dataset,
          seconds: r.seconds, arch: r.arch, epochsRun: r.epochsRun, heldOutSpeaker: r.heldOutSpeaker, parameters: r.parameters, backend: r.backend,
          engine: r.engine ?? null, engineReason: r.engineReason ?? null, utterancesPerSecond: r.utterancesPerSecond ?? null, cancelled: r.cancelled ?? false,
        };
        const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : 'n/a');
        const voices = out.cerVoices === null ? '' : `; CER ${pct(out.cerVoices)}, WER ${pct(out.werVoices)} on held-out synthesized voices`;
        c.out.result(out, `trained ${out.arch} on ${out.dataset === 'fsdd' ? 'FSDD' : 'the corpus and FSDD'} in ${Number(out.seconds).toFixed(0)} s: CER ${pct(out.cer)}, WER ${pct(out.wer)} on held-out utterances of seen speakers; CER ${pct(out.cerUnseen)}, WER ${pct(out.werUnseen)} on the unseen speaker ${out.heldOutSpeaker}${voices}; engine ${out.engineReason ?? out.backend}; session ${out.session}`);
        return out.cancelled ? 130 : 0;
      }
      case 'attack': {
        if (!v.wav) throw badInput('--wav is required: the WAV file to attack');
        if (v.target === undefined && !v.untargeted) throw badInput('--target "TEXT" is required (or --untargeted)');
        if (v.target !== undefined && v.untargeted) throw badInput('give either --target or --untargeted, not both');
        const params = {
          model: modelArg(v.model), wav: resolve(v.wav), target: v.untargeted ? null : v.target,
          iterations: num(v.iterations, 'iterations', { int: true, min: 1 }), c: num(v.c, 'c', { min: 0 }), learningRate: num(v.lr, 'lr', { min: 0 }),
          tau0: num(v.tau0, 'tau0', { min: 0, max: 1 }), alignmentMargin: alignmentMarginArg(v['alignment-margin']), seed, engine: v.engine, name: v.name, tags: v.tag, stage2: stage2Arg(v),
        };
        const r = finished(await c.runJob('audio-attack', JSON.parse(JSON.stringify(params))));
        const out = {
          session: r.session, success: r.success, target: r.target ?? null, transcriptBefore: r.transcriptBefore, transcriptAfter: r.transcriptAfter,
          dbx: r.dbx ?? null, iterations: r.iterations, seconds: r.seconds, tau: r.tau, linf: r.linf, successIteration: r.successIteration ?? null, cancelled: r.cancelled ?? false,
          alignmentMargin: r.alignmentMargin ?? null, stopReason: r.stopReason ?? null,
          survived: r.survived ?? null, secondCopyTranscript: r.secondCopyTranscript ?? null,
          ...(r.stage2 ? {
            stage2: {
              transcript: r.transcriptStage2, dbx: r.dbxStage2 ?? null, violationBefore: r.violationStage1, violationAfter: r.violationStage2,
              violationDbBefore: r.violationDbStage1, violationDbAfter: r.violationDbStage2, improved: r.stage2Improved, iterations: r.stage2Iterations, alpha: r.stage2Alpha, seconds: r.stage2Seconds,
            },
          } : {}),
        };
        const what = out.target === null ? 'untargeted' : `target "${out.target}"`;
        const survivedText = out.survived === null ? '' : out.survived ? ' (survived the re-check from disk)' : ` (did NOT survive the re-check: the saved file with a freshly loaded model says "${out.secondCopyTranscript}")`;
        const s2 = out.stage2 ? `; stage 2: "${out.stage2.transcript}", dB_x ${typeof out.stage2.dbx === 'number' ? out.stage2.dbx.toFixed(1) : 'n/a'} dB, masking violation ${Number(out.stage2.violationDbBefore).toFixed(2)} -> ${Number(out.stage2.violationDbAfter).toFixed(2)} dB above the threshold on average` : '';
        c.out.result(out, `${what}: ${out.success ? 'SUCCESS' : 'failed'} — "${out.transcriptBefore}" -> "${out.transcriptAfter}"${survivedText}, dB_x ${typeof out.dbx === 'number' ? out.dbx.toFixed(1) : 'n/a'} dB, ${out.iterations} iterations in ${Number(out.seconds).toFixed(1)} s${s2}; session ${out.session}`);
        return out.cancelled ? 130 : 0;
      }
      case 'robust': {
        if (!v.wav) throw badInput('--wav is required: the WAV file to attack');
        if (v.target === undefined && !v.untargeted) throw badInput('--target "TEXT" is required (or --untargeted)');
        if (v.target !== undefined && v.untargeted) throw badInput('give either --target or --untargeted, not both');
        if (v.snr !== undefined && v['no-noise']) throw badInput('give either --snr or --no-noise, not both');
        const params = {
          model: modelArg(v.model), wav: resolve(v.wav), target: v.untargeted ? null : v.target,
          iterations: num(v.iterations, 'iterations', { int: true, min: 1 }), c: num(v.c, 'c', { min: 0 }), learningRate: num(v.lr, 'lr', { min: 0 }),
          // --alignment-margin goes to the schema, which refuses it here (robust mode runs the CTC term alone).
          tau0: num(v.tau0, 'tau0', { min: 0, max: 1 }), alignmentMargin: alignmentMarginArg(v['alignment-margin']), seed, name: v.name, tags: v.tag,
          samples: num(v.samples, 'samples', { int: true, min: 1 }), rooms: num(v.rooms, 'rooms', { int: true, min: 1 }), reverbProbability: num(v.reverb, 'reverb', { min: 0, max: 1 }),
          snrDb: v['no-noise'] ? null : num(v.snr, 'snr'), maxShiftMs: num(v['shift-ms'], 'shift-ms', { min: 0 }), resampleProbability: num(v.resample, 'resample', { min: 0, max: 1 }),
          rirMaxSeconds: num(v['rir-seconds'], 'rir-seconds', { min: 0 }), checkTransforms: num(v.check, 'check', { int: true, min: 1 }), acceptFraction: num(v.accept, 'accept', { min: 0, max: 1 }),
          heldOut: num(v['held-out'], 'held-out', { int: true, min: 1 }), compare: v['no-compare'] ? false : undefined,
        };
        const r = finished(await c.runJob('audio-robust', JSON.parse(JSON.stringify(params))));
        const out = {
          session: r.session, success: r.success, target: r.target ?? null, transcriptBefore: r.transcriptBefore, transcriptAfter: r.transcriptAfter, dbx: r.dbx ?? null,
          heldOutSuccess: r.heldOutSuccess ?? null, heldOutTrials: r.heldOutTrials ?? null, plainSuccess: r.plainSuccess ?? null, plainDbx: r.plainDbx ?? null,
          plainHeldOutSuccess: r.plainHeldOutSuccess ?? null, dbxCost: r.dbxCost ?? null, survived: r.survived ?? null, secondCopyTranscript: r.secondCopyTranscript ?? null,
          seconds: r.seconds, plainSeconds: r.plainSeconds ?? null, totalSeconds: r.totalSeconds ?? null, cancelled: r.cancelled ?? false,
        };
        const f = (x: unknown, d = 1) => (typeof x === 'number' ? x.toFixed(d) : 'n/a');
        const p100 = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(0)}%` : 'n/a');
        c.out.result(out, [
          `robust (EOT): ${out.success ? 'SUCCESS' : 'failed'} — "${out.transcriptBefore}" -> "${out.transcriptAfter}", dB_x ${f(out.dbx)} dB, target under ${p100(out.heldOutSuccess)} of ${out.heldOutTrials} held-out transformations`,
          ...(out.plainHeldOutSuccess !== null ? [`plain:        ${out.plainSuccess ? 'SUCCESS' : 'failed'}, dB_x ${f(out.plainDbx)} dB, target under ${p100(out.plainHeldOutSuccess)} of them; robustness costs ${f(out.dbxCost)} dB`] : []),
          `survival re-check: ${out.survived ? 'survived' : `did NOT survive ("${out.secondCopyTranscript}")`}; session ${out.session}`,
        ].join('\n'));
        return out.cancelled ? 130 : 0;
      }
      case 'universal': {
        if (v.target === undefined) throw badInput('--target "TEXT" is required: the phrase every clip should transcribe as');
        const eps = v.eps === undefined ? undefined : v.eps.split(',').map((x, i) => num(x.trim(), `eps (item ${i + 1})`, { min: 0, max: 1 })!);
        const params = {
          model: modelArg(v.model), target: v.target, eps, trainClips: num(v['train-clips'], 'train-clips', { int: true, min: 1 }), testClips: num(v['test-clips'], 'test-clips', { int: true, min: 1 }),
          iterations: num(v.iterations, 'iterations', { int: true, min: 1 }), batchSize: num(v['batch-size'], 'batch-size', { int: true, min: 1 }), learningRate: num(v.lr, 'lr', { min: 0 }),
          seconds: num(v.seconds, 'seconds', { min: 0 }), seed, name: v.name, tags: v.tag,
        };
        const r = finished(await c.runJob('audio-universal', JSON.parse(JSON.stringify(params))));
        const curve = (r.curve ?? []) as { eps: number; deltaDbfs: number; meanDbx: number; trainSuccess: number; heldOutSuccess: number; heldOutHits: number; heldOutTrials: number }[];
        const out = { session: r.session, target: r.target, trainClips: r.trainClips, testClips: r.testClips, curve, bestHeldOutSuccess: r.bestHeldOutSuccess ?? null, survived: r.survived ?? null, seconds: r.seconds, cancelled: r.cancelled ?? false };
        c.out.result(out, [
          `universal perturbation "${out.target}" (${out.trainClips} training clips, ${out.testClips} held out):`,
          ...curve.map((p) => `  eps ${p.eps}: ${p.deltaDbfs.toFixed(1)} dBFS, mean dB_x ${p.meanDbx.toFixed(1)} dB, held-out ${p.heldOutHits}/${p.heldOutTrials} (${(100 * p.heldOutSuccess).toFixed(0)}%), train ${(100 * p.trainSuccess).toFixed(0)}%`),
          `survival re-check of the saved examples: ${out.survived ? 'survived' : 'did NOT survive'}; ${Number(out.seconds).toFixed(0)} s; session ${out.session}`,
        ].join('\n'));
        return out.cancelled ? 130 : 0;
      }
      case 'corpus': {
        const params = {
          out: v.out === undefined ? undefined : resolve(v.out), hours: num(v.hours, 'hours', { min: 0 }), seed,
          sampleRate: num(v.rate, 'rate', { int: true }), concurrency: num(v.concurrency, 'concurrency', { int: true, min: 1 }),
          synthesizers: v.synth, fsdd: !v['no-fsdd'],
        };
        const r = finished(await c.runJob('audio-corpus', JSON.parse(JSON.stringify(params)))) as JobResultOf<'audio-corpus'>;
        const min = (s: number) => (s / 60).toFixed(1);
        c.out.result(r, `${r.clips} clips (${r.train} train, ${r.val} val, ${r.test} held-out voices; ${min(r.seconds.train)} / ${min(r.seconds.val)} / ${min(r.seconds.test)} min) from ${r.synthesizers.map((s) => `${s.name} (${s.voices} voices)`).join(', ')}, ${r.fsddClips} FSDD recordings listed; ${r.manifest}`);
        return 0;
      }
      case 'transcribe': {
        if (!v.wav) throw badInput('--wav is required: the WAV file to transcribe');
        const r = finished(await c.runJob('audio-transcribe', { model: modelArg(v.model), wav: resolve(v.wav), method: v.beam ? 'beam' : 'greedy' }));
        c.out.result(r, `"${r.transcript}"`);
        return 0;
      }
      default:
        throw badInput(`${sub === undefined ? 'advlab audio needs a subcommand' : `Unknown audio subcommand "${sub}"`}: corpus, train, attack or transcribe; robust or universal\nusage: ${AUDIO_USAGE}`);
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
  attack,
  sweep,
  'loss-surface': lossSurfaceCmd,
  bench,
  recipe: recipeCmd,
  'gradient-check': gradientCheckCmd,
  evaluate: evaluateCmd,
  minnorm: minnormCmd,
  'import-model': importModelCmd,
  audio: audioCmd,
  data: dataCmd,
  worker,
  study,
};
