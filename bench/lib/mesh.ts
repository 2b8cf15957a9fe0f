// The benchmark mesh and the changes made to it, each with a marker: bytes that
// appear in an xDS response exactly when it reflects that change.
//
// meshN: N services (svc-0000...), protocol http, ports 9000..9009 (ten outbound
// listeners and route configurations, N/10 virtual hosts each); I instances per
// service (svc-0000-0...) on 127.1.x.y:15006. Proxy j is the sidecar of
// instance (j mod N, j div N): its node id is that instance's name, so that the
// instance it registers from its node metadata on connect is the same object
// (labelled, not added): the mesh keeps N x I instances.
//
// Unscoped by default: no Service has spec.calls, so every proxy sees every
// service. With `calls: C` (S5) every Service gets spec.calls, C names: svc-0000
// (a dependency every service shares) and the next C-1 services after itself,
// cyclically; svc-0000 calls the next C. Its proxies then see C services, and an
// instance change of svc-0000 reaches every proxy except svc-0000's own.
import { encodeResource, envoyRoot } from '../../envoy-protos';
import { outboundClusterName } from '../../src/translator/names';
import type { ProxySpec } from './messages';
import { countOccurrences, stringFieldBytes } from './proto';

export const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

export const INBOUND_PORT = 15006;

export interface MeshShape {
  readonly services: number;
  readonly instancesPerService: number;
  /**
   * Scoping: how many services each service calls (its spec.calls, see callsOf); at most
   * services - 1. Absent or 0: no spec.calls, every proxy sees every service.
   */
  readonly calls?: number;
}

/** The number of services each service calls, or 0 when the mesh is unscoped. */
export function callsPerService(m: MeshShape): number {
  return Math.max(0, Math.min(m.calls ?? 0, m.services - 1));
}

export const serviceName = (i: number): string => `svc-${String(i).padStart(4, '0')}`;
export const servicePort = (i: number): number => 9000 + (i % 10);
export const instanceName = (i: number, k: number): string => `${serviceName(i)}-${k}`;

