// Protocol tests of the Delta (incremental) ADS stream with a raw gRPC client.
import assert from 'node:assert/strict';
import {
  AdsServer,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  type TypeUrl,
  XdsCache,
} from '../../src/xds';
import { LISTENER_TYPE } from '../../src/xds/type-urls';
import { resourcesVersion } from '../../src/xds/version';
import { eventually } from '../support/eventually';
import { cla, edsCluster, httpListener, routeTo } from '../support/resources';
import { DeltaClient, deltaNames } from '../support/xds-client';

describe('xds: Delta (incremental) ADS', () => {
  const cache = new XdsCache();
  let server: AdsServer;
  let address: string;
  const clients: DeltaClient[] = [];
  let seq = 0;

  before(async () => {
    server = new AdsServer({ cache, gateTimeoutMs: 2_000, nackBackoffMs: { initial: 1, max: 10 } });
    address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.shutdown(1_000);
  });

  function connect(): DeltaClient {
    const c = DeltaClient.connect(address);
    clients.push(c);
    return c;
  }
  function nodeId(): string {
    seq++;
    return `delta-node-${seq}`;
  }
  const node = (id: string) => ({ id, cluster: 'test' });
  let barriers = 0;

  /**
   * Proves that nothing was sent since the last response taken: subscribes a
   * new secret name (always answered, rule 4.2) and checks its answer is next.
   */
  async function assertNoResponseBefore(client: DeltaClient, id: string): Promise<void> {
    barriers++;
    cache.patch(id, SECRET_TYPE, [], []);
    client.send({ node: node(id), type_url: SECRET_TYPE, resource_names_subscribe: [`barrier-${barriers}`] });
    const r = await client.next();
    assert.equal(r.type_url, SECRET_TYPE, `an unexpected ${r.type_url} response came first`);
    client.send({ type_url: SECRET_TYPE, response_nonce: r.nonce });
  }
  function ackedBy(id: string, type: TypeUrl, nonce: string): Promise<unknown> {
    return eventually(() => assert.equal(server.proxy(id)?.types.get(type)?.lastAcked?.nonce, nonce));
  }
  function subscribed(
    id: string,
    type: TypeUrl,
    want: { wildcard: boolean; names: string[] },
  ): Promise<unknown> {
    return eventually(() => assert.deepEqual(server.subscriptions(id).get(type), want));
  }

  it('answers the first (wildcard) request with every resource and its version', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    assert.equal(r.type_url, CLUSTER_TYPE);
    assert.deepEqual(deltaNames(r).sort(), ['a', 'b']);
    for (const res of r.resources) {
      assert.equal(res.version, cache.get(id, CLUSTER_TYPE).get(res.name)?.version);
      assert.equal(res.resource?.type_url, CLUSTER_TYPE);
    }
    assert.deepEqual(r.removed_resources, []);
    assert.ok(r.nonce.length > 0);
  });

  it('records an ACK and sends nothing in reply to it', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r.nonce });
    await assertNoResponseBefore(c, id);
    const t = server.proxy(id)!.types.get(CLUSTER_TYPE)!;
    assert.equal(t.lastAcked?.nonce, r.nonce);
    assert.equal(t.lastAcked?.version, r.system_version_info);
  });

  it('sends only what changed: one of many clusters', async () => {
    const id = nodeId();
    const names = Array.from({ length: 100 }, (_, i) => `c${i}`);
    cache.set(id, { [CLUSTER_TYPE]: names.map((n) => edsCluster(n)) });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c.next();
    assert.equal(r.resources.length, 100);
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r.nonce });
    await ackedBy(id, CLUSTER_TYPE, r.nonce);
    cache.patch(id, CLUSTER_TYPE, [edsCluster('c42', { connect_timeout: { seconds: 3 } })]);
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['c42']);
  });

  it('a first response of whole shared parts: holds exactly them, versions as summed one by one', async () => {
    const shared = Array.from({ length: 40 }, (_, i) => edsCluster(`s${i}`));
    const clas = shared.map((c) => cla(c.name, [{ address: '127.0.0.9', port: 80 }]));
    const [a, b] = [nodeId(), nodeId()];
    for (const id of [a, b])
      cache.set(id, {
        [CLUSTER_TYPE]: { parts: [shared, [edsCluster(`own-${id}`)]] },
        [ENDPOINT_TYPE]: { parts: [clas] },
      });
    const c = connect();
    c.send({ node: node(a), type_url: CLUSTER_TYPE });
    const r = await c.next();
    assert.equal(r.resources.length, 41);
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r.nonce });
    // A second proxy's first response holds the same part: its entries go assembled in one piece
    // (deltaPartEntries), the same names, versions and bytes.
    const cb = connect();
    cb.send({ node: node(b), type_url: CLUSTER_TYPE });
    const rb = await cb.next();
    const heldB = cache.get(b, CLUSTER_TYPE);
    assert.deepEqual(deltaNames(rb).sort(), [...heldB.keys()].sort());
    for (const res of rb.resources) {
      assert.equal(res.version, heldB.get(res.name)!.version, res.name);
      assert.ok(Buffer.from(res.resource!.value!).equals(heldB.get(res.name)!.value), res.name);
    }
    cb.send({ type_url: CLUSTER_TYPE, response_nonce: rb.nonce });
    await ackedBy(b, CLUSTER_TYPE, rb.nonce);
    assert.equal(server.proxy(b)!.types.get(CLUSTER_TYPE)!.current, resourcesVersion(heldB.values()));
    // Named: every CLA of the part, and one that does not exist (answered as removed, rule 4.5).
    c.send({
      type_url: ENDPOINT_TYPE,
      resource_names_subscribe: [...clas.map((x) => x.name), 'nowhere'],
    });
    const e = await c.next();
    assert.equal(e.resources.length, 40);
    assert.deepEqual(e.removed_resources, ['nowhere']);
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: e.nonce });
    await ackedBy(a, ENDPOINT_TYPE, e.nonce);
    for (const [t, n] of [
      [CLUSTER_TYPE, 41],
      [ENDPOINT_TYPE, 40],
    ] as const) {
      const status = server.proxy(a)!.types.get(t)!;
      const expected = resourcesVersion(cache.get(a, t).values());
      assert.equal(status.lastAcked?.version, expected, `${t}: ${n} resources`);
      assert.equal(status.current, expected);
    }
    // Held as if set one by one: a change of one shared resource sends that one alone.
    const changed = [...shared];
    changed[7] = edsCluster('s7', { connect_timeout: { seconds: 4 } });
    cache.set(a, { [CLUSTER_TYPE]: { parts: [changed, [edsCluster(`own-${a}`)]] } });
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['s7']);
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r2.nonce });
    await ackedBy(a, CLUSTER_TYPE, r2.nonce);
    // The changed cluster's CLA goes again (it warms, rule 5.3).
    const e2 = await c.next();
    assert.equal(e2.type_url, ENDPOINT_TYPE);
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: e2.nonce });
    await ackedBy(a, ENDPOINT_TYPE, e2.nonce);
    // A change of every resource of the part: its entries go assembled in one piece, and hold the
    // same names, versions and bytes as entries made one by one.
    const all = shared.map((x) => edsCluster(x.name, { connect_timeout: { seconds: 9 } }));
    cache.set(a, { [CLUSTER_TYPE]: { parts: [all, [edsCluster(`own-${a}`)]] } });
    const r3 = await c.next();
    assert.equal(r3.type_url, CLUSTER_TYPE);
    const held = cache.get(a, CLUSTER_TYPE);
    assert.deepEqual(deltaNames(r3).sort(), shared.map((x) => x.name).sort());
    for (const res of r3.resources) {
      const want = held.get(res.name)!;
      assert.equal(res.version, want.version, res.name);
      assert.ok(Buffer.from(res.resource!.value!).equals(want.value), `${res.name}: the cluster's bytes`);
    }
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r3.nonce });
    await ackedBy(a, CLUSTER_TYPE, r3.nonce);
    assert.equal(server.proxy(a)!.types.get(CLUSTER_TYPE)!.current, resourcesVersion(held.values()));
  });

  it('a first EDS response to a subscription of every name of a large shared part (and one more) holds them all', async () => {
    const clas = Array.from({ length: 100 }, (_, i) =>
      cla(`big${i}`, [{ address: '127.0.0.9', port: 80 + i }]),
    );
    const own = cla('mine', [{ address: '127.0.0.8', port: 80 }]);
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: { parts: [clas, [own]] } });
    const c = connect();
    c.send({
      node: node(id),
      type_url: ENDPOINT_TYPE,
      resource_names_subscribe: [...clas.map((x) => x.name), 'mine', 'nowhere'],
    });
    const e = await c.next();
    const held = cache.get(id, ENDPOINT_TYPE);
    assert.deepEqual(deltaNames(e).sort(), [...held.keys()].sort());
    for (const res of e.resources) assert.equal(res.version, held.get(res.name)!.version, res.name);
    assert.deepEqual(e.removed_resources, ['nowhere'], 'a name the cache lacks is answered as removed');
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: e.nonce });
    await ackedBy(id, ENDPOINT_TYPE, e.nonce);
    const status = server.proxy(id)!.types.get(ENDPOINT_TYPE)!;
    assert.equal(status.current, resourcesVersion(held.values()));
    assert.equal(status.lastAcked?.version, status.current);
    // Held as sent: a change of one CLA of the part sends that one alone.
    const changed = [...clas];
    changed[42] = cla('big42', [{ address: '127.0.0.10', port: 80 }]);
    cache.set(id, { [ENDPOINT_TYPE]: { parts: [changed, [own]] } });
    assert.deepEqual(deltaNames(await c.next()), ['big42']);
  });

  it('a shared list replaced by new versions: every client gets just the changes, one assembled body', async () => {
    let current = Array.from({ length: 40 }, (_, i) => cla(`sh${i}`, [{ address: '127.0.0.9', port: 80 }]));
    /** The current list with these CLAs' endpoints moved to `port`. */
    const list = (port: number, changed: number[]) =>
      current.map((r, i) => (changed.includes(i) ? cla(r.name, [{ address: '127.0.0.9', port }]) : r));
    const ids = [nodeId(), nodeId(), nodeId()];
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
    const cs = ids.map(() => connect());
    // Two subscribe to every name (as Envoy does after CDS); the third to half of them.
    const wants = [current, current, current.slice(0, 20)].map((l) => l.map((r) => r.name));
    for (let i = 0; i < 3; i++)
      cs[i].send({ node: node(ids[i]), type_url: ENDPOINT_TYPE, resource_names_subscribe: wants[i] });
    for (let i = 0; i < 3; i++) {
      const first = await cs[i].next();
      assert.equal(first.resources.length, wants[i].length);
      cs[i].send({ type_url: ENDPOINT_TYPE, response_nonce: first.nonce });
      await ackedBy(ids[i], ENDPOINT_TYPE, first.nonce);
    }
    const expectOne = async (i: number, names: string[]) => {
      const r = await cs[i].next();
      assert.deepEqual(deltaNames(r).sort(), names);
      const held = cache.get(ids[i], ENDPOINT_TYPE);
      for (const res of r.resources) assert.equal(res.version, held.get(res.name)!.version);
      return r;
    };
    /** Each client's status, once it ACKed `nonce`: SYNCED at the version of what it subscribed to. */
    const synced = async (i: number, nonce: string) => {
      await ackedBy(ids[i], ENDPOINT_TYPE, nonce);
      const st = server.proxy(ids[i])!.types.get(ENDPOINT_TYPE)!;
      const held = cache.get(ids[i], ENDPOINT_TYPE);
      assert.equal(st.current, resourcesVersion(wants[i].map((n) => held.get(n)!)));
      assert.equal(st.lastAcked?.version, st.current);
    };

    const shared0 = server.sharedResponses;
    current = list(81, [3, 30]);
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
    for (let i = 0; i < 2; i++) {
      const r = await expectOne(i, ['sh3', 'sh30']);
      cs[i].send({ type_url: ENDPOINT_TYPE, response_nonce: r.nonce });
      await synced(i, r.nonce);
    }
    const r2 = await expectOne(2, ['sh3']); // its own names only, the general way
    cs[2].send({ type_url: ENDPOINT_TYPE, response_nonce: r2.nonce });
    await synced(2, r2.nonce);
    assert.equal(server.sharedResponses - shared0, 2);

    // A rejected shared response: parked (rule 2.6), and the next change sends it all again.
    current = list(82, [5]);
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
    const rejected = await expectOne(0, ['sh5']);
    cs[0].send({
      type_url: ENDPOINT_TYPE,
      response_nonce: rejected.nonce,
      error_detail: { code: 13, message: 'no' },
    });
    await eventually(() => assert.equal(server.proxy(ids[0])?.types.get(ENDPOINT_TYPE)?.nacks, 1));
    await assertNoResponseBefore(cs[0], ids[0]);
    const accepted = await expectOne(1, ['sh5']);
    cs[1].send({ type_url: ENDPOINT_TYPE, response_nonce: accepted.nonce });
    await synced(1, accepted.nonce);
    for (const r of [await expectOne(2, ['sh5'])])
      cs[2].send({ type_url: ENDPOINT_TYPE, response_nonce: r.nonce });
    current = list(83, [5, 6]);
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
    const again = await expectOne(0, ['sh5', 'sh6']);
    cs[0].send({ type_url: ENDPOINT_TYPE, response_nonce: again.nonce });
    await synced(0, again.nonce);
    const next1 = await expectOne(1, ['sh5', 'sh6']);
    cs[1].send({ type_url: ENDPOINT_TYPE, response_nonce: next1.nonce });
    await synced(1, next1.nonce);
    // Client 0 took the general path after its NACK (2 shared before it); client 1 stayed on the shared one (3).
    assert.equal(server.sharedResponses - shared0, 5);
    // Caught up with the list again, client 0 is back on the shared path.
    for (const r of [await expectOne(2, ['sh5', 'sh6'])])
      cs[2].send({ type_url: ENDPOINT_TYPE, response_nonce: r.nonce });
    current = list(84, [7]);
    for (const id of ids) cache.set(id, { [ENDPOINT_TYPE]: current });
    for (let i = 0; i < 3; i++) {
      const r = await expectOne(i, ['sh7']);
      cs[i].send({ type_url: ENDPOINT_TYPE, response_nonce: r.nonce });
      await synced(i, r.nonce);
    }
    assert.equal(server.sharedResponses - shared0, 7);
  });

  it('records a NACK, parks the rejected version, then sends the next version', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('c')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const v1 = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: v1.nonce });
    await ackedBy(id, CLUSTER_TYPE, v1.nonce);

    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('c', { connect_timeout: { seconds: 2 } })] });
    const v2 = await c.next();
    c.send({
      type_url: CLUSTER_TYPE,
      response_nonce: v2.nonce,
      error_detail: { code: 13, message: 'Error adding/updating cluster(s) c: nope' },
    });
    await assertNoResponseBefore(c, id); // no resend loop
    const t = server.proxy(id)!.types.get(CLUSTER_TYPE)!;
    assert.equal(t.lastNack?.message, 'Error adding/updating cluster(s) c: nope');
    assert.equal(t.lastAcked?.nonce, v1.nonce, 'the last good ACK stays recorded');

    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('c', { connect_timeout: { seconds: 3 } })] });
    const v3 = await c.next();
    assert.deepEqual(deltaNames(v3), ['c']);
    assert.equal(v3.resources[0].version, cache.get(id, CLUSTER_TYPE).get('c')?.version);
  });

  it('applies a subscription carried by a request with an old nonce', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', []), cla('b', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
    const r1 = await c.next();
    cache.patch(id, ENDPOINT_TYPE, [cla('a', [{ address: '127.0.0.9', port: 1 }])]);
    const r2 = await c.next();
    assert.notEqual(r1.nonce, r2.nonce);
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: r1.nonce, resource_names_subscribe: ['b'] });
    const r3 = await c.next();
    assert.deepEqual(deltaNames(r3), ['b']);
  });

  it('sends nothing to a client that reconnects holding the current versions', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')] });
    const c1 = connect();
    c1.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c1.next();
    c1.close();
    const held = Object.fromEntries(r.resources.map((x) => [x.name, x.version]));
    const c2 = connect();
    c2.send({
      node: node(id),
      type_url: CLUSTER_TYPE,
      resource_names_subscribe: ['*'],
      initial_resource_versions: held,
    });
    await assertNoResponseBefore(c2, id);
  });

  it('on reconnect sends what changed and removes what is gone', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b'), edsCluster('c')] });
    const c1 = connect();
    c1.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r = await c1.next();
    c1.close();
    const held = Object.fromEntries(r.resources.map((x) => [x.name, x.version]));
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('a', { connect_timeout: { seconds: 4 } }), edsCluster('c')],
    });
    const c2 = connect();
    c2.send({
      node: node(id),
      type_url: CLUSTER_TYPE,
      resource_names_subscribe: ['*'],
      initial_resource_versions: held,
    });
    const r2 = await c2.next();
    assert.deepEqual(deltaNames(r2), ['a']);
    assert.deepEqual(r2.removed_resources, ['b']);
  });

  it('sends only subscribed names for a named subscription and everything for a wildcard', async () => {
    const id = nodeId();
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')],
      [ENDPOINT_TYPE]: [cla('a', []), cla('b', [])],
    });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE, resource_names_subscribe: ['*'] });
    assert.deepEqual(deltaNames(await c.next()).sort(), ['a', 'b']);
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['b'] });
    assert.deepEqual(deltaNames(await c.next()), ['b']);
  });

  it('resends a name subscribed again even when the client should hold it', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
    const r1 = await c.next();
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: r1.nonce });
    c.send({ type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['a']);
  });

  it('does not answer a pure unsubscribe, and stops sending the unsubscribed name', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [cla('a', []), cla('b', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a', 'b'] });
    const r1 = await c.next();
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: r1.nonce });
    c.send({ type_url: ENDPOINT_TYPE, resource_names_unsubscribe: ['a'] });
    await assertNoResponseBefore(c, id);
    await subscribed(id, ENDPOINT_TYPE, { wildcard: false, names: ['b'] });
    cache.set(id, {
      [ENDPOINT_TYPE]: [
        cla('a', [{ address: '127.0.0.9', port: 2 }]),
        cla('b', [{ address: '127.0.0.9', port: 3 }]),
      ],
    });
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['b']);
    assert.deepEqual(r2.removed_resources, []);
  });

  it('lists a deleted resource in removed_resources', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a'), edsCluster('b')] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const r1 = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: r1.nonce });
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')] });
    const r2 = await c.next();
    assert.deepEqual(r2.resources, []);
    assert.deepEqual(r2.removed_resources, ['b']);
  });

  it('tells at once that a subscribed name does not exist, and sends it when it appears', async () => {
    const id = nodeId();
    cache.set(id, { [ENDPOINT_TYPE]: [] });
    const c = connect();
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['x'] });
    const r1 = await c.next();
    assert.deepEqual(r1.removed_resources, ['x']);
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: r1.nonce });
    await ackedBy(id, ENDPOINT_TYPE, r1.nonce);
    cache.set(id, { [ENDPOINT_TYPE]: [cla('x', [])] });
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['x']);
  });

  it('follows the four-step incremental wildcard example of the xDS spec', async () => {
    const id = nodeId();
    cache.set(id, {
      [LISTENER_TYPE]: [httpListener('w', '127.0.0.1', 1, 'r'), httpListener('A', '127.0.0.1', 2, 'r')],
    });
    const c = connect();
    // 1. Nothing subscribed on the first request: legacy wildcard.
    c.send({ node: node(id), type_url: LISTENER_TYPE });
    const r1 = await c.next();
    assert.deepEqual(deltaNames(r1).sort(), ['A', 'w']);
    c.send({ type_url: LISTENER_TYPE, response_nonce: r1.nonce });
    // 2. Subscribe A: still wildcard, plus A (resent: every subscribed name is answered).
    c.send({ type_url: LISTENER_TYPE, resource_names_subscribe: ['A'] });
    const r2 = await c.next();
    assert.deepEqual(deltaNames(r2), ['A']);
    c.send({ type_url: LISTENER_TYPE, response_nonce: r2.nonce });
    // 3. Unsubscribe "*": only A from now on.
    c.send({ type_url: LISTENER_TYPE, resource_names_unsubscribe: ['*'] });
    await subscribed(id, LISTENER_TYPE, { wildcard: false, names: ['A'] });
    cache.set(id, {
      [LISTENER_TYPE]: [httpListener('w', '127.0.0.1', 3, 'r'), httpListener('A', '127.0.0.1', 4, 'r')],
    });
    const r3 = await c.next();
    assert.deepEqual(deltaNames(r3), ['A']);
    c.send({ type_url: LISTENER_TYPE, response_nonce: r3.nonce });
    // 4. Subscribe "*" again: wildcard and A; the others come back.
    c.send({ type_url: LISTENER_TYPE, resource_names_subscribe: ['*'] });
    const r4 = await c.next();
    assert.deepEqual(deltaNames(r4), ['w']);
  });

  it('pushes a change in make-before-break order and removes an unused cluster last', async () => {
    const id = nodeId();
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('a')],
      [ENDPOINT_TYPE]: [cla('a', [])],
      [LISTENER_TYPE]: [httpListener('l', '127.0.0.1', 1, 'r')],
      [ROUTE_TYPE]: [routeTo('r', 'a')],
    });
    const c = connect();
    const sub: [TypeUrl, string[]][] = [
      [CLUSTER_TYPE, []],
      [ENDPOINT_TYPE, ['a']],
      [LISTENER_TYPE, []],
      [ROUTE_TYPE, ['r']],
    ];
    for (const [t, names] of sub) {
      c.send({ node: node(id), type_url: t, resource_names_subscribe: names });
      const r = await c.next();
      assert.equal(r.type_url, t);
      c.send({ type_url: t, response_nonce: r.nonce });
      await ackedBy(id, t, r.nonce);
    }
    cache.set(id, {
      [CLUSTER_TYPE]: [edsCluster('b')],
      [ENDPOINT_TYPE]: [cla('b', [])],
      [LISTENER_TYPE]: [httpListener('l', '127.0.0.1', 2, 'r')],
      [ROUTE_TYPE]: [routeTo('r', 'b')],
    });
    const frames: string[] = [];
    const cds = await c.next();
    assert.equal(cds.type_url, CLUSTER_TYPE);
    assert.deepEqual(deltaNames(cds), ['b']);
    assert.deepEqual(cds.removed_resources, [], 'a stays until the routes moved');
    frames.push('CDS+b');
    c.send({ type_url: CLUSTER_TYPE, response_nonce: cds.nonce });
    c.send({ type_url: ENDPOINT_TYPE, resource_names_subscribe: ['b'] });
    const eds = await c.next();
    assert.equal(eds.type_url, ENDPOINT_TYPE);
    assert.ok(deltaNames(eds).includes('b'));
    frames.push('EDS');
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: eds.nonce });
    const lds = await c.next();
    assert.equal(lds.type_url, LISTENER_TYPE);
    frames.push('LDS');
    c.send({ type_url: LISTENER_TYPE, response_nonce: lds.nonce });
    const rds = await c.next();
    assert.equal(rds.type_url, ROUTE_TYPE);
    frames.push('RDS');
    c.send({ type_url: ROUTE_TYPE, response_nonce: rds.nonce });
    const cds2 = await c.next();
    assert.equal(cds2.type_url, CLUSTER_TYPE);
    assert.deepEqual(cds2.removed_resources, ['a']);
    frames.push('CDS-a');
    assert.deepEqual(frames, ['CDS+b', 'EDS', 'LDS', 'RDS', 'CDS-a']);
  });

  it('re-sends the endpoints of a changed cluster, unchanged, so that it leaves warming', async () => {
    const id = nodeId();
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a')], [ENDPOINT_TYPE]: [cla('a', [])] });
    const c = connect();
    c.send({ node: node(id), type_url: CLUSTER_TYPE });
    const cds = await c.next();
    c.send({ type_url: CLUSTER_TYPE, response_nonce: cds.nonce });
    c.send({ node: node(id), type_url: ENDPOINT_TYPE, resource_names_subscribe: ['a'] });
    const eds = await c.next();
    c.send({ type_url: ENDPOINT_TYPE, response_nonce: eds.nonce });
    await ackedBy(id, ENDPOINT_TYPE, eds.nonce);
    cache.set(id, { [CLUSTER_TYPE]: [edsCluster('a', { connect_timeout: { seconds: 2 } })] });
    const cds2 = await c.next();
    assert.equal(cds2.type_url, CLUSTER_TYPE);
    const eds2 = await c.next();
    assert.equal(eds2.type_url, ENDPOINT_TYPE);
    assert.deepEqual(deltaNames(eds2), ['a']);
    assert.equal(eds2.resources[0].version, eds.resources[0].version);
  });

  it('never lists a secret as removed', async () => {
    const id = nodeId();
    const c = connect();
    c.send({ node: node(id), type_url: SECRET_TYPE, resource_names_subscribe: ['missing'] });
    const r = await c.next();
    assert.deepEqual(r.removed_resources, []);
  });
});
