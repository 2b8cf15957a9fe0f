// Gives back, once the server is idle, the memory a burst of work left behind.
//
// A connect storm or sustained churn grows V8's old space; what stays live
// afterwards is a fraction of it (at 1,000 proxies: ~90 MB used in 330 MB
// committed). V8's memory reducer compacts it eventually, but not always: some
// idle periods ended with the burst's pages still committed. So when the event
// loop has been nearly idle for a while (30 s by default) and old space holds
// more than 64 MB beyond what is live, the server runs one compacting full
// collection: a pause of about 100 ms at a moment nothing waits, after which
// RSS is what the steady state needs. It runs again only after old space grew
// again.
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from './log';
import { eventLoopLoad } from './loop-load';

export interface IdleCompactionOptions {
  readonly log: Logger;
  /** How often the load is looked at (default 5 s). */
  readonly checkEveryMs?: number;
  /** Consecutive idle checks before compacting (default 6: 30 s). */
  readonly idleChecks?: number;
  /** The event loop's busy share under which a check counts as idle (default 0.05). */
  readonly idleLoad?: number;
  /** Old space committed beyond its live bytes worth a compaction (default 64 MiB). */
  readonly minWasteBytes?: number;
  /** Tests give their own; by default the event loop's utilization since the last check. */
  readonly load?: () => number;
  /** Tests give their own; by default old space's committed minus used bytes. */
  readonly waste?: () => number;
  /** Tests give their own; by default compactingCollection(). */
  readonly compact?: () => void;
  /** Told after each compaction (a metric). */
  readonly onCompacted?: (r: { ms: number; wasteBefore: number; wasteAfter: number }) => void;
}

/** Old space's committed bytes that hold nothing live. */
export function oldSpaceWaste(): number {
  const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'old_space');
  return s ? Math.max(0, s.space_size - s.space_used_size) : 0;
}

let collect: (() => void) | null | undefined;

/**
 * A full collection that compacts old space and gives its emptied pages back; undefined when
 * this runtime does not offer one. (V8 compacts only the most fragmented pages in a full
 * collection; for this one it compacts every page.)
 */
export function compactingCollection(): (() => void) | undefined {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as unknown;
      collect =
        typeof gc === 'function'
          ? () => {
              v8.setFlagsFromString('--compact-on-every-full-gc');
              try {
                (gc as () => void)();
              } finally {
                v8.setFlagsFromString('--no-compact-on-every-full-gc');
              }
            }
          : null;
    } catch {
      collect = null;
    }
  }
  return collect ?? undefined;
}

export class IdleCompaction {
  private readonly timer: NodeJS.Timeout;
  private readonly load: () => number;
  private readonly waste: () => number;
  private readonly compact: (() => void) | undefined;
  private idleFor = 0;

  constructor(private readonly o: IdleCompactionOptions) {
    this.load = o.load ?? eventLoopLoad();
    this.waste = o.waste ?? oldSpaceWaste;
    this.compact = o.compact ?? compactingCollection();
    this.timer = setInterval(() => this.check(), o.checkEveryMs ?? 5_000);
    this.timer.unref();
  }

  /** One look at the load (the interval calls it; tests may too). */
  check(): void {
    if (this.load() >= (this.o.idleLoad ?? 0.05)) {
      this.idleFor = 0;
      return;
    }
    this.idleFor++;
    if (this.idleFor < (this.o.idleChecks ?? 6)) return;
    const wasteBefore = this.waste();
    if (wasteBefore < (this.o.minWasteBytes ?? 64 * 1024 * 1024) || !this.compact) return;
    const started = performance.now();
    this.compact();
    const ms = performance.now() - started;
    const wasteAfter = this.waste();
    // The collection's own time is not load: the next checks start idle.
    this.load();
    this.o.log.info(
      { ms: Math.round(ms), wasteBeforeMb: mb(wasteBefore), wasteAfterMb: mb(wasteAfter) },
      'idle: compacted the heap (old space held more than it kept live)',
    );
    this.o.onCompacted?.({ ms, wasteBefore, wasteAfter });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

const mb = (n: number) => Math.round(n / 1048576);
