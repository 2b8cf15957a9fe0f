// The event loop's busy share, for code that adapts to load (the churn window, idle compaction).
import { performance } from 'node:perf_hooks';

/** A function giving the event loop's busy share (0..1) since its previous call (since creation, first). */
export function eventLoopLoad(): () => number {
  let mark = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, mark).utilization;
    mark = now;
    return u;
  };
}
