/**
 * How a client learns a params schema: its JSON Schema, input side (what a caller may send, with the
 * defaults the schema fills in). The attack catalog and `jobs.schemas` both describe their zod schemas
 * with this, so a form built in the renderer takes its fields, bounds and defaults from the one schema.
 */
import { z } from 'zod';

/** One property as z.toJSONSchema writes it (the parts a form reads). */
export interface JsonProp {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
  /**
   * For an optional field without a zod default: the value the engine uses when it is left out (a field's
   * `.meta({ absentDefault })`, e.g. train's momentum). A form leaves the field empty and shows this.
   */
  absentDefault?: unknown;
  description?: string;
  anyOf?: JsonProp[];
  items?: JsonProp;
}

/** JSON Schema of an object params schema. */
export interface ParamsDescription {
  type?: string;
  properties?: Record<string, JsonProp>;
  required?: string[];
  additionalProperties?: boolean;
}

export function describeSchema(schema: z.ZodType): ParamsDescription {
  return z.toJSONSchema(schema, { io: 'input' }) as ParamsDescription;
}
