// The snapshot after instance changes only, made from the previous one, is the snapshot a full
// build gives: the same maps with the same keys in the same order, the same lists.
import assert from 'node:assert/strict';
import { type Instance, type MeshObject, validateDocuments } from '../../src/model';
import { buildMeshSnapshot, type InstanceChange, withInstanceChanges } from '../../src/translator';
import { seededRandom } from '../support/random';

function objects(docs: unknown[]): MeshObject[] {
  const r = validateDocuments(docs);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const instance = (name: string, service: string, port: number): Instance =>
  objects([{ kind: 'Instance', name, spec: { service, address: '127.0.0.10', port } }])[0] as Instance;

/** A snapshot as plain, ordered data (maps as their entries in order). */
const plain = (s: ReturnType<typeof buildMeshSnapshot>) => ({
  revision: s.revision,
  mesh: s.mesh,
  services: [...s.services],
  instances: [...s.instancesByService],
  routes: [...s.routesByService],
  policies: [...s.policiesByService],
  authorization: [...s.authorizationByService],
  objects: s.objects,
});

describe('translator: a snapshot after instance changes', () => {
  it('equals a full build through a random walk of adds, removals, moves and new versions', () => {
    const services = ['a', 'b', 'c', 'd', 'e', 'f'];
    const fixed = objects([
      ...services.map((s) => ({ kind: 'Service', name: s, spec: { port: 9001 } })),
      { kind: 'DestinationPolicy', name: 'a', spec: { service: 'a', circuitBreaker: { maxRequests: 10 } } },
    ]);
    const rnd = seededRandom(5);
    const current = new Map<string, Instance>();
    for (let i = 0; i < 12; i++) {
      const name = `i${String(i).padStart(2, '0')}`;
      current.set(name, instance(name, services[i % services.length], 8000 + i));
    }
    const all = () => [...fixed, ...current.values()];
    let snap = buildMeshSnapshot(1, all());
    let reordered = 0;
    for (let step = 2; step <= 400; step++) {
      const changes = new Map<string, InstanceChange>();
      for (let k = 1 + (rnd() % 4); k > 0; k--) {
        const name = `i${String(rnd() % 20).padStart(2, '0')}`;
        const before = changes.get(name)?.before ?? current.get(name);
        const op = rnd() % 4;
        let after: Instance | undefined;
        if (op === 0)
          after = undefined; // removed (or never there)
        else if (op === 1)
          after = instance(name, services[rnd() % services.length], 9000 + step); // moved
        else after = instance(name, before?.spec.service ?? 'a', 9000 + step); // a new version
        if (after) current.set(name, after);
        else current.delete(name);
        changes.set(name, { before, after });
      }
      const next = withInstanceChanges(snap, step, all(), changes.values());
      const full = buildMeshSnapshot(step, all());
      assert.deepEqual(plain(next), plain(full), `step ${step}`);
      if (
        JSON.stringify([...next.instancesByService.keys()]) !==
        JSON.stringify([...snap.instancesByService.keys()])
      )
        reordered++;
      // What the changes did not touch is the previous snapshot's own.
      assert.equal(next.services, snap.services);
      assert.equal(next.policiesByService, snap.policiesByService);
      const touched = new Set(
        [...changes.values()].flatMap((c) => [c.before, c.after]).map((i) => i?.spec.service),
      );
      for (const [service, list] of next.instancesByService)
        if (!touched.has(service)) assert.equal(list, snap.instancesByService.get(service), `step ${step}`);
      snap = next;
    }
    assert.ok(reordered > 10, `the walk reordered the services ${reordered} times`);
  });

  it('no instance changed: the previous snapshot at the new revision', () => {
    const objs = objects([
      { kind: 'Service', name: 'a', spec: { port: 9001 } },
      { kind: 'Instance', name: 'a-0', spec: { service: 'a', address: '127.0.0.10', port: 1 } },
    ]);
    const snap = buildMeshSnapshot(1, objs);
    const same = objs[1] as Instance;
    const next = withInstanceChanges(snap, 2, objs, [{ before: same, after: same }]);
    assert.equal(next.revision, 2);
    assert.equal(next.instancesByService, snap.instancesByService);
  });
});
