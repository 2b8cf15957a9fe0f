// A mesh snapshot: every object at one revision, indexed for translation, and the
// identity of one proxy read from its node metadata. Pure: no I/O, no clock.
import type {
  AuthorizationPolicy,
  DestinationPolicy,
  Instance,
  Mesh,
  MeshObject,
  Service,
  TrafficRoute,
} from '../model';
import { defaultMesh } from '../model';

export interface MeshSnapshot {
  readonly revision: number;
  readonly mesh: Mesh;
  readonly services: ReadonlyMap<string, Service>;
  /** Every instance of a service (any health), by name. */
  readonly instancesByService: ReadonlyMap<string, readonly Instance[]>;
  /** TrafficRoutes per target service, by name. */
  readonly routesByService: ReadonlyMap<string, readonly TrafficRoute[]>;
  /** DestinationPolicies per service, by name (the first one applies). */
  readonly policiesByService: ReadonlyMap<string, readonly DestinationPolicy[]>;
  readonly authorizationByService: ReadonlyMap<string, readonly AuthorizationPolicy[]>;
  /** Every object, for provenance and warnings. */
  readonly objects: readonly MeshObject[];
}

function push<T>(m: Map<string, T[]>, key: string, v: T): void {
  const list = m.get(key);
  if (list) list.push(v);
  else m.set(key, [v]);
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A map of lists with each list in name order, and the keys in the order of their lists' first names. */
function sortedGroups<T extends { name: string }>(m: Map<string, T[]>): Map<string, T[]> {
  for (const list of m.values()) if (list.length > 1) list.sort(byName);
  return byFirstName(m);
}

/** The map with its keys in the order of their (sorted, non-empty) lists' first names. */
function byFirstName<T extends { name: string }>(m: ReadonlyMap<string, readonly T[]>): Map<string, T[]> {
  return new Map([...m].sort((x, y) => byName(x[1][0], y[1][0]))) as Map<string, T[]>;
}

/**
 * Indexes the objects of one revision. Every list is in name order, and so are the keys of every
 * map (services by name; the per-service maps by the first name of their lists): the same order
 * whatever the order of `objects`. Sorted per kind and per list, not all objects at once (a mesh
 * of 1,000 services has 6,000 objects, and this runs on every build).
 */
export function buildMeshSnapshot(revision: number, objects: readonly MeshObject[]): MeshSnapshot {
  let mesh: Mesh | undefined;
  const serviceList: Service[] = [];
  const instances = new Map<string, Instance[]>();
  const routes = new Map<string, TrafficRoute[]>();
  const policies = new Map<string, DestinationPolicy[]>();
  const authz = new Map<string, AuthorizationPolicy[]>();
  for (const o of objects) {
    switch (o.kind) {
      case 'Mesh':
        // The last by name, as when every object is taken in name order.
        if (!mesh || byName(o, mesh) >= 0) mesh = o;
        break;
      case 'Service':
        serviceList.push(o);
        break;
      case 'Instance':
        push(instances, o.spec.service, o);
        break;
      case 'TrafficRoute':
        push(routes, o.spec.service, o);
        break;
      case 'DestinationPolicy':
        push(policies, o.spec.service, o);
        break;
      case 'AuthorizationPolicy':
        push(authz, o.spec.service, o);
        break;
    }
  }
  serviceList.sort(byName);
  const services = new Map<string, Service>();
  for (const svc of serviceList) services.set(svc.name, svc);
  return {
    revision,
    mesh: mesh ?? defaultMesh(),
    services,
    instancesByService: sortedGroups(instances),
    routesByService: sortedGroups(routes),
    policiesByService: sortedGroups(policies),
    authorizationByService: sortedGroups(authz),
    objects,
  };
}
/** One instance's change between two snapshots: what it was and what it is (undefined: none). */
export interface InstanceChange {
  readonly before?: Instance;
  readonly after?: Instance;
}

/**
 * The snapshot after changes of instances only: `previous` with the lists of the services the
 * changes touch made again, and everything else its own (the same maps and lists, so that the
 * translator sees at once what did not change). `objects` is every object now. Equal to
 * buildMeshSnapshot(revision, objects), in content and order, for a fraction of the work under
 * churn (a few instances of 5,000 in a build).
 */
export function withInstanceChanges(
  previous: MeshSnapshot,
  revision: number,
  objects: readonly MeshObject[],
  changes: Iterable<InstanceChange>,
): MeshSnapshot {
  const touched = new Map<string, { gone: Set<string>; added: Instance[] }>();
  const of = (service: string) => {
    let t = touched.get(service);
    if (!t) {
      t = { gone: new Set(), added: [] };
      touched.set(service, t);
    }
    return t;
  };
  for (const c of changes) {
    if (c.before === c.after) continue;
    if (c.before) of(c.before.spec.service).gone.add(c.before.name);
    if (c.after) of(c.after.spec.service).added.push(c.after);
  }
  if (touched.size === 0) return { ...previous, revision, objects };
  let groups = new Map(previous.instancesByService);
  // The keys are in the order of their lists' first names: kept unless a first name changes.
  let reorder = false;
  for (const [service, t] of touched) {
    const old = groups.get(service) ?? [];
    const list = old.filter((i) => !t.gone.has(i.name));
    list.push(...t.added);
    if (list.length > 1) list.sort(byName);
    if (list.length === 0) groups.delete(service);
    else {
      if (old.length === 0 || old[0].name !== list[0].name) reorder = true;
      groups.set(service, list);
    }
  }
  if (reorder) groups = byFirstName(groups);
  return { ...previous, revision, instancesByService: groups, objects };
}

/** Who a proxy is, from its bootstrap's node metadata (ARCHITECTURE.md, the sidecar model). */
export interface ProxyIdentity {
  readonly nodeId: string;
  /** The service whose instance this sidecar fronts; undefined for a caller-only proxy. */
  readonly service?: string;
  /** The pod's address: inbound listener, and outbound listeners unless outboundAddress is set. */
  readonly address: string;
  readonly outboundAddress: string;
  readonly inboundPort?: number;
  readonly appPort?: number;
  /** Where the app listens (default: the pod address). */
  readonly appAddress: string;
  /** Ports on the pod address that outbound listeners must not take (admin, app). */
  readonly reservedPorts: readonly number[];
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly subZone?: string };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function port(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** Reads a proxy's identity from node metadata; missing fields get safe defaults. */
export function proxyIdentity(nodeId: string, metadata: Readonly<Record<string, unknown>>): ProxyIdentity {
  const address = str(metadata.address) ?? '0.0.0.0';
  const appPort = port(metadata.appPort);
  const adminPort = port(metadata.adminPort);
  const loc = metadata.locality as Record<string, unknown> | undefined;
  const locality =
    loc && typeof loc === 'object'
      ? { region: str(loc.region), zone: str(loc.zone), subZone: str(loc.subZone) }
      : undefined;
  return {
    nodeId,
    service: str(metadata.service),
    address,
    outboundAddress: str(metadata.outboundAddress) ?? address,
    inboundPort: port(metadata.inboundPort),
    appPort,
    appAddress: str(metadata.appAddress) ?? address,
    reservedPorts: [appPort, adminPort].filter((p): p is number => p !== undefined),
    locality,
  };
}
