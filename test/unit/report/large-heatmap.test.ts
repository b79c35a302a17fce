/**
 * Heat maps and confusion matrices of any class count render: no `Math.min(...cells)` style spread
 * (which overflows the call stack at a few hundred classes) in the SVG function, the session view,
 * the HTML report or the view's heat-map component.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../src-main/engine/sessions';
import { buildReport, buildSessionView } from '../../../src-main/report';
import { heatmapSvg, lineChartSvg } from '../../../src-shared/report/svg';
import { heatmapsFromJson, overlayCharts } from '../../../src-shared/report/charts';
import { cells, finiteExtent, maxOf } from '../../../src-shared/report/format';
import { FIXTURE_ENV } from '../../fixtures/session-store';

const CLASSES = 400;

/** A CLASSES x CLASSES confusion matrix with a known minimum (0) and maximum (the diagonal peak). */
function confusion(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 50 + (i % 7) : (i * 31 + j * 17) % 3)));
}

let root: string;
let store: SessionStore;
let id: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'advlab-bigheat-'));
  store = new SessionStore(root);
  const w = await store.create({ kind: 'train', name: `${CLASSES} classes`, params: {}, environment: FIXTURE_ENV });
  const classNames = Array.from({ length: CLASSES }, (_, i) => `class-${i}`);
  await w.writeArtifact('confusion.json', JSON.stringify({ classNames, confusion: confusion(CLASSES) }), 'json', 'test-set confusion matrix');
  // A loss surface of the same size, which is not categorical and so draws its colour bar from lo/hi.
  const axis = Array.from({ length: CLASSES }, (_, i) => i / CLASSES - 0.5);
  const loss = axis.map((a) => axis.map((b) => a * a + b * b));
  await w.writeArtifact('surface.json', JSON.stringify({ alphas: axis, betas: axis, loss }), 'json', 'loss surface');
  await w.finish({ testAccuracy: 0.9 });
  id = w.id;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe(`heat maps of ${CLASSES} classes`, () => {
  it('the extent helpers loop (no argument spread) and skip non-finite cells', () => {
    const big = new Array<number>(500_000).fill(1);
    big[123_456] = -3;
    big[400_000] = 9;
    expect(finiteExtent(big)).toEqual({ lo: -3, hi: 9 });
    expect(finiteExtent([NaN, null, Infinity])).toBeNull();
    expect(finiteExtent(cells([[1, null], [NaN, -2]]))).toEqual({ lo: -2, hi: 1 });
    expect(maxOf(big)).toBe(9);
    expect(maxOf([], 0)).toBe(0);
  });

  it('heatmapSvg draws every cell and the colour bar of a 400 x 400 matrix', () => {
    const [cm] = heatmapsFromJson('confusion.json', { confusion: confusion(CLASSES) });
    const svg = heatmapSvg(cm);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(CLASSES * CLASSES);
    const [surface] = heatmapsFromJson('s.json', { alphas: [...Array(CLASSES).keys()], betas: [...Array(CLASSES).keys()], loss: confusion(CLASSES) });
    const s = heatmapSvg(surface);
    // the colour bar is labelled with the true minimum and maximum
    expect(s).toContain('>56</text>');
    expect(s).toContain('>0</text>');
  });

  it('a line chart and an overlay of very long series render', () => {
    const points = Array.from({ length: 300_000 }, (_, i) => ({ x: i, y: Math.sin(i) }));
    expect(lineChartSvg({ title: 'long', xLabel: 'step', lines: [{ label: 'y', points }] })).toContain('<polyline');
    const chart = { id: 'c', title: 'c', xLabel: 'x', rows: 3, lines: [{ label: 'y', points: points.slice(0, 10) }] };
    const over = overlayCharts(Array.from({ length: 2 }, (_, i) => ({ label: `s${i}`, charts: [chart] })) as never);
    expect(over[0].rows).toBe(3);
  });

  it('the session view and the HTML report of a 400-class session include both heat maps', async () => {
    const v = await buildSessionView(store, id);
    expect(v.problems).toEqual([]);
    const cm = v.heatmaps.find((h) => h.kind === 'confusion')!;
    expect(cm.values).toHaveLength(CLASSES);
    expect(cm.rowLabels[CLASSES - 1]).toBe(`class-${CLASSES - 1}`);
    expect(v.heatmaps.some((h) => h.kind === 'loss-surface')).toBe(true);
    const r = await buildReport(store, [id]);
    expect(r.omitted).toEqual([]);
    const maps = r.html.match(/<figure data-heatmap="[^"]*"><h4>[^<]*<\/h4><svg/g) ?? [];
    expect(maps).toHaveLength(2);
    expect(r.html).toContain('class-399');
  }, 60_000);
});
