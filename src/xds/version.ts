// Versions of resource sets, kept incrementally: a set's version is the sum
// (mod 2^32, in two independent lanes) of a hash of each (name, version) pair.
// It depends on names and content only, never on order or on time (rule 1.7),
// and adding or removing one resource updates it in O(1) instead of sorting and
// hashing the whole set on every push.
import { type EncodedResource, fmix32 as mix } from '../../envoy-protos';

/** Two 32-bit lanes of one (name, version) pair's hash. */
export type EntryHash = readonly [number, number];

/** FNV-1a over `name \0 version`, in two lanes with different offsets. */
export function entryHash(name: string, version: string): EntryHash {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  a = Math.imul(a ^ 0, 0x01000193);
  b = Math.imul(b ^ 0xff, 0x01000193);
  for (let i = 0; i < version.length; i++) {
    const c = version.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  return [mix(a), mix(b ^ 0x9e3779b9)];
}

/** Where a resource object keeps its entry hash (a property: read per entry per push, cheaper than a WeakMap). */
const HASH = Symbol('entryHash');

/** The entry hash of an encoded resource (computed once per resource object). */
export function resourceHash(r: EncodedResource): EntryHash {
  const o = r as EncodedResource & { [HASH]?: EntryHash };
  let h = o[HASH];
  if (!h) {
    h = entryHash(r.name, r.version);
    o[HASH] = h;
  }
  return h;
}

/** Char codes of the hex digits. */
const HEX = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));
const d = (n: number, shift: number) => HEX[(n >>> shift) & 15];

/**
 * Two 32-bit lanes as 16 hex digits, in one flat string: read for every push and compared on
 * every ACK, where a concatenation (a V8 cons string) would be flattened first.
 */
function hex2(a: number, b: number): string {
  return String.fromCharCode(
    d(a, 28),
    d(a, 24),
    d(a, 20),
    d(a, 16),
    d(a, 12),
    d(a, 8),
    d(a, 4),
    d(a, 0),
    d(b, 28),
    d(b, 24),
    d(b, 20),
    d(b, 16),
    d(b, 12),
    d(b, 8),
    d(b, 4),
    d(b, 0),
  );
}

/** An order-independent running hash of a set of (name, version) pairs. */
export class VersionSum {
  private a = 0;
  private b = 0;

  add(h: EntryHash): void {
    this.a = (this.a + h[0]) >>> 0;
    this.b = (this.b + h[1]) >>> 0;
  }

  sub(h: EntryHash): void {
    this.a = (this.a - h[0]) >>> 0;
    this.b = (this.b - h[1]) >>> 0;
  }

  /** Adds a difference of sums (changesDelta). */
  addDelta(d: EntryHash): void {
    this.a = (this.a + d[0]) >>> 0;
    this.b = (this.b + d[1]) >>> 0;
  }

  clear(): void {
    this.a = 0;
    this.b = 0;
  }

  toString(): string {
    return hex2(this.a, this.b);
  }
}

const deltas = new WeakMap<object, EntryHash>();

/**
 * How a set's sum moves when these changes apply to it (each name's `after`
 * in, its `before` out). Memoized per changes map: a map shared by a thousand
 * proxies is summed once.
 */
export function changesDelta(
  changes: ReadonlyMap<string, { readonly before?: EncodedResource; readonly after?: EncodedResource }>,
): EntryHash {
  let d = deltas.get(changes);
  if (!d) {
    let a = 0;
    let b = 0;
    for (const c of changes.values()) {
      if (c.after) {
        const h = resourceHash(c.after);
        a = (a + h[0]) >>> 0;
        b = (b + h[1]) >>> 0;
      }
      if (c.before) {
        const h = resourceHash(c.before);
        a = (a - h[0]) >>> 0;
        b = (b - h[1]) >>> 0;
      }
    }
    d = [a, b];
    deltas.set(changes, d);
  }
  return d;
}

/** A version for a set of (name, version) pairs. */
export function setVersion(entries: Iterable<readonly [string, string]>): string {
  const s = new VersionSum();
  for (const [n, v] of entries) s.add(entryHash(n, v));
  return s.toString();
}

