// JSON Schema for each kind, generated from the zod schemas (for the OpenAPI document).
// Must not depend on the API layer: it only reads the kinds table.
import { z } from 'zod';
import { KINDS, type Kind } from './kinds';

export interface JsonSchemaOptions {
  /**
   * 'input' (default): what a client may send; fields with defaults are optional.
   * 'output': what the server returns; defaulted fields are always present.
   */
  io?: 'input' | 'output';
}

/**
 * The JSON Schema (draft 2020-12) of one kind's document.
 * @example jsonSchemaFor('Service').properties.spec
 */
export function jsonSchemaFor(kind: Kind, options: JsonSchemaOptions = {}): Record<string, unknown> {
  return z.toJSONSchema(KINDS[kind].schema, { io: options.io ?? 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}
