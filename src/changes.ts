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
  proxies?: Map<string, ProxyChange>;
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
    for (const c of this.changes.values()) {
      if (c.id <= this.lastBuilt || c.id > revision || c.proxies) continue;
      c.proxies = new Map(affected.map((n) => [n, { state: 'pending' as const }]));
    }
    this.lastBuilt = Math.max(this.lastBuilt, revision);
  }

  /** A proxy has ACKed everything it was sent. */
  proxySynced(nodeId: string): void {
    const now = this.now();
    for (const c of this.changes.values()) {
      const p = c.proxies?.get(nodeId);
      if (p?.state !== 'pending') continue;
      p.state = 'acked';
      p.ms = now - c.at;
      this.o.onConverged?.(p.ms / 1000);
    }
  }

  /** A proxy rejected a response: the pending changes it was carrying are rejected there. */
  proxyRejected(nodeId: string, type: string, message: string): void {
    const now = this.now();
    for (const c of this.changes.values()) {
      const p = c.proxies?.get(nodeId);
      if (p?.state !== 'pending') continue;
      p.state = 'nacked';
      p.ms = now - c.at;
      p.message = message;
      p.type = type;
    }
  }

  /** A proxy went away: it will not ACK what is pending. */
  proxyGone(nodeId: string): void {
    for (const c of this.changes.values())
      if (c.proxies?.get(nodeId)?.state === 'pending') c.proxies.delete(nodeId);
  }

  get(id: number): ChangeRecord | undefined {
    return this.changes.get(id);
  }

  state(c: ChangeRecord): ChangeState {
    if (!c.proxies) return this.now() - c.at > (this.o.timeoutMs ?? 30_000) ? 'timed-out' : 'pending';
    const states = [...c.proxies.values()].map((p) => p.state);
    const nacked = states.filter((s) => s === 'nacked').length;
    if (states.includes('pending'))
      return this.now() - c.at > (this.o.timeoutMs ?? 30_000) ? 'timed-out' : 'pending';
    if (nacked === 0) return 'converged';
    return nacked === states.length ? 'rejected' : 'partially-rejected';
  }

  toJson(c: ChangeRecord): Record<string, unknown> {
    return {
      id: c.id,
      revision: c.id,
      at: new Date(c.at).toISOString(),
      state: this.state(c),
      objects: c.objects,
      proxies: [...(c.proxies ?? new Map<string, ProxyChange>()).entries()].map(([nodeId, p]) => ({
        nodeId,
        ...p,
      })),
    };
  }

  recent(limit = 50): ChangeRecord[] {
    return [...this.changes.values()].slice(-limit).reverse();
  }
}
