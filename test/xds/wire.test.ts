// Assembled responses decode exactly like the regular serializer's output.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { encodeResource, loadAdsPackageDefinition } from '../../envoy-protos';
import { CLUSTER_TYPE } from '../../src/xds';
import { AssembledResponse, assemblingSerializer, deltaEntry, sotwEntry } from '../../src/xds/wire';

describe('xds: assembled responses', () => {
  const pkg = grpc.loadPackageDefinition(loadAdsPackageDefinition()) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const svc = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
  const clusters = ['a', 'b'.repeat(300)].map((name) =>
    encodeResource(CLUSTER_TYPE, { name, type: 'STATIC', connect_timeout: { seconds: 1 } }),
  );

  it('Delta: header plus per-resource entries is the DeltaDiscoveryResponse the regular serializer writes', () => {
    const m = svc.DeltaAggregatedResources;
    const head = {
      system_version_info: 'v1',
      type_url: CLUSTER_TYPE,
      nonce: '7',
      removed_resources: ['gone'],
    };
    const regular = m.responseSerialize({
      ...head,
      resources: clusters.map((r) => ({
        name: r.name,
        version: r.version,
        resource: { type_url: CLUSTER_TYPE, value: r.value },
      })),
    });
    const assembled = assemblingSerializer(m.responseSerialize)(
      new AssembledResponse(head, clusters.map(deltaEntry)),
    );
    assert.equal(assembled.length, regular.length);
    assert.deepEqual(m.responseDeserialize(assembled), m.responseDeserialize(regular));
    // The same resource object gives the same (shared) entry.
    assert.equal(deltaEntry(clusters[1]), deltaEntry(clusters[1]));
  });

  it('SotW: header plus per-resource Anys is the DiscoveryResponse the regular serializer writes', () => {
    const m = svc.StreamAggregatedResources;
    const head = { version_info: 'v1', type_url: CLUSTER_TYPE, nonce: '3' };
    const regular = m.responseSerialize({
      ...head,
      resources: clusters.map((r) => ({ type_url: CLUSTER_TYPE, value: r.value })),
    });
    const assembled = assemblingSerializer(m.responseSerialize)(
      new AssembledResponse(head, clusters.map(sotwEntry)),
    );
    assert.equal(assembled.length, regular.length);
    assert.deepEqual(m.responseDeserialize(assembled), m.responseDeserialize(regular));
  });
});
