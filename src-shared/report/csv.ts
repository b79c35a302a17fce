/** CSV text (RFC 4180): writing fields and documents safely for spreadsheets, and parsing CSV/TSV. */

/** One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, or starts/ends with a space. */
export function csvField(v: unknown): string {
  let s = typeof v === 'string' ? v : formatCsvValue(v);
  // A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading
  // apostrophe (OWASP "CSV injection"); numbers, and text that is just a negative number, do not.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s) && !/^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s)) s = `'${s}`;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function formatCsvValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** A CSV document (RFC 4180, CRLF line ends, header row first). Numbers keep full precision. */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** Parses CSV (RFC 4180: quoted fields, doubled quotes, CRLF or LF) or TSV (`delimiter` '\t'). */
export function parseCsv(text: string, delimiter = ','): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  while (i < s.length) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      row.push(field);
      out.push(row);
      row = [];
      field = '';
      if (ch === '\r' && s[i + 1] === '\n') i++;
    } else field += ch;
    i++;
  }
  if (field !== '' || row.length) {
    row.push(field);
    out.push(row);
  }
  return out;
}
