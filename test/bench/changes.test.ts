// The bench's instance changes: every change it makes is a change. A number used twice moved an
// instance to the address it already had; the API applied it as unchanged, nothing was pushed,
// and S3 counted 20 s for a change that waited for the next one of its cluster.
import assert from 'node:assert/strict';
import { ChangeNumbers, instanceChange, type MeshShape } from '../../bench/lib/mesh';

describe('bench: instance change numbers', () => {
  const shape = { services: 1000, instancesPerService: 5 } as MeshShape;

  it('never gives a number twice, drawn or counted, so no change repeats an instance and its address', () => {
    // A seeded draw that lands in the counted range: S2 draws, then S3 counts up through it.
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return ((seed % 3000) + 0.5) / 1e6; // numbers 1..3000, where S3's counting goes
    };
    const numbers = new ChangeNumbers(random);
    const drawn = Array.from({ length: 60 }, () => numbers.drawn());
    const counted = Array.from({ length: 6000 }, () => numbers.next());
    const all = [...drawn, ...counted];
    assert.equal(new Set(all).size, all.length);
    assert.ok(
      drawn.every((n) => n <= 3000),
      'the draws landed where the counting goes',
    );
    // The changes themselves: no (instance, address) pair twice.
    const what = all.map((n) => instanceChange(shape, n, 1000).what);
    assert.equal(new Set(what).size, what.length);
  });

  it('counts up past the drawn numbers in order, skipping only those', () => {
    const picks = [0.0000045, 0.0000015, 0.0000045, 0.0000025]; // 5, 2, 5 again (redrawn), 3
    const numbers = new ChangeNumbers(() => picks.shift() ?? 0.5);
    assert.deepEqual([numbers.drawn(), numbers.drawn(), numbers.drawn()], [5, 2, 3]);
    assert.deepEqual(
      Array.from({ length: 4 }, () => numbers.next()),
      [1, 4, 6, 7],
    );
  });
});
