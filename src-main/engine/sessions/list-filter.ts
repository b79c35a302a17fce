/** The filter of SessionStore.list: kind, model, dataset, tag, status, a time range and free text. */
import { badInput } from '../errors';
import type { ListedEntry } from './list-index';

export interface SessionFilter {
  /** Exact kind. */
  kind?: string;
  /** Case-insensitive substring of a model reference's id, path or arch. */
  model?: string;
  /** Dataset name, case-insensitive. */
  dataset?: string;
  /** A tag, case-insensitive. */
  tag?: string;
  /** A listed status, including 'incomplete' and 'damaged'. */
  status?: string;
  /** Created at or after this ISO time. */
  since?: string;
  /** Created at or before this ISO time; a bare date (YYYY-MM-DD) includes that whole UTC day. */
  until?: string;
  /** Case-insensitive substring of id, name, kind, status, tags, dataset and model names. */
  text?: string;
}

function parseTime(value: string, field: 'since' | 'until'): number {
  const bareDate = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const t = Date.parse(bareDate ? `${value}T00:00:00Z` : value);
  if (!Number.isFinite(t)) throw badInput(`Filter ${field}: "${value}" is not an ISO date or time`);
  return field === 'until' && bareDate ? t + 86_400_000 - 1 : t;
}

/** The filter as a predicate over listed entries; throws BAD_INPUT for a since/until that is not a time. */
export function compileFilter(f: SessionFilter): (e: ListedEntry) => boolean {
  const since = f.since ? parseTime(f.since, 'since') : -Infinity;
  const until = f.until ? parseTime(f.until, 'until') : Infinity;
  const lower = (s: string | undefined): string | undefined => (s && s.trim() ? s.trim().toLowerCase() : undefined);
  const kind = f.kind?.trim() || undefined;
  const status = f.status?.trim() || undefined;
  const tag = lower(f.tag);
  const dataset = lower(f.dataset);
  const model = lower(f.model);
  const text = lower(f.text);
  return (e) => {
    const s = e.summary;
    if (e.parsed.createdMs < since || e.parsed.createdMs > until) return false;
    if (status && s.status !== status) return false;
    if (e.parsed.damaged) {
      // Damaged: its kind, tags, datasets and models are unknown, so those filters cannot match.
      if (kind || tag || dataset || model) return false;
      return !text || s.id.toLowerCase().includes(text) || (s.damaged ?? '').toLowerCase().includes(text);
    }
    const models = e.parsed.models;
    if (kind && s.kind !== kind) return false;
    if (tag && !s.tags.some((t) => t.toLowerCase() === tag)) return false;
    if (dataset && !s.datasets.some((d) => d.toLowerCase() === dataset)) return false;
    if (model && !models.some((r) => [r.id, r.path, r.arch].some((v) => v !== undefined && v.toLowerCase().includes(model)))) return false;
    if (text) {
      const hay = [s.id, s.name, s.kind, s.status, ...s.tags, ...s.datasets, ...s.models, ...models.map((r) => r.arch ?? '')].join('\n').toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  };
}
