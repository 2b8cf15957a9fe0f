// Protocol tests of the State-of-the-World ADS stream with a raw gRPC client.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  AdsServer,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  XdsCache,
} from '../../src/xds';
import { syncState } from '../../src/xds/status';
import { setVersion } from '../../src/xds/version';
import { eventually } from '../support/eventually';
import { cla, edsCluster, httpListener, routeTo } from '../support/resources';
import { SotwClient, sotwNames } from '../support/xds-client';

describe('xds: State-of-the-World ADS', () => {
  const cache = new XdsCache();
  let server: AdsServer;
  let address: string;
  const clients: SotwClient[] = [];
  let seq = 0;

  before(async () => {
    server = new AdsServer({ cache, gateTimeoutMs: 2_000, nackBackoffMs: { initial: 1, max: 10 } });
    address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.shutdown(1_000);
  });

  function connect(): SotwClient {
    const c = SotwClient.connect(address);
    clients.push(c);
    return c;
  }
  function nodeId(): string {
    seq++;
    return `sotw-node-${seq}`;
  }
  const node = (id: string) => ({ id, cluster: 'test' });

  /**
   * Proves that nothing was sent since the last response taken: asks for a new
   * type (always answered at once, rule 3.5) and checks that its answer is next.
   */
  async function assertNoResponseBefore(client: SotwClient, id: string): Promise<void> {
    client.send({ node: node(id), type_url: SECRET_TYPE, resource_names: ['barrier'] });
    const r = await client.next();
    assert.equal(r.type_url, SECRET_TYPE, `an unexpected ${r.type_url} response came first`);
    client.send({
      type_url: SECRET_TYPE,
      resource_names: ['barrier'],
      response_nonce: r.nonce,
      version_info: r.version_info,
    });
  }

  /** Waits until the server has processed the ACK of `nonce` (the request travels asynchronously). */
  function ackedBy(id: string, type: string, nonce: string): Promise<unknown> {
    return eventually(() =>
      assert.equal(server.proxy(id)?.types.get(type as never)?.lastAcked?.nonce, nonce),
    );
  }

  /** Waits until the server has applied a subscription change. */
  function subscribed(
    id: string,
    type: string,
    want: { wildcard: boolean; names: string[] },
  ): Promise<unknown> {
    return eventually(() => assert.deepEqual(server.subscriptions(id).get(type as never), want));
  }

  it('answers the first request with the full set, a content-derived version and a nonce', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    assert.equal(r.type_url, CLUSTER_TYPE);
    assert.deepEqual(sotwNames(r).sort(), ['a', 'b']);
    assert.ok(r.nonce.length > 0);
    assert.equal(
      r.version_info,
      setVersion([...cache.get(id, CLUSTER_TYPE).values()].map((x) => [x.name, x.version])),
    );
    for (const any of r.resources) assert.equal(any.type_url, CLUSTER_TYPE);
  });

  it('answers a first request at once even when there is nothing to send', async () => {
    const id = nodeId();
    const c = connect();
    c.send({ node: node(id), type_url: LISTENER_TYPE });
    const r = await c.next();
    assert.equal(r.type_url, LISTENER_TYPE);
    assert.equal(r.resources.length, 0);
  });

  it('records an ACK and sends nothing in reply to it', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    c.send({ type_url: CLUSTER_TYPE, version_info: r.version_info, response_nonce: r.nonce });
    await assertNoResponseBefore(c, id);
    const t = server.proxy(id)?.types.get(CLUSTER_TYPE);
    assert.equal(t?.lastAcked?.version, r.version_info);
    assert.equal(t?.lastAcked?.nonce, r.nonce);
  });

  it('records a NACK with its message, keeps the last good version, and does not resend the rejected content', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const good = await c.next();
    c.send({ type_url: CLUSTER_TYPE, version_info: good.version_info, response_nonce: good.nonce });
    await ackedBy(id, CLUSTER_TYPE, good.nonce);

    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('bad')] });
    const bad = await c.next();
    assert.deepEqual(sotwNames(bad).sort(), ['a', 'bad']);
    // A NACK reports the last accepted version; error_detail is what makes it a NACK (rule 2.1).
    c.send({
      type_url: CLUSTER_TYPE,
      version_info: good.version_info,
      response_nonce: bad.nonce,
      error_detail: { code: 13, message: 'Error adding/updating cluster(s) bad: it is bad' },
    });
    await assertNoResponseBefore(c, id); // parked: no resend loop (rule 2.6)
    const t = server.proxy(id)!.types.get(CLUSTER_TYPE)!;
    assert.equal(t.lastNack?.message, 'Error adding/updating cluster(s) bad: it is bad');
    assert.equal(t.lastNack?.version, bad.version_info);
    assert.equal(t.lastAcked?.version, good.version_info, 'the last good version stays recorded');

    // A fix is pushed once.
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('fixed')] });
    const fixed = await c.next();
    assert.deepEqual(sotwNames(fixed).sort(), ['a', 'fixed']);
  });

  it('treats a request as a NACK by its error_detail even when its version equals the one sent', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    c.send({
      type_url: CLUSTER_TYPE,
      version_info: r.version_info,
      response_nonce: r.nonce,
      error_detail: { code: 13, message: 'partial' },
    });
    await assertNoResponseBefore(c, id);
    assert.equal(server.proxy(id)!.types.get(CLUSTER_TYPE)!.lastNack?.message, 'partial');
  });

  it('ignores a request with a stale nonce and serves the one answering the latest response', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', []), cla('b', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: ['a'] });
    const first = await c.next();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', [{ address: '127.0.0.9', port: 1 }]), cla('b', [])] });
    const second = await c.next();
    assert.notEqual(first.nonce, second.nonce);
    // Stale: answers the first response, though it asks for a new name.
    c.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], response_nonce: first.nonce });
    await assertNoResponseBefore(c, id);
    // Current: served.
    c.send({ type_url: ENDPOINT_TYPE, resource_names: ['a', 'b'], response_nonce: second.nonce });
    const third = await c.next();
    assert.deepEqual(sotwNames(third).sort(), ['a', 'b']);
  });

  it('serves the first request of a type on a new stream whatever nonce it carries', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE, response_nonce: 'from-another-stream' });
    const r = await c.next();
    assert.deepEqual(sotwNames(r), ['a']);
  });

  it('does not push again to a client reconnecting with the current version, and does with an old one', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c1 = connect();
    c1.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r1 = await c1.next();
    c1.send({ type_url: CLUSTER_TYPE, version_info: r1.version_info, response_nonce: r1.nonce });
    c1.close();

    const c2 = connect();
    c2.send({ node: node(id), type_url: CLUSTER_TYPE, version_info: r1.version_info });
    await assertNoResponseBefore(c2, id);
    assert.equal(server.proxy(id)!.types.get(CLUSTER_TYPE)!.lastAcked?.version, r1.version_info);
    c2.close();

    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')] });
    const c3 = connect();
    c3.send({ node: node(id), type_url: CLUSTER_TYPE, version_info: r1.version_info });
    const r3 = await c3.next();
    assert.deepEqual(sotwNames(r3).sort(), ['a', 'b']);
  });

  it('sends only requested names for a named subscription and everything for a wildcard', async () => {
    const id = nodeId();
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b'), edsCluster('c')],
      [ENDPOINT_TYPE]: [cla('a', []), cla('b', []), cla('c', [])],
    });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE, resource_names: [] });
    assert.deepEqual(sotwNames(await c.next()).sort(), ['a', 'b', 'c']);
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: ['b'] });
    assert.deepEqual(sotwNames(await c.next()), ['b']);
    // An explicit "*" next to a name is wildcard plus that name (rule 3.3).
    const c2 = connect();
    c2.send({ node: node(`${id}-2`), type_url: CLUSTER_TYPE, resource_names: ['*'] });
    cache.set(`${id}-2`, { [CLUSTER_TYPE]: [edsCluster('x')] });
    const first = await c2.next();
    const r = first.resources.length > 0 ? first : await c2.next();
    assert.deepEqual(sotwNames(r), ['x']);
  });

  it('follows the four-step wildcard example of the xDS spec', async () => {
    const id = nodeId();
    cache.set(id, {
      [LISTENER_TYPE]: [httpListener('l1', '127.0.0.1', 1, 'r'), httpListener('A', '127.0.0.1', 2, 'r')],
    });
    const c = connect();
    // 1. empty names: legacy wildcard.
    c.send({ node: node(id), type_url: LISTENER_TYPE, resource_names: [] });
    const r1 = await c.next();
    assert.deepEqual(sotwNames(r1).sort(), ['A', 'l1']);
    // 2. ["*", "A"]: still wildcard (plus A).
    c.send({
      type_url: LISTENER_TYPE,
      resource_names: ['*', 'A'],
      response_nonce: r1.nonce,
      version_info: r1.version_info,
    });
    await assertNoResponseBefore(c, id);
    // 3. ["A"]: drops the wildcard; only A from now on.
    c.send({
      type_url: LISTENER_TYPE,
      resource_names: ['A'],
      response_nonce: r1.nonce,
      version_info: r1.version_info,
    });
    await subscribed(id, LISTENER_TYPE, { wildcard: false, names: ['A'] });
    cache.set(id, {
      [LISTENER_TYPE]: [httpListener('l1', '127.0.0.1', 3, 'r'), httpListener('A', '127.0.0.1', 4, 'r')],
    });
    const r3 = await c.next();
    assert.deepEqual(sotwNames(r3), ['A']);
    // 4. [] after a non-empty list means nothing, not wildcard.
    c.send({
      type_url: LISTENER_TYPE,
      resource_names: [],
      response_nonce: r3.nonce,
      version_info: r3.version_info,
    });
    await subscribed(id, LISTENER_TYPE, { wildcard: false, names: [] });
    cache.set(id, {
      [LISTENER_TYPE]: [httpListener('l1', '127.0.0.1', 5, 'r'), httpListener('A', '127.0.0.1', 6, 'r')],
    });
    const r4 = await c.next();
    assert.deepEqual(sotwNames(r4), []);
  });

  it('resends a name that was unsubscribed and subscribed again at the same version', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: ['a'] });
    const r1 = await c.next();
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: [],
      response_nonce: r1.nonce,
      version_info: r1.version_info,
    });
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['a'],
      response_nonce: r1.nonce,
      version_info: r1.version_info,
    });
    const r2 = await c.next();
    assert.deepEqual(sotwNames(r2), ['a']);
  });

  it('pushes a requested name once it appears', async () => {
    const id = nodeId();
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: ['later'] });
    const r1 = await c.next();
    assert.deepEqual(sotwNames(r1), []);
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['later'],
      response_nonce: r1.nonce,
      version_info: r1.version_info,
    });
    cache.set(id, { [ENDPOINT_TYPE]: [cla('later', [])] });
    assert.deepEqual(sotwNames(await c.next()), ['later']);
  });

  it('pushes one change in make-before-break order, each type after the ACK of the one before', async () => {
    const id = nodeId();
    const c = connect();
    const acked = async (type: string) => {
      const r = await c.next();
      assert.equal(r.type_url, type);
      return r;
    };
    // Subscribe the way Envoy does, ACKing each response.
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('a')],
      [ENDPOINT_TYPE]: [cla('a', [])],
      [LISTENER_TYPE]: [httpListener('l', '127.0.0.1', 1, 'r')],
      [ROUTE_TYPE]: [routeTo('r', 'a')],
    });
    const sub: [string, string[]][] = [
      [CLUSTER_TYPE, []],
      [ENDPOINT_TYPE, ['a']],
      [LISTENER_TYPE, []],
      [ROUTE_TYPE, ['r']],
    ];
    const last = new Map<string, { nonce: string; version: string }>();
    for (const [t, names] of sub) {
      c.send({ node: node(id), type_url: t, resource_names: names });
      const r = await acked(t);
      last.set(t, { nonce: r.nonce, version: r.version_info });
      c.send({ type_url: t, resource_names: names, response_nonce: r.nonce, version_info: r.version_info });
    }
    await ackedBy(id, ROUTE_TYPE, last.get(ROUTE_TYPE)!.nonce);
    // One change that touches every type: route to a new cluster b.
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('b')],
      [ENDPOINT_TYPE]: [cla('b', [])],
      [LISTENER_TYPE]: [httpListener('l', '127.0.0.1', 2, 'r')],
      [ROUTE_TYPE]: [routeTo('r', 'b')],
    });
    const order: string[] = [];
    // CDS first, holding old and new clusters.
    const cds = await acked(CLUSTER_TYPE);
    order.push('CDS');
    assert.deepEqual(sotwNames(cds).sort(), ['a', 'b'], 'the old cluster stays until routes moved');
    // Endpoints follow at once: a changed or new cluster warms until its CLA arrives, and
    // Envoy ACKs the CDS response only then.
    let eds = await acked(ENDPOINT_TYPE);
    c.send({ type_url: CLUSTER_TYPE, response_nonce: cds.nonce, version_info: cds.version_info });
    // Envoy asks for the new cluster's endpoints with the nonce it last saw (stale by now); it ACKs
    // each EDS response with its current names, which brings b.
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['a', 'b'],
      response_nonce: last.get(ENDPOINT_TYPE)!.nonce,
    });
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['a', 'b'],
      response_nonce: eds.nonce,
      version_info: eds.version_info,
    });
    if (!sotwNames(eds).includes('b')) {
      eds = await acked(ENDPOINT_TYPE);
      c.send({
        type_url: ENDPOINT_TYPE,
        resource_names: ['a', 'b'],
        response_nonce: eds.nonce,
        version_info: eds.version_info,
      });
    }
    order.push('EDS');
    assert.ok(sotwNames(eds).includes('b'));
    const lds = await acked(LISTENER_TYPE);
    order.push('LDS');
    c.send({ type_url: LISTENER_TYPE, response_nonce: lds.nonce, version_info: lds.version_info });
    const rds = await acked(ROUTE_TYPE);
    order.push('RDS');
    c.send({
      type_url: ROUTE_TYPE,
      resource_names: ['r'],
      response_nonce: rds.nonce,
      version_info: rds.version_info,
    });
    // Then CDS again without the cluster nothing uses any more.
    const cds2 = await acked(CLUSTER_TYPE);
    order.push('CDS');
    assert.deepEqual(sotwNames(cds2), ['b']);
    assert.deepEqual(order, ['CDS', 'EDS', 'LDS', 'RDS', 'CDS']);
  });

  it('re-sends the endpoints of a changed cluster so that it leaves warming', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')], [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const cds = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: cds.nonce, version_info: cds.version_info });
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: ['a'] });
    const eds = await c.next();
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['a'],
      response_nonce: eds.nonce,
      version_info: eds.version_info,
    });
    // Only the cluster changes (connect timeout); its endpoints do not.
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a', { connect_timeout: { seconds: 2 } })] });
    const cds2 = await c.next();
    assert.equal(cds2.type_url, CLUSTER_TYPE);
    const eds2 = await c.next();
    assert.equal(eds2.type_url, ENDPOINT_TYPE);
    assert.deepEqual(sotwNames(eds2), ['a']);
    assert.equal(eds2.version_info, eds.version_info, 'same content, sent again');
  });

  it('closes a stream whose request has no type_url, and one whose first request has no node id', async () => {
    const c = connect();
    c.send({ node: node(nodeId()) });
    assert.equal((await c.ended).code, grpc.status.INVALID_ARGUMENT);
    const c2 = connect();
    c2.send({ type_url: CLUSTER_TYPE });
    assert.equal((await c2.ended).code, grpc.status.INVALID_ARGUMENT);
  });

  it('ignores an unknown or v2 type and keeps serving the stream', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    const before = server.unknownTypeRequests;
    c.send({ node: node(id), type_url: 'type.googleapis.com/envoy.api.v2.Cluster' });
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    assert.equal(r.type_url, CLUSTER_TYPE);
    assert.equal(server.unknownTypeRequests, before + 1);
  });

  it('keeps the first node identity when later requests omit or change it', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')], [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    await c.next();
    c.send({ node: node('someone-else'), type_url: ENDPOINT_TYPE, resource_names: ['a'] });
    assert.deepEqual(sotwNames(await c.next()), ['a']);
    assert.ok(server.proxy(id));
    assert.equal(server.proxy('someone-else'), undefined);
  });

  it('keeps each type a separate sub-stream: a NACK on EDS leaves CDS ACKed', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')], [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const cds = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: cds.nonce, version_info: cds.version_info });
    c.send({ type_url: ENDPOINT_TYPE, resource_names: ['a'] });
    const eds = await c.next();
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names: ['a'],
      response_nonce: eds.nonce,
      error_detail: { code: 13, message: 'bad endpoints' },
    });
    await assertNoResponseBefore(c, id);
    const p = server.proxy(id)!;
    assert.equal(syncState(p.types.get(CLUSTER_TYPE)!), 'SYNCED');
    assert.equal(syncState(p.types.get(ENDPOINT_TYPE)!), 'NACKED');
    assert.equal(p.types.get(ENDPOINT_TYPE)!.lastNack?.message, 'bad endpoints');
  });

  it('delivers a response larger than 5 MiB', async () => {
    const id = nodeId();
    const big = Array.from({ length: 400 }, (_, i) =>
      cla(
        `big-${i}`,
        Array.from({ length: 1_000 }, (_, j) => ({
          address: `10.${i % 250}.${j % 250}.${(j >> 8) + 1}`,
          port: 8000 + j,
        })),
      ),
    );
    cache.set(id, { [ENDPOINT_TYPE]: big });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names: big.map((r) => r.name) });
    const r = await c.next(20_000);
    const bytes = r.resources.reduce((n, a) => n + a.value.length, 0);
    assert.ok(bytes > 5 * 1024 * 1024, `only ${bytes} bytes`);
    assert.equal(r.resources.length, 400);
  });
});
