/**
 * Form values that outlive their view. A view (or a tab or panel inside it) is unmounted when another is
 * opened, and the values in its own $state went with it: a researcher who set twenty parameters, looked at
 * Sessions and came back found the defaults again. Every form keeps what the user set here instead, under
 * its own id, for the page's lifetime (a reload starts from the defaults again: values are not written to
 * localStorage, where a stale value would outlive a schema change or a deleted model).
 *
 * The first time a form asks for its values on this page it gives their starting values; the schema-driven
 * ones (params-form.ts initialValues) are still filled in by the view when the schema arrives, only while
 * they are unset, so a kept value is never overwritten by a default.
 */

export class FormStore {
  /** Form id -> its values (each a deeply reactive $state object); the set of ids itself need not be reactive. */
  private readonly kept = new Map<string, Record<string, unknown>>();

  /**
   * The values of form `id`: `initial()` the first time on this page, the same object after. Reactive and
   * bindable like a component's own $state (`bind:value={f.n}`, `bind:values={f.params}`).
   */
  of<T extends object>(id: string, initial: () => T): T {
    let values = this.kept.get(id);
    if (!values) {
      const made = $state(initial() as Record<string, unknown>);
      values = made;
      this.kept.set(id, values);
    }
    return values as T;
  }

  /** Whether form `id` has values kept on this page. */
  has(id: string): boolean {
    return this.kept.has(id);
  }

  /** Forgets every form's values (tests). */
  clear(): void {
    this.kept.clear();
  }
}

/** The page's forms. */
export const forms = new FormStore();
