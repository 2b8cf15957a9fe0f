// Assembled responses decode exactly like the regular serializer's output.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  decodeResource,
  encodeComposite,
  encodeItem,
  encodeOverlay,
  encodeResource,
  loadAdsPackageDefinition,
} from '../../envoy-protos';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds';
import { frameMessage } from '../../src/xds/grpc-http2';
import {
  deltaEntry,
  deltaHead,
  deltaPartEntries,
  SerializedParts,
  sotwEntry,
  sotwHead,
} from '../../src/xds/wire';

/**
 * The transport's framing of an assembled response (what the ADS server
 * writes): checks the 5-byte gRPC header, returns the message after it.
 */
function framed(head: Buffer, entries: readonly (Buffer | readonly Buffer[])[]): Buffer {
  const out = frameMessage(new SerializedParts(head, entries));
  assert.equal(out[0], 0, 'not compressed');
  assert.equal(out.readUInt32BE(1), out.length - 5, 'length prefix');
  return out.subarray(5);
}

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
      removed_resources: ['gone', 'ünïcode/é', 'x'.repeat(200)],
    };
    const regular = m.responseSerialize({
      ...head,
      resources: clusters.map((r) => ({
        name: r.name,
        version: r.version,
        resource: { type_url: CLUSTER_TYPE, value: r.value },
      })),
    });
    const assembled = framed(
      deltaHead(head.system_version_info, head.type_url, head.nonce, head.removed_resources),
      clusters.map(deltaEntry),
    );
    assert.equal(assembled.length, regular.length);
    assert.deepEqual(m.responseDeserialize(assembled), m.responseDeserialize(regular));
    // The same resource object gives the same (shared) entry.
    assert.equal(deltaEntry(clusters[1]), deltaEntry(clusters[1]));
  });

  it("a whole shared part's entries, assembled once, are its resources' entries in one buffer", () => {
    const m = svc.DeltaAggregatedResources;
    const part = { map: new Map(clusters.map((r) => [r.name, r])) };
    assert.equal(deltaPartEntries(part), undefined, 'the first response holding it goes entry by entry');
    const whole = deltaPartEntries(part)!;
    assert.ok(whole.equals(Buffer.concat(clusters.map((r) => deltaEntry(r) as Buffer))));
    assert.equal(deltaPartEntries(part), whole, 'made once per part');
    const viaPart = m.responseDeserialize(framed(deltaHead('v1', CLUSTER_TYPE, '8', []), [whole]));
    assert.deepEqual(
      viaPart.resources.map((r: { name: string; version: string }) => [r.name, r.version]),
      clusters.map((r) => [r.name, r.version]),
    );
  });

  it('an assembled response reaches the gRPC frame without a contiguous copy of its own', () => {
    const head = deltaHead('v', CLUSTER_TYPE, '1', []);
    const entries = clusters.map(deltaEntry);
    const out = new SerializedParts(head, entries);
    // The very buffers of the shared entries, not copies of them.
    assert.deepEqual(out.parts, [head, ...entries.flat()]);
    assert.ok(out.parts.every((p, i) => p === [head, ...entries.flat()][i]));
    assert.equal(out.byteLength, Buffer.concat(out.parts as Buffer[]).length);
    assert.throws(() => out.copy(Buffer.alloc(out.byteLength + 4), 5), RangeError);
    const target = Buffer.alloc(out.byteLength + 2, 0xff);
    assert.equal(out.copy(target, 1), out.byteLength);
    assert.deepEqual(target.subarray(1, -1), out.toBuffer());
    assert.deepEqual([target[0], target.at(-1)], [0xff, 0xff]);
    // The gRPC frame: flag, length, then the parts in order.
    const frame = frameMessage(out);
    assert.deepEqual([frame[0], frame.readUInt32BE(1)], [0, out.byteLength]);
    assert.deepEqual(frame.subarray(5), out.toBuffer());
  });

  it('SotW: header plus per-resource Anys is the DiscoveryResponse the regular serializer writes', () => {
    const m = svc.StreamAggregatedResources;
    const head = { version_info: 'v1', type_url: CLUSTER_TYPE, nonce: '3' };
    const regular = m.responseSerialize({
      ...head,
      resources: clusters.map((r) => ({ type_url: CLUSTER_TYPE, value: r.value })),
    });
    const assembled = framed(sotwHead(head.version_info, head.type_url, head.nonce), clusters.map(sotwEntry));
    assert.equal(assembled.length, regular.length);
    assert.deepEqual(m.responseDeserialize(assembled), m.responseDeserialize(regular));
  });

  it('a resource made of a shared base and its own part: its entries reuse the base bytes and decode whole', () => {
    const base = encodeResource(LISTENER_TYPE, {
      name: 'outbound|9001',
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [{ name: 'x'.repeat(400) }] }],
    });
    const at = (address: string) =>
      encodeOverlay(base, { address: { socket_address: { address, port_value: 9001 } } });
    const [a, b] = [at('127.0.0.1'), at('127.0.0.2')];
    assert.notEqual(a.version, b.version);
    assert.equal(a.parts?.[0], base.value);
    const head = { type_url: LISTENER_TYPE, nonce: '1' };
    const check = (
      m: (typeof svc)[string],
      encodedHead: Buffer,
      entries: (Buffer | readonly Buffer[])[],
      resources: Record<string, unknown>[],
    ) => {
      // The base's 400-odd bytes are the same buffer in both entries, not copies.
      for (const e of entries) assert.ok(Array.isArray(e) && e.includes(base.value));
      const regular = m.responseSerialize({ ...head, resources });
      const assembled = framed(encodedHead, entries);
      assert.equal(assembled.length, regular.length);
      assert.deepEqual(m.responseDeserialize(assembled), m.responseDeserialize(regular));
    };
    // An empty version is left out, as proto3 (and the regular serializer, given no field) does.
    check(
      svc.DeltaAggregatedResources,
      deltaHead('', head.type_url, head.nonce, []),
      [a, b].map(deltaEntry),
      [a, b].map((r) => ({
        name: r.name,
        version: r.version,
        resource: { type_url: LISTENER_TYPE, value: r.value },
      })),
    );
    check(
      svc.StreamAggregatedResources,
      sotwHead('', head.type_url, head.nonce),
      [a, b].map(sotwEntry),
      [a, b].map((r) => ({ type_url: LISTENER_TYPE, value: r.value })),
    );
  });

  it('a resource made of shared items (route configurations of virtual hosts) is the whole message, items not copied', () => {
    const vhost = (name: string) => ({
      name,
      domains: [name, `${name}:9000`],
      routes: [{ match: { prefix: '/' }, route: { cluster: `outbound|9000||${name}` } }],
    });
    const items = ['a', 'b'].map((n) => encodeItem(ROUTE_TYPE, 'virtual_hosts', vhost(n)));
    const head = { name: 'outbound|9000', validate_clusters: { value: false } };
    const composite = encodeComposite(ROUTE_TYPE, head, 'virtual_hosts', items);
    const whole = encodeResource(ROUTE_TYPE, { ...head, virtual_hosts: [vhost('a'), vhost('b')] });
    assert.equal(composite.name, 'outbound|9000');
    assert.equal(composite.value.length, whole.value.length);
    assert.deepEqual(decodeResource(ROUTE_TYPE, composite.value), decodeResource(ROUTE_TYPE, whole.value));
    assert.ok(composite.parts?.includes(items[1]));
    // Same parts, same version; other items, another version.
    assert.equal(encodeComposite(ROUTE_TYPE, head, 'virtual_hosts', items).version, composite.version);
    assert.notEqual(
      encodeComposite(ROUTE_TYPE, head, 'virtual_hosts', [items[0]]).version,
      composite.version,
    );
    assert.throws(() => encodeItem(ROUTE_TYPE, 'name', {}), /not a repeated field/);
    assert.throws(() => encodeItem(ROUTE_TYPE, 'virtual_hosts', { nmae: 'x' }), /nmae/);
  });
});
