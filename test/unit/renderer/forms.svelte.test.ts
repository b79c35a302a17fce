/**
 * FormStore (src-renderer/lib/forms.svelte.ts): a form's values outlive the component that asked for them.
 * The first ask gives the starting values; a later one (the view opened again) gets the same reactive values,
 * with what was set meanwhile; forms do not share values; and initialValues (params-form.ts) fills a schema's
 * defaults only into fields the form does not hold yet. Runs on Svelte's client runtime (the 'runes' project).
 */
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';
import { FormStore } from '../../../src-renderer/lib/forms.svelte';
import { initialValues, type ParamsDescription } from '../../../src-renderer/components/params-form';

/** Mounts a "view" (an effect root) that asks for form `id` and follows `n` through a $derived; returns it and its unmount. */
function view(store: FormStore, id: string) {
  let f!: { n: number; values: Record<string, unknown> };
  let seen = -1;
  const stop = $effect.root(() => {
    f = store.of(id, () => ({ n: 50, values: {} as Record<string, unknown> }));
    const doubled = $derived(f.n * 2);
    $effect(() => {
      seen = doubled;
    });
  });
  flushSync();
  return { f, seen: () => seen, stop };
}

describe('FormStore', () => {
  it('gives a view opened again the values set while it was open, reactive as before', () => {
    const store = new FormStore();
    const first = view(store, 'attack');
    expect(first.f.n).toBe(50);
    first.f.n = 7;
    flushSync();
    expect(first.seen()).toBe(14);
    first.stop(); // the view is left
    const again = view(store, 'attack');
    expect(again.f.n).toBe(7);
    expect(again.seen()).toBe(14);
    again.f.n = 9;
    flushSync();
    expect(again.seen()).toBe(18);
    again.stop();
  });

  it('keeps each form apart, and forgets all on clear', () => {
    const store = new FormStore();
    const a = view(store, 'a');
    a.f.n = 1;
    const b = view(store, 'b');
    expect(b.f.n).toBe(50);
    expect(store.has('a') && store.has('b')).toBe(true);
    store.clear();
    expect(store.has('a')).toBe(false);
    expect(view(store, 'a').f.n).toBe(50);
  });

  it('initialValues fills the schema defaults of the fields the kept values lack, and keeps the rest', () => {
    const schema: ParamsDescription = { type: 'object', properties: { epochs: { type: 'integer', default: 10 }, lr: { type: 'number', default: 0.01 }, limit: { type: 'integer' } } } as ParamsDescription;
    expect(initialValues(schema)).toEqual({ epochs: 10, lr: 0.01, limit: undefined });
    expect(initialValues(schema, undefined, { epochs: 3, limit: 100 })).toEqual({ epochs: 3, lr: 0.01, limit: 100 });
    expect(initialValues(schema, ['lr'], { epochs: 3 })).toEqual({ lr: 0.01 });
  });
});
