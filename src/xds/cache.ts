// The xDS resource cache: per proxy (node id), per type URL, name -> encoded
// resource (version + bytes). It knows nothing about services or policies, nor
// about gRPC: the ADS server watches it through a narrow interface.
//
// At a thousand proxies most of what each one holds is the same: the outbound
// clusters, the endpoints. A writer hands the cache a proxy's resources of a
// type as parts (arrays); an array handed for many proxies is indexed once and
// shared, and the difference between two shared parts is computed once, so a
// change costs each proxy only the names that changed. Watchers hear exactly
// those names, with what they were and what they are.
import type { EncodedResource } from '../../envoy-protos';
import type { TypeUrl } from './type-urls';
import { type EntryHash, type SharedBase, sumOf } from './version';

export type ResourceSet = ReadonlyMap<string, EncodedResource>;

/**
 * A proxy's resources of one type: a list, or several lists whose names do not
 * overlap. Pass the same array for every proxy that shares it: it is indexed and
 * diffed once. A type left out of an update is left unchanged.
 */
export type ResourceInput =
  | Iterable<EncodedResource>
  | { readonly parts: readonly (readonly EncodedResource[])[] };
export type SnapshotUpdate = Partial<Record<TypeUrl, ResourceInput>>;

/** One resource's change: undefined before = added, undefined after = removed. */
export interface ResourceChange {
  readonly before?: EncodedResource;
  readonly after?: EncodedResource;
}
export type TypeChanges = ReadonlyMap<string, ResourceChange>;

/**
 * A change of a proxy's set that is one shared list replaced by its successor: the same
 * changes map for every proxy that held `from`, so what follows from it is worked out once.
 */
export interface SharedTransition {
  readonly from: SharedBase;
  /** Undefined once no proxy holds that list any more (held weakly: see Part.changesTo). */
  readonly to: SharedBase | undefined;
  /** Every change is a new version of a resource both lists hold: no name added or removed. */
  readonly modifiesOnly: boolean;
  /** The changed resources as `to` holds them, in the changes map's order (modifiesOnly only). */
  readonly after: readonly EncodedResource[];
  /** The versions `from` held of each of `after` (modifiesOnly only). */
  readonly beforeVersions: readonly string[];
}

const transitions = new WeakMap<TypeChanges, SharedTransition>();

/** The shared transition a changes map stands for, when it is one (see SharedTransition). */
export function transitionOf(changes: TypeChanges): SharedTransition | undefined {
  return transitions.get(changes);
}

/**
 * The identity of each shared list's set of names, by the list's map (NameSet holds maps as its
 * base): a token, not the Part, so that a set of names based on an old list does not keep it.
 */
const keySets = new WeakMap<ReadonlyMap<string, unknown>, object>();

/**
 * Whether `map` (a shared list's, as NameSet.coveredBase() returns it) has exactly the names of
 * `part`: O(1), from the key-set identity a list passes on to a successor that only changes
 * versions. False when unknown.
 */
export function sameNames(map: ReadonlyMap<string, unknown>, part: SharedBase): boolean {
  if (map === part.map) return true;
  const a = keySets.get(map);
  return a !== undefined && part instanceof Part && a === part.keySet();
}
export type CacheWatcher = (changes: ReadonlyMap<TypeUrl, TypeChanges>) => void;

/** An indexed list (immutable once built). */
class Part implements SharedBase {
  readonly map = new Map<string, EncodedResource>();
  /** The last diff computed from this part to a successor. */
  diffTo?: { to: WeakRef<SharedBase>; names: readonly string[] };

  constructor(
    readonly list: readonly EncodedResource[],
    typeUrl: TypeUrl,
  ) {
    for (const r of list) {
      if (r.typeUrl !== typeUrl) throw new Error(`resource ${r.name} has type ${r.typeUrl}, not ${typeUrl}`);
      if (this.map.has(r.name)) throw new Error(`duplicate ${typeUrl} resource name ${r.name}`);
      this.map.set(r.name, r);
    }
  }

  /** A set of this part alone (sets never change: one serves every proxy whose set this is). */
  alone?: LayeredSet;

