/** A case study's claim and this run's evidence, from a recipe session's artifacts/report.json (CLAIM_FILE). */
import { formatCell, formatNumber } from './format';
import type { ClaimSpec } from './model';
import { isRowObject } from './tables';

/** One measured or reference value of a claim table, in its unit ('%' for fractions in [0, 1]). */
export function formatClaimValue(v: unknown, unit: unknown): string {
  if (v === null || v === undefined || v === '') return '';
  if (typeof v === 'number') return unit === '%' ? `${formatNumber(Number((100 * v).toPrecision(4)))}%` : `${formatNumber(v)}${typeof unit === 'string' && unit ? ` ${unit}` : ''}`;
  return formatCell(v);
}

/** The claim and evidence of a case-study report (CLAIM_FILE), or null when `doc` is not one. */
export function claimFromJson(path: string, doc: unknown): ClaimSpec | null {
  if (!isRowObject(doc) || typeof doc.claim !== 'string' || !Array.isArray(doc.table)) return null;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const rows = doc.table.filter(isRowObject).map((r) => ({ what: formatCell(r.what), measured: formatClaimValue(r.measured, r.unit), reference: formatClaimValue(r.reference, r.unit) }));
  return {
    path, title: str(doc.title) ?? str(doc.recipe) ?? path, claim: doc.claim, finding: str(doc.finding),
    reproduced: typeof doc.claimReproduced === 'boolean' ? doc.claimReproduced : null, criterion: str(doc.criterion),
    quick: typeof doc.quick === 'boolean' ? doc.quick : null, rows,
    notes: Array.isArray(doc.notes) ? doc.notes.filter((n): n is string => typeof n === 'string') : [],
  };
}
