// Rollback end to end: a meshplane server process, real Envoy sidecars, real apps
// (each answers with its own name). A canary goes 90/10, then 0/100; `meshctl
// rollback` (the compiled CLI, as a subprocess) restores the 90/10 version, and the
// traffic shows it. The rollback is a change: a new revision, in the object's history.
import assert from 'node:assert/strict';
import { eventually } from '../support/eventually';
import { TestMesh } from '../support/mesh';
import { runMeshctl } from '../support/meshctl';
import { type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const CP_ADDRESS = '127.0.0.190';
const REVIEWS = 9080;
const ROUTE = 'reviews-canary';

const SERVICES = `
kind: Service
name: client
spec: { protocol: http, port: 9000 }
---
kind: Service
name: reviews
spec: { protocol: http, port: ${REVIEWS} }
`;

function canary(v1: number, v2: number): string {
  return `
kind: TrafficRoute
name: ${ROUTE}
spec:
  service: reviews
  http:
    - backends:
        - { subset: { version: v1 }, weight: ${v1} }
        - { subset: { version: v2 }, weight: ${v2} }
`;
}

describe('e2e: rollback restores a canary split in traffic', function () {
  this.timeout(180_000);
  let cp: Meshplane;
  let mesh: TestMesh;
  TestMesh.showOnFailure(() => mesh);
  showLogOnFailure(() => cp);

  /** n sequential calls from the client pod; who answered each (the status for failures). */
  async function sample(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await mesh.call('client', 'reviews', REVIEWS);
      out.push(r.status === 200 ? (TestMesh.answeredBy(r) ?? '?') : String(r.status));
    }
    return out;
  }
  const share = (xs: string[], who: string) => (100 * xs.filter((x) => x === who).length) / xs.length;

  before(async () => {
    cp = await startMeshplane({ address: CP_ADDRESS });
    mesh = new TestMesh(cp);
    await mesh.apply(SERVICES);
    await Promise.all([
      mesh.addPod({ name: 'client', service: 'client', address: '127.0.0.191' }),
      mesh.addPod({
        name: 'reviews-v1',
        service: 'reviews',
        address: '127.0.0.192',
        labels: { version: 'v1' },
      }),
      mesh.addPod({
        name: 'reviews-v2',
        service: 'reviews',
        address: '127.0.0.193',
        labels: { version: 'v2' },
      }),
    ]);
    await eventually(async () => {
      const r = await mesh.api('GET', '/v1/instances');
      assert.equal(r.json.items.length, 3);
    });
    await mesh.converged(undefined, 30_000, { everyPod: true });
  });

  after(async () => {
    await mesh?.stop();
    await cp?.stop();
  });

  it('90/10, then 0/100, then `meshctl rollback --to <the 90/10 version>`: 90/10 again, as a new change', async () => {
    // 90/10
    const first = await mesh.apply(canary(90, 10));
    const rv9010: string = first.changes[0].resourceVersion;
    await mesh.converged(first.revision);
    const before = await sample(400);
    assert.equal(share(before, 'reviews-v1') + share(before, 'reviews-v2'), 100, before.join(','));
    const v2Before = share(before, 'reviews-v2');
    assert.ok(v2Before >= 5 && v2Before <= 15, `90/10: v2 share ${v2Before}%`);

    // 0/100
    const second = await mesh.apply(canary(0, 100));
    assert.equal(second.changes[0].action, 'updated');
    await mesh.converged(second.revision);
    const all = await sample(50);
    assert.equal(share(all, 'reviews-v2'), 100, all.join(','));

    // Roll back with the CLI, as an operator would.
    const r = await runMeshctl(['rollback', 'trafficroute', ROUTE, '--to', rv9010, '-o', 'json'], {
      server: cp.url,
      token: cp.adminToken,
    });
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const rollback = JSON.parse(r.stdout);
    assert.equal(rollback.action, 'updated');
    // A change like any other: a new revision (and resourceVersion), after the 0/100 one.
    assert.ok(rollback.revision > second.revision, `rollback revision ${rollback.revision}`);
    assert.equal(rollback.changeId, rollback.revision);
    assert.notEqual(rollback.object.resourceVersion, rv9010);
    assert.deepEqual(rollback.rolledBackTo, { resourceVersion: rv9010, revision: first.revision, op: 'put' });

    await mesh.converged(rollback.revision);
    const after = await sample(400);
    assert.equal(share(after, 'reviews-v1') + share(after, 'reviews-v2'), 100, after.join(','));
    const v2After = share(after, 'reviews-v2');
    assert.ok(v2After >= 5 && v2After <= 15, `after rollback: v2 share ${v2After}%`);

    // The history holds all three versions, the rollback newest; the change log has its revision.
    const history = await mesh.api('GET', `/v1/trafficroutes/${ROUTE}/history`);
    assert.deepEqual(
      history.json.items.map((e: any) => [e.revision, e.object.spec.http[0].backends[1].weight]),
      [
        [rollback.revision, 10],
        [second.revision, 100],
        [first.revision, 10],
      ],
    );
    // Tracked like any change, to every proxy's ACK.
    await eventually(async () => {
      const change = await mesh.api('GET', `/v1/changes/${rollback.changeId}`);
      assert.equal(change.status, 200, JSON.stringify(change.json));
      assert.deepEqual(
        change.json.objects.map((o: any) => [o.kind, o.name, o.op, o.resourceVersion]),
        [['TrafficRoute', ROUTE, 'put', rollback.object.resourceVersion]],
      );
      assert.equal(change.json.state, 'converged', JSON.stringify(change.json));
    });
  });
});
