// The registry's public surface: the store interface, its errors and the SQLite store.
// Callers depend on `Store`, never on a particular implementation's internals.
export * from './errors';
export * from './sqlite-store';
export * from './store';
