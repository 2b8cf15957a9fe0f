// Every change (a store revision) tracked to the moment each proxy it affected
// has ACKed it, or rejected it: per-proxy time to ACK, overall state, and the
// convergence histogram fed from the same numbers. In memory, bounded.
import type { ChangeEvent } from './registry';

export type ProxyChangeState = 'pending' | 'acked' | 'nacked';
export type ChangeState = 'pending' | 'converged' | 'partially-rejected' | 'rejected' | 'timed-out';

export interface ProxyChange {
  state: ProxyChangeState;
  /** Milliseconds from the change to this proxy's ACK (or NACK). */
  ms?: number;
  message?: string;
  type?: string;
}

export interface ChangeRecord {
  readonly id: number;
  readonly at: number;
  readonly objects: { kind: string; name: string; op: 'put' | 'delete'; resourceVersion: string }[];
  /** Undefined until a build that includes this revision ran. */
  proxies?: ProxyResults;
}

const PENDING = 0;
const ACKED = 1;
const NACKED = 2;
/** The proxy went away before it answered: left out of the record. */
const GONE = 3;
const STATE_NAMES: ProxyChangeState[] = ['pending', 'acked', 'nacked'];

/**
 * Per-proxy outcomes of the changes one build covered, compact and shared by
 * them: they went out in the same pushes, so each proxy ACKs (or rejects) all
 * of them at once. Under churn a build gathers ten or more changes; a thousand
 * proxies then cost one slot each per build, not one per change. The node ids
 * are the build's own list.
 */
export class ProxyResults {
  readonly state: Uint8Array;
  /** When each proxy answered (ms since the epoch). */
  readonly answeredAt: Float64Array;
  readonly nacks = new Map<number, { message: string; type: string }>();
  /** When each change of the build was made: a proxy's time to ACK is counted from each. */
  readonly changedAt: number[] = [];
  pending: number;

  constructor(readonly nodeIds: readonly string[]) {
    this.state = new Uint8Array(nodeIds.length);
    this.answeredAt = new Float64Array(nodeIds.length);
    this.pending = nodeIds.length;
  }

  get size(): number {
    let n = 0;
    for (const s of this.state) if (s !== GONE) n++;
    return n;
  }

  /** Each proxy's outcome for the change made at `since`. */
  *entries(since: number): Generator<[string, ProxyChange]> {
    for (let i = 0; i < this.nodeIds.length; i++) {
      const s = this.state[i];
      if (s === GONE) continue;
      yield [
        this.nodeIds[i],
        {
          state: STATE_NAMES[s],
          ...(s === PENDING ? {} : { ms: Math.max(0, this.answeredAt[i] - since) }),
          ...(this.nacks.get(i) ?? {}),
        },
      ];
    }
  }

  settle(slot: number, state: typeof ACKED | typeof NACKED | typeof GONE, at: number): boolean {
    if (this.state[slot] !== PENDING) return false;
    this.state[slot] = state;
    this.answeredAt[slot] = at;
    this.pending--;
    return true;
  }
}

export interface ChangeTrackerOptions {
  /** Pending proxies after this long make the change 'timed-out' (default 30 s). */
  readonly timeoutMs?: number;
  /** How many changes are kept (default 1,000). */
  readonly keep?: number;
  /** Told each proxy's time to ACK (seconds), once per change and proxy. */
  readonly onConverged?: (seconds: number) => void;
  readonly now?: () => number;
}

export class ChangeTracker {
  private readonly changes = new Map<number, ChangeRecord>();
  /** Per proxy, the builds whose changes it has yet to ACK: (results, slot), oldest first. */
  private readonly pendingByProxy = new Map<string, [ProxyResults, number][]>();
  private lastBuilt = 0;
  private readonly now: () => number;

  constructor(private readonly o: ChangeTrackerOptions = {}) {
    this.now = o.now ?? Date.now;
  }

