// VersionMap: the same answers whatever its layering over a shared base.
import assert from 'node:assert/strict';
import { type EncodedResource, encodeResource } from '../../envoy-protos';
import { CLUSTER_TYPE } from '../../src/xds';
import {
  changesDelta,
  resourceHash,
  resourcesVersion,
  type SharedBase,
  setVersion,
  sumOf,
  VersionMap,
  VersionSum,
} from '../../src/xds/version';
import { seededRandom } from '../support/random';

const cluster = (name: string, seconds = 1): EncodedResource =>
  encodeResource(CLUSTER_TYPE, { name, type: 'STATIC', connect_timeout: { seconds } });

/** A shared base over a list, as the cache's parts are: names differ when their versions do. */
function sharedBase(list: readonly EncodedResource[]): SharedBase {
  const map = new Map(list.map((r) => [r.name, r]));
  return {
    map,
    namesChangedTo(to) {
      const names: string[] = [];
      for (const [n, r] of to.map) if (map.get(n)?.version !== r.version) names.push(n);
      for (const n of map.keys()) if (!to.map.has(n)) names.push(n);
      return names;
    },
    sum: () => sumOf(list),
  };
}

/** What a map holds, as sorted [name, version] pairs, and the version it reports. */
function contents(m: VersionMap): { entries: [string, string][]; version: string; size: number } {
  const entries = [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return { entries, version: m.version, size: m.size };
}

describe('xds: VersionMap over a shared base', () => {
  const shared = Array.from({ length: 200 }, (_, i) => cluster(`c${i}`));
  const base = sharedBase(shared);

  it('after a rebase, holds and reports exactly what it did; its own layer is only the differences', () => {
    const m = new VersionMap();
    for (const r of shared) m.set(r.name, r);
    m.set('c5', cluster('c5', 2)); // differs from the base
    m.delete('c7'); // in the base, not held
    m.set('extra', 'v-extra'); // not in the base
    const before = contents(m);
    assert.equal(before.version, setVersion(before.entries));
    assert.equal(m.ownSize, 200);

    assert.equal(m.rebase(base), true);
    assert.deepEqual(contents(m), before);
    assert.equal(m.ownSize, 3); // c5, c7 (hidden), extra
    assert.equal(m.get('c7'), undefined);
    assert.equal(m.has('c7'), false);
    assert.equal(m.get('c6'), shared[6].version);
    assert.equal(m.get('extra'), 'v-extra');
    // Rebasing on the same base again changes nothing.
    assert.equal(m.rebase(base), false);
  });

  /** Two maps holding `shared`: one layered over `base`, one plain. */
  const overBase = (): [VersionMap, VersionMap] => {
    const layered = new VersionMap();
    const plain = new VersionMap();
    for (const r of shared) {
      layered.set(r.name, r);
      plain.set(r.name, r);
    }
    layered.rebase(base);
    return [layered, plain];
  };

  it('changes made over the base give the same answers as a plain map with the same changes', () => {
    const [layered, plain] = overBase();
    assert.equal(layered.ownSize, 0);
    // A bounded pseudo-random walk of sets and deletes, over names in and out of the base.
    const next = seededRandom(7);
    for (let i = 0; i < 2_000; i++) {
      const name = next() % 5 === 0 ? `x${next() % 20}` : `c${next() % 200}`;
      const op = next() % 4;
      if (op === 0) {
        assert.equal(layered.delete(name), plain.delete(name));
      } else {
        const e =
          op === 1
            ? `v${next() % 3}`
            : op === 2
              ? (base.map.get(name) ?? `v${next() % 3}`)
              : cluster(name, 3);
        layered.set(name, e);
        plain.set(name, e);
      }
    }
    assert.deepEqual(contents(layered), contents(plain));
    // Putting back every base resource leaves no own entries for them.
    for (const r of shared) layered.set(r.name, r);
    for (const n of [...layered.keys()]) if (!base.map.has(n)) layered.delete(n);
    assert.equal(layered.ownSize, 0);
    assert.equal(layered.size, 200);
  });

  it('an empty map adopting a base holds what setting its entries one by one holds, and changes alike', () => {
    const adopted = new VersionMap();
    adopted.adopt(base);
    const [, plain] = overBase();
    assert.deepEqual(contents(adopted), contents(plain));
    assert.equal(adopted.ownSize, 0);
    const changed = cluster('c1', 9);
    for (const m of [adopted, plain]) {
      m.set('c1', changed);
      m.delete('c2');
      m.set('y', 'v-y');
    }
    assert.deepEqual(contents(adopted), contents(plain));
    assert.equal(adopted.ownSize, 3);
    assert.throws(() => adopted.adopt(base), /empty/);
  });

  it('moving from one base to a newer one looks at the differences only, and answers as a plain map does', () => {
    const [layered, plain] = overBase();
    // The client got some of the newer resources, still holds others from before, and lost one.
    const newer = [
      ...shared.map((r, i) => (i % 3 === 0 ? cluster(r.name, 9) : r)),
      cluster('added-1'),
      cluster('added-2'),
    ].filter((r) => r.name !== 'c10');
    const newerBase = sharedBase(newer);
    for (const r of newer.slice(0, 180)) {
      layered.set(r.name, r);
      plain.set(r.name, r);
    }
    layered.set('added-1', newer.at(-2) as EncodedResource);
    plain.set('added-1', newer.at(-2) as EncodedResource);
    layered.delete('c20');
    plain.delete('c20');
    // Same version, another object: it stands in for the held one.
    const twin = cluster('c1');
    const twinBase = sharedBase(newer.map((r) => (r.name === 'c1' ? twin : r)));
    assert.equal(layered.rebase(newerBase), true);
    assert.deepEqual(contents(layered), contents(plain));
    const expectedOwn = [...plain.entries()].filter(([n, v]) => newerBase.map.get(n)?.version !== v).length;
    const hidden = [...newerBase.map.keys()].filter((n) => !plain.has(n)).length;
    assert.equal(layered.ownSize, expectedOwn + hidden);
    assert.equal(layered.rebase(twinBase), false); // nothing to gain
    assert.deepEqual(contents(layered), contents(plain));
  });

  it('rebases itself once its own layer grows past an eighth of its entries, and not onto a worse base', () => {
    const m = new VersionMap();
    for (const r of shared) m.set(r.name, r);
    m.maybeRebase(() => base);
    assert.equal(m.ownSize, 0);
    // A newer shared list: 100 of the 200 changed.
    const newer = shared.map((r, i) => (i % 2 === 0 ? cluster(r.name, 5) : r));
    const newerBase = sharedBase(newer);
    for (const r of newer.slice(0, 60)) m.set(r.name, r);
    m.maybeRebase(() => newerBase); // 30 own entries: under the threshold, not even asked
    assert.equal(m.ownSize, 30);
    for (const r of newer) m.set(r.name, r);
    m.maybeRebase(() => newerBase);
    assert.equal(m.ownSize, 0);
    assert.deepEqual(
      contents(m).entries,
      newer.map((r) => [r.name, r.version] as [string, string]).sort((a, b) => a[0].localeCompare(b[0])),
    );
    // A base unlike what it holds is refused: nothing changes.
    const other = sharedBase(Array.from({ length: 200 }, (_, i) => cluster(`o${i}`)));
    const before = contents(m);
    for (let i = 0; i < 100; i++) m.set(`y${i}`, 'v');
    const grown = contents(m);
    assert.equal(m.rebase(other), false);
    assert.deepEqual(contents(m), grown);
    assert.notDeepEqual(grown, before);
  });

  it('advancing to a successor list of the same names answers as setting each changed entry does', () => {
    const [layered, plain] = overBase();
    layered.set('extra', 'v-extra'); // own entries the change does not touch stay as they are
    plain.set('extra', 'v-extra');
    layered.delete('c9');
    plain.delete('c9');
    const newer = shared.map((r, i) => (i % 50 === 1 ? cluster(r.name, 4) : r));
    const changes = new Map(
      newer
        .filter((r, i) => r !== shared[i])
        .map((r) => [r.name, { before: base.map.get(r.name), after: r }]),
    );
    const newerBase = sharedBase(newer);
    assert.equal(layered.advance(base, newerBase, changes.keys(), changesDelta(changes)), true);
    for (const c of changes.values()) plain.set(c.after.name, c.after);
    assert.deepEqual(contents(layered), contents(plain));
    assert.equal(layered.ownSize, 2);
    // From a base it does not hold, or over an own entry the change touches: refused, nothing changes.
    const held = contents(layered);
    assert.equal(layered.advance(base, newerBase, changes.keys(), changesDelta(changes)), false);
    const newest = newer.map((r) => (r.name === 'c9' ? cluster('c9', 8) : r));
    const touched = new Map([['c9', { before: newer[9], after: newest[9] }]]);
    assert.equal(
      layered.advance(newerBase, sharedBase(newest), touched.keys(), changesDelta(touched)),
      false,
    );
    assert.deepEqual(contents(layered), held);
  });

  it('a change map moves a set version exactly as recomputing it does, and is summed once', () => {
    const before = shared.slice(0, 50);
    const after = [
      ...before.slice(1, 40).map((r) => cluster(r.name, 7)),
      ...before.slice(40),
      cluster('new'),
    ];
    const changes = new Map<string, { before?: EncodedResource; after?: EncodedResource }>();
    const byName = (list: EncodedResource[]) => new Map(list.map((r) => [r.name, r]));
    const [b, a] = [byName(before), byName(after)];
    for (const n of new Set([...b.keys(), ...a.keys()]))
      if (b.get(n)?.version !== a.get(n)?.version) changes.set(n, { before: b.get(n), after: a.get(n) });
    const sum = new VersionSum();
    for (const r of before) sum.add(resourceHash(r));
    sum.addDelta(changesDelta(changes));
    assert.equal(sum.toString(), resourcesVersion(after));
    assert.equal(changesDelta(changes), changesDelta(changes));
  });
});
