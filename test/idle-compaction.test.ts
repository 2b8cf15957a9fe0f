// Idle compaction: once the server is idle after a burst, one compacting collection gives the
// burst's old-space pages back; never while busy, never for a heap with little to give.
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { compactingCollection, IdleCompaction, oldSpaceWaste } from '../src/idle-compaction';
import { silentLogger } from '../src/log';

describe('idle compaction', () => {
  const MB = 1024 * 1024;

  function controlled(o: { loads: number[]; waste: number[] }) {
    let compactions = 0;
    const c = new IdleCompaction({
      log: silentLogger,
      checkEveryMs: 3_600_000, // the test calls check() itself
      idleChecks: 3,
      idleLoad: 0.05,
      minWasteBytes: 64 * MB,
      load: () => o.loads.shift() ?? 0,
      waste: () => o.waste[0] ?? 0,
      compact: () => {
        compactions++;
        o.waste.shift();
      },
    });
    return { c, compactions: () => compactions };
  }

  it('compacts once, after the set number of idle checks, and not again while nothing grew', () => {
    // Two busy checks, then idle; waste 200 MB until the compaction, 5 MB after it.
    const o = { loads: [0.7, 0.3, 0.01, 0.02, 0.01, 0.0, 0.0, 0.0], waste: [200 * MB, 5 * MB] };
    const { c, compactions } = controlled(o);
    try {
      const seen: number[] = [];
      for (let i = 0; i < 8; i++) {
        c.check();
        seen.push(compactions());
      }
      // Checks 3, 4 and 5 are idle: the compaction is at the fifth, once.
      assert.deepEqual(seen, [0, 0, 0, 0, 1, 1, 1, 1]);
    } finally {
      c.stop();
    }
  });

  it('a busy check starts the count again; a heap with little beyond its live bytes is left alone', () => {
    const o = { loads: [0.0, 0.0, 0.5, 0.0, 0.0, 0.0], waste: [200 * MB, 1 * MB] };
    const { c, compactions } = controlled(o);
    try {
      const seen: number[] = [];
      for (let i = 0; i < 6; i++) {
        c.check();
        seen.push(compactions());
      }
      assert.deepEqual(seen, [0, 0, 0, 0, 0, 1]);
    } finally {
      c.stop();
    }
    const small = controlled({ loads: [0, 0, 0, 0, 0], waste: [10 * MB] });
    try {
      for (let i = 0; i < 5; i++) small.c.check();
      assert.equal(small.compactions(), 0);
    } finally {
      small.c.stop();
    }
  });

  it('the real collection gives old space back: committed bytes fall to about what is live', function () {
    this.timeout(20_000);
    const collect = compactingCollection();
    assert.ok(collect, 'this Node offers a compacting collection');
    // A burst: 1.5M small objects in old space, nine in ten then dropped, scattered over every page.
    let burst: { i: number; s: string }[] = [];
    for (let i = 0; i < 1_500_000; i++) burst.push({ i, s: `x${i}` });
    burst = burst.filter((_, i) => i % 10 === 0);
    collect(); // a first full collection frees the dropped objects (compaction included)
    // Fill again and drop, so that the pages are fragmented when measured.
    let again: { i: number; s: string }[] = [];
    for (let i = 0; i < 1_500_000; i++) again.push({ i, s: `y${i}` });
    again = again.filter((_, i) => i % 10 === 0);
    const old = () => v8.getHeapSpaceStatistics().find((x) => x.space_name === 'old_space')!;
    const before = old().space_size;
    collect();
    const after = old();
    assert.ok(burst.length + again.length === 300_000, 'the kept objects are still alive');
    assert.ok(after.space_size < before, `old space ${before / MB} -> ${after.space_size / MB} MB`);
    assert.ok(
      oldSpaceWaste() < 32 * MB,
      `old space holds ${after.space_size / MB} MB for ${after.space_used_size / MB} MB live`,
    );
  });
});
