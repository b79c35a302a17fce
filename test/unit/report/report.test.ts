import { promises as fsp, rmSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { parseParams } from '../../../src-main/api/contract';
import {
  buildReport,
  buildSessionView,
  compareRecords,
  csvField,
  lttb,
  overlayCharts,
  parseCsv,
  reviewHandlers,
  sessionCsv,
  toCsv,
  wavInfo,
  wavPeaks,
  type SessionView,
} from '../../../src-main/report';
import { writeFixtureStore, wav16, type FixtureIds } from '../../fixtures/session-store';

let root: string;
let store: SessionStore;
let ids: FixtureIds;
const views: Record<string, SessionView> = {};

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'advlab-report-'));
  ids = await writeFixtureStore(root);
  store = new SessionStore(root);
  for (const [k, id] of Object.entries(ids)) views[k] = await buildSessionView(store, id);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const b64 = async (id: string, rel: string) => (await fsp.readFile(path.join(root, id, 'artifacts', rel))).toString('base64');

describe('SessionView from saved files', () => {
  it('lists every fixture with its status', async () => {
    const list = await store.list();
    const status = Object.fromEntries(list.map((s) => [s.id, s.status]));
    expect(status[ids.train]).toBe('finished');
    expect(status[ids.damaged]).toBe('damaged');
    expect(status[ids.incomplete]).toBe('incomplete');
  });

  it('train: curves per family, confusion heat map with its accuracy', () => {
    const v = views.train;
    expect(v.charts.map((c) => c.id)).toEqual(['epochs:loss', 'epochs:rates', 'train:loss', 'train:rates']);
    const train = v.charts.find((c) => c.id === 'train:loss')!;
    expect(train.xLabel).toBe('step');
    expect(train.lines.map((l) => l.label)).toEqual(['loss']);
    expect(train.lines[0].points).toHaveLength(60);
    // batch/size/epoch are bookkeeping, not lines
    expect(v.charts.flatMap((c) => c.lines.map((l) => l.label))).not.toContain('size');
    expect(v.charts.find((c) => c.id === 'epochs:rates')!.lines.map((l) => l.label)).toEqual(['acc', 'val_acc']);
    const cm = v.heatmaps.find((h) => h.kind === 'confusion')!;
    expect(cm.values).toHaveLength(10);
    expect(cm.rowLabels[3]).toBe('3');
    const m = cm.values as number[][];
    const total = m.flat().reduce((a, b) => a + b, 0);
    const correct = m.reduce((a, r, i) => a + r[i], 0);
    expect(cm.note).toContain(`${total} examples`);
    expect(cm.note).toContain(String(Number((correct / total).toPrecision(4))));
    expect(v.keyMetrics[0]).toBe('testAccuracy');
  });

  it('attack: examples table with per-row images, grid gallery, epsilon curve, loss surface', () => {
    const v = views.attackA;
    const t = v.tables[0];
    expect(t.path).toBe('examples.json');
    expect(t.totalRows).toBe(10);
    expect(t.media).toMatchObject({ orig: 'image', adv: 'image', pert: 'image' });
    expect(t.columns.slice(0, 5)).toEqual(['index', 'orig', 'adv', 'pert', 'label']); // pictures first
    expect(t.rows[1].adv).toBe('examples/1-adv.png');
    expect(t.rows[5].adv).toBeNull(); // no picture saved for row 5
    // example images are in the table, so the galleries hold only the grid
    expect(v.images.map((g) => g.title)).toEqual(['grid']);
    expect(v.images[0].images[0].caption).toBe('adversarial examples, 4 x 4');
    const curve = v.charts.find((c) => c.id === 'curve:rates')!;
    expect(curve.xLabel).toBe('eps');
    expect(curve.yMin).toBe(0);
    expect(curve.lines.map((l) => l.label)).toEqual(['robustAccuracy', 'successRate']);
    const surf = v.heatmaps.filter((h) => h.path === 'loss-surface.json');
    expect(surf.map((h) => h.kind)).toEqual(['loss-surface', 'classes']);
    expect(surf[0].values).toHaveLength(9);
    expect(surf[0].title).toContain('gradient-random');
  });

  it('audio: players with waveforms, table cells pointing at the clips', () => {
    const v = views.audio;
    expect(v.audio.map((a) => a.path)).toEqual(['adversarial.wav', 'original.wav']);
    const a = v.audio[1];
    expect(a.sampleRate).toBe(8000);
    expect(a.durationSec).toBeCloseTo(0.6, 3);
    expect(a.peaks!.length).toBe(480);
    expect(Math.max(...a.peaks!)).toBeGreaterThan(0.3);
    expect(Math.max(...a.peaks!)).toBeLessThanOrEqual(1);
    expect(v.tables[0].media).toEqual({ original: 'audio', adversarial: 'audio' });
  });

  it('damaged: the reason, and the files that are still readable', () => {
    const v = views.damaged;
    expect(v.status).toBe('damaged');
    expect(v.manifest).toBeNull();
    expect(v.damaged).toMatch(/manifest\.json: not valid JSON/);
    expect(v.charts.map((c) => c.id)).toEqual(['attack:loss']);
    expect(v.images[0].images[0].path).toBe('grid/partial.png');
  });

  it('incomplete: status, curves up to the crash, the torn line reported', () => {
    const v = views.incomplete;
    expect(v.status).toBe('incomplete');
    expect(v.charts.find((c) => c.id === 'train:loss')!.lines[0].points).toHaveLength(12);
    expect(v.problems.join('\n')).toMatch(/metrics\/train\.jsonl line 13: torn last line/);
  });
});

