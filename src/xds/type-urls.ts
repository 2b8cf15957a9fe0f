// The xDS resource type URLs meshplane serves, as literal types.
// See https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-types

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export type TypeUrl =
  | typeof LISTENER_TYPE
  | typeof CLUSTER_TYPE
  | typeof ROUTE_TYPE
  | typeof ENDPOINT_TYPE
  | typeof SECRET_TYPE;

/**
 * Make-before-break push order for one change on an ADS stream: secrets before
 * their users, clusters and their endpoints before the listeners and routes that
 * use them. https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
 */
export const PUSH_ORDER: readonly TypeUrl[] = [
  SECRET_TYPE,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
];

export const ALL_TYPES: ReadonlySet<string> = new Set(PUSH_ORDER);

export function isTypeUrl(s: string): s is TypeUrl {
  return ALL_TYPES.has(s);
}

/**
 * LDS and CDS are full-state in SotW: every response lists every resource, and
 * omission deletes. The others are named: omission never deletes.
 * https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#grouping-resources-into-responses
 */
export function isFullStateInSotw(t: TypeUrl): boolean {
  return t === LISTENER_TYPE || t === CLUSTER_TYPE;
}

/** Short names used in logs, metrics and the proxy status. */
export const SHORT_NAMES: Record<TypeUrl, 'listeners' | 'clusters' | 'routes' | 'endpoints' | 'secrets'> = {
  [LISTENER_TYPE]: 'listeners',
  [CLUSTER_TYPE]: 'clusters',
  [ROUTE_TYPE]: 'routes',
  [ENDPOINT_TYPE]: 'endpoints',
  [SECRET_TYPE]: 'secrets',
};
