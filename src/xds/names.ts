// A set of subscribed resource names kept as a shared base plus its own
// differences, like VersionMap: a thousand sidecars subscribe to the same
// thousand CLAs, and each then costs only the names it has unlike the base.
import { rebaseIfWorth } from './version';

/** A set of names: a base (a map that never changes, shared) plus what is added to or hidden from it. */
export class NameSet implements Iterable<string> {
  private base: ReadonlyMap<string, unknown> | undefined;
  /** In the set and not in the base. */
  private added = new Set<string>();
  /** In the base and not in the set. */
  private hidden = new Set<string>();
  private count = 0;
  /** After a rebase that did not pay, the own size at which to try again. */
  private retryAt = 0;

  constructor(names: Iterable<string> = []) {
    for (const n of names) this.add(n);
  }

  get size(): number {
    return this.count;
  }

  /** Names held apart from the base (the cost of this set beyond it). */
  get ownSize(): number {
    return this.added.size + this.hidden.size;
  }

  has(name: string): boolean {
    return this.base?.has(name) ? !this.hidden.has(name) : this.added.has(name);
  }

  add(name: string): this {
    if (this.has(name)) return this;
    this.count++;
    if (this.base?.has(name)) this.hidden.delete(name);
    else this.added.add(name);
    return this;
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    this.count--;
    if (this.base?.has(name)) this.hidden.add(name);
    else this.added.delete(name);
    return true;
  }

  /** The base when every name of it is in the set (the set is the base plus addedNames()). */
  coveredBase(): ReadonlyMap<string, unknown> | undefined {
    return this.hidden.size === 0 ? this.base : undefined;
  }

  /** The names in the set and not in the base. */
  addedNames(): ReadonlySet<string> {
    return this.added;
  }

  *[Symbol.iterator](): IterableIterator<string> {
    if (this.base) for (const n of this.base.keys()) if (!this.hidden.has(n)) yield n;
    yield* this.added;
  }

  /**
   * Keeps the same names over another base (a map that will not change).
   * Returns false, and changes nothing, when that would not hold fewer names apart.
   */
  rebase(base: ReadonlyMap<string, unknown>): boolean {
    if (base === this.base) return false;
    const limit = this.ownSize;
    const added = new Set<string>();
    const hidden = new Set<string>();
    for (const n of this) {
      if (!base.has(n)) added.add(n);
      if (added.size >= limit) return false;
    }
    for (const n of base.keys()) {
      if (!this.has(n)) hidden.add(n);
      if (added.size + hidden.size >= limit) return false;
    }
    this.base = base;
    this.added = added;
    this.hidden = hidden;
    return true;
  }

  /** Rebases on `candidate()` when that is worth trying (rebaseIfWorth). */
  maybeRebase(candidate: () => ReadonlyMap<string, unknown> | undefined): void {
    this.retryAt = rebaseIfWorth(this.ownSize, this.count, this.retryAt, () => {
      const base = candidate();
      return base !== undefined && this.rebase(base);
    });
  }
}
