// The xDS layer's public surface: cache, ADS server, proxy status, type URLs.
export * from './cache';
export * from './server';
export * from './status';
export * from './type-urls';
