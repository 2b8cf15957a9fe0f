// The xDS resource cache: per proxy (node id), per type URL, name -> encoded
// resource (version + bytes). It knows nothing about services or policies, nor
// about gRPC: the ADS server watches it through a narrow interface.
import type { EncodedResource } from '../../envoy-protos';
import type { TypeUrl } from './type-urls';

export type ResourceSet = ReadonlyMap<string, EncodedResource>;

/** Resources for some types of one proxy; a type left out is left unchanged. */
export type SnapshotUpdate = Partial<Record<TypeUrl, Iterable<EncodedResource>>>;

export type CacheWatcher = (changedTypes: readonly TypeUrl[]) => void;

const EMPTY: ResourceSet = new Map();

function sameSet(a: ResourceSet, b: ResourceSet): boolean {
  if (a.size !== b.size) return false;
  for (const [name, r] of a) {
    if (b.get(name)?.version !== r.version) return false;
  }
  return true;
}

/**
 * Holds what each proxy should have. Writers replace a proxy's set for a type
 * (or patch it, for the endpoint fast path); watchers hear which types changed.
 * Encoded resources are shared by reference between proxies, never copied.
 */
export class XdsCache {
  private readonly proxies = new Map<string, Map<TypeUrl, ResourceSet>>();
  private readonly watchers = new Map<string, Set<CacheWatcher>>();

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
    const changed: TypeUrl[] = [];
    for (const [typeUrl, resources] of Object.entries(update) as [TypeUrl, Iterable<EncodedResource>][]) {
      const next = new Map<string, EncodedResource>();
      for (const r of resources) {
        if (r.typeUrl !== typeUrl)
          throw new Error(`resource ${r.name} has type ${r.typeUrl}, not ${typeUrl}`);
        if (next.has(r.name)) throw new Error(`duplicate ${typeUrl} resource name ${r.name}`);
        next.set(r.name, r);
      }
      if (!sameSet(types.get(typeUrl) ?? EMPTY, next)) changed.push(typeUrl);
      types.set(typeUrl, next);
    }
    this.notify(nodeId, changed);
    return changed;
  }

  /** Upserts and removes some resources of one type (the endpoint fast path). */
  patch(
    nodeId: string,
    typeUrl: TypeUrl,
    upsert: Iterable<EncodedResource>,
    remove: Iterable<string> = [],
  ): boolean {
    const current = this.get(nodeId, typeUrl);
    const next = new Map(current);
    for (const r of upsert) next.set(r.name, r);
    for (const name of remove) next.delete(name);
    return this.set(nodeId, { [typeUrl]: next.values() }).length > 0;
  }

  /** Forgets a proxy's resources (watchers hear every type it had). */
  delete(nodeId: string): void {
    const types = this.proxies.get(nodeId);
    if (!types) return;
    this.proxies.delete(nodeId);
    this.notify(
      nodeId,
      [...types.entries()].filter(([, set]) => set.size > 0).map(([t]) => t),
    );
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

  private notify(nodeId: string, changed: readonly TypeUrl[]): void {
    if (changed.length === 0) return;
    for (const w of this.watchers.get(nodeId) ?? []) w(changed);
  }
}
