// The mesh model's public surface: schemas, types, validation, parsing, JSON Schema.
// Must not depend on the store, the API, the translator or Envoy types.
export * from './common';
export * from './json-schema';
export * from './kinds';
export * from './parse';
export * from './validate';
