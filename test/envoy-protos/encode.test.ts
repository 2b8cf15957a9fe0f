// Unit tests of the resource encoder and the type URL constants.
import assert from 'node:assert/strict';
import {
  decodeResource,
  encodeOverlay,
  encodeResource,
  envoyRoot,
  overlayVersion,
  ResourceEncodeError,
} from '../../envoy-protos';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../src/xds';
import { cla, edsCluster, httpListener } from '../support/resources';

describe('envoy-protos: encoder', () => {
  it('uses the exact xDS type URLs', () => {
    assert.equal(LISTENER_TYPE, 'type.googleapis.com/envoy.config.listener.v3.Listener');
    assert.equal(CLUSTER_TYPE, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.equal(ROUTE_TYPE, 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration');
    assert.equal(ENDPOINT_TYPE, 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment');
    assert.equal(SECRET_TYPE, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
  });

  it('derives the version from content: equal content, equal version; any change, another', () => {
    assert.equal(edsCluster('a').version, edsCluster('a').version);
    assert.notEqual(edsCluster('a').version, edsCluster('a', { connect_timeout: { seconds: 2 } }).version);
    assert.notEqual(edsCluster('a').version, edsCluster('b').version);
  });

  it('names a ClusterLoadAssignment by cluster_name and records which CLA an EDS cluster warms with', () => {
    assert.equal(cla('svc', []).name, 'svc');
    assert.equal(edsCluster('svc').warms, 'svc');
    assert.equal(
      edsCluster('svc', { eds_cluster_config: { service_name: 'other', eds_config: { ads: {} } } }).warms,
      'other',
    );
  });

  it('encodes nested typed_config Anys and decodes them back', () => {
    const l = httpListener('l', '127.0.0.1', 8080, 'r');
    const back = decodeResource(LISTENER_TYPE, l.value) as any;
    const hcm = back.filter_chains[0].filters[0].typed_config;
    assert.equal(
      hcm['@type'],
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    );
    assert.equal(hcm.rds.route_config_name, 'r');
    assert.equal(
      hcm.http_filters[0].typed_config['@type'],
      'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
    );
  });

  const bad: { name: string; type: string; obj: Record<string, unknown>; field: string }[] = [
    {
      name: 'a misspelt top-level field',
      type: CLUSTER_TYPE,
      obj: { name: 'c', conect_timeout: '1s' },
      field: 'conect_timeout',
    },
    {
      name: 'a misspelt nested field',
      type: ENDPOINT_TYPE,
      obj: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpont: {} }] }] },
      field: 'endpoints[0].lb_endpoints[0].endpont',
    },
    {
      name: 'an unknown field inside a typed_config',
      type: LISTENER_TYPE,
      obj: {
        name: 'l',
        filter_chains: [
          {
            filters: [
              {
                name: 'x',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                  stat_prefix: 's',
                  clster: 'c',
                },
              },
            ],
          },
        ],
      },
      field: 'filter_chains[0].filters[0].typed_config.clster',
    },
    { name: 'a missing name', type: CLUSTER_TYPE, obj: { type: 'EDS' }, field: 'name' },
    {
      name: 'an unknown @type',
      type: LISTENER_TYPE,
      obj: {
        name: 'l',
        filter_chains: [
          { filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/no.Such' } }] },
        ],
      },
      field: 'filter_chains[0].filters[0].typed_config.@type',
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}, naming the field`, () => {
      assert.throws(
        () => encodeResource(tc.type, tc.obj),
        (err: unknown) => err instanceof ResourceEncodeError && err.field === tc.field,
      );
    });
  }

  it('checks the fields of a google.protobuf.Struct too (camelCase there)', () => {
    const log = (value: Record<string, unknown>) =>
      encodeResource(LISTENER_TYPE, {
        name: 'l',
        access_log: [
          {
            name: 'file',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
              path: '/tmp/x',
              log_format: { json_format: { fields: { method: value } } },
            },
          },
        ],
      });
    assert.throws(() => log({ string_value: '%REQ(:METHOD)%' }), ResourceEncodeError);
    const back = decodeResource(LISTENER_TYPE, log({ stringValue: '%REQ(:METHOD)%' }).value) as any;
    assert.match(
      JSON.stringify(back.access_log[0].typed_config.log_format.json_format),
      /"%REQ\(:METHOD\)%"/,
    );
  });

  it('an overlay (a base plus fields of its own) is versioned by its content too', () => {
    const base = (name: string) => encodeResource(LISTENER_TYPE, { name, traffic_direction: 'OUTBOUND' });
    const at = (b: ReturnType<typeof base>, address: string) =>
      encodeOverlay(b, { address: { socket_address: { address, port_value: 9000 } } });
    const a = base('outbound|9000');
    const v = (x: ReturnType<typeof base>) => x.version;
    assert.equal(
      v(at(a, '127.0.0.1')),
      v(at(base('outbound|9000'), '127.0.0.1')),
      'same content, same version',
    );
    assert.notEqual(v(at(a, '127.0.0.1')), v(at(a, '127.0.0.2')), 'another address');
    assert.notEqual(v(at(a, '127.0.0.1')), v(at(base('outbound|9001'), '127.0.0.1')), 'another base');
    assert.notEqual(v(at(a, '127.0.0.1')), v(a));
    // The bytes are the base's then the overlay's: the merged message.
    assert.deepEqual(decodeResource(LISTENER_TYPE, at(a, '127.0.0.1').value), {
      name: 'outbound|9000',
      traffic_direction: 'OUTBOUND',
      address: { socket_address: { address: '127.0.0.1', port_value: 9000 } },
    });
    // Sidecar addresses a /16 apart, on many ports: every overlay of one base gets its own version.
    const versions = new Set<string>();
    for (let i = 0; i < 65_536; i++)
      versions.add(overlayVersion(a.version, Buffer.from(`10.${i >> 8}.${i & 255}.7:${9000 + (i % 10)}`)));
    assert.equal(versions.size, 65_536);
  });

  it('an address overlay (written directly) has the bytes protobufjs writes, and anything else goes through it', () => {
    const root = envoyRoot();
    const base = encodeResource(LISTENER_TYPE, { name: 'l', traffic_direction: 'OUTBOUND' });
    const Listener = root.lookupType('envoy.config.listener.v3.Listener');
    for (const [address, port_value] of [
      ['127.0.0.1', 9000],
      ['10.1.2.3', 1],
      ['::1', 65535],
      ['x'.repeat(200), 15006],
      ['é', 128],
    ] as const) {
      const overlay = { address: { socket_address: { address, port_value } } };
      const expected = Listener.encode(Listener.fromObject(overlay)).finish();
      const got = encodeOverlay(base, overlay);
      assert.deepEqual(got.parts?.at(-1), Buffer.from(expected), `${address}:${port_value}`);
    }
    // Another shape (a protocol, a named port) is encoded by protobufjs, and checked.
    const udp = { address: { socket_address: { protocol: 'UDP', address: '127.0.0.1', port_value: 53 } } };
    assert.deepEqual(decodeResource(LISTENER_TYPE, encodeOverlay(base, udp).value).address, udp.address);
    assert.throws(
      () => encodeOverlay(base, { address: { socket_address: { address: '127.0.0.1', port: 53 } } }),
      ResourceEncodeError,
    );
  });
});
