/**
 * The Sessions listing on the client: the summaries from sessions.list, indexed once, then filtered and
 * sorted on every keystroke (5,000 sessions take a few milliseconds; only the visible rows are drawn).
 */

import type { ListedStatus, SessionSummary } from '../../src-main/engine/sessions';

/** What sessions.list returns per session: the store's SessionSummary. */
export type { SessionSummary };

/** The listed statuses in the order the status filter shows them. */
export const STATUSES = ['finished', 'running', 'cancelled', 'failed', 'incomplete', 'damaged'] as const satisfies readonly ListedStatus[];

export interface ListFilter {
  text: string;
  kind: string;
  status: string;
  tag: string;
  dataset: string;
  model: string;
}

export const emptyFilter = (): ListFilter => ({ text: '', kind: '', status: '', tag: '', dataset: '', model: '' });

/** 'created' | 'name' | 'kind' | 'status' | 'metric:<summary key>' */
export type SortKey = string;

export interface Indexed {
  s: SessionSummary;
  /** Lower-case text searched by the search box. */
  hay: string;
  t: number;
}

export function indexSessions(list: readonly SessionSummary[]): Indexed[] {
  return list.map((s) => ({
    s,
    hay: [s.id, s.name, s.kind, s.status, ...s.tags, ...s.datasets, ...s.models, s.damaged ?? ''].join('\n').toLowerCase(),
    t: Date.parse(s.created) || 0,
  }));
}

export function filterSessions(rows: readonly Indexed[], f: ListFilter): Indexed[] {
  const words = f.text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter(({ s, hay }) =>
    (!f.kind || s.kind === f.kind) &&
    (!f.status || s.status === f.status) &&
    (!f.tag || s.tags.includes(f.tag)) &&
    (!f.dataset || s.datasets.includes(f.dataset)) &&
    (!f.model || s.models.includes(f.model)) &&
    words.every((w) => hay.includes(w)));
}

/** Sorted copy. Sessions without the metric sorted on go last in either direction. */
export function sortSessions(rows: readonly Indexed[], key: SortKey, descending: boolean): SessionSummary[] {
  const dir = descending ? -1 : 1;
  const out = rows.slice();
  if (key.startsWith('metric:')) {
    const k = key.slice(7);
    const val = (r: Indexed) => (typeof r.s.summary[k] === 'number' ? (r.s.summary[k] as number) : null);
    out.sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
      return (x - y) * dir || b.t - a.t;
    });
  } else if (key === 'created') out.sort((a, b) => (a.t - b.t) * dir || (a.s.id < b.s.id ? -dir : a.s.id > b.s.id ? dir : 0));
  else {
    const k = key as 'name' | 'kind' | 'status';
    out.sort((a, b) => a.s[k].localeCompare(b.s[k]) * dir || b.t - a.t);
  }
  return out.map((r) => r.s);
}

export interface Facets {
  kinds: string[];
  tags: string[];
  datasets: string[];
  models: string[];
  /** Numeric summary keys (for sorting by a metric). */
  metrics: string[];
  statusCounts: Record<string, number>;
}

export function facets(list: readonly SessionSummary[]): Facets {
  const kinds = new Set<string>(), tags = new Set<string>(), datasets = new Set<string>(), models = new Set<string>(), metrics = new Set<string>();
  const statusCounts: Record<string, number> = {};
  for (const s of list) {
    kinds.add(s.kind);
    for (const t of s.tags) tags.add(t);
    for (const d of s.datasets) datasets.add(d);
    for (const m of s.models) if (m) models.add(m);
    for (const [k, v] of Object.entries(s.summary)) if (typeof v === 'number') metrics.add(k);
    statusCounts[s.status] = (statusCounts[s.status] ?? 0) + 1;
  }
  const sorted = (x: Set<string>) => [...x].sort((a, b) => a.localeCompare(b));
  return { kinds: sorted(kinds), tags: sorted(tags), datasets: sorted(datasets), models: sorted(models), metrics: sorted(metrics), statusCounts };
}

/** "3 min", "2.5 h" between two ISO times, or ''. */
export function duration(from: string | null | undefined, to: string | null | undefined): string {
  if (!from || !to) return '';
  const s = (Date.parse(to) - Date.parse(from)) / 1000;
  if (!Number.isFinite(s) || s < 0) return '';
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}
