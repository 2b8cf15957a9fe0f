// NameSet: the same answers as a plain Set whatever its layering over a shared base.
import assert from 'node:assert/strict';
import { NameSet } from '../../src/xds/names';
import { seededRandom } from '../support/random';

const sorted = (it: Iterable<string>) => [...it].sort();

describe('xds: NameSet over a shared base', () => {
  const base = new Map(Array.from({ length: 200 }, (_, i) => [`c${i}`, i]));

  it('after a rebase, holds exactly the same names; only the differences are held apart', () => {
    const s = new NameSet(base.keys());
    s.delete('c3');
    s.add('extra');
    const before = sorted(s);
    assert.equal(s.ownSize, 200);
    assert.equal(s.rebase(base), true);
    assert.deepEqual(sorted(s), before);
    assert.equal(s.size, 200);
    assert.equal(s.ownSize, 2);
    assert.equal(s.has('c3'), false);
    assert.equal(s.has('c4'), true);
    assert.equal(s.has('extra'), true);
    assert.equal(s.rebase(base), false);
  });

  it('a walk of adds and deletes matches a plain Set, and a base unlike the set is refused', () => {
    const layered = new NameSet(base.keys());
    layered.rebase(base);
    const plain = new Set(base.keys());
    const next = seededRandom(11);
    for (let i = 0; i < 2_000; i++) {
      const name = next() % 4 === 0 ? `x${next() % 30}` : `c${next() % 200}`;
      if (next() % 2 === 0) {
        assert.equal(layered.delete(name), plain.delete(name));
      } else {
        layered.add(name);
        plain.add(name);
      }
      assert.equal(layered.has(name), plain.has(name));
    }
    assert.deepEqual(sorted(layered), sorted(plain));
    assert.equal(layered.size, plain.size);
    const other = new Map(Array.from({ length: 300 }, (_, i) => [`o${i}`, i]));
    const held = sorted(layered);
    assert.equal(layered.rebase(other), false);
    assert.deepEqual(sorted(layered), held);
  });

  it('rebases itself once the names held apart pass an eighth of the set', () => {
    const s = new NameSet();
    for (const n of base.keys()) s.add(n);
    s.maybeRebase(() => base);
    assert.equal(s.ownSize, 0);
    assert.equal(s.size, 200);
  });
});
