// The event loop's busy share and the process's CPU, for code that adapts to load (the churn window, idle compaction).
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

/**
 * A function giving the CPU the process used since its previous call (since creation, first), in
 * cores: every thread's user and system time (the main thread, V8's collector helpers, the libuv
 * pool) over the wall time. Time the loop spends blocked (a synchronous fsync) is not CPU.
 */
export function processCpuLoad(): () => number {
  let cpu = process.cpuUsage();
  let at = performance.now();
  return () => {
    const nowCpu = process.cpuUsage();
    const now = performance.now();
    const used = (nowCpu.user - cpu.user + nowCpu.system - cpu.system) / 1_000;
    const wall = now - at;
    cpu = nowCpu;
    at = now;
    return wall > 0 ? used / wall : 0;
  };
}