function addressOf(prefix: number, n: number): string {
  return `127.${prefix + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

export function instanceAddress(m: MeshShape, i: number, k: number): string {
  return addressOf(1, i * m.instancesPerService + k + 1);
}

/**
 * Service i's spec.calls in a scoped mesh (undefined when unscoped): svc-0000 (a dependency
 * of every service, its own peers included, so that a change of it reaches every proxy) and
 * then the services after i (i+1, i+2, ... mod N), skipping i and svc-0000:
 * callsPerService(m) distinct names. svc-0000 calls itself and svc-0001..svc-(C-1).
 */
export function callsOf(m: MeshShape, i: number): string[] | undefined {
  const c = callsPerService(m);
  if (c === 0) return undefined;
  const out: number[] = [0];
  for (let d = 1; out.length < c; d++) {
    const j = (i + d) % m.services;
    if (j !== i && j !== 0) out.push(j);
  }
  return out.map(serviceName);
}

/** The services whose proxies do not get service `target` in their view (none when unscoped). */
export function servicesNotCalling(m: MeshShape, target: number): string[] {
  if (callsPerService(m) === 0) return [];
  const name = serviceName(target);
  const out: string[] = [];
  for (let i = 0; i < m.services; i++) if (!callsOf(m, i)!.includes(name)) out.push(serviceName(i));
  return out;
}

/** Every Service and Instance document of the mesh, in apply order. */
export function meshDocuments(m: MeshShape): Record<string, unknown>[] {
  const docs: Record<string, unknown>[] = [];
  for (let i = 0; i < m.services; i++) {
    const calls = callsOf(m, i);
    docs.push({
      kind: 'Service',
      name: serviceName(i),
      spec: { protocol: 'http', port: servicePort(i), ...(calls ? { calls } : {}) },
    });
  }
  for (let i = 0; i < m.services; i++) {
    for (let k = 0; k < m.instancesPerService; k++) {
      docs.push({
        kind: 'Instance',
        name: instanceName(i, k),
        spec: { service: serviceName(i), address: instanceAddress(m, i, k), port: INBOUND_PORT },
      });
    }
  }
  return docs;
}

/** The simulated proxies: the first `count` instances, service-major (one per service first). */
export function proxySpecs(m: MeshShape, count: number, tokens: ReadonlyMap<string, string>): ProxySpec[] {
  const out: ProxySpec[] = [];
  for (let j = 0; j < count; j++) {
    const i = j % m.services;
    const k = Math.floor(j / m.services);
    out.push({
      nodeId: instanceName(i, k),
      service: serviceName(i),
      address: instanceAddress(m, i, k),
      token: tokens.get(serviceName(i)),
    });
  }
  return out;
}

export interface Change {
  /** What the harness applies. */
  readonly method: 'PUT' | 'POST';
  readonly path: string;
  readonly body: unknown;
  readonly typeUrl: string;
  readonly marker: Buffer;
  readonly resource?: string;
  readonly expect: number;
  /**
   * Services whose proxies do not get the changed resource (a scoped mesh): they are not
   * waited for. Every other connected proxy must ACK the marker.
   */
  readonly exceptServices?: readonly string[];
  readonly what: string;
}

/**
 * The numbers of a run's instance changes (instanceChange's n), never one twice: a number used
 * again moves its instance to the address it already has (unless changed in between), a change
 * the API applies as unchanged and pushes to nobody; its watch then waits for the next change of
 * that cluster.
 */
export class ChangeNumbers {
  private readonly used = new Set<number>();
  private last = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /** The next unused number counting up (spreads over services and instances in turn). */
  next(): number {
    while (this.used.has(++this.last));
    this.used.add(this.last);
    return this.last;
  }

  /** An unused number drawn from 1..1e6 (some service's change, unrelated to the last one). */
  drawn(): number {
    for (let tries = 0; tries < 1000; tries++) {
      const n = 1 + Math.floor(this.random() * 1e6);
      if (this.used.has(n)) continue;
      this.used.add(n);
      return n;
    }
    return this.next();
  }
}

/**
 * Change n: instance (i, k) of a spread-out service moves to a new, unique
 * address 127.2.x.y. Marker: the SocketAddress.address field (tag, length,
 * text) in that service's ClusterLoadAssignment.
 */
export function instanceChange(m: MeshShape, n: number, proxies: number): Change {
  const i = (n * 7919) % m.services;
  // Instances without a simulated sidecar first (k >= proxies per service), cycling.
  const firstFree = Math.min(m.instancesPerService - 1, Math.ceil(proxies / m.services));
  const free = m.instancesPerService - firstFree;
  const k = firstFree + (Math.floor(n / m.services) % Math.max(1, free));
  return instanceChangeOf(i, k, n);
}

/**
 * Change n of S5: an instance of svc-0000, the service every other one calls in a scoped mesh,
 * so every proxy but svc-0000's own gets it (unscoped: every proxy). Cycles over svc-0000's
 * instances without a simulated sidecar (k >= ceil(proxies / N)) when there are any, else over
 * all of them. New unique address and marker as in instanceChange.
 */
export function commonDependencyChange(m: MeshShape, n: number, proxies: number): Change {
  const sidecars = Math.ceil(proxies / m.services); // instances of svc-0000 with a simulated sidecar
  const free = m.instancesPerService - sidecars;
  const k = free > 0 ? sidecars + (n % free) : n % m.instancesPerService;
  const ch = instanceChangeOf(0, k, n);
  const exceptServices = servicesNotCalling(m, 0);
  return exceptServices.length > 0 ? { ...ch, exceptServices } : ch;
}

function instanceChangeOf(i: number, k: number, n: number): Change {
  const address = addressOf(2, n);
  const svc = serviceName(i);
  return {
    method: 'PUT',
    path: `/v1/instances/${instanceName(i, k)}`,
    body: { kind: 'Instance', name: instanceName(i, k), spec: { service: svc, address, port: INBOUND_PORT } },
    typeUrl: EDS,
    marker: stringFieldBytes(2, address),
    resource: outboundClusterName(svc, servicePort(i)),
    expect: 1,
    what: `${instanceName(i, k)} -> ${address}`,
  };
}

/** The bytes of CircuitBreakers.Thresholds{max_connections: {value}} as the translator writes them. */
function thresholdsBytes(maxConnections: number): Buffer {
  const t = envoyRoot().lookupType('envoy.config.cluster.v3.CircuitBreakers.Thresholds');
  return Buffer.from(
    t.encode(t.fromObject({ priority: 'DEFAULT', max_connections: { value: maxConnections } })).finish(),
  );
}

/**
 * A change of every service cluster at once: one apply of N DestinationPolicy
 * documents (one per service) with circuitBreaker.maxConnections = value.
 * Marker: the encoded Thresholds message; every proxy must ACK it N times.
 */
export function meshWideChange(m: MeshShape, value: number): Change {
  const docs = [];
  for (let i = 0; i < m.services; i++) {
    docs.push({
      kind: 'DestinationPolicy',
      name: `bench-${serviceName(i)}`,
      spec: { service: serviceName(i), circuitBreaker: { maxConnections: value } },
    });
  }
  return {
    method: 'POST',
    path: '/v1/apply',
    body: docs,
    typeUrl: CDS,
    marker: thresholdsBytes(value),
    expect: m.services,
    what: `${m.services} DestinationPolicies, maxConnections ${value}`,
  };
}

/** Proves the markers match what the encoder produces (a broken marker would only show as timeouts). */
export function selfCheckMarkers(): void {
  const m: MeshShape = { services: 3, instancesPerService: 2 };
  const ch = instanceChange(m, 5, 3);
  const address = (ch.body as { spec: { address: string } }).spec.address;
  const cla = encodeResource(EDS, {
    cluster_name: ch.resource,
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address, port_value: INBOUND_PORT } } } },
          { endpoint: { address: { socket_address: { address: `${address}0`, port_value: INBOUND_PORT } } } },
        ],
      },
    ],
  });
  if (countOccurrences(cla.value, ch.marker) !== 1)
    throw new Error('self-check: the instance marker does not match');
  const wide = meshWideChange(m, 1_000_123);
  const cluster = encodeResource(CDS, {
    name: 'outbound|9000||svc-0000',
    type: 'EDS',
    eds_cluster_config: {
      eds_config: { ads: {}, resource_api_version: 'V3' },
      service_name: 'outbound|9000||svc-0000',
    },
    circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_connections: { value: 1_000_123 } }] },
  });
  if (countOccurrences(cluster.value, wide.marker) !== 1)
    throw new Error('self-check: the mesh-wide marker does not match');
  // Scoping: C distinct services, svc-0000 first, never itself (but for svc-0000).
  const scoped: MeshShape = { services: 7, instancesPerService: 2, calls: 3 };
  for (let i = 0; i < scoped.services; i++) {
    const calls = callsOf(scoped, i)!;
    if (
      calls.length !== 3 ||
      new Set(calls).size !== 3 ||
      (i > 0 && calls.includes(serviceName(i))) ||
      calls[0] !== serviceName(0)
    )
      throw new Error(`self-check: callsOf(${i}) = ${calls.join(',')}`);
  }
  if (servicesNotCalling(scoped, 0).length !== 0) throw new Error('self-check: every service calls svc-0000');
}
