// Hand-built Envoy resources for xDS tests, encoded with the project's encoder.
import { type EncodedResource, encodeResource } from '../../envoy-protos';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds';

/** An EDS cluster over ADS. */
export function edsCluster(name: string, extra: Record<string, unknown> = {}): EncodedResource {
  return encodeResource(CLUSTER_TYPE, {
    name,
    type: 'EDS',
    connect_timeout: { seconds: 1 },
    eds_cluster_config: {
      eds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 5 } },
    },
    ...extra,
  });
}

/** A ClusterLoadAssignment with the given host:port endpoints. */
export function cla(clusterName: string, endpoints: { address: string; port: number }[]): EncodedResource {
  return encodeResource(ENDPOINT_TYPE, {
    cluster_name: clusterName,
    endpoints: [
      {
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        })),
      },
    ],
  });
}

/** An HTTP listener whose routes come over RDS. */
export function httpListener(
  name: string,
  address: string,
  port: number,
  routeName: string,
): EncodedResource {
  return encodeResource(LISTENER_TYPE, {
    name,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: name,
              rds: {
                route_config_name: routeName,
                config_source: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 5 } },
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  });
}

/** A route configuration sending everything to one cluster, adding response headers. */
export function routeTo(
  name: string,
  cluster: string,
  responseHeaders: Record<string, string> = {},
  extraRoute: Record<string, unknown> = {},
): EncodedResource {
  return encodeResource(ROUTE_TYPE, {
    name,
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [{ match: { prefix: '/' }, route: { cluster, timeout: { seconds: 5 } }, ...extraRoute }],
        response_headers_to_add: Object.entries(responseHeaders).map(([key, value]) => ({
          header: { key, value },
          append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
        })),
      },
    ],
  });
}
