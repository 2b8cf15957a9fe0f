// Every change is traceable: a rejected policy shows Envoy's NACK on its own
// status and is quarantined so that other changes keep converging; changes are
// tracked to every affected proxy's ACK, with the same numbers as the
// convergence histogram.
import assert from 'node:assert/strict';
import { eventually } from '../support/eventually';
import { httpGet } from '../support/http';
import { TestMesh } from '../support/mesh';
import { startMeshplane } from '../support/meshplane';

const CP_ADDRESS = '127.0.0.170';
const REVIEWS = 9080;
/** Accepted by our schema, rejected by Envoy (RE2 program size over the limit). */
const BAD_REGEX = '^/(a|b|c|d|e|f|g|h|i|j){1000}x{200}$';

const route = (name: string, regex: string, header: string) => `
kind: TrafficRoute
name: ${name}
spec:
  service: reviews
  http:
    - match: { path: { regex: "${regex}" } }
      backends: [ {} ]
      headers: { response: { set: { x-route: ${header} } } }
`;

describe('e2e: NACK provenance, quarantine and change tracking', function () {
  this.timeout(120_000);
  let cp: Awaited<ReturnType<typeof startMeshplane>>;
  let mesh: TestMesh;

  before(async () => {
    cp = await startMeshplane({ address: CP_ADDRESS });
    mesh = new TestMesh(cp);
    await mesh.apply(`
kind: Service
name: web
spec: { port: 9000 }
---
kind: Service
name: reviews
spec: { port: ${REVIEWS} }
`);
    await Promise.all([
      mesh.addPod({ name: 'web-0', service: 'web', address: '127.0.0.171' }),
      mesh.addPod({ name: 'reviews-0', service: 'reviews', address: '127.0.0.172' }),
    ]);
    await mesh.converged();
  });

  after(async () => {
    await mesh?.stop();
    await cp?.stop();
  });

  it('shows Envoy’s NACK on the policy that caused it, quarantines it, keeps converging, and a fix clears it', async () => {
    const started = Date.now();
    const bad = await mesh.apply(route('bad-regex', BAD_REGEX, 'bad'));
    assert.ok(bad.changeId, 'the apply returns a change id');
    const status = await eventually(
      async () => {
        const got = await mesh.api('GET', '/v1/trafficroutes/bad-regex');
        assert.ok(got.json.status.nacks.length > 0, 'no NACK on the policy yet');
        return got.json.status;
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    assert.ok(Date.now() - started < 5_000);
    assert.match(status.nacks[0].message, /RE2 program size/);
    assert.equal(status.nacks[0].type, 'routes');
    assert.ok(status.quarantined, 'the rejected version is quarantined');
    const change = await mesh.api('GET', `/v1/changes/${bad.changeId}`);
    assert.match(change.json.state, /rejected/);
    assert.ok(change.json.proxies.some((p: any) => p.state === 'nacked' && /RE2/.test(p.message)));

    // Unrelated changes keep converging on every proxy (the bad route is no longer served).
    const good = await mesh.apply(route('good-route', '^/good/.*', 'good'));
    await mesh.converged(good.revision);
    await eventually(async () => {
      const r = await mesh.call('web-0', 'reviews', REVIEWS, '/good/1');
      assert.equal(r.headers['x-route'], 'good');
    });
    const goodChange = await mesh.api('GET', `/v1/changes/${good.changeId}`);
    assert.equal(goodChange.json.state, 'converged');

    // The fix: a valid regex. The NACK leaves the policy's status and the route works.
    const fixed = await mesh.apply(route('bad-regex', '^/fixed/.*', 'fixed'));
    await mesh.converged(fixed.revision);
    const after = await mesh.api('GET', '/v1/trafficroutes/bad-regex');
    assert.deepEqual(after.json.status.nacks, []);
    assert.equal(after.json.status.quarantined, undefined);
    const r = await mesh.call('web-0', 'reviews', REVIEWS, '/fixed/1');
    assert.equal(r.headers['x-route'], 'fixed');
    await mesh.delete('trafficroutes', 'bad-regex');
    await mesh.delete('trafficroutes', 'good-route');
  });

  it('reports each affected proxy’s time to ACK for a change, matching the convergence histogram', async () => {
    const histogram = async () => {
      const body = (await httpGet(`${cp.url}/metrics`)).body;
      return {
        count: Number(body.match(/^meshplane_proxy_convergence_seconds_count (\S+)/m)?.[1]),
        sum: Number(body.match(/^meshplane_proxy_convergence_seconds_sum (\S+)/m)?.[1]),
      };
    };
    // Quiet first: no change still waiting for ACKs (they would be observed in between).
    await eventually(async () => {
      const recent = await mesh.api('GET', '/v1/changes');
      for (const c of recent.json.items) assert.notEqual(c.state, 'pending', JSON.stringify(c));
    });
    const before = await histogram();
    const r = await mesh.apply(route('timed', '^/timed/.*', 'timed'));
    const change = await eventually(async () => {
      const c = await mesh.api('GET', `/v1/changes/${r.changeId}`);
      assert.equal(c.json.state, 'converged', JSON.stringify(c.json));
      return c.json;
    });
    assert.deepEqual(change.proxies.map((p: any) => p.nodeId).sort(), ['reviews-0', 'web-0']);
    for (const p of change.proxies) {
      assert.equal(p.state, 'acked');
      assert.ok(p.ms >= 0 && p.ms < 5_000, `${p.nodeId}: ${p.ms} ms`);
    }
    const after = await histogram();
    assert.equal(after.count - before.count, change.proxies.length);
    const sumMs = change.proxies.reduce((n: number, p: any) => n + p.ms, 0);
    assert.ok(
      Math.abs((after.sum - before.sum) * 1000 - sumMs) < 1,
      `histogram ${after.sum - before.sum}s vs ${sumMs}ms`,
    );
    await mesh.delete('trafficroutes', 'timed');
  });
});
