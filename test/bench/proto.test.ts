// The load generator's hand-written wire pieces agree with protobufjs.
import assert from 'node:assert/strict';
import { deltaAck, deltaRequest, parseDeltaResponse, withoutField } from '../../bench/lib/proto';
import { encodeResource, envoyRoot } from '../../envoy-protos';
import { LISTENER_TYPE } from '../../src/xds';

describe('bench: load generator wire pieces', () => {
  const root = envoyRoot();
  const Request = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const Response = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

  it('a Delta ACK is the message protobufjs writes for type_url and response_nonce', () => {
    for (const [typeUrl, nonce] of [
      [LISTENER_TYPE, '17'],
      [LISTENER_TYPE, ''],
      [`type.googleapis.com/${'x'.repeat(200)}`, 'n'.repeat(300)],
    ]) {
      const expected = Request.encode(
        Request.fromObject({ type_url: typeUrl, response_nonce: nonce }),
      ).finish();
      // The same message (an empty nonce may be left out, as proto3 allows).
      const read = (b: Uint8Array) => Request.toObject(Request.decode(b), { defaults: true });
      assert.deepEqual(read(deltaAck(typeUrl, nonce)), read(expected));
    }
  });

  it('a Delta subscription request is the message protobufjs writes', () => {
    const read = (b: Uint8Array) => Request.toObject(Request.decode(b), { defaults: true });
    for (const [subscribe, unsubscribe, nonce] of [
      [['a', 'outbound|9080||svc-0001', 'é'.repeat(100)], [], ''],
      [[], ['gone', 'x'.repeat(300)], '42'],
      [['*'], ['b'], 'n'],
    ] as const) {
      const expected = Request.encode(
        Request.fromObject({
          type_url: LISTENER_TYPE,
          resource_names_subscribe: subscribe,
          resource_names_unsubscribe: unsubscribe,
          response_nonce: nonce,
        }),
      ).finish();
      assert.deepEqual(read(deltaRequest(LISTENER_TYPE, subscribe, unsubscribe, nonce)), read(expected));
    }
  });

  it('drops one field of a message and finds resources by name and version', () => {
    const l = encodeResource(LISTENER_TYPE, {
      name: 'outbound|9000',
      address: { socket_address: { address: '127.0.0.1', port_value: 9000 } },
      traffic_direction: 'OUTBOUND',
    });
    const sans = withoutField(l.value, 0, l.value.length, 2);
    const Listener = root.lookupType('envoy.config.listener.v3.Listener');
    const whole = Listener.decode(l.value).toJSON();
    assert.ok(whole.address);
    delete whole.address;
    assert.deepEqual(Listener.decode(sans).toJSON(), whole);
    const response = Buffer.from(
      Response.encode(
        Response.fromObject({
          type_url: LISTENER_TYPE,
          nonce: '3',
          resources: [
            { name: l.name, version: l.version, resource: { type_url: LISTENER_TYPE, value: l.value } },
          ],
          removed_resources: ['gone'],
        }),
      ).finish(),
    );
    for (let i = 0; i < 2; i++) {
      // The second parse finds the resource by its version (no name decoding).
      const r = parseDeltaResponse(response);
      assert.equal(r.typeUrl, LISTENER_TYPE);
      assert.equal(r.nonce, '3');
      assert.deepEqual(r.removed, ['gone']);
      assert.equal(r.resources[0].name, 'outbound|9000');
      assert.equal(r.resources[0].version, l.version);
      assert.deepEqual(response.subarray(r.resources[0].start, r.resources[0].end), l.value);
    }
    // A known resource elsewhere in another response: its payload is found where it is there.
    const other = encodeResource(LISTENER_TYPE, { name: 'other', traffic_direction: 'INBOUND' });
    const two = Buffer.from(
      Response.encode(
        Response.fromObject({
          type_url: LISTENER_TYPE,
          nonce: '4',
          resources: [other, l].map((x) => ({
            name: x.name,
            version: x.version,
            resource: { type_url: LISTENER_TYPE, value: x.value },
          })),
        }),
      ).finish(),
    );
    const r2 = parseDeltaResponse(two);
    assert.deepEqual(
      r2.resources.map((x) => [x.name, x.version, two.subarray(x.start, x.end)]),
      [other, l].map((x) => [x.name, x.version, Buffer.from(x.value)]),
    );
    assert.ok(r2.resources[0].key !== r2.resources[1].key && r2.resources[1].key > 0);
  });
});
