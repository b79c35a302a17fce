/**
 * Child contexts: a part of a job maps its progress into its share of the parent's, names its phase,
 * and is cancelled with the parent, live (a copy made with `{ ...ctx }` froze `cancelled`).
 */
import { describe, expect, it } from 'vitest';
import { childContext, LocalContext, quietContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import { backwardProgress } from '../helpers';

describe('childContext', () => {
  it('sees a cancel made after it was created', () => {
    const parent = new LocalContext();
    const child = childContext(parent, { from: 0, span: 1, total: 2, label: 'part' });
    const grandchild = childContext(child, { from: 0, span: 1, total: 1 });
    const quiet = quietContext(grandchild);
    expect(child.cancelled).toBe(false);
    expect(() => child.checkpoint()).not.toThrow();
    parent.cancel();
    for (const c of [child, grandchild, quiet]) {
      expect(c.cancelled).toBe(true);
      expect(() => c.checkpoint()).toThrow(CancelledError);
    }
  });

  it('maps the inner step/total into [from, from + span) of the parent, clamped, with the label as phase prefix', () => {
    const parent = new LocalContext();
    const a = childContext(parent, { from: 2, span: 4, total: 10, label: 'train' });
    a.progress({ step: 0, total: 8, phase: 'epoch 1/2', metrics: { loss: 1 }, message: 'hi' });
    a.progress({ step: 4, total: 8 });
    a.progress({ step: 12, total: 8, phase: 'over' });
    a.progress({ step: 3, total: 0 });
    expect(parent.events).toEqual([
      { step: 2, total: 10, phase: 'train: epoch 1/2', metrics: { loss: 1 }, message: 'hi' },
      { step: 4, total: 10, phase: 'train' },
      { step: 6, total: 10, phase: 'train: over' },
      { step: 2, total: 10, phase: 'train' },
    ]);
  });

  it('parts laid out in order never move the bar back, whatever their inner totals', () => {
    const parent = new LocalContext();
    const parts = [[0, 1, 30], [1, 2, 7], [3, 0, 5], [3, 1, 1000]] as const;
    for (const [from, span, innerTotal] of parts) {
      const c = childContext(parent, { from, span, total: 4, round: false });
      for (let s = 0; s <= innerTotal; s += Math.max(1, Math.floor(innerTotal / 7))) c.progress({ step: s, total: innerTotal });
      c.progress({ step: innerTotal, total: innerTotal });
    }
    expect(parent.events.length).toBeGreaterThan(20);
    expect(backwardProgress(parent.events)).toEqual([]);
    expect(parent.events.at(-1)).toMatchObject({ step: 4, total: 4 });
  });

  it('counts in the child units, rounds, appends the inner count and prefixes log lines when asked', () => {
    const parent = new LocalContext();
    childContext(parent, { from: 1, span: 1, total: 3, childUnits: true, label: 'gradient-random' }).progress({ step: 5, total: 21, phase: 'loss surface' });
    expect(parent.events.at(-1)).toEqual({ step: 26, total: 63, phase: 'gradient-random: loss surface' });
    const weighted = childContext(parent, { from: 1000 * 0.2, span: 1000 * 0.8, total: 1000, round: true, label: 'checks', count: true, logPrefix: 'checks' });
    weighted.progress({ step: 1, total: 3, phase: 'pgd' });
    expect(parent.events.at(-1)).toEqual({ step: 467, total: 1000, phase: 'checks: pgd (1/3)' });
    weighted.log('done');
    childContext(parent, { from: 0, span: 1, total: 1 }).log('plain');
    expect(parent.logs).toEqual(['checks: done', 'plain']);
  });

  it('a quiet context reports nothing', () => {
    const parent = new LocalContext();
    const q = quietContext(parent);
    q.progress({ step: 1, total: 2 });
    q.log('x');
    expect(parent.events).toEqual([]);
    expect(parent.logs).toEqual([]);
  });
});
