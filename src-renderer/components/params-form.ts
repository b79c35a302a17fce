/**
 * Forms built from a params schema's JSON description (src-main/engine/core/describe-schema.ts): the
 * fields, their bounds and their starting values all come from the zod schema on the main side, so
 * a form never holds a default or a bound of its own. ParamsForm.svelte draws these.
 */
import type { JsonProp, ParamsDescription } from '../../src-main/engine/core/describe-schema';

export type { JsonProp, ParamsDescription };
export type FieldKind = 'number' | 'integer' | 'boolean' | 'enum' | 'string';

/** The properties to show: `only` picks and orders some of them (the rest are set elsewhere). */
export function fieldsOf(schema: ParamsDescription, only?: readonly string[]): [string, JsonProp][] {
  const props = schema.properties ?? {};
  return only ? only.filter((n) => n in props).map((n) => [n, props[n]]) : Object.entries(props);
}

export function fieldKind(p: JsonProp): FieldKind {
  if (p.enum) return 'enum';
  const t = Array.isArray(p.type) ? p.type[0] : (p.type ?? p.anyOf?.[0]?.type);
  return t === 'integer' ? 'integer' : t === 'number' ? 'number' : t === 'boolean' ? 'boolean' : 'string';
}

/** A field without a default that the schema does not require may be left empty (it is then not sent). */
export function isOptional(schema: ParamsDescription, name: string): boolean {
  return !(schema.required ?? []).includes(name) && schema.properties?.[name]?.default === undefined;
}

/** A field that may be null (zod's .nullable(): JSON Schema anyOf [..., {type: 'null'}]): its input left empty means null. */
export function isNullable(p: JsonProp): boolean {
  return (p.anyOf ?? []).some((a) => a.type === 'null') || (Array.isArray(p.type) && p.type.includes('null'));
}

/** The part of a field that holds its type and bounds (a nullable field's non-null member). */
function valuePart(p: JsonProp): JsonProp {
  return p.anyOf?.find((a) => a.type !== 'null') ?? p;
}

const isEmpty = (v: unknown) => v === undefined || v === null || v === '' || (typeof v === 'number' && Number.isNaN(v));

/** The value the engine uses for an optional field left empty (its schema's absentDefault), as text; undefined when it has none. */
export function absentText(p: JsonProp): string | undefined {
  return p.absentDefault === undefined ? undefined : String(p.absentDefault);
}

/** Why `v` does not fit the field (completing "<name> must be ..."), or null. */
export function checkField(field: JsonProp, v: unknown, optional = false): string | null {
  if (optional && (v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v)))) return null;
  if (isNullable(field) && isEmpty(v)) return null;
  const p = valuePart(field);
  const k = fieldKind(field);
  if (k === 'number' || k === 'integer') {
    if (typeof v !== 'number' || !Number.isFinite(v)) return 'a number';
    if (k === 'integer' && !Number.isInteger(v)) return 'a whole number';
    if (p.minimum != null && v < p.minimum) return `at least ${p.minimum}`;
    if (p.exclusiveMinimum != null && v <= p.exclusiveMinimum) return `greater than ${p.exclusiveMinimum}`;
    if (p.maximum != null && v > p.maximum) return `at most ${p.maximum}`;
    if (p.exclusiveMaximum != null && v >= p.exclusiveMaximum) return `less than ${p.exclusiveMaximum}`;
  }
  return null;
}

/** Per-field errors of `values` for the shown fields. */
export function checkValues(schema: ParamsDescription, values: Record<string, unknown>, only?: readonly string[]): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const [name, p] of fieldsOf(schema, only)) {
    const msg = checkField(p, values[name], isOptional(schema, name));
    if (msg) errors[name] = msg;
  }
  return errors;
}

/**
 * A form's starting values: the schema's default of every shown field (fields without one start empty), except
 * those the form already holds in `kept` (the values kept while its view was closed, lib/forms.svelte.ts).
 */
export function initialValues(schema: ParamsDescription, only?: readonly string[], kept: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return Object.fromEntries(fieldsOf(schema, only).map(([name, p]) => [name, name in kept ? kept[name] : structuredClone(p.default)]));
}

/**
 * The values to send: optional fields left empty are dropped (the job then uses its own rule, e.g. "all images");
 * a nullable field left empty is sent as null.
 */
export function paramsToSend(schema: ParamsDescription, values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(values)
      .filter(([name, v]) => !(isOptional(schema, name) && (v === undefined || v === null || v === '' || (typeof v === 'number' && Number.isNaN(v)))))
      .map(([name, v]) => [name, isEmpty(v) && schema.properties?.[name] && isNullable(schema.properties[name]) ? null : v]),
  );
}
