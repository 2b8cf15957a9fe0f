// Small builders for Envoy proto objects (field names as in the protos), shared
// by the translator. Pure.

export const TYPE = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  localRateLimit: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  httpRbacPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  networkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
} as const;

export const FILTER = {
  hcm: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  fault: 'envoy.filters.http.fault',
  localRateLimit: 'envoy.filters.http.local_ratelimit',
  tls: 'envoy.transport_sockets.tls',
  tlsInspector: 'envoy.filters.listener.tls_inspector',
  httpRbac: 'envoy.filters.http.rbac',
  networkRbac: 'envoy.filters.network.rbac',
} as const;

export type Obj = Record<string, unknown>;

/** google.protobuf.Duration from milliseconds; nanos only when there are some (a zero costs two bytes). */
export function duration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

/** A wrapper type (UInt32Value...). */
export function wrap<T>(value: T): { value: T } {
  return { value };
}

/** A percentage (0..100, fractions allowed) as a FractionalPercent per million. */
export function fractionalPercent(percent: number): { numerator: number; denominator: string } {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/**
 * Every ConfigSource is ADS with an explicit V3 (XDS-PROTOCOL.md 6.5). The initial fetch
 * timeout is Envoy's default (15 s), not repeated in every cluster and listener.
 */
export function adsConfigSource(): Obj {
  return { ads: {}, resource_api_version: 'V3' };
}

export function socketAddress(address: string, port: number): Obj {
  return { socket_address: { address, port_value: port } };
}

/**
 * How long the sidecar keeps an idle connection to its own app: 1 s, shorter than
 * the keep-alive of common app servers (Node 5 s, uvicorn 5 s, gunicorn 2 s,
 * Apache 5 s), so that the sidecar closes it first. When the app closes an idle
 * connection first, a request the sidecar sends on it at that moment fails with
 * a 503 "connection termination"; a new connection on loopback costs next to nothing.
 */
export const APP_IDLE_TIMEOUT_MS = 1_000;

/**
 * The upstream HTTP version (HTTP/2 for http2 and grpc services, else HTTP/1.1) and,
 * when given, how long an idle upstream connection is kept.
 */
function httpProtocolOptions(http2: boolean, idleTimeoutMs?: number): Obj {
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': TYPE.httpProtocolOptions,
      ...(idleTimeoutMs !== undefined
        ? { common_http_protocol_options: { idle_timeout: duration(idleTimeoutMs) } }
        : {}),
      explicit_http_config: http2 ? { http2_protocol_options: {} } : { http_protocol_options: {} },
    },
  };
}

/** To the sidecar's own app: idle connections closed first (APP_IDLE_TIMEOUT_MS). */
export function appProtocolOptions(http2: boolean): Obj {
  return httpProtocolOptions(http2, APP_IDLE_TIMEOUT_MS);
}

/** HTTP/2 to the upstream (http2 and grpc services). */
export function http2ProtocolOptions(): Obj {
  return httpProtocolOptions(true);
}

export function routerFilter(): Obj {
  return { name: FILTER.router, typed_config: { '@type': TYPE.router } };
}

/** An Envoy HeaderMatcher from a model header match ({exact|prefix|regex|present}). */
export function headerMatcher(
  name: string,
  m: { exact?: string; prefix?: string; regex?: string; present?: boolean },
): Obj {
  if (m.present !== undefined)
    return { name, present_match: true, ...(m.present ? {} : { invert_match: true }) };
  if (m.exact !== undefined) return { name, string_match: { exact: m.exact } };
  if (m.prefix !== undefined) return { name, string_match: { prefix: m.prefix } };
  return { name, string_match: { safe_regex: { regex: m.regex } } };
}
