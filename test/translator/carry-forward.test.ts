// A translation that takes over what the previous one made must give exactly
// what a fresh translation gives, for every kind of change; and it must really
// take over what did not change (the same objects), or nothing is saved.
import assert from 'node:assert/strict';
import { type MeshObject, validateDocuments } from '../../src/model';
import { buildMeshSnapshot, MeshTranslator, proxyIdentity } from '../../src/translator';

function docs(extra: readonly unknown[] = [], replace: Record<string, unknown> = {}): MeshObject[] {
  const base: Record<string, unknown> = {};
  for (const s of ['a', 'b', 'c']) {
    base[`Service/${s}`] = { kind: 'Service', name: s, spec: { port: 9001 } };
    base[`Instance/${s}-0`] = {
      kind: 'Instance',
      name: `${s}-0`,
      spec: { service: s, address: '127.0.0.10', port: 15006 },
    };
  }
  base['DestinationPolicy/a'] = {
    kind: 'DestinationPolicy',
    name: 'a',
    spec: { service: 'a', circuitBreaker: { maxRequests: 10 } },
  };
  for (const [k, v] of Object.entries(replace)) base[k] = v;
  const r = validateDocuments([...Object.values(base), ...extra]);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** Objects reused by reference from the previous translation, in the same positions. */
const same = (x: unknown, y: unknown) => x === y;

describe('translator: taking over an earlier translation', () => {
  const proxies = ['a', 'b'].map((s) =>
    proxyIdentity(`${s}-0`, { service: s, address: '127.0.0.10', inboundPort: 15006, appPort: 8080 }),
  );

  function check(before: MeshObject[], after: MeshObject[]) {
    // Objects unchanged between the two are the same objects, as the store feed gives them.
    const byKey = new Map(before.map((o) => [`${o.kind}/${o.name}`, o]));
    const afterShared = after.map((o) => {
      const prev = byKey.get(`${o.kind}/${o.name}`);
      return prev && JSON.stringify(prev) === JSON.stringify(o) ? prev : o;
    });
    const t1 = new MeshTranslator(buildMeshSnapshot(1, before));
    for (const p of proxies) t1.translate(p);
    const carried = new MeshTranslator(buildMeshSnapshot(2, afterShared), t1);
    const fresh = new MeshTranslator(buildMeshSnapshot(2, afterShared));
    for (const p of proxies) {
      assert.deepEqual(
        JSON.parse(JSON.stringify(carried.translate(p))),
        JSON.parse(JSON.stringify(fresh.translate(p))),
      );
    }
    return { t1, carried };
  }

  it('a changed DestinationPolicy: its clusters are new, the others are taken over', () => {
    const { t1, carried } = check(
      docs(),
      docs([], {
        'DestinationPolicy/a': {
          kind: 'DestinationPolicy',
          name: 'a',
          spec: { service: 'a', circuitBreaker: { maxRequests: 99 } },
        },
      }),
    );
    const [c1, c2] = [t1, carried].map((t) => t.outboundClusters());
    const at = (list: Record<string, unknown>[], name: string) => list.find((c) => c.name === name);
    assert.ok(!same(at(c1, 'outbound|9001||a'), at(c2, 'outbound|9001||a')));
    assert.ok(same(at(c1, 'outbound|9001||b'), at(c2, 'outbound|9001||b')));
    // Endpoints depend on the policy (locality failover): a's are made again, b's taken over.
    const [e1, e2] = [t1, carried].map((t) => t.endpoints(proxies[0]));
    assert.ok(!same(e1[0], e2[0]));
    assert.ok(same(e1[1], e2[1]));
  });

  it('a changed Instance: only its service’s endpoints are new; the cluster list is the same array', () => {
    const { t1, carried } = check(
      docs(),
      docs([], {
        'Instance/b-0': {
          kind: 'Instance',
          name: 'b-0',
          spec: { service: 'b', address: '127.0.0.11', port: 15006 },
        },
      }),
    );
    assert.ok(same(t1.outboundClusters(), carried.outboundClusters()));
    const [e1, e2] = [t1, carried].map((t) => t.endpoints(proxies[0]));
    assert.ok(!same(e1, e2));
    assert.ok(same(e1[0], e2[0])); // a
    assert.ok(!same(e1[1], e2[1])); // b
    // Nothing but endpoints changed: every proxy's listeners, routes and clusters are the same objects.
    for (const p of proxies) {
      const [r1, r2] = [t1, carried].map((t) => t.translate(p));
      for (const kind of ['listeners', 'routes', 'clusters'] as const)
        for (const [i, o] of r1[kind].entries()) assert.ok(same(o, r2[kind][i]), `${p.nodeId} ${kind}[${i}]`);
    }
  });

  it('a changed Instance: scoped views without its service keep their endpoint lists (the same arrays)', () => {
    // d calls a only, e calls b only; an instance of b changes.
    const scoped = (replace: Record<string, unknown> = {}) =>
      docs(
        [
          { kind: 'Service', name: 'd', spec: { port: 9002, calls: ['a'] } },
          { kind: 'Service', name: 'e', spec: { port: 9003, calls: ['b'] } },
        ],
        replace,
      );
    const before = scoped();
    const after = scoped({
      'Instance/b-0': {
        kind: 'Instance',
        name: 'b-0',
        spec: { service: 'b', address: '127.0.0.12', port: 15006 },
      },
    }).map(
      (o) =>
        before.find(
          (b) => b.kind === o.kind && b.name === o.name && JSON.stringify(b) === JSON.stringify(o),
        ) ?? o,
    );
    const callers = ['d', 'e'].map((s) => proxyIdentity(`${s}-x`, { service: s, address: '127.0.0.20' }));
    const t1 = new MeshTranslator(buildMeshSnapshot(1, before));
    const [d1, e1] = callers.map((p) => t1.endpoints(p));
    const t2 = new MeshTranslator(buildMeshSnapshot(2, after), t1);
    const fresh = new MeshTranslator(buildMeshSnapshot(2, after));
    const [d2, e2] = callers.map((p) => t2.endpoints(p));
    assert.ok(same(d1, d2), 'the view of a alone is taken over whole');
    assert.ok(!same(e1, e2), 'the view of b is made again');
    for (const p of callers)
      assert.deepEqual(
        JSON.parse(JSON.stringify(t2.endpoints(p))),
        JSON.parse(JSON.stringify(fresh.endpoints(p))),
      );
  });

  it('forgets what was made for one sidecar alone once it is gone; the next translation makes it again', () => {
    const objs = docs();
    const t1 = new MeshTranslator(buildMeshSnapshot(1, objs));
    const before = t1.translate(proxies[0]);
    const t2 = new MeshTranslator(buildMeshSnapshot(2, objs), t1);
    const kept = t2.translate(proxies[0]);
    for (const [i, l] of before.listeners.entries()) assert.ok(same(l, kept.listeners[i]), 'taken over');
    t2.forget(proxies[0]);
    const again = t2.translate(proxies[0]);
    assert.deepEqual(again, kept);
    for (const [i, l] of kept.listeners.entries()) assert.ok(!same(l, again.listeners[i]), 'made again');
    // The other sidecar's are untouched.
    const other = t1.translate(proxies[1]);
    assert.ok(same(t2.translate(proxies[1]).listeners[0], other.listeners[0]));
  });

  it('outbound listeners of one service differ only in their address: one shared base', () => {
    const t = new MeshTranslator(buildMeshSnapshot(1, docs()));
    const at = (address: string) =>
      t.translate(proxyIdentity('a-x', { service: 'a', address, inboundPort: 15006, appPort: 8080 }));
    const [l1, l2] = ['127.0.0.21', '127.0.0.22'].map(
      (a) => at(a).listeners.find((l) => l.name === 'outbound|9001')!,
    );
    const [o1, o2] = [t.overlayOf(l1), t.overlayOf(l2)];
    assert.ok(o1 && o2 && same(o1.base, o2.base));
    assert.deepEqual(o2.overlay, {
      address: { socket_address: { address: '127.0.0.22', port_value: 9001 } },
    });
    assert.deepEqual({ ...o1.base, ...o1.overlay }, l1);
  });

  it("sidecars of one service with their apps at different addresses share the inbound listener's base, route and cluster base", () => {
    const t = new MeshTranslator(buildMeshSnapshot(1, docs()));
    const [x, y] = ['127.0.0.31', '127.0.0.32'].map((address) =>
      t.translate(
        proxyIdentity(`a-${address}`, {
          service: 'a',
          address,
          appAddress: address,
          inboundPort: 15006,
          appPort: 8080,
        }),
      ),
    );
    const inbound = (r: typeof x) => r.listeners.find((l) => l.name === 'inbound|15006')!;
    assert.ok(same(t.overlayOf(inbound(x))!.base, t.overlayOf(inbound(y))!.base));
    const route = (r: typeof x) => r.routes.find((rc) => rc.name === 'inbound|15006');
    assert.ok(route(x) && same(route(x), route(y)));
    const app = (r: typeof x) =>
      JSON.stringify(r.clusters.find((c) => String(c.name).startsWith('inbound|')));
    assert.match(app(x), /127\.0\.0\.31/);
    assert.match(app(y), /127\.0\.0\.32/);
    // The inbound cluster: one base for the service; each sidecar's own part is the app's address alone.
    const cluster = (r: typeof x) => r.clusters.find((c) => String(c.name).startsWith('inbound|'))!;
    const [ox, oy] = [t.overlayOf(cluster(x))!, t.overlayOf(cluster(y))!];
    assert.ok(same(ox.base, oy.base));
    assert.deepEqual(Object.keys(ox.overlay), ['load_assignment']);
    assert.doesNotMatch(JSON.stringify(ox.base), /127\.0\.0\.3/);
    assert.deepEqual({ ...ox.base, ...ox.overlay }, cluster(x));
  });

  it('outbound listeners of different services share their base, unless tracing names the caller', () => {
    const mesh = (tracing: unknown) => ({
      kind: 'Mesh',
      name: 'default',
      spec: { mtls: { mode: 'permissive' }, ...(tracing ? { tracing } : {}) },
    });
    const bases = (tracing: unknown) => {
      const t = new MeshTranslator(buildMeshSnapshot(1, docs([mesh(tracing)])));
      return ['a', 'b'].map((s, i) => {
        const r = t.translate(
          proxyIdentity(`${s}-x`, {
            service: s,
            address: `127.0.0.2${i}`,
            inboundPort: 15006,
            appPort: 8080,
          }),
        );
        const l = r.listeners.find((x) => x.name === 'outbound|9001')!;
        return t.overlayOf(l)!.base;
      });
    };
    const [a, b] = bases(undefined);
    assert.ok(same(a, b), 'one base for every caller');
    const [za, zb] = bases({ provider: 'zipkin', collector: 'zipkin:9411', samplePercent: 10 });
    assert.ok(same(za, zb), 'Zipkin names the caller through the node, not the listener');
    const [oa, ob] = bases({ provider: 'opentelemetry', collector: 'otel:4317', samplePercent: 10 });
    const serviceName = (l: object) => /"service_name":"([^"]*)"/.exec(JSON.stringify(l))?.[1];
    assert.deepEqual([serviceName(oa), serviceName(ob)], ['a', 'b']);
  });

  it('a changed Mesh, AuthorizationPolicy, TrafficRoute subset or a new Service gives what a fresh translation gives', () => {
    check(
      docs(),
      docs([], { 'Mesh/default': { kind: 'Mesh', name: 'default', spec: { mtls: { mode: 'disabled' } } } }),
    );
    check(
      docs(),
      docs([
        {
          kind: 'AuthorizationPolicy',
          name: 'b-from-a',
          spec: { service: 'b', action: 'allow', rules: [{ from: [{ service: 'a' }] }] },
        },
      ]),
    );
    check(
      docs(),
      docs([
        {
          kind: 'TrafficRoute',
          name: 'c-canary',
          spec: {
            service: 'c',
            http: [{ backends: [{ subset: { version: 'v2' }, weight: 100 }] }],
          },
        },
      ]),
    );
    check(docs(), docs([{ kind: 'Service', name: 'd', spec: { port: 9002 } }]));
  });
});
