// The cache: shared parts indexed once, per-name changes heard by watchers.
import assert from 'node:assert/strict';
import { compactingCollection } from '../../src/idle-compaction';
import { CLUSTER_TYPE, ENDPOINT_TYPE, type TypeChanges, XdsCache } from '../../src/xds';
import { largestPart, sameNames, transitionOf } from '../../src/xds/cache';
import { cla, edsCluster } from '../support/resources';

describe('xds: cache', () => {
  const clas = (n: number, port = 1) =>
    Array.from({ length: n }, (_, i) => cla(`c${i}`, [{ address: `127.0.0.${port}`, port: 80 }]));

  it('tells watchers exactly the names that changed, with before and after, for shared parts', () => {
    const cache = new XdsCache();
    const shared = clas(40);
    const heard = new Map<string, TypeChanges[]>();
    for (const id of ['p1', 'p2']) {
      cache.set(id, { [ENDPOINT_TYPE]: { parts: [shared] } });
      heard.set(id, []);
      cache.watch(id, (changes) => heard.get(id)!.push(changes.get(ENDPOINT_TYPE)!));
    }
    const next = [...shared];
    next[3] = cla('c3', [{ address: '127.0.0.9', port: 80 }]);
    next.push(cla('c40', [{ address: '127.0.0.9', port: 80 }]));
    next.splice(0, 1); // c0 removed
    for (const id of ['p1', 'p2'])
      assert.deepEqual(cache.set(id, { [ENDPOINT_TYPE]: { parts: [next] } }), [ENDPOINT_TYPE]);
    for (const id of ['p1', 'p2']) {
      const [changes] = heard.get(id)!;
      assert.deepEqual([...changes.keys()].sort(), ['c0', 'c3', 'c40']);
      assert.equal(changes.get('c0')!.after, undefined);
      assert.equal(changes.get('c40')!.before, undefined);
      assert.equal(changes.get('c3')!.before, shared[3]);
      assert.equal(changes.get('c3')!.after, next[2]);
    }
    // Proxies with the same pair of shared parts hear the same changes, computed once.
    assert.equal(heard.get('p1')![0], heard.get('p2')![0]);
    // Equal content under new objects is no change.
    assert.deepEqual(cache.set('p1', { [ENDPOINT_TYPE]: { parts: [next.map((r) => ({ ...r }))] } }), []);
    assert.equal(cache.get('p1', ENDPOINT_TYPE).size, 40);
  });

  it('a shared list replaced by new versions is one transition for every proxy; its names pass on', () => {
    const cache = new XdsCache();
    const heard: TypeChanges[] = [];
    const lists = [clas(30)];
    for (const id of ['p1', 'p2']) {
      cache.set(id, { [ENDPOINT_TYPE]: lists[0] });
      cache.watch(id, (changes) => heard.push(changes.get(ENDPOINT_TYPE)!));
    }
    const base = largestPart(cache.get('p1', ENDPOINT_TYPE))!;
    // Two builds of new versions only, then one that adds a name.
    for (const at of [4, 7]) {
      const next = [...lists.at(-1)!];
      next[at] = cla(`c${at}`, [{ address: '127.0.0.9', port: at }]);
      lists.push(next);
      for (const id of ['p1', 'p2']) cache.set(id, { [ENDPOINT_TYPE]: next });
    }
    const grown = [...lists.at(-1)!, cla('c30', [{ address: '127.0.0.9', port: 30 }])];
    for (const id of ['p1', 'p2']) cache.set(id, { [ENDPOINT_TYPE]: grown });
    assert.equal(heard.length, 6);
    for (let i = 0; i < 6; i += 2) assert.equal(heard[i], heard[i + 1]); // one map for both proxies
    const [t1, t2, t3] = [heard[0], heard[2], heard[4]].map((c) => transitionOf(c)!);
    assert.equal(t1.from, base);
    assert.equal(t2.from, t1.to);
    assert.equal(t3.from, t2.to);
    assert.deepEqual([t1.modifiesOnly, t2.modifiesOnly, t3.modifiesOnly], [true, true, false]);
    assert.deepEqual(t1.after, [lists[1][4]]);
    assert.deepEqual(t1.beforeVersions, [lists[0][4].version]);
    assert.deepEqual(t3.after, []);
    // The first list's names are the second's and third's, not the grown one's.
    assert.equal(sameNames(base.map, t2.to!), true);
    assert.equal(sameNames(base.map, t3.to!), false);
    // A changes map a proxy's own small part made (compared name by name) is no transition.
    const small = clas(3);
    cache.set('p3', { [ENDPOINT_TYPE]: small });
    let own: TypeChanges | undefined;
    cache.watch('p3', (changes) => {
      own = changes.get(ENDPOINT_TYPE);
    });
    cache.set('p3', { [ENDPOINT_TYPE]: [cla('c0', [{ address: '127.0.0.8', port: 1 }]), ...small.slice(1)] });
    assert.ok(own);
    assert.equal(transitionOf(own), undefined);
  });

  it('a list held by a lagging proxy or a set of names keeps that list, not every list made after it', async () => {
    const collect = compactingCollection();
    assert.ok(collect, 'this runtime offers a full collection');
    const cache = new XdsCache();
    let list = clas(30);
    cache.set('p', { [ENDPOINT_TYPE]: list });
    cache.watch('p', () => {});
    // What a lagging proxy's VersionMap (the part) and a NameSet (its map) hold on to.
    const base = largestPart(cache.get('p', ENDPOINT_TYPE))!;
    const names = base.map;
    const later: WeakRef<object>[] = [];
    for (let i = 0; i < 40; i++) {
      list = [...list];
      list[i % 30] = cla(`c${i % 30}`, [{ address: '127.0.0.7', port: 1000 + i }]);
      cache.set('p', { [ENDPOINT_TYPE]: list });
      later.push(new WeakRef(largestPart(cache.get('p', ENDPOINT_TYPE))!));
    }
    // WeakRefs made in a job hold their target until it ends.
    await new Promise((resolve) => setImmediate(resolve));
    collect();
    const kept = later.slice(0, -1).filter((r) => r.deref() !== undefined).length;
    assert.equal(kept, 0, `${kept} of 39 replaced lists are still reachable`);
    // The names are still known for what they are.
    const newest = later.at(-1)!.deref() as ReturnType<typeof largestPart>;
    assert.equal(sameNames(names, newest!), true);
    assert.equal(base.map.size, 30);
  });

  it('a name that moves from a shared part to the proxy’s own part unchanged is no change', () => {
    const cache = new XdsCache();
    const shared = clas(40);
    const own = [cla('mine', [{ address: '127.0.0.5', port: 80 }])];
    cache.set('p1', { [ENDPOINT_TYPE]: { parts: [shared, own] } });
    const heard: TypeChanges[] = [];
    cache.watch('p1', (changes) => heard.push(changes.get(ENDPOINT_TYPE)!));
    // c5 leaves the shared part and joins the proxy's own, as the same resource.
    const nextShared = shared.filter((r) => r.name !== 'c5');
    const nextOwn = [...own, shared[5]];
    cache.set('p1', { [ENDPOINT_TYPE]: { parts: [nextShared, nextOwn] } });
    assert.deepEqual(heard, []);
    assert.equal(cache.get('p1', ENDPOINT_TYPE).get('c5'), shared[5]);
  });

  it('keeps a proxy’s own resources beside the shared ones, and refuses a name in two parts', () => {
    const cache = new XdsCache();
    const shared = Array.from({ length: 20 }, (_, i) => edsCluster(`s${i}`));
    cache.set('p', { [CLUSTER_TYPE]: { parts: [shared, [edsCluster('own')]] } });
    const set = cache.get('p', CLUSTER_TYPE);
    assert.equal(set.size, 21);
    assert.ok(set.has('own') && set.has('s19'));
    assert.deepEqual([...set.keys()].slice(-1), ['own']);
    assert.throws(
      () => cache.set('p', { [CLUSTER_TYPE]: { parts: [shared, [edsCluster('s3')]] } }),
      /duplicate .* resource name s3/,
    );
  });
});
