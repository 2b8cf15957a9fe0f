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

/** Indexes the objects of one revision. */
export function buildMeshSnapshot(revision: number, objects: readonly MeshObject[]): MeshSnapshot {
  let mesh = defaultMesh();
  const services = new Map<string, Service>();
  const instances = new Map<string, Instance[]>();
  const routes = new Map<string, TrafficRoute[]>();
  const policies = new Map<string, DestinationPolicy[]>();
  const authz = new Map<string, AuthorizationPolicy[]>();
  for (const o of [...objects].sort(byName)) {
    switch (o.kind) {
      case 'Mesh':
        mesh = o;
        break;
      case 'Service':
        services.set(o.name, o);
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
  return {
    revision,
    mesh,
    services,
    instancesByService: instances,
    routesByService: routes,
    policiesByService: policies,
    authorizationByService: authz,
    objects,
  };
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