  /** The identity of this list's set of names: shared with a predecessor or successor of the same names. */
  keySet(): object {
    let k = keySets.get(this.map);
    if (!k) {
      k = {};
      keySets.set(this.map, k);
    }
    return k;
  }

  private summed?: EntryHash;

  /** The sum of the entries' hashes (VersionSum lanes), computed once. */
  sum(): EntryHash {
    this.summed ??= sumOf(this.list);
    return this.summed;
  }

  /** The last changes computed from this part to a successor (shared by every proxy that has both). */
  // The memos hold their successor weakly: a list kept by a proxy that lags (or by a set of names
  // based on it) must not keep every list made after it, one build after another.
  changesTo?: { to: WeakRef<Part>; changes: ReadonlyMap<string, ResourceChange> };

  /** What changed between this part and `to`, name by name (memoized for the latest `to`). */
  changes(to: Part): ReadonlyMap<string, ResourceChange> {
    if (this.changesTo?.to.deref() === to) return this.changesTo.changes;
    const changes = new Map<string, ResourceChange>();
    const after: EncodedResource[] = [];
    const beforeVersions: string[] = [];
    let modifiesOnly = true;
    for (const n of this.namesChangedTo(to)) {
      const c = { before: this.map.get(n), after: to.map.get(n) };
      changes.set(n, c);
      if (c.before && c.after) {
        after.push(c.after);
        beforeVersions.push(c.before.version);
      } else modifiesOnly = false;
    }
    // Only new versions: `to` has exactly this list's names (unless it was given its own identity).
    if (modifiesOnly && to.map.size === this.map.size && !keySets.has(to.map))
      keySets.set(to.map, this.keySet());
    const toRef = new WeakRef(to);
    transitions.set(changes, {
      from: this,
      get to() {
        return toRef.deref();
      },
      modifiesOnly,
      after: modifiesOnly ? after : [],
      beforeVersions: modifiesOnly ? beforeVersions : [],
    });
    this.changesTo = { to: toRef, changes };
    return changes;
  }

  /** Names whose resource differs between this part and `to` (memoized for the latest `to`). */
  namesChangedTo(to: SharedBase): readonly string[] {
    if (this.diffTo?.to.deref() === to) return this.diffTo.names;
    const names: string[] = [];
    for (const [n, r] of to.map) if (this.map.get(n)?.version !== r.version) names.push(n);
    for (const n of this.map.keys()) if (!to.map.has(n)) names.push(n);
    this.diffTo = { to: new WeakRef(to), names };
    return names;
  }
}

/** Parts at least this large are shared and diffed by identity; smaller ones are compared name by name. */
const SHARE_AT = 16;

/** The union of a proxy's parts of one type; read like a Map. */
class LayeredSet implements ResourceSet {
  readonly size: number;

  constructor(readonly parts: readonly Part[]) {
    let size = 0;
    for (const p of parts) size += p.map.size;
    this.size = size;
  }

