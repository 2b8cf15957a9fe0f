// Builds Envoy bootstrap configs that point a sidecar at meshplane's ADS server.
// The one place bootstraps are made: the REST API, meshctl, the demo, the
// docker-compose example and the tests all call it. Pure: no I/O.

export type AdsApiType = 'GRPC' | 'DELTA_GRPC';

export interface BootstrapOptions {
  readonly nodeId: string;
  /** Envoy's service cluster (node.cluster); by convention the service name. */
  readonly cluster: string;
  /** Node metadata (service, address, ports, labels, locality...). */
  readonly metadata?: Record<string, unknown>;
  /** Where meshplane's xDS server listens. */
  readonly xdsAddress: string;
  readonly xdsPort: number;
  /** State-of-the-World (GRPC) or incremental (DELTA_GRPC, the default). */
  readonly apiType?: AdsApiType;
  readonly adminAddress: string;
  readonly adminPort: number;
  /** Sent as gRPC initial metadata on the ADS stream (`authorization: Bearer <token>`). */
  readonly token?: string;
  /** How long Envoy waits for the first response of each type before going on (default 15s). */
  readonly initialFetchTimeout?: string;
}

export const XDS_CLUSTER = 'meshplane_xds';

/** An Envoy v3 Bootstrap as a plain object (proto field names), ready for YAML or JSON. */
export function buildBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const initialFetchTimeout = o.initialFetchTimeout ?? '15s';
  // Every ConfigSource is ADS with an explicit V3 (XDS-PROTOCOL.md 6.5).
  const adsSource = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: initialFetchTimeout };
  return {
    node: { id: o.nodeId, cluster: o.cluster, metadata: o.metadata ?? {} },
    admin: { address: { socket_address: { address: o.adminAddress, port_value: o.adminPort } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.apiType ?? 'DELTA_GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [
          {
            envoy_grpc: {
              cluster_name: XDS_CLUSTER,
              // Reconnect quickly after a control-plane restart (default is 500ms..30s).
              retry_policy: { retry_back_off: { base_interval: '0.25s', max_interval: '5s' } },
            },
            ...(o.token ? { initial_metadata: [{ key: 'authorization', value: `Bearer ${o.token}` }] } : {}),
          },
        ],
      },
      cds_config: adsSource,
      lds_config: adsSource,
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER,
          type: 'STRICT_DNS',
          connect_timeout: '1s',
          // ADS is HTTP/2; keepalive finds a dead control plane (XDS-PROTOCOL.md 6.3).
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: {
                http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '10s' } },
              },
            },
          },
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: {
                      address: { socket_address: { address: o.xdsAddress, port_value: o.xdsPort } },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
    },
  };
}