  /** A store change was seen (the change feed). */
  recorded(ev: ChangeEvent): void {
    let c = this.changes.get(ev.revision);
    if (!c) {
      c = { id: ev.revision, at: this.now(), objects: [] };
      this.changes.set(ev.revision, c);
      const keep = this.o.keep ?? 1_000;
      if (this.changes.size > keep) {
        const oldest = this.changes.keys().next().value;
        if (oldest !== undefined) this.changes.delete(oldest);
      }
    }
    c.objects.push({ kind: ev.kind, name: ev.name, op: ev.op, resourceVersion: ev.object.resourceVersion });
  }

  /** A build at `revision` ran; these proxies' resources changed in it. */
  built(revision: number, affected: readonly string[]): void {
    if (revision <= this.lastBuilt) return;
    // Newest first: the changes this build covers are at the end of the (insertion-ordered) map.
    const covered: ChangeRecord[] = [];
    for (const c of [...this.changes.values()].reverse()) {
      if (c.id <= this.lastBuilt) break;
      if (c.id <= revision && !c.proxies) covered.push(c);
    }
    this.lastBuilt = revision;
    if (covered.length === 0) return;
    const results = new ProxyResults([...affected]);
    for (const c of covered.reverse()) {
      c.proxies = results;
      results.changedAt.push(c.at);
    }
    const keep = this.o.keep ?? 1_000;
    for (let i = 0; i < results.nodeIds.length; i++) {
      let list = this.pendingByProxy.get(results.nodeIds[i]);
      if (!list) {
        list = [];
        this.pendingByProxy.set(results.nodeIds[i], list);
      }
      list.push([results, i]);
      // A proxy that never answers holds no more than the kept builds.
      if (list.length > keep) list.splice(0, list.length - keep);
    }
  }

  /** A proxy has ACKed everything it was sent; `at`: when its last ACK arrived (default: now). */
  proxySynced(nodeId: string, at?: number): void {
    const list = this.pendingByProxy.get(nodeId);
    if (!list) return;
    this.pendingByProxy.delete(nodeId);
    const now = at ?? this.now();
    const observe = this.o.onConverged;
    for (const [results, slot] of list) {
      if (results.settle(slot, ACKED, now) && observe)
        for (const at of results.changedAt) observe(Math.max(0, now - at) / 1000);
    }
  }

  /** A proxy rejected a response: the pending changes it was carrying are rejected there. */
  proxyRejected(nodeId: string, type: string, message: string): void {
    const list = this.pendingByProxy.get(nodeId);
    if (!list) return;
    this.pendingByProxy.delete(nodeId);
    const now = this.now();
    for (const [results, slot] of list) {
      if (results.settle(slot, NACKED, now)) results.nacks.set(slot, { message, type });
    }
  }

  /** A proxy went away: it will not ACK what is pending. */
  proxyGone(nodeId: string): void {
    const list = this.pendingByProxy.get(nodeId);
    if (!list) return;
    this.pendingByProxy.delete(nodeId);
    for (const [results, slot] of list) results.settle(slot, GONE, 0);
  }

  get(id: number): ChangeRecord | undefined {
    return this.changes.get(id);
  }

  state(c: ChangeRecord): ChangeState {
    const timedOut = () => this.now() - c.at > (this.o.timeoutMs ?? 30_000);
    if (!c.proxies) return timedOut() ? 'timed-out' : 'pending';
    if (c.proxies.pending > 0) return timedOut() ? 'timed-out' : 'pending';
    const nacked = c.proxies.nacks.size;
    if (nacked === 0) return 'converged';
    return nacked === c.proxies.size ? 'rejected' : 'partially-rejected';
  }

  toJson(c: ChangeRecord): Record<string, unknown> {
    return {
      id: c.id,
      revision: c.id,
      at: new Date(c.at).toISOString(),
      state: this.state(c),
      objects: c.objects,
      proxies: [...(c.proxies?.entries(c.at) ?? [])].map(([nodeId, p]) => ({ nodeId, ...p })),
    };
  }

  recent(limit = 50): ChangeRecord[] {
    return [...this.changes.values()].slice(-limit).reverse();
  }
}