/** The version of a set of encoded resources (uses each resource's cached hash). */
export function resourcesVersion(resources: Iterable<EncodedResource>): string {
  const s = new VersionSum();
  for (const r of resources) s.add(resourceHash(r));
  return s.toString();
}

/** A map that never changes, shared by many VersionMaps, that can say what differs in a successor. */
export interface SharedBase {
  readonly map: ReadonlyMap<string, EncodedResource>;
  /** Names whose version differs between this base and `to` (on either side, or missing from one). */
  namesChangedTo(to: SharedBase): readonly string[];
  /** The sum of every entry's hash (VersionSum lanes; memoized: a base never changes). */
  sum(): EntryHash;
}

/** The VersionSum lanes of a list of resources. */
export function sumOf(resources: Iterable<EncodedResource>): EntryHash {
  let a = 0;
  let b = 0;
  for (const r of resources) {
    const h = resourceHash(r);
    a = (a + h[0]) >>> 0;
    b = (b + h[1]) >>> 0;
  }
  return [a, b];
}

/**
 * When VersionMap and NameSet try a rebase: once what they hold apart from the
 * base passes an eighth of their size (and 64), and after one that did not pay,
 * not before that has doubled. Returns the size at which to try next.
 */
export function rebaseIfWorth(
  ownSize: number,
  size: number,
  retryAt: number,
  attempt: () => boolean,
): number {
  if (ownSize < 64 || ownSize * 8 < size || ownSize < retryAt) return retryAt;
  return attempt() ? 0 : ownSize * 2;
}

/** An entry of a VersionMap's own layer that hides its base's entry of that name. */
const GONE: unique symbol = Symbol('gone');

type Entry = EncodedResource | string;

const versionOf = (e: Entry): string => (typeof e === 'string' ? e : e.version);

/** A base's resource stands in for an entry when it is the same object or has the same version. */
const differs = (b: EncodedResource | undefined, e: Entry): boolean =>
  b === undefined || (b !== e && b.version !== versionOf(e));

/**
 * name -> version, with the set's version kept as entries change. An entry is
 * the encoded resource itself when there is one (a reference: the version and
 * hash are the resource's, shared by every proxy), else a bare version string.
 *
 * A thousand proxies mostly hold the same thousand clusters and CLAs, so the
 * entries are kept as a base (a map of the cache's, shared by every proxy that
 * holds it and never changed) plus this proxy's own layer of differences:
 * after rebase() a proxy costs only what it holds unlike the base.
 */
export class VersionMap {
  private base: SharedBase | undefined;
  private own = new Map<string, Entry | typeof GONE>();
  private count = 0;
  private readonly sum = new VersionSum();

  get size(): number {
    return this.count;
  }

  /** Entries in the own layer (the cost of this map beyond its shared base). */
  get ownSize(): number {
    return this.own.size;
  }

  private entry(name: string): Entry | undefined {
    const o = this.own.get(name);
    if (o !== undefined) return o === GONE ? undefined : o;
    return this.base?.map.get(name);
  }

  get(name: string): string | undefined {
    const e = this.entry(name);
    return e === undefined ? undefined : versionOf(e);
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  private hashOf(name: string, e: Entry): EntryHash {
    return typeof e === 'string' ? entryHash(name, e) : resourceHash(e);
  }

  /** Records a version, or the resource (of this name) the client now holds. */
  set(name: string, entry: Entry): void {
    const old = this.entry(name);
    if (old === entry) return;
    if (old !== undefined) this.sum.sub(this.hashOf(name, old));
    else this.count++;
    if (this.base?.map.get(name) === entry) this.own.delete(name);
    else this.own.set(name, entry);
    this.sum.add(this.hashOf(name, entry));
  }

  delete(name: string): boolean {
    const old = this.entry(name);
    if (old === undefined) return false;
    this.sum.sub(this.hashOf(name, old));
    this.count--;
    if (this.base?.map.has(name)) this.own.set(name, GONE);
    else this.own.delete(name);
    return true;
  }

  *keys(): IterableIterator<string> {
    const base = this.base?.map;
    if (base)
      for (const n of base.keys()) {
        if (this.own.get(n) !== GONE) yield n;
      }
    for (const [n, o] of this.own) if (o !== GONE && !base?.has(n)) yield n;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const n of this.keys()) yield [n, this.get(n) as string];
  }

