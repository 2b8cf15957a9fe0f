// The cache: shared parts indexed once, per-name changes heard by watchers.
import assert from 'node:assert/strict';
import { CLUSTER_TYPE, ENDPOINT_TYPE, type TypeChanges, XdsCache } from '../../src/xds';
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
