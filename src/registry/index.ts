// The registry's public surface: the store interface, its errors, the SQLite store and version diffs.
// Callers depend on `Store`, never on a particular implementation's internals.
export * from './errors';
export * from './sqlite-store';
export * from './store';
export * from './versions';
