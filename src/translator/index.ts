// The translator's public surface: pure functions from a mesh snapshot and a
// proxy identity to Envoy resources. No I/O, no clock.
export * from './names';
export * from './snapshot';
export * from './translate';
