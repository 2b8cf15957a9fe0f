// Access logs and tracing from the Mesh (MESH-MODEL.md: Mesh.spec.accessLog,
// Mesh.spec.tracing), added to every HTTP connection manager. Pure.
import type { Mesh } from '../model';
import { duration, type Obj, socketAddress, wrap } from './envoy';
import { TRACING_CLUSTER } from './names';

/** What an operator needs per request; values are Envoy format operators. */
export const ACCESS_LOG_FIELDS: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  authority: '%REQ(:AUTHORITY)%',
  protocol: '%PROTOCOL%',
  status: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  duration_ms: '%DURATION%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  caller: '%DOWNSTREAM_PEER_URI_SAN%',
  downstream_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  request_id: '%REQ(X-REQUEST-ID)%',
  trace_id: '%TRACE_ID%',
  user_agent: '%REQ(USER-AGENT)%',
};

/** A google.protobuf.Struct from a flat string map. */
function struct(fields: Readonly<Record<string, string>>): Obj {
  return { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { stringValue: v }])) };
}

const TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%DURATION%ms upstream=%UPSTREAM_HOST% cluster=%UPSTREAM_CLUSTER% caller=%DOWNSTREAM_PEER_URI_SAN% trace=%TRACE_ID%\n';

/** The HCM access_log entries for the Mesh's accessLog setting (none when unset). */
export function accessLogs(mesh: Mesh): Obj[] {
  const al = mesh.spec.accessLog;
  if (!al) return [];
  const logFormat =
    al.format === 'json'
      ? { json_format: struct(ACCESS_LOG_FIELDS) }
      : { text_format_source: { inline_string: TEXT_FORMAT } };
  if (al.path === '/dev/stdout') {
    return [
      {
        name: 'envoy.access_loggers.stdout',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
          log_format: logFormat,
        },
      },
    ];
  }
  return [
    {
      name: 'envoy.access_loggers.file',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
        path: al.path,
        log_format: logFormat,
      },
    },
  ];
}

/** The HCM tracing block for the Mesh's tracing setting (undefined when unset). */
export function tracing(mesh: Mesh, serviceName: string): Obj | undefined {
  const t = mesh.spec.tracing;
  if (!t) return undefined;
  const provider =
    t.provider === 'zipkin'
      ? {
          name: 'envoy.tracers.zipkin',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
            collector_cluster: TRACING_CLUSTER,
            collector_endpoint: '/api/v2/spans',
            collector_endpoint_version: 'HTTP_JSON',
            trace_id_128bit: true,
            shared_span_context: wrap(false),
          },
        }
      : {
          name: 'envoy.tracers.opentelemetry',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
            grpc_service: { envoy_grpc: { cluster_name: TRACING_CLUSTER }, timeout: duration(1_000) },
            service_name: serviceName,
          },
        };
  return { random_sampling: { value: t.samplePercent }, provider };
}

/** The cluster that reaches the trace collector (host:port, resolved by DNS). */
export function tracingCluster(mesh: Mesh): Obj | undefined {
  const t = mesh.spec.tracing;
  if (!t) return undefined;
  const i = t.collector.lastIndexOf(':');
  const host = t.collector.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(t.collector.slice(i + 1));
  return {
    name: TRACING_CLUSTER,
    type: 'STRICT_DNS',
    connect_timeout: duration(1_000),
    load_assignment: {
      cluster_name: TRACING_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }],
    },
    ...(t.provider === 'opentelemetry'
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
  };
}
