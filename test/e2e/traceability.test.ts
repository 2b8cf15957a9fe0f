// Every change is traceable: a rejected policy shows Envoy's NACK on its own
// status and is quarantined so that other changes keep converging; changes are
// tracked to every affected proxy's ACK, with the same numbers as the
// convergence histogram.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../support/eventually';
import { httpGet } from '../support/http';
import { TestMesh } from '../support/mesh';
import { runMeshctl } from '../support/meshctl';
import { showLogOnFailure, startMeshplane } from '../support/meshplane';

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
  TestMesh.showOnFailure(() => mesh);
  showLogOnFailure(() => cp);

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
    await mesh.converged(undefined, 30_000, { everyPod: true });
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

    // The proxy that rejected it is shown NACKED with Envoy's message while it runs without it.
    const proxies = await mesh.api('GET', '/v1/proxies');
    const rejecting = proxies.json.items.filter((p: any) => p.state === 'NACKED');
    assert.ok(rejecting.length > 0);
    for (const p of rejecting)
      assert.deepEqual(
        p.rejected.map((r: any) => r.name),
        ['bad-regex'],
      );

    // Unrelated changes keep converging on every proxy (the bad route is no longer served).
    const good = await mesh.apply(route('good-route', '^/good/.*', 'good'));
    await eventually(async () => {
      const c = await mesh.api('GET', `/v1/changes/${good.changeId}`);
      assert.equal(c.json.state, 'converged', JSON.stringify(c.json));
      assert.deepEqual(c.json.proxies.map((p: any) => p.nodeId).sort(), ['reviews-0', 'web-0']);
    });
    await eventually(async () => {
      const r = await mesh.call('web-0', 'reviews', REVIEWS, '/good/1');
      assert.equal(r.headers['x-route'], 'good');
    });

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

  it('dry-runs a canary change: exactly the affected proxies’ route resources, with the weight diff, and stores nothing', async () => {
    const canary = (v1: number, v2: number) => `
kind: TrafficRoute
name: canary
spec:
  service: reviews
  http:
    - backends: [ { subset: { version: v1 }, weight: ${v1} }, { subset: { version: v2 }, weight: ${v2} } ]
`;
    const live = await mesh.apply(canary(90, 10));
    await mesh.converged(live.revision);
    const dry = await mesh.api('POST', '/v1/apply?dryRun=true', canary(50, 50));
    assert.equal(dry.status, 200);
    assert.equal(dry.json.dryRun, true);
    assert.equal(dry.json.changeId, undefined);
    assert.deepEqual(dry.json.proxies.map((p: any) => p.nodeId).sort(), ['reviews-0', 'web-0']);
    for (const p of dry.json.proxies) {
      assert.deepEqual(p.changed, { routes: [`outbound|${REVIEWS}`] });
      assert.deepEqual(p.added, {});
      assert.deepEqual(p.removed, {});
      assert.match(p.diff, /^-\s+value: 90$/m);
      assert.match(p.diff, /^\+\s+value: 50$/m);
      assert.match(p.diff, /^-\s+value: 10$/m);
    }
    const stored = await mesh.api('GET', '/v1/trafficroutes/canary');
    assert.equal(stored.json.spec.http[0].backends[0].weight, 90, 'the dry run stored nothing');
    assert.equal(stored.json.revision, live.revision);
    await mesh.delete('trafficroutes', 'canary');
  });

  it('meshctl apply --wait returns only after every affected proxy ACKed, and fails with the NACK on a bad change', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-wait-'));
    try {
      fs.writeFileSync(path.join(dir, 'good.yaml'), route('waited', '^/waited/.*', 'waited-v1'));
      const ok = await runMeshctl(
        ['apply', '-f', path.join(dir, 'good.yaml'), '--wait', '--timeout', '20s'],
        {
          server: cp.url,
          token: cp.adminToken,
        },
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /converged on 2 proxies/);
      // Already in every sidecar's Envoy at the moment meshctl returned.
      for (const pod of ['web-0', 'reviews-0']) {
        const dump = JSON.stringify(await mesh.pod(pod).envoy.configDump('dynamic_route_configs'));
        assert.match(dump, /waited-v1/, `${pod} has the route`);
      }
      fs.writeFileSync(path.join(dir, 'bad.yaml'), route('waited', BAD_REGEX, 'waited-bad'));
      const bad = await runMeshctl(
        ['apply', '-f', path.join(dir, 'bad.yaml'), '--wait', '--timeout', '20s'],
        {
          server: cp.url,
          token: cp.adminToken,
        },
      );
      assert.equal(bad.code, 4, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /RE2 program size/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await mesh.delete('trafficroutes', 'waited');
    }
  });
});
