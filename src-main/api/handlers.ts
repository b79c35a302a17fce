/**
 * Handlers for the data-side methods: datasets, models and sessions. Light work only (reading
 * manifests and headers); anything with tensors runs as a job in a worker.
 */
import { stat } from 'node:fs/promises';
import type { DatasetEntry, ModelEntry, ArchitectureEntry } from './contract';
import { mimeOf } from '../engine/core/mime';
import { AdvlabError } from '../engine/errors';
import type { CoreMethods, Handlers } from './core';
import { downloadStatus, listDatasets, starterModels, type DatasetListing } from '../engine/data';
import { appDataDir } from '../paths';
import { listArchitectures } from '../engine/models/architectures';
import { attackCatalog } from '../engine/attacks/registry';
import { describeSchema, type ParamsDescription } from '../engine/core/describe-schema';
import { jobParamsSchemas, type JobKind } from './jobs';
import { listRecipes } from '../engine/defenses/recipes';
import type { SessionStore } from '../engine/sessions';
import { reviewHandlers } from '../report/api';
import { listeningHandlers } from '../listening/api';
import type { ApiEvent } from './contract';

/** Artifacts larger than this are not sent whole over the API (the HTTP host streams /files/ instead). */
export const MAX_ARTIFACT_BYTES = 64 * 1024 * 1024;

export interface HandlerDeps {
  store: SessionStore;
  dataDirs: string[];
  /** Emits an API event to every client (e.g. sessions.changed after a write outside a job). */
  emit?: (e: ApiEvent) => void;
}

export function datasetEntry(d: DatasetListing): DatasetEntry {
  const notes = [...(d.nativeSplit ? [] : [`one file: train/test declared as ${d.defaultSplitSpec ?? 'a split'}`]), ...d.problems];
  return {
    name: d.name,
    dir: d.dir,
    shape: d.shape ?? [],
    classes: d.classNames.length,
    classNames: d.classNames,
    splits: Object.fromEntries(Object.entries(d.splits).map(([k, v]) => [k, v?.count ?? 0])),
    ...(notes.length ? { note: notes.join('; ') } : {}),
    ...(d.starter ? { starter: true } : {}),
  };
}

/** The copies loadDataset would use, one per name (a used copy says when it shadows a starter sample). */
export async function datasetEntries(dataDirs: string[]): Promise<DatasetEntry[]> {
  const all = await listDatasets(dataDirs);
  const starters = new Set(all.filter((d) => d.starter && !d.used).map((d) => d.name));
  return all.filter((d) => d.used).map((d) => ({ ...datasetEntry(d), ...(!d.starter && starters.has(d.name) ? { shadowsStarter: true } : {}) }));
}

/** The starter models (resources/starter/models), as models.list lists them after the trained ones. */
export function starterModelEntries(): ModelEntry[] {
  return starterModels().map((m) => ({
    id: `starter:${m.name}`, name: `${m.title} (starter)`, arch: m.arch, dataset: m.dataset, testAccuracy: m.testAccuracy,
    created: m.trained, status: 'finished', path: m.modelJson, starter: true, kind: m.kind,
  }));
}

export function listModels(summaries: Awaited<ReturnType<SessionStore['list']>>, store: SessionStore): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const s of summaries) {
    const modelPath = s.summary.model;
    if (typeof modelPath !== 'string' || s.status === 'damaged' || s.status === 'running') continue;
    out.push({
      id: s.id,
      name: s.name,
      arch: String(s.summary.arch ?? 'unknown'),
      dataset: typeof s.summary.dataset === 'string' ? s.summary.dataset : s.datasets[0],
      testAccuracy: typeof s.summary.testAccuracy === 'number' ? s.summary.testAccuracy : undefined,
      created: s.created,
      status: s.status,
      path: `${store.dir(s.id)}/artifacts/${modelPath}`,
      defense: typeof s.summary.defense === 'string' ? s.summary.defense : undefined,
      kind: s.kind === 'audio-train' ? 'speech' : 'image',
    });
  }
  return out;
}

/** jobs.schemas: each job kind's params described for a form (the renderer's Train and Audio forms). */
export function jobSchemas(): Record<JobKind, ParamsDescription> {
  return Object.fromEntries(Object.entries(jobParamsSchemas).map(([kind, schema]) => [kind, describeSchema(schema)])) as Record<JobKind, ParamsDescription>;
}

export function apiHandlers({ store, dataDirs, emit }: HandlerDeps): Omit<Handlers, CoreMethods> {
  return {
    'datasets.list': () => datasetEntries(dataDirs),
    'datasets.downloads': () => ({ target: appDataDir(), sources: downloadStatus(appDataDir(), dataDirs) }),
    'models.list': async () => [...listModels(await store.list(), store), ...starterModelEntries()],
    'models.architectures': (): ArchitectureEntry[] =>
      listArchitectures().map((a) => ({ name: a.name, description: `${a.title}: ${a.description}`, inputShape: a.defaultInputShape, params: a.params })),
    'attacks.list': () => attackCatalog(),
    'jobs.schemas': () => jobSchemas(),
    'recipes.list': () => listRecipes(),
    'sessions.list': (p) => store.list(p.filter ?? {}),
    'sessions.show': (p) => store.show(p.id),
    'sessions.metrics': (p) => store.readMetrics(p.id, p.series),
    'sessions.artifact': async (p) => {
      const size = (await stat(await store.artifactFile(p.id, p.path))).size; // refused before it is read
      if (size > MAX_ARTIFACT_BYTES) {
        throw new AdvlabError('TOO_LARGE', `${p.path} is ${size} bytes: too large to send over the API (at most ${MAX_ARTIFACT_BYTES}; the browser host serves it under /files/)`, { id: p.id, path: p.path, bytes: size, limit: MAX_ARTIFACT_BYTES });
      }
      const bytes = await store.readArtifact(p.id, p.path);
      return { base64: bytes.toString('base64'), mime: mimeOf(p.path), bytes: bytes.length };
    },
    'sessions.rename': (p) => store.rename(p.id, p.name),
    'sessions.tag': (p) => store.tag(p.id, p.add, p.remove),
    'sessions.notes': async (p) => {
      await store.setNotes(p.id, p.text);
      return { saved: true };
    },
    'sessions.delete': async (p) => {
      await store.delete(p.id);
      return { deleted: p.id, restorable: true };
    },
    'sessions.restore': async (p) => {
      await store.restore(p.id);
      return { restored: p.id };
    },
    ...reviewHandlers(store, emit), // sessions.view, .report, .csv, .export, .import, .trash
    ...listeningHandlers({ store, dataDirs, emit }), // audio.upload, audio.clips, listening.create, .answer, .finish
  };
}
