// Every Envoy resource name meshplane generates comes from here: stable,
// readable, never random. Pure.

/** A subset's name: its labels, sorted, as `k=v` joined by ','; '' for all instances. */
export function subsetName(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** `outbound|9080|version=v2|reviews`: one service's instances (a subset of them) on its port. */
export function outboundClusterName(service: string, port: number, subset = ''): string {
  return `outbound|${port}|${subset}|${service}`;
}

/** The listener that carries calls to every service on one port. */
export function outboundListenerName(port: number): string {
  return `outbound|${port}`;
}

/** The RouteConfiguration of the HTTP services on one port (a virtual host each). */
export function outboundRouteName(port: number): string {
  return `outbound|${port}`;
}

export function inboundListenerName(port: number): string {
  return `inbound|${port}`;
}

/** The inbound RouteConfiguration (authorization and rate limits per route, over RDS). */
export function inboundRouteName(port: number): string {
  return `inbound|${port}`;
}

/** The local app behind a sidecar. */
export function inboundClusterName(service: string, appPort: number): string {
  return `inbound|${appPort}|${service}`;
}

/** The cluster that reaches the trace collector. */
export const TRACING_CLUSTER = 'meshplane|tracing';

/** A cluster with no endpoints: where references to missing things go (fail closed, 503). */
export const BLACKHOLE_CLUSTER = 'meshplane|blackhole';

/** Stat prefixes cannot hold '|'; Envoy also splits stat names on '.'. */
export function statPrefix(name: string): string {
  return name.replace(/[|.=,]/g, '_');
}

/** The SDS secret holding a proxy's own workload certificate and key (each proxy's own content). */
export const IDENTITY_SECRET = 'meshplane|identity';

/** The SDS secret holding the mesh CA's trust bundle. */
export const TRUST_SECRET = 'meshplane|trust';