describe('labelled metric series', () => {
  it('a series without an x column whose rows hold text is a table, not a curve', async () => {
    const w = await new SessionStore(root, { now: () => new Date('2026-02-02T00:00:00Z') }).create({ kind: 'gradient-check', params: {}, environment: views.train.manifest!.environment });
    await w.appendMetric('checks', { check: 'smoothness', status: 'ok', ratio: 1.2 });
    await w.appendMetric('checks', { check: 'transfer', status: 'warn', ratio: 0.4 });
    await w.finish();
    const v = await buildSessionView(store, w.id);
    expect(v.charts).toEqual([]);
    expect(v.tables.map((t) => t.path)).toEqual(['metrics/checks.jsonl']);
    expect(v.tables[0].rows[1]).toEqual({ check: 'transfer', status: 'warn', ratio: 0.4 });
    await store.delete(w.id);
  });
});

describe('HTML report', () => {
  it('one session: self-contained, images embedded as data: URIs, SVG charts, no script', async () => {
    const r = await buildReport(store, [ids.attackA]);
    const html = r.html;
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`data:image/png;base64,${await b64(ids.attackA, 'grid/adversarial.png')}`);
    expect(html).toContain(`data:image/png;base64,${await b64(ids.attackA, 'examples/2-pert.png')}`);
    expect(r.embedded.images).toBe(10); // 9 example pictures + 1 grid
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="(https?:|\/\/)/);
    expect(html).toContain("default-src 'none'");
    expect(html).toMatch(/<polyline class="line" data-points="7"/); // the epsilon curve
    expect(html).toContain('class="heatmap"');
    // text from the session is escaped
    expect(html).toContain('first, with &quot;quotes&quot;, commas');
    expect(r.filename).toBe(`${ids.attackA}-report.html`);
    expect(r.omitted).toEqual([]);
  });

  it('a case-study session: the claim, the verdict and the evidence next to the paper, before the summary', async () => {
    const own = new SessionStore(path.join(root, 'claims'));
    const w = await own.create({ kind: 'recipe', name: 'claim <check>', environment: (await store.manifest(ids.train)).environment, params: {} });
    const report = {
      recipe: 'thermometer', title: 'Thermometer encoding', claim: 'Robust <really>', finding: 'Obfuscated gradients', quick: true, claimReproduced: false,
      criterion: 'BPDA accuracy 0.4 is not below 0.2',
      table: [
        { what: 'Robust accuracy, PGD', measured: 0.8312, reference: 'claimed robust', unit: '%' },
        { what: 'Mean L2', measured: 1.234567, reference: 1.76, unit: '' },
        { what: 'Images', measured: 1000, reference: null, unit: 'images' },
      ],
      notes: ['first note'],
    };
    await w.writeArtifact('report.json', JSON.stringify(report), 'json', 'claim and evidence side by side');
    await w.finish({ recipe: 'thermometer', claimReproduced: false });
    const v = await buildSessionView(own, w.id);
    expect(v.claim).toEqual({
      path: 'report.json', title: 'Thermometer encoding', claim: 'Robust <really>', finding: 'Obfuscated gradients', reproduced: false,
      criterion: 'BPDA accuracy 0.4 is not below 0.2', quick: true, notes: ['first note'],
      rows: [{ what: 'Robust accuracy, PGD', measured: '83.12%', reference: 'claimed robust' }, { what: 'Mean L2', measured: '1.235', reference: '1.76' }, { what: 'Images', measured: '1000 images', reference: '' }],
    });
    expect(views.attackA.claim).toBeNull();
    const html = (await buildReport(own, [w.id])).html;
    expect(html).toContain('Robust &lt;really&gt;');
    expect(html).toContain('finding not reproduced');
    expect(html.indexOf('Claim and evidence')).toBeLessThan(html.indexOf('<h3>Summary</h3>'));
  });

  it('audio session: <audio> elements with data:audio/wav URIs and waveforms', async () => {
    const r = await buildReport(store, [ids.audio]);
    expect(r.html).toContain(`<audio controls preload="auto" src="data:audio/wav;base64,${await b64(ids.audio, 'original.wav')}"`);
    expect(r.html.match(/<audio /g)).toHaveLength(2);
    expect(r.html.match(/class="waveform"/g)).toHaveLength(2);
    expect(r.embedded.audio).toBe(2);
  });

  it('comparison: metric table with differences against the first, overlaid curves, differing parameters', async () => {
    const r = await buildReport(store, [ids.attackA, ids.attackB]);
    const html = r.html;
    expect(r.title).toContain('A. PGD on the undefended model vs B. PGD on the defended model');
    const a = (await store.manifest(ids.attackA)).summary.successRate as number;
    const b = (await store.manifest(ids.attackB)).summary.successRate as number;
    expect(a).toBe(0.8);
    expect(b).toBe(0.3);
    expect(html).toContain('Δ -0.5 (-62.5%)');
    const overlay = html.slice(html.indexOf('Curves overlaid'), html.indexOf('</section>', html.indexOf('Curves overlaid')));
    // per session: curve:rates 2 lines (robustAccuracy, successRate), curve:values 1 (attacked), attack:loss 1
    expect(overlay.match(/<polyline class="line"/g)).toHaveLength(8);
    expect(overlay).toContain('A · robustAccuracy');
    expect(overlay).toContain('B · robustAccuracy');
    expect(html).toMatch(/<th>defense<\/th><td>none<\/td><td>adversarial-training<\/td>/);
    expect(html.match(/<section class="card session"/g)).toHaveLength(2);
  });

  it('damaged and incomplete sessions are reported as such', async () => {
    const r = await buildReport(store, [ids.damaged, ids.incomplete]);
    expect(r.html).toContain('This session is damaged');
    expect(r.html).toContain('Incomplete: the job stopped');
    expect(r.html).toContain('torn last line');
  });

  it('respects the embedding budget and says what it left out', async () => {
    const r = await buildReport(store, [ids.attackA], { maxImagesPerSession: 2 });
    expect(r.embedded.images).toBe(2);
    expect(r.omitted.length).toBe(8);
    expect(r.html).toContain('Not embedded');
  });

  it('refuses an empty list and unknown sessions', async () => {
    await expect(buildReport(store, [])).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(buildReport(store, ['20260101-000000-nope-0000'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('CSV', () => {
  it('escapes quotes, commas, newlines and leading spaces; empty for null', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvField(null)).toBe('');
    expect(csvField(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(csvField([1, 2])).toBe('"[1,2]"');
    // spreadsheet formulas in text cells are defused; numbers are left alone
    expect(csvField('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvField('+1+2')).toBe("'+1+2");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('-2+3')).toBe("'-2+3");
    expect(csvField('-31.2')).toBe('-31.2');
    expect(csvField(-31.2)).toBe('-31.2');
    expect(csvField('a=b')).toBe('a=b');
    expect(toCsv(['a', 'b'], [{ a: 1, b: true }, { a: null }])).toBe('a,b\r\n1,true\r\n,\r\n');
  });

  it('exports examples.json rows and parses back to the same cells', async () => {
    const r = await sessionCsv(store, ids.attackA);
    expect(r.source).toBe('artifacts/examples.json');
    expect(r.rows).toBe(10);
    expect(r.csv.split('\r\n')[0]).toBe('index,label,labelName,cleanPred,advPred,success,l2,linf,iterations,note');
    expect(r.csv).toContain('"first, with ""quotes"", commas\nand a newline"');
    const grid = parseCsv(r.csv);
    const rows = JSON.parse(await fsp.readFile(path.join(root, ids.attackA, 'artifacts', 'examples.json'), 'utf8')) as Record<string, unknown>[];
    expect(grid).toHaveLength(11);
    rows.forEach((row, i) => r.columns.forEach((c, j) => expect(grid[i + 1][j]).toBe(row[c] === null ? '' : String(row[c]))));
  });

  it('falls back to the longest metric series, also for a damaged session', async () => {
    const t = await sessionCsv(store, ids.train);
    expect(t.source).toBe('metrics/train.jsonl');
    expect(t.rows).toBe(60);
    expect(t.columns).toEqual(['step', 'epoch', 'batch', 'size', 'loss', 'acc']);
    const d = await sessionCsv(store, ids.damaged);
    expect(d.source).toBe('metrics/attack.jsonl');
    expect(d.rows).toBe(4);
  });

  it('says clearly when there is nothing to export', async () => {
    await expect(sessionCsv(store, '20260101-000000-nope-0000')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/No session/) });
    const empty = await new SessionStore(root, { now: () => new Date('2026-02-01T00:00:00Z') }).create({ kind: 'attack', params: {}, environment: views.train.manifest!.environment });
    await empty.finish();
    await expect(sessionCsv(store, empty.id)).rejects.toThrow(/no per-example rows \(artifacts\/examples\.json\) and no metric series/);
    await store.delete(empty.id);
  });
});

describe('pure helpers', () => {
  it('compareRecords: differences and relative differences against the first record', () => {
    const rows = compareRecords([{ acc: 0.5, name: 'a' }, { acc: 0.75, name: 'a', extra: 1 }, { acc: 0 }]);
    const acc = rows.find((r) => r.key === 'acc')!;
    expect(acc.numeric).toBe(true);
    expect(acc.diffs).toEqual([0, 0.25, -0.5]);
    expect(acc.rel).toEqual([0, 0.5, -1]);
    expect(rows.find((r) => r.key === 'name')!.differs).toBe(true); // missing in the third
    expect(rows.find((r) => r.key === 'extra')!.values).toEqual([null, 1, null]);
  });

  it('overlayCharts: only series present in two or more sessions, one colour per session', () => {
    const c = (id: string) => ({ id, series: id, family: 'values' as const, title: id, xLabel: 'step', rows: 2, lines: [{ label: 'v', points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }] });
    const o = overlayCharts([{ label: 'A', charts: [c('x'), c('only-a')] }, { label: 'B', charts: [c('x')] }]);
    expect(o.map((x) => x.id)).toEqual(['x']);
    expect(o[0].lines.map((l) => l.label)).toEqual(['A · v', 'B · v']);
    expect(o[0].lines[0].color).not.toBe(o[0].lines[1].color);
  });

  it('lttb keeps the end points and thins to the threshold', () => {
    const pts = Array.from({ length: 10_000 }, (_, i) => ({ x: i, y: Math.sin(i / 100) + (i === 5000 ? 10 : 0) }));
    const thin = lttb(pts, 500);
    expect(thin).toHaveLength(500);
    expect(thin[0]).toEqual(pts[0]);
    expect(thin.at(-1)).toEqual(pts.at(-1));
    expect(thin.some((p) => p.x === 5000)).toBe(true); // the spike survives
  });

  it('reads 16-bit and float WAV headers; rejects what is not WAV', () => {
    const s = new Float32Array(800).map((_, i) => 0.5 * Math.sin(i / 5));
    const info = wavInfo(wav16(s, 8000));
    expect(info).toMatchObject({ format: 1, channels: 1, sampleRate: 8000, bitsPerSample: 16, frames: 800 });
    expect(Math.max(...wavPeaks(wav16(s, 8000), 10))).toBeCloseTo(0.5, 2);
    const f = Buffer.alloc(44 + 800 * 4);
    f.write('RIFF', 0, 'ascii'); f.writeUInt32LE(36 + 3200, 4); f.write('WAVE', 8, 'ascii'); f.write('fmt ', 12, 'ascii');
    f.writeUInt32LE(16, 16); f.writeUInt16LE(3, 20); f.writeUInt16LE(1, 22); f.writeUInt32LE(16000, 24); f.writeUInt32LE(64000, 28);
    f.writeUInt16LE(4, 32); f.writeUInt16LE(32, 34); f.write('data', 36, 'ascii'); f.writeUInt32LE(3200, 40);
    s.forEach((v, i) => f.writeFloatLE(-v, 44 + i * 4));
    expect(wavInfo(f)).toMatchObject({ format: 3, sampleRate: 16000, frames: 800 });
    expect(Math.max(...wavPeaks(f, 4))).toBeCloseTo(0.5, 2);
    expect(() => wavInfo(Buffer.from('not a wav file at all'))).toThrow(/not a RIFF\/WAVE/);
  });
});

describe('API handlers', () => {
  it('the contract validates the new methods', () => {
    expect(parseParams('sessions.report', { ids: [ids.attackA, ids.attackB] }).ids).toHaveLength(2);
    expect(() => parseParams('sessions.report', { ids: [] })).toThrow(/ids/);
    expect(() => parseParams('sessions.csv', { id: '../etc' })).toThrow(/id/);
    expect(() => parseParams('sessions.import', { data: 'AAAA', upload: { id: 'a/b', part: 0, parts: 1 } })).toThrow(/upload\.id/);
    expect(parseParams('sessions.trash', {})).toEqual({});
  });

  it('export then import in parts gives a copy under a new id; trash lists deleted sessions', async () => {
    const h = reviewHandlers(store);
    const exp = await h['sessions.export']({ id: ids.audio });
    expect(exp.filename).toBe(`${ids.audio}.zip`);
    const bytes = Buffer.from(exp.base64, 'base64');
    expect(bytes.subarray(0, 2).toString('latin1')).toBe('PK');
    const size = Math.ceil(bytes.length / 3 / 3) * 3; // parts on 3-byte boundaries stay valid base64 on their own
    const parts = [bytes.subarray(0, size), bytes.subarray(size, 2 * size), bytes.subarray(2 * size)];
    const upload = { id: 'u1', parts: 3 };
    const r2 = await h['sessions.import']({ data: parts[2].toString('base64'), filename: exp.filename, upload: { ...upload, part: 2 } });
    expect(r2).toEqual({ complete: false, received: 1, parts: 3 });
    await h['sessions.import']({ data: parts[0].toString('base64'), upload: { ...upload, part: 0 } });
    const done = await h['sessions.import']({ data: parts[1].toString('base64'), upload: { ...upload, part: 1 } });
    expect(done).toMatchObject({ complete: true, originalId: ids.audio, renamed: true });
    const copy = (done as { id: string }).id;
    const v = await h['sessions.view']({ id: copy });
    expect(v.audio.map((a) => a.path)).toEqual(['adversarial.wav', 'original.wav']);
    await store.delete(copy);
    expect((await h['sessions.trash']()).map((t) => t.id)).toContain(copy);
    // Emptying the trash: nothing deleted a day ago yet; then everything, for good.
    expect(await h['sessions.emptyTrash'](parseParams('sessions.emptyTrash', { olderThanDays: 1 }) as { olderThanDays: number })).toEqual({ purged: [] });
    expect((await h['sessions.emptyTrash'](parseParams('sessions.emptyTrash', {}) as { olderThanDays: number })).purged).toContain(copy);
    expect(await h['sessions.trash']()).toEqual([]);
    expect(() => parseParams('sessions.emptyTrash', { olderThanDays: -1 })).toThrow(expect.objectContaining({ code: 'BAD_INPUT', message: expect.stringMatching(/sessions\.emptyTrash: olderThanDays: .*>=\s?0/) }));
    await expect(h['sessions.import']({ data: 'not base64!' })).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });
});
