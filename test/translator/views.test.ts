// Scoped views: a proxy gets config only for the services it may call (its
// Service's spec.calls, and with the Mesh's scopeByAuthorization, what the
// callees' AuthorizationPolicies admit); proxies with the same view share the
// same lists (the same arrays), so that they are encoded and indexed once.
import assert from 'node:assert/strict';
import { type MeshObject, validateDocuments } from '../../src/model';
import { buildMeshSnapshot, MeshTranslator, type ProxyIdentity, proxyIdentity } from '../../src/translator';
import type { Obj } from '../../src/translator/envoy';

function mesh(extra: readonly unknown[] = [], calls: Record<string, string[]> = {}): MeshObject[] {
  const docs: unknown[] = [];
  for (const s of ['a', 'b', 'c', 'd', 'e']) {
    docs.push({
      kind: 'Service',
      name: s,
      spec: { port: s === 'e' ? 9002 : 9001, ...(calls[s] ? { calls: calls[s] } : {}) },
    });
    docs.push({
      kind: 'Instance',
      name: `${s}-0`,
      spec: { service: s, address: '127.0.0.10', port: 15006 },
    });
  }
  const r = validateDocuments([...docs, ...extra]);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const proxy = (service: string, n = 0): ProxyIdentity =>
  proxyIdentity(`${service}-${n}`, { service, address: '127.0.0.10', inboundPort: 15006, appPort: 8080 });

const outboundServices = (objs: readonly Obj[], field = 'name') =>
  objs
    .map((o) => String(o[field]))
    .filter((n) => n.startsWith('outbound|'))
    .map((n) => n.split('|')[3]);

const vhosts = (routes: readonly Obj[], name: string) =>
  ((routes.find((r) => r.name === name)?.virtual_hosts ?? []) as Obj[]).map((v) => v.name);

describe('translator: scoped views', () => {
  it('spec.calls narrows clusters, endpoints, routes and tcp listeners; other ports answer 404 saying why', () => {
    const t = new MeshTranslator(
      buildMeshSnapshot(
        1,
        mesh([{ kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 5432 } }], { a: ['b', 'c'] }),
      ),
    );
    const r = t.translate(proxy('a'));
    assert.deepEqual(outboundServices(r.clusters), ['b', 'c']);
    assert.deepEqual(outboundServices(r.endpoints, 'cluster_name'), ['b', 'c']);
    assert.deepEqual(vhosts(r.routes, 'outbound|9001'), ['b', 'c', 'not-in-view']);
    assert.deepEqual(vhosts(r.routes, 'outbound|9002'), ['not-in-view']);
    assert.ok(!r.listeners.some((l) => l.name === 'outbound|5432'), 'the tcp service outside the view');
    const fallback = ((r.routes.find((x) => x.name === 'outbound|9002')?.virtual_hosts ?? []) as Obj[])[0];
    assert.deepEqual(fallback.domains, ['*']);
    assert.match(JSON.stringify(fallback), /spec\.calls/);
    // Unscoped services see everything, and no fallback host.
    const b = t.translate(proxy('b'));
    assert.deepEqual(outboundServices(b.clusters), ['a', 'b', 'c', 'd', 'db', 'e']);
    assert.deepEqual(vhosts(b.routes, 'outbound|9001'), ['a', 'b', 'c', 'd']);
    assert.ok(b.listeners.some((l) => l.name === 'outbound|5432'));
  });

  it('a called service’s route backends and mirrors come with it', () => {
    const route = {
      kind: 'TrafficRoute',
      name: 'b-split',
      spec: {
        service: 'b',
        http: [
          {
            backends: [{ weight: 90 }, { service: 'd', weight: 10 }],
            mirror: { service: 'e', percent: 5 },
          },
        ],
      },
    };
    const t = new MeshTranslator(buildMeshSnapshot(1, mesh([route], { a: ['b'] })));
    assert.deepEqual(outboundServices(t.translate(proxy('a')).clusters), ['b', 'd', 'e']);
  });

  it('proxies with the same view share one array per list; a view unchanged by a build keeps its arrays', () => {
    const objs = mesh([], { a: ['b', 'c'], b: ['c', 'b'], d: [] });
    const t = new MeshTranslator(buildMeshSnapshot(1, objs));
    const [a0, a1, b0, c0, e0] = [proxy('a'), proxy('a', 1), proxy('b'), proxy('c'), proxy('e')].map((p) =>
      t.translate(p),
    );
    assert.equal(a0.outbound, a1.outbound);
    assert.equal(a0.endpoints, a1.endpoints);
    assert.equal(a0.outbound, b0.outbound, 'b calls the same services as a, in another order');
    assert.equal(c0.outbound, e0.outbound, 'unscoped');
    assert.notEqual(a0.outbound, c0.outbound);
    const d = t.translate(proxy('d'));
    assert.deepEqual(outboundServices(d.clusters), [], 'calls: [] calls nothing');
    // An instance of e changes: a's view (b, c) keeps its endpoint array; the unscoped one is new.
    const moved = objs.map((o) =>
      o.kind === 'Instance' && o.name === 'e-0' ? { ...o, spec: { ...o.spec, address: '127.0.0.99' } } : o,
    );
    const t2 = new MeshTranslator(buildMeshSnapshot(2, moved), t);
    assert.equal(t2.endpoints(proxy('a')), a0.endpoints);
    assert.notEqual(t2.endpoints(proxy('c')), c0.endpoints);
    assert.deepEqual(
      t2.translate(proxy('a')),
      new MeshTranslator(buildMeshSnapshot(2, moved)).translate(proxy('a')),
    );
  });

  it('scopeByAuthorization: leaves out services whose policies refuse every call from the proxy', () => {
    const policies = [
      // b admits only c.
      {
        kind: 'AuthorizationPolicy',
        name: 'b-c',
        spec: { service: 'b', action: 'allow', rules: [{ from: [{ service: 'c' }] }] },
      },
      // c refuses a outright; its GET-only deny for everyone does not refuse every call.
      {
        kind: 'AuthorizationPolicy',
        name: 'c-no-a',
        spec: { service: 'c', action: 'deny', rules: [{ from: [{ service: 'a' }] }] },
      },
      {
        kind: 'AuthorizationPolicy',
        name: 'c-no-get',
        spec: { service: 'c', action: 'deny', rules: [{ to: [{ methods: ['GET'] }] }] },
      },
      // d admits anyone on some paths.
      {
        kind: 'AuthorizationPolicy',
        name: 'd-read',
        spec: { service: 'd', action: 'allow', rules: [{ to: [{ paths: ['/read/*'] }] }] },
      },
    ];
    const off = new MeshTranslator(buildMeshSnapshot(1, mesh(policies)));
    assert.deepEqual(
      outboundServices(off.translate(proxy('a')).clusters),
      ['a', 'b', 'c', 'd', 'e'],
      'off by default',
    );
    const on = new MeshTranslator(
      buildMeshSnapshot(
        1,
        mesh([{ kind: 'Mesh', name: 'default', spec: { scopeByAuthorization: true } }, ...policies]),
      ),
    );
    assert.deepEqual(outboundServices(on.translate(proxy('a')).clusters), ['a', 'd', 'e']);
    assert.deepEqual(outboundServices(on.translate(proxy('c')).clusters), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(outboundServices(on.translate(proxy('e')).clusters), ['a', 'c', 'd', 'e']);
    assert.equal(
      on.translate(proxy('e')).outbound,
      on.translate(proxy('d')).outbound,
      'same view, one array',
    );
    // With calls, the same narrowing applies to the listed services.
    const both = new MeshTranslator(
      buildMeshSnapshot(
        1,
        mesh([{ kind: 'Mesh', name: 'default', spec: { scopeByAuthorization: true } }, ...policies], {
          a: ['b', 'd'],
        }),
      ),
    );
    assert.deepEqual(outboundServices(both.translate(proxy('a')).clusters), ['d']);
  });

  it('a calls entry naming no service is a warning on the Service, with the field', () => {
    const t = new MeshTranslator(buildMeshSnapshot(1, mesh([], { a: ['b', 'nope'] })));
    assert.deepEqual(outboundServices(t.translate(proxy('a')).clusters), ['b']);
    assert.deepEqual(
      t.warnings.filter((w) => w.name === 'a'),
      [
        {
          kind: 'Service',
          name: 'a',
          message: 'spec.calls[1]: service "nope" does not exist; it is left out until it does',
        },
      ],
    );
  });

  it('rejects a calls list that names a service twice or is not a list of names', () => {
    const twice = validateDocuments([{ kind: 'Service', name: 'a', spec: { port: 1, calls: ['b', 'b'] } }]);
    assert.ok(!twice.ok);
    assert.match(JSON.stringify(twice.errors), /spec\.calls.*twice/);
    const bad = validateDocuments([{ kind: 'Service', name: 'a', spec: { port: 1, calls: ['B_'] } }]);
    assert.ok(!bad.ok);
    assert.match(JSON.stringify(bad.errors), /spec\.calls\[0\]/);
  });
});
