import assert from 'node:assert/strict';
import { ChangeTracker } from '../src/changes';
import type { ChangeEvent } from '../src/registry';

function ev(revision: number, name = `svc-${revision}`): ChangeEvent {
  return {
    revision,
    kind: 'Service',
    name,
    op: 'put',
    object: { kind: 'Service', name, spec: { port: 9000 }, resourceVersion: `rv${revision}`, revision },
  } as unknown as ChangeEvent;
}

describe('change tracker', () => {
  let now = 1_000;
  const converged: number[] = [];
  const tracker = () => new ChangeTracker({ now: () => now, onConverged: (s) => converged.push(s), keep: 3 });

  beforeEach(() => {
    now = 1_000;
    converged.length = 0;
  });

  it('tracks each affected proxy from pending to ACKed with its time, and the change to converged', () => {
    const t = tracker();
    t.recorded(ev(1));
    const c = t.get(1)!;
    assert.equal(t.state(c), 'pending');
    t.built(1, ['a', 'b']);
    now += 40;
    t.proxySynced('a');
    assert.equal(t.state(c), 'pending');
    now += 10;
    t.proxySynced('b');
    t.proxySynced('b'); // a second ACK changes nothing
    assert.equal(t.state(c), 'converged');
    assert.deepEqual(t.toJson(c).proxies, [
      { nodeId: 'a', state: 'acked', ms: 40 },
      { nodeId: 'b', state: 'acked', ms: 50 },
    ]);
    assert.deepEqual(converged, [0.04, 0.05]);
  });

  it('counts an ACK from when it arrived, not from when the server got round to it', () => {
    const t = tracker();
    t.recorded(ev(1));
    t.built(1, ['a']);
    const arrived = now + 30;
    now += 55; // handled later, in the stream's turn
    t.proxySynced('a', arrived);
    assert.deepEqual(t.toJson(t.get(1)!).proxies, [{ nodeId: 'a', state: 'acked', ms: 30 }]);
    assert.deepEqual(converged, [0.03]);
  });

  it('gives every change of one build the same proxies, and an ACK settles all of them', () => {
    const t = tracker();
    t.recorded(ev(1));
    now += 10;
    t.recorded(ev(2));
    t.built(2, ['a']);
    now += 5;
    t.proxySynced('a');
    assert.equal(t.state(t.get(1)!), 'converged');
    assert.equal(t.state(t.get(2)!), 'converged');
    // One ACK, and each change's time counted from when it was made.
    assert.deepEqual(t.toJson(t.get(1)!).proxies, [{ nodeId: 'a', state: 'acked', ms: 15 }]);
    assert.deepEqual(t.toJson(t.get(2)!).proxies, [{ nodeId: 'a', state: 'acked', ms: 5 }]);
    assert.deepEqual(converged, [0.015, 0.005]);
    // A later build does not re-open changes already built.
    t.recorded(ev(3));
    t.built(3, ['b']);
    assert.deepEqual(
      (t.toJson(t.get(1)!).proxies as { nodeId: string }[]).map((p) => p.nodeId),
      ['a'],
    );
    assert.equal(t.state(t.get(3)!), 'pending');
  });

  it('records a NACK with its message; partially rejected or rejected', () => {
    const t = tracker();
    t.recorded(ev(1));
    t.built(1, ['a', 'b']);
    t.proxyRejected('a', 'clusters', 'bad cluster');
    t.proxySynced('b');
    assert.equal(t.state(t.get(1)!), 'partially-rejected');
    assert.deepEqual((t.toJson(t.get(1)!).proxies as unknown[])[0], {
      nodeId: 'a',
      state: 'nacked',
      ms: 0,
      message: 'bad cluster',
      type: 'clusters',
    });
    t.recorded(ev(2));
    t.built(2, ['a']);
    t.proxyRejected('a', 'listeners', 'bad listener');
    assert.equal(t.state(t.get(2)!), 'rejected');
  });

  it('drops a proxy that went away, times out one that never answers, and keeps only the latest changes', () => {
    const t = tracker();
    t.recorded(ev(1));
    t.built(1, ['a', 'b']);
    t.proxyGone('a');
    assert.deepEqual(
      (t.toJson(t.get(1)!).proxies as { nodeId: string }[]).map((p) => p.nodeId),
      ['b'],
    );
    now += 31_000;
    assert.equal(t.state(t.get(1)!), 'timed-out');
    t.proxySynced('b');
    assert.equal(t.state(t.get(1)!), 'converged');
    for (const r of [2, 3, 4, 5]) t.recorded(ev(r));
    assert.equal(t.get(1), undefined);
    assert.deepEqual(
      t.recent().map((c) => c.id),
      [5, 4, 3],
    );
  });
});