  get(name: string): EncodedResource | undefined {
    for (const p of this.parts) {
      const r = p.map.get(name);
      if (r) return r;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  // Iterators chain the parts' own (no generator: these run per resource, per proxy, per push).
  entries(): MapIterator<[string, EncodedResource]> {
    return chain(this.parts, (p) => p.map.entries());
  }

  keys(): MapIterator<string> {
    return chain(this.parts, (p) => p.map.keys());
  }

  values(): MapIterator<EncodedResource> {
    return chain(this.parts, (p) => p.map.values());
  }

  [Symbol.iterator](): MapIterator<[string, EncodedResource]> {
    return this.entries();
  }

  forEach(fn: (value: EncodedResource, key: string, map: ResourceSet) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

const EMPTY = new LayeredSet([]);
const NO_CHANGES: ReadonlyMap<string, ResourceChange> = new Map();

/** The items of each part's iterator in turn; a single part's iterator itself. */
function chain<T>(parts: readonly Part[], of: (p: Part) => MapIterator<T>): MapIterator<T> {
  if (parts.length === 1) return of(parts[0]);
  let i = 0;
  let it: Iterator<T> | undefined;
  const self = {
    next(): IteratorResult<T, undefined> {
      for (;;) {
        if (!it) {
          if (i >= parts.length) return { done: true, value: undefined };
          it = of(parts[i++]);
        }
        const r = it.next();
        if (!r.done) return r;
        it = undefined;
      }
    },
    [Symbol.iterator]() {
      return self;
    },
  };
  return self as unknown as MapIterator<T>;
}

/**
 * The shared parts of a set (a proxy's resources of one type), for a caller that
 * works part by part (a first response sends whole parts; their sums are memoized).
 */
export function partsOf(set: ResourceSet): readonly SharedBase[] | undefined {
  return set instanceof LayeredSet ? set.parts : undefined;
}

/**
 * The largest of a set's parts, as a map that never changes: what most
 * proxies hold of a type, for them to keep only their differences from it
 * (VersionMap.rebase).
 */
export function largestPart(set: ResourceSet): SharedBase | undefined {
  if (!(set instanceof LayeredSet)) return undefined;
  let best: Part | undefined;
  for (const p of set.parts) if (!best || p.map.size > best.map.size) best = p;
  return best;
}

/**
 * Holds what each proxy should have. Writers replace a proxy's set for a type
 * (or patch it, for the endpoint fast path); watchers hear which names changed.
 * Encoded resources are shared by reference between proxies, never copied.
 */
export class XdsCache {
  private readonly proxies = new Map<string, Map<TypeUrl, LayeredSet>>();
  private readonly watchers = new Map<string, Set<CacheWatcher>>();
  private readonly shared = new WeakMap<readonly EncodedResource[], Part>();

  /** The proxy's current resources of a type (empty when none were set). */
  get(nodeId: string, typeUrl: TypeUrl): ResourceSet {
    return this.proxies.get(nodeId)?.get(typeUrl) ?? EMPTY;
  }

  has(nodeId: string): boolean {
    return this.proxies.has(nodeId);
  }

  nodeIds(): string[] {
    return [...this.proxies.keys()];
  }

  /** Replaces the given types' resources of one proxy; watchers hear the types that changed. */
  set(nodeId: string, update: SnapshotUpdate): TypeUrl[] {
    let types = this.proxies.get(nodeId);
    if (!types) {
      types = new Map();
      this.proxies.set(nodeId, types);
    }
    const changes = new Map<TypeUrl, TypeChanges>();
    // Nobody watches (a proxy whose stream is starting): whether a type changed is enough.
    const watched = this.watchers.has(nodeId);
    for (const key in update) {
      const typeUrl = key as TypeUrl;
      const input = update[typeUrl];
      if (input === undefined) continue;
      const next = this.layered(typeUrl, input);
      const before = types.get(typeUrl) ?? EMPTY;
      const diff = changed(before, next, !watched);
      types.set(typeUrl, next);
      if (diff.size > 0) changes.set(typeUrl, diff);
    }
    this.notify(nodeId, changes);
    return [...changes.keys()];
  }

  /** Upserts and removes some resources of one type. */
  patch(
    nodeId: string,
    typeUrl: TypeUrl,
    upsert: Iterable<EncodedResource>,
    remove: Iterable<string> = [],
  ): boolean {
    const next = new Map(this.get(nodeId, typeUrl));
    for (const r of upsert) next.set(r.name, r);
    for (const name of remove) next.delete(name);
    return this.set(nodeId, { [typeUrl]: next.values() }).length > 0;
  }

  /** Forgets a proxy's resources (watchers hear every resource it had as removed). */
  delete(nodeId: string): void {
    const types = this.proxies.get(nodeId);
    if (!types) return;
    this.proxies.delete(nodeId);
    const changes = new Map<TypeUrl, TypeChanges>();
    for (const [t, set] of types) {
      if (set.size === 0) continue;
      changes.set(t, new Map([...set.entries()].map(([n, r]) => [n, { before: r }])));
    }
    this.notify(nodeId, changes);
  }

  /** Calls `watcher` after each change of the proxy's resources; returns the unwatch function. */
  watch(nodeId: string, watcher: CacheWatcher): () => void {
    let set = this.watchers.get(nodeId);
    if (!set) {
      set = new Set();
      this.watchers.set(nodeId, set);
    }
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(nodeId) === set) this.watchers.delete(nodeId);
    };
  }

  private layered(typeUrl: TypeUrl, input: ResourceInput): LayeredSet {
    // One shared list (every proxy's endpoints on every build): its set is made once, with the part.
    if (Array.isArray(input) && input.length >= SHARE_AT) {
      const p = this.shared.get(input);
      if (p) {
        p.alone ??= new LayeredSet([p]);
        return p.alone;
      }
    }
    const lists = 'parts' in input ? input.parts : [Array.isArray(input) ? input : [...input]];
    const parts: Part[] = [];
    for (const list of lists) {
      if (list.length === 0) continue;
      if (list.length < SHARE_AT) {
        parts.push(new Part(list, typeUrl));
        continue;
      }
      let p = this.shared.get(list);
      if (!p) {
        p = new Part(list, typeUrl);
        this.shared.set(list, p);
      }
      parts.push(p);
    }
    // Names must not repeat across parts: look the smaller parts' names up in the others.
    for (let i = 0; i < parts.length; i++) {
      for (let j = i + 1; j < parts.length; j++) {
        const [small, big] =
          parts[i].map.size <= parts[j].map.size ? [parts[i], parts[j]] : [parts[j], parts[i]];
        for (const n of small.map.keys())
          if (big.map.has(n)) throw new Error(`duplicate ${typeUrl} resource name ${n}`);
      }
    }
    return new LayeredSet(parts);
  }

  private notify(nodeId: string, changes: ReadonlyMap<TypeUrl, TypeChanges>): void {
    if (changes.size === 0) return;
    for (const w of this.watchers.get(nodeId) ?? []) w(changes);
  }
}

/** The names whose resource differs between two sets, with before and after. */
function changed(a: LayeredSet, b: LayeredSet, firstOnly = false): ReadonlyMap<string, ResourceChange> {
  if (a === b) return NO_CHANGES;
  if (a.parts.length === 1 && b.parts.length === 1 && !firstOnly) {
    const [pa, pb] = [a.parts[0], b.parts[0]];
    if (pa === pb) return NO_CHANGES;
    if (pa.list.length >= SHARE_AT && pb.list.length >= SHARE_AT) return pa.changes(pb);
  }
  const out = new Map<string, ResourceChange>();
  const consider = (n: string) => {
    if (out.has(n) || (firstOnly && out.size > 0)) return;
    const before = a.get(n);
    const after = b.get(n);
    if (before === after || (before && after && before.version === after.version)) return;
    out.set(n, { before, after });
  };
  if (a.parts.length === b.parts.length) {
    // Part by part: the same shared part contributes nothing; two shared parts their memoized diff.
    const sharedPairs: [Part, Part][] = [];
    const compared: Part[] = [];
    for (let i = 0; i < a.parts.length; i++) {
      const pa = a.parts[i];
      const pb = b.parts[i];
      if (pa === pb) continue;
      if (pa.list.length >= SHARE_AT && pb.list.length >= SHARE_AT) sharedPairs.push([pa, pb]);
      else {
        compared.push(pa, pb);
        for (const n of pa.map.keys()) consider(n);
        for (const n of pb.map.keys()) consider(n);
      }
    }
    // One shared pair changed, and the small parts compared name by name (a proxy's own) did not:
    // unless a name moved between those and the pair, every proxy with this pair gets the same
    // (read-only) changes, computed once.
    if (out.size === 0 && sharedPairs.length === 1 && !firstOnly) {
      const [pa, pb] = sharedPairs[0];
      const changes = pa.changes(pb);
      if (!compared.some((p) => [...p.map.keys()].some((n) => changes.has(n)))) return changes;
    }
    for (const [pa, pb] of sharedPairs) for (const n of pa.namesChangedTo(pb)) consider(n);
    return out;
  }
  for (const n of a.keys()) consider(n);
  for (const n of b.keys()) consider(n);
  return out;
}