  /** After a rebase that did not pay, the own size at which to try again. */
  private retryAt = 0;

  /**
   * An empty map takes every entry of `base` at once (a client's first response
   * held a whole shared part): O(1), where setting them one by one and
   * rebasing would cost a map entry each.
   */
  adopt(base: SharedBase): void {
    if (this.count !== 0) throw new Error('VersionMap.adopt needs an empty map');
    this.base = base;
    if (this.own.size > 0) this.own = new Map();
    this.count = base.map.size;
    this.sum.clear();
    this.sum.addDelta(base.sum());
    this.retryAt = 0;
  }

  /**
   * The client now holds `to` where it held `from`: a successor list of the same names
   * (`changed` are those whose version differs; `delta` is changesDelta of them). When this
   * map's base is `from` and its own layer has none of `changed`, the base moves to `to` in
   * O(changed), with no entry set name by name; returns false, and changes nothing, otherwise.
   */
  advance(from: SharedBase, to: SharedBase, changed: Iterable<string>, delta: EntryHash): boolean {
    if (this.base !== from || from.map.size !== to.map.size) return false;
    if (this.own.size > 0) for (const n of changed) if (this.own.has(n)) return false;
    this.base = to;
    this.sum.addDelta(delta);
    return true;
  }

  /**
   * Rebases on `next`, a newer list than the base, when this map holds something apart from its
   * base (a response that was not a shared transition, see advance()): what it holds of the
   * newer list then leaves the own layer, and the next shared transition can advance it again.
   * Costs the own layer plus the names the two lists differ in (computed once per pair of lists).
   * After one that did not pay, not again before the own layer has doubled.
   */
  catchUp(next: SharedBase | undefined): boolean {
    if (!next || !this.base || next === this.base || this.own.size === 0 || this.own.size < this.retryAt)
      return false;
    if (this.rebase(next)) return true;
    this.retryAt = this.own.size * 2;
    return false;
  }

  /** Rebases on `candidate()` when that is worth trying (rebaseIfWorth). */
  maybeRebase(candidate: () => SharedBase | undefined): void {
    this.retryAt = rebaseIfWorth(this.own.size, this.count, this.retryAt, () => {
      const base = candidate();
      return base !== undefined && this.rebase(base);
    });
  }

  /**
   * Keeps the same entries over another base: the own layer becomes the
   * differences from it. From an earlier base only the own entries and the
   * names the two bases differ in are looked at, not every entry. Returns
   * false, and changes nothing, when the own layer would not be smaller.
   */
  rebase(next: SharedBase): boolean {
    if (next === this.base) return false;
    const limit = this.own.size;
    const own = new Map<string, Entry | typeof GONE>();
    const consider = (n: string): boolean => {
      if (own.has(n)) return true;
      const e = this.entry(n);
      const b = next.map.get(n);
      if (e === undefined) {
        if (b !== undefined) own.set(n, GONE);
      } else if (differs(b, e)) own.set(n, e);
      return own.size < limit;
    };
    if (this.base) {
      for (const n of this.own.keys()) if (!consider(n)) return false;
      for (const n of this.base.namesChangedTo(next)) if (!consider(n)) return false;
    } else {
      // No base yet: every entry is in the own layer. Names of `next` not held are hidden, and
      // when every name of `next` is held (the usual first push) there are none to look for.
      let inNext = 0;
      for (const [n, e] of this.own) {
        if (e === GONE) continue;
        const b = next.map.get(n);
        if (b !== undefined) inNext++;
        if (differs(b, e)) {
          own.set(n, e);
          if (own.size >= limit) return false;
        }
      }
      if (inNext < next.map.size) for (const n of next.map.keys()) if (!consider(n)) return false;
    }
    this.base = next;
    this.own = own;
    return true;
  }

  get version(): string {
    return this.sum.toString();
  }
}
