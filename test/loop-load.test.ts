// The load measures the churn window and idle compaction adapt to.
import assert from 'node:assert/strict';
import { eventLoopLoad, processCpuLoad } from '../src/loop-load';

/** Keeps the main thread computing for `ms` of wall time. */
function spin(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
}

describe('load measures', () => {
  it('process CPU: about a core while the main thread computes, little while it waits on a timer', async () => {
    const cpu = processCpuLoad();
    spin(200);
    const busy = cpu();
    await new Promise((res) => setTimeout(res, 200));
    const idle = cpu();
    assert.ok(busy > 0.5, `computing: ${busy} cores`);
    assert.ok(idle < 0.5, `waiting: ${idle} cores`);
    assert.ok(busy > idle);
  });

  it('event loop: busy while computing, idle while waiting on a timer', async () => {
    const loop = eventLoopLoad();
    await new Promise((res) => setTimeout(res, 10)); // a loop turn: utilization counts from there
    loop();
    spin(200);
    await new Promise((res) => setImmediate(res));
    const busy = loop();
    await new Promise((res) => setTimeout(res, 200));
    const idle = loop();
    assert.ok(busy > 0.5, `computing: ${busy}`);
    assert.ok(idle < 0.5, `waiting: ${idle}`);
  });
});
