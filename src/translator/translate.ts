// Translates a mesh snapshot and one proxy's identity into its Envoy Listeners,
// Clusters, RouteConfigurations and ClusterLoadAssignments. Pure: no I/O, no
// clock. Pieces shared by many proxies (clusters, route configurations, CLAs)
// are built once per snapshot and returned as the same objects, so that callers
// can encode each once. Mapping: shared/design/MESH-MODEL.md.
import {
  type DestinationPolicy,
  type Instance,
  type MeshObject,
  type MtlsMode,
  parseDurationMs,
  type Service,
  type TrafficRoute,
} from '../model';
import {
  adsConfigSource,
  appProtocolOptions,
  duration,
  FILTER,
  fractionalPercent,
  headerMatcher,
  http2ProtocolOptions,
  type Obj,
  routerFilter,
  socketAddress,
  TYPE,
  wrap,
} from './envoy';
import {
  BLACKHOLE_CLUSTER,
  inboundClusterName,
  inboundListenerName,
  inboundRouteName,
  outboundClusterName,
  outboundListenerName,
  outboundRouteName,
  statPrefix,
  subsetName,
  TRACING_CLUSTER,
} from './names';
import { accessLogs, tracing, tracingCluster } from './observability';
import {
  downstreamTlsSocket,
  httpRbacFilters,
  httpRbacPerRoute,
  networkRbacFilters,
  serviceSpiffeId,
  upstreamTlsSocket,
} from './security';
import type { MeshSnapshot, ProxyIdentity } from './snapshot';

export interface ProxyResources {
  /** The outbound clusters of the proxy's view, first in `clusters`: one array shared by the view. */
  readonly outbound: Obj[];
  /** The service whose identity the proxy presents (its IDENTITY_SECRET), if it has one. */
  readonly identity?: string;
  readonly listeners: Obj[];
  readonly clusters: Obj[];
  readonly routes: Obj[];
  readonly endpoints: Obj[];
}

/** Which of a proxy's resource lists. */
export type ResourceKind = 'listeners' | 'clusters' | 'routes' | 'endpoints' | 'secrets';

export interface ObjectRef {
  readonly kind: MeshObject['kind'];
  readonly name: string;
}

/** Something an operator should know about an object: a missing reference, an ignored setting. */
export interface Warning {
  readonly kind: MeshObject['kind'];
  readonly name: string;
  readonly message: string;
}

type Labels = Readonly<Record<string, string>>;

const HTTP_PROTOCOLS = new Set(['http', 'http2', 'grpc']);

function isHttp(s: Service): boolean {
  return HTTP_PROTOCOLS.has(s.spec.protocol);
}

function matches(labels: Labels | undefined, selector: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

function localityKey(l: ProxyIdentity['locality']): string {
  return l ? `${l.region ?? ''}/${l.zone ?? ''}/${l.subZone ?? ''}` : '';
}

/** A backend reference resolved against the snapshot. */
type Target = { ok: true; cluster: string } | { ok: false; reason: string };

/**
 * What a proxy may call: every service (`services` undefined, key '') or a set.
 * Proxies with the same key get the same shared lists.
 */
interface View {
  readonly key: string;
  readonly services?: ReadonlySet<string>;
}

const EVERYTHING: View = { key: '' };

/** Resources made of a shared base and fields of their own (see overlayOf); by identity. */
const overlays = new WeakMap<Obj, { base: Obj; overlay: Obj }>();
const composites = new WeakMap<Obj, { head: Obj; field: string; items: readonly Obj[] }>();

/** The virtual host of a route configuration that answers hosts outside the proxy's view. */
const NOT_IN_VIEW: Obj = {
  name: 'not-in-view',
  domains: ['*'],
  routes: [
    {
      name: 'not-in-view',
      match: { prefix: '/' },
      direct_response: {
        status: 404,
        body: {
          inline_string:
            'meshplane: no service this proxy may call answers this Host ' +
            "(its Service's spec.calls and the callees' AuthorizationPolicies decide)\n",
        },
      },
    },
  ],
};

/** The same items (by identity) in the same order; a missing list is empty. */
function sameItems<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Translation of one snapshot. Create one per revision; translate() each proxy.
 * Shared pieces are memoized inside.
 */
export class MeshTranslator {
  private readonly subsets = new Map<string, Map<string, Labels>>();
  private clusterMemo = new Map<string, Obj[]>();
  /** Outbound clusters per view key. */
  private sharedClusters = new Map<string, Obj[]>();
  private viewsByCaller = new Map<string, View>();
  private viewsByKey = new Map<string, View>();
  /**
   * With the Mesh's scopeByAuthorization: services some caller may be refused
   * by authorization (allow policies, or a deny of every request).
   */
  private readonly guarded: ReadonlySet<string>;
  /** Listeners by their inputs; `service`/`inbound`: what must be unchanged to take one over. */
  private listenerMemo = new Map<string, { service?: string; inbound?: string; obj: Obj }>();
  private previousShared:
    | { clusters: ReadonlyMap<string, Obj[]>; endpoints: ReadonlyMap<string, Obj[]> }
    | undefined;
  private inboundMemo = new Map<string, { cluster: Obj; route?: Obj; template: Obj }>();
  /**
   * The inbound listener (sans address) and route of a service's sidecars, by service, inbound
   * and app port: the same objects whatever the app's address (which only the cluster names), so
   * that they are encoded once and held once for all of them.
   */
  private inboundSideMemo = new Map<string, { route?: Obj; template: Obj; clusterBase: Obj }>();
  private routeMemo = new Map<string, Obj>();
  /** Virtual hosts by port and service: one object for every route configuration that has it. */
  private vhostMemo = new Map<string, Obj>();
  /** Endpoint lists per view and, when some policy fails over by locality, the caller's locality. */
  private readonly endpointViews = new Map<string, Obj[]>();
  /** The services each endpoint list holds (undefined: every service), to take lists over by them. */
  private readonly endpointViewServices = new Map<string, ReadonlySet<string> | undefined>();
  private readonly anyFailover: boolean;
  private readonly claMemo = new Map<string, Obj>();
  private readonly blackhole: Obj;
  private readonly tracingCluster: Obj | undefined;
  private readonly portPlan: ReadonlyMap<number, { http: Service[]; tcp?: Service }>;
  readonly warnings: Warning[] = [];

  /**
   * `previous`: the translation of an earlier snapshot. Whatever it made from
   * inputs that are the same objects here (the Mesh, a Service, its
   * DestinationPolicy, its subsets, Instances and AuthorizationPolicies) is
   * taken over as it is, so that unchanged resources are neither rebuilt nor
   * re-encoded, and lists that come out the same are the same arrays.
   */
  constructor(
    readonly snapshot: MeshSnapshot,
    previous?: MeshTranslator,
  ) {
    const sameMesh =
      previous !== undefined &&
      (previous.snapshot.mesh === snapshot.mesh ||
        JSON.stringify(previous.snapshot.mesh.spec) === JSON.stringify(snapshot.mesh.spec));
    this.blackhole = previous?.blackhole ?? {
      name: BLACKHOLE_CLUSTER,
      type: 'STATIC',
      connect_timeout: duration(1_000),
      load_assignment: { cluster_name: BLACKHOLE_CLUSTER, endpoints: [] },
    };
    this.tracingCluster = sameMesh ? previous.tracingCluster : tracingCluster(snapshot.mesh);
    this.anyFailover = [...snapshot.policiesByService.values()].some(
      (ps) => ps[0]?.spec.localityFailover === true,
    );
    this.collectSubsets();
    this.portPlan = this.planPorts();
    this.guarded = new Set(
      [...(snapshot.mesh.spec.scopeByAuthorization ? snapshot.authorizationByService : [])]
        .filter(([, ps]) => ps.some((p) => p.spec.action === 'allow' || p.spec.rules.some((r) => !r.to)))
        .map(([name]) => name),
    );
    this.analyze();
    if (previous) this.carryForward(previous, sameMesh);
  }

  /** Takes over what `prev` made from inputs that did not change (see the constructor). */
  private carryForward(prev: MeshTranslator, sameMesh: boolean): void {
    this.previousShared = { clusters: prev.sharedClusters, endpoints: prev.endpointViews };
    if (sameMesh && MeshTranslator.onlyInstancesChanged(prev.snapshot, this.snapshot)) {
      // Nothing but endpoints can differ: everything else is taken over whole, whatever the
      // number of proxies (no per-entry checks).
      this.clusterMemo = prev.clusterMemo;
      this.listenerMemo = prev.listenerMemo;
      this.inboundMemo = prev.inboundMemo;
      this.inboundSideMemo = prev.inboundSideMemo;
      this.routeMemo = prev.routeMemo;
      this.vhostMemo = prev.vhostMemo;
      this.sharedClusters = prev.sharedClusters;
      this.viewsByCaller = prev.viewsByCaller;
      this.viewsByKey = prev.viewsByKey;
      // The services whose instances changed: their CLAs are made again, and the endpoint lists
      // of views holding any of them (a scoped view is a few services; a change elsewhere leaves
      // it as it was).
      const changed = new Set<string>();
      for (const m of [this.snapshot.instancesByService, prev.snapshot.instancesByService])
        for (const service of m.keys())
          if (
            !sameItems(
              this.snapshot.instancesByService.get(service),
              prev.snapshot.instancesByService.get(service),
            )
          )
            changed.add(service);
      for (const [key, cla] of prev.claMemo)
        if (!changed.has(key.slice(0, key.indexOf('|')))) this.claMemo.set(key, cla);
      for (const [key, list] of prev.endpointViews) {
        const services = prev.endpointViewServices.get(key);
        let touched = changed.size > 0;
        if (services) {
          touched = false;
          const [few, many] = changed.size <= services.size ? [changed, services] : [services, changed];
          for (const n of few) if (many.has(n)) touched = true;
        }
        if (touched) continue;
        this.endpointViews.set(key, list);
        this.endpointViewServices.set(key, services);
      }
      return;
    }
    const verdicts = new Map<string, { service: boolean; endpoints: boolean; inbound: boolean }>();
    const verdict = (name: string) => {
      let v = verdicts.get(name);
      if (!v) {
        const s = this.snapshot;
        const p = prev.snapshot;
        const svc = s.services.get(name) !== undefined && s.services.get(name) === p.services.get(name);
        const policy = this.policy(name) === prev.policy(name);
        const subsets = [...(this.subsets.get(name)?.keys() ?? [])].join('\n');
        const prevSubsets = [...(prev.subsets.get(name)?.keys() ?? [])].join('\n');
        v = {
          service: sameMesh && svc && policy && subsets === prevSubsets,
          endpoints:
            svc && policy && sameItems(s.instancesByService.get(name), p.instancesByService.get(name)),
          inbound:
            sameMesh &&
            svc &&
            policy &&
            sameItems(s.authorizationByService.get(name), p.authorizationByService.get(name)),
        };
        verdicts.set(name, v);
      }
      return v;
    };
    for (const [name, list] of prev.clusterMemo) if (verdict(name).service) this.clusterMemo.set(name, list);
    for (const [key, cla] of prev.claMemo)
      if (verdict(key.split('|')[0]).endpoints) this.claMemo.set(key, cla);
    for (const [key, entry] of prev.inboundMemo)
      if (verdict(key.split('|')[0]).inbound) this.inboundMemo.set(key, entry);
    for (const [key, entry] of prev.inboundSideMemo)
      if (verdict(key.split('|')[0]).inbound) this.inboundSideMemo.set(key, entry);
    if (sameMesh) {
      for (const [key, entry] of prev.listenerMemo) {
        const keep =
          entry.service === undefined ||
          (entry.inbound ? this.inboundMemo.has(entry.inbound) : verdict(entry.service).service);
        if (keep) this.listenerMemo.set(key, entry);
      }
    }
  }

  /** Whether two snapshots differ in Instances only (the objects are the same otherwise). */
  private static onlyInstancesChanged(p: MeshSnapshot, s: MeshSnapshot): boolean {
    const same = <T>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>, eq: (x: T, y: T) => boolean) => {
      if (a === b) return true;
      if (a.size !== b.size) return false;
      for (const [k, v] of a) {
        const w = b.get(k);
        if (w === undefined || !eq(v, w)) return false;
      }
      return true;
    };
    return (
      same(p.services, s.services, (x, y) => x === y) &&
      same(p.routesByService, s.routesByService, sameItems) &&
      same(p.policiesByService, s.policiesByService, sameItems) &&
      same(p.authorizationByService, s.authorizationByService, sameItems)
    );
  }

  /** The same array as `before` when it holds the same items (so that it stays shared and indexed once). */
  private static sameArray(before: Obj[] | undefined, now: Obj[]): Obj[] {
    return before && sameItems(before, now) ? before : now;
  }

  /**
   * For a resource that is a shared base plus a few fields of its own (a
   * sidecar's inbound listener: its service's listener at its own address):
   * the two parts, so that the base is encoded once for all of them.
   */
  overlayOf(o: Obj): { readonly base: Obj; readonly overlay: Obj } | undefined {
    return overlays.get(o);
  }

  /**
   * For a resource whose repeated field is made of items shared with other
   * resources (a route configuration's virtual hosts, one per service, in
   * every view that has the service): the rest, the field, and the items, so
   * that each item is encoded once for all.
   */
  compositeOf(
    o: Obj,
  ): { readonly head: Obj; readonly field: string; readonly items: readonly Obj[] } | undefined {
    return composites.get(o);
  }

  /**
   * Forgets what was made for one sidecar alone (its listeners at its own
   * address, its inbound side), once it is gone for good: these memos are
   * taken over build after build, and would otherwise keep every sidecar ever
   * seen. Another sidecar at the same address just gets them made again.
   */
  forget(proxy: ProxyIdentity): void {
    const caller = this.outboundCaller(proxy);
    for (const [port, plan] of this.portPlan) {
      this.listenerMemo.delete(`http|${port}|${proxy.outboundAddress}|${caller}`);
      if (plan.tcp) this.listenerMemo.delete(`tcp|${plan.tcp.name}|${proxy.outboundAddress}`);
    }
    if (proxy.service && proxy.inboundPort && proxy.appPort) {
      const key = `${proxy.service}|${proxy.inboundPort}|${proxy.appPort}|${proxy.appAddress}`;
      this.listenerMemo.delete(`inbound|${key}|${proxy.address}`);
      this.inboundMemo.delete(key);
    }
  }

  /** Forgets what was kept of the earlier translation for comparison. */
  release(): void {
    this.previousShared = undefined;
  }

  /** Everything one proxy gets. */
  translate(proxy: ProxyIdentity): ProxyResources {
    const view = this.view(proxy);
    const listeners: Obj[] = [];
    const outbound = this.outboundClusters(proxy);
    const clusters: Obj[] = [...outbound];
    const routes: Obj[] = [];
    const reserved = new Set([...proxy.reservedPorts, ...(proxy.inboundPort ? [proxy.inboundPort] : [])]);
    for (const [port, plan] of [...this.portPlan.entries()].sort((a, b) => a[0] - b[0])) {
      if (reserved.has(port)) continue; // the app, admin and inbound ports stay free wherever outbound binds
      if (plan.http.length > 0) {
        // Every HTTP port keeps its listener, so that a call outside the view gets an answer saying why.
        listeners.push(this.httpOutboundListener(proxy, port));
        routes.push(this.routeConfig(port, view));
      } else if (plan.tcp && (!view.services || view.services.has(plan.tcp.name))) {
        listeners.push(this.tcpOutboundListener(proxy, plan.tcp));
      }
    }
    const inbound = this.inbound(proxy);
    if (inbound) {
      listeners.unshift(inbound.listener);
      clusters.push(inbound.cluster);
      if (inbound.route) routes.unshift(inbound.route);
    }
    return {
      identity: proxy.service,
      outbound,
      listeners,
      clusters,
      routes,
      endpoints: this.endpoints(proxy),
    };
  }

  /**
   * The services a proxy may call: its Service's `calls` (all when omitted)
   * with the backends their routes send to, less (with the Mesh's
   * scopeByAuthorization) those whose authorization refuses every call from
   * it. One View object per distinct set.
   */
  private view(proxy: Pick<ProxyIdentity, 'service'>): View {
    const caller = proxy.service;
    if (caller === undefined) return EVERYTHING;
    const svc = this.snapshot.services.get(caller);
    if (!svc) return EVERYTHING;
    let v = this.viewsByCaller.get(caller);
    if (v) return v;
    const s = this.snapshot;
    const calls = svc.spec.calls;
    if (!calls && this.guarded.size === 0) v = EVERYTHING;
    else {
      let names: Set<string> | undefined;
      if (calls) {
        names = new Set(calls.filter((n) => s.services.has(n)));
        // A route of a called service may send to (or mirror to) another one: the caller needs it too.
        for (const n of [...names]) {
          for (const tr of s.routesByService.get(n) ?? [])
            for (const rule of tr.spec.http)
              for (const b of [...rule.backends, ...(rule.mirror ? [rule.mirror] : [])])
                if (b.service && s.services.has(b.service)) names.add(b.service);
        }
      }
      const refused = [...this.guarded].filter((n) => (!names || names.has(n)) && !this.admits(n, caller));
      if (!names) {
        const all = new Set(s.services.keys());
        for (const n of refused) all.delete(n);
        v = refused.length === 0 ? EVERYTHING : { key: `-${refused.sort().join(',')}`, services: all };
      } else {
        for (const n of refused) names.delete(n);
        v = { key: `+${[...names].sort().join(',')}`, services: names };
      }
      // Proxies with equal sets share one View (and so their lists).
      const same = this.viewsByKey.get(v.key);
      if (same) v = same;
      else this.viewsByKey.set(v.key, v);
    }
    this.viewsByCaller.set(caller, v);
    return v;
  }

  /** Whether `service`'s authorization lets some request from `caller` through. */
  private admits(service: string, caller: string): boolean {
    const policies = this.snapshot.authorizationByService.get(service) ?? [];
    const fromCaller = (r: { from?: readonly { service: string }[] }) =>
      !r.from || r.from.some((f) => f.service === caller);
    const tcp = this.snapshot.services.get(service)?.spec.protocol === 'tcp';
    // A deny rule without request conditions (or on tcp, where they are ignored) refuses every call.
    if (
      policies.some(
        (p) => p.spec.action === 'deny' && p.spec.rules.some((r) => fromCaller(r) && (tcp || !r.to)),
      )
    )
      return false;
    const allows = policies.filter((p) => p.spec.action === 'allow');
    return allows.length === 0 || allows.some((p) => p.spec.rules.some(fromCaller));
  }

  /** Services of the view in name order, leaving out tcp services that got no listener. */
  private viewServices(view: View): Service[] {
    const names = view.services ? [...view.services].sort() : [...this.snapshot.services.keys()].sort();
    const out: Service[] = [];
    for (const name of names) {
      const svc = this.snapshot.services.get(name)!;
      if (svc.spec.protocol === 'tcp' && this.portPlan.get(svc.spec.port)?.tcp !== svc) continue;
      out.push(svc);
    }
    return out;
  }

  /**
   * The outbound clusters of the proxy's view (every proxy with no service or
   * no narrowing shares one), first in each proxy's list: one array per view,
   * so that its encoding and indexing are shared.
   */
  outboundClusters(proxy: Pick<ProxyIdentity, 'service'> = {}): Obj[] {
    const view = this.view(proxy);
    const memo = this.sharedClusters.get(view.key);
    if (memo) return memo;
    const clusters: Obj[] = [this.blackhole];
    if (this.tracingCluster) clusters.push(this.tracingCluster);
    for (const svc of this.viewServices(view)) clusters.push(...this.serviceClusters(svc));
    const same = MeshTranslator.sameArray(this.previousShared?.clusters.get(view.key), clusters);
    this.sharedClusters.set(view.key, same);
    return same;
  }

  /** Only the ClusterLoadAssignments (the instance fast path). */
  endpoints(proxy: Pick<ProxyIdentity, 'service' | 'locality'>): Obj[] {
    // Proxies of one view share their endpoints unless locality failover orders them by the caller's locality.
    const v = this.view(proxy);
    const key = this.anyFailover ? `${v.key}#${localityKey(proxy.locality)}` : v.key;
    const memo = this.endpointViews.get(key);
    if (memo) return memo;
    const out: Obj[] = [];
    for (const svc of this.viewServices(v)) {
      out.push(this.cla(svc, '', {}, proxy.locality));
      for (const [sub, labels] of this.subsets.get(svc.name) ?? [])
        out.push(this.cla(svc, sub, labels, proxy.locality));
    }
    const same = MeshTranslator.sameArray(this.previousShared?.endpoints.get(key), out);
    this.endpointViews.set(key, same);
    this.endpointViewServices.set(key, v.services);
    return same;
  }

  // --- provenance -------------------------------------------------------

  /**
   * The mesh objects that contributed to one of a proxy's resources (the
   * Envoy resource's type and name), for tying a NACK back to what caused it.
   */
  contributors(proxy: ProxyIdentity, type: ResourceKind, name: string): ObjectRef[] {
    const s = this.snapshot;
    const out: ObjectRef[] = [];
    const add = (o: { kind: MeshObject['kind']; name: string } | undefined) => {
      if (o && !out.some((x) => x.kind === o.kind && x.name === o.name))
        out.push({ kind: o.kind, name: o.name });
    };
    const meshObject = s.objects.find((o) => o.kind === 'Mesh');
    const [direction, port, subset, service] = name.split('|');
    if (type === 'secrets') {
      add(meshObject);
      return out;
    }
    if (name === TRACING_CLUSTER) {
      add(meshObject);
      return out;
    }
    if (direction === 'inbound') {
      const own = proxy.service;
      if (!own) return out;
      add(s.services.get(own));
      if (type === 'routes') {
        for (const a of s.authorizationByService.get(own) ?? []) add(a);
        if (this.policy(own)?.spec.rateLimit) add(this.policy(own));
      }
      if (type === 'listeners') {
        if (meshObject && (s.mesh.spec.accessLog || s.mesh.spec.tracing)) add(meshObject);
        if (s.services.get(own)?.spec.protocol === 'tcp')
          for (const a of s.authorizationByService.get(own) ?? []) add(a);
      }
      return out;
    }
    if (direction !== 'outbound') return out;
    if (type === 'listeners' || type === 'routes') {
      const plan = this.portPlan.get(Number(port));
      for (const svc of [...(plan?.http ?? []), ...(plan?.tcp ? [plan.tcp] : [])]) {
        add(svc);
        if (type === 'routes') for (const tr of s.routesByService.get(svc.name) ?? []) add(tr);
      }
      if (type === 'listeners' && meshObject && (s.mesh.spec.accessLog || s.mesh.spec.tracing))
        add(meshObject);
      return out;
    }
    // Clusters and their endpoints: outbound|port|subset|service.
    add(s.services.get(service));
    const policy = this.policy(service);
    if (type === 'clusters' || policy?.spec.localityFailover) add(policy);
    if (subset) {
      for (const routes of s.routesByService.values()) {
        for (const tr of routes) {
          const refs = tr.spec.http.flatMap((r) => [...r.backends, ...(r.mirror ? [r.mirror] : [])]);
          if (refs.some((b) => (b.service ?? tr.spec.service) === service && subsetName(b.subset) === subset))
            add(tr);
        }
      }
    }
    if (type === 'endpoints') {
      const labels = this.subsets.get(service)?.get(subset) ?? {};
      for (const inst of s.instancesByService.get(service) ?? [])
        if (matches(inst.spec.labels, labels)) add(inst);
    }
    return out;
  }

  // --- analysis ---------------------------------------------------------

  private warn(o: { kind: MeshObject['kind']; name: string }, message: string): void {
    this.warnings.push({ kind: o.kind, name: o.name, message });
  }

  /** Every subset some route sends to (or mirrors to), per service. */
  private collectSubsets(): void {
    for (const routes of this.snapshot.routesByService.values()) {
      for (const tr of routes) {
        for (const rule of tr.spec.http) {
          const refs = [...rule.backends, ...(rule.mirror ? [rule.mirror] : [])];
          for (const b of refs) {
            if (!b.subset || Object.keys(b.subset).length === 0) continue;
            const svc = b.service ?? tr.spec.service;
            let m = this.subsets.get(svc);
            if (!m) {
              m = new Map();
              this.subsets.set(svc, m);
            }
            m.set(subsetName(b.subset), b.subset);
          }
        }
      }
    }
  }

  /** Which services own each port: HTTP services share a listener; one TCP service may take a port alone. */
  private planPorts(): Map<number, { http: Service[]; tcp?: Service }> {
    const plan = new Map<number, { http: Service[]; tcp?: Service }>();
    for (const name of [...this.snapshot.services.keys()].sort()) {
      const svc = this.snapshot.services.get(name)!;
      let p = plan.get(svc.spec.port);
      if (!p) {
        p = { http: [] };
        plan.set(svc.spec.port, p);
      }
      if (isHttp(svc)) p.http.push(svc);
      else if (!p.tcp) p.tcp = svc;
      else
        this.warn(
          svc,
          `port ${svc.spec.port} is already taken by tcp service "${p.tcp.name}"; this service gets no listener`,
        );
    }
    for (const [port, p] of plan) {
      if (p.tcp && p.http.length > 0) {
        this.warn(
          p.tcp,
          `port ${port} is shared with http services (${p.http.map((s) => s.name).join(', ')}); this tcp service gets no listener`,
        );
        p.tcp = undefined;
      }
    }
    return plan;
  }

  private analyze(): void {
    const s = this.snapshot;
    for (const [svc, routes] of s.routesByService) {
      const service = s.services.get(svc);
      for (const tr of routes) {
        if (!service) {
          this.warn(tr, `service "${svc}" does not exist; this route has no effect until it does`);
          continue;
        }
        if (!isHttp(service))
          this.warn(tr, `service "${svc}" is ${service.spec.protocol}; http routes do not apply`);
        for (const [i, rule] of tr.spec.http.entries()) {
          const refs = [
            ...rule.backends.map((b, j) => ({ ref: b, at: `spec.http[${i}].backends[${j}]` })),
            ...(rule.mirror ? [{ ref: rule.mirror, at: `spec.http[${i}].mirror` }] : []),
          ];
          for (const { ref, at } of refs) {
            const target = ref.service ?? svc;
            const ts = s.services.get(target);
            if (!ts) {
              this.warn(tr, `${at}: service "${target}" does not exist; requests get 503`);
            } else if (!isHttp(ts)) {
              this.warn(tr, `${at}: service "${target}" is tcp; requests get 503`);
            } else if (
              ref.subset &&
              !(s.instancesByService.get(target) ?? []).some((inst) => matches(inst.spec.labels, ref.subset!))
            ) {
              this.warn(
                tr,
                `${at}: subset ${subsetName(ref.subset)} of "${target}" matches no instance; requests get 503`,
              );
            }
          }
        }
        if (routes.length > 1 && tr !== routes[0]) {
          this.warn(
            tr,
            `several TrafficRoutes target "${svc}"; their rules are tried in name order (${routes.map((r) => r.name).join(', ')})`,
          );
        }
      }
    }
    for (const [svc, policies] of s.policiesByService) {
      if (!s.services.has(svc)) for (const p of policies) this.warn(p, `service "${svc}" does not exist`);
      for (const p of policies.slice(1)) {
        this.warn(
          p,
          `DestinationPolicy "${policies[0].name}" already applies to "${svc}"; this one is ignored`,
        );
      }
      const p = policies[0];
      if (p.spec.localityFailover && !p.spec.outlierDetection && !p.spec.healthCheck) {
        this.warn(p, 'localityFailover needs outlierDetection or healthCheck to notice failures');
      }
    }
    for (const [svc, policies] of s.authorizationByService) {
      const service = s.services.get(svc);
      for (const p of policies) {
        if (!service) this.warn(p, `service "${svc}" does not exist`);
        else if (service.spec.protocol === 'tcp' && p.spec.rules.some((r) => r.to)) {
          this.warn(
            p,
            `service "${svc}" is tcp: rules match callers only; "to" conditions (methods, paths) are ignored`,
          );
        }
      }
    }
    for (const svc of s.services.values()) {
      for (const [i, name] of (svc.spec.calls ?? []).entries())
        if (!s.services.has(name))
          this.warn(svc, `spec.calls[${i}]: service "${name}" does not exist; it is left out until it does`);
    }
    for (const [svc, instances] of s.instancesByService) {
      if (!s.services.has(svc))
        for (const inst of instances) this.warn(inst, `service "${svc}" does not exist`);
    }
  }

  private policy(service: string): DestinationPolicy | undefined {
    return this.snapshot.policiesByService.get(service)?.[0];
  }

  /** How calls to a service are secured: its own override, else the Mesh's mode. */
  mtlsMode(service: string): MtlsMode {
    return this.snapshot.services.get(service)?.spec.mtls?.mode ?? this.snapshot.mesh.spec.mtls.mode;
  }

  /** Access logs and tracing for an HTTP connection manager, from the Mesh. */
  private observability(service: string): Obj {
    const mesh = this.snapshot.mesh;
    const logs = accessLogs(mesh);
    const trace = tracing(mesh, service);
    return { ...(logs.length > 0 ? { access_log: logs } : {}), ...(trace ? { tracing: trace } : {}) };
  }

  private get trustDomain(): string {
    return this.snapshot.mesh.spec.trustDomain;
  }

  // --- clusters ---------------------------------------------------------

  /** The service's clusters: all instances, and one per subset that routes use. */
  private serviceClusters(svc: Service): Obj[] {
    const memo = this.clusterMemo.get(svc.name);
    if (memo) return memo;
    const out = [this.cluster(svc, '')];
    for (const sub of this.subsets.get(svc.name)?.keys() ?? []) out.push(this.cluster(svc, sub));
    this.clusterMemo.set(svc.name, out);
    return out;
  }

  private cluster(svc: Service, subset: string): Obj {
    const name = outboundClusterName(svc.name, svc.spec.port, subset);
    const p = this.policy(svc.name)?.spec;
    const c: Obj = {
      name,
      type: 'EDS',
      // The CLA has the cluster's own name: no service_name (EDS then asks for the cluster name).
      eds_cluster_config: { eds_config: adsConfigSource() },
      connect_timeout: duration(5_000),
    };
    if (svc.spec.protocol === 'http2' || svc.spec.protocol === 'grpc') {
      c.typed_extension_protocol_options = http2ProtocolOptions();
    }
    // Callers always speak mTLS to a service unless it is disabled (permissive accepts both).
    if (this.mtlsMode(svc.name) !== 'disabled') {
      c.transport_socket = upstreamTlsSocket(serviceSpiffeId(this.trustDomain, svc.name), svc.name);
    }
    if (p?.loadBalancer) {
      c.lb_policy = {
        round_robin: 'ROUND_ROBIN',
        least_request: 'LEAST_REQUEST',
        random: 'RANDOM',
        ring_hash: 'RING_HASH',
        maglev: 'MAGLEV',
      }[p.loadBalancer.type];
    }
    if (p?.circuitBreaker) {
      const cb = p.circuitBreaker;
      c.circuit_breakers = {
        thresholds: [
          {
            priority: 'DEFAULT',
            ...(cb.maxConnections !== undefined ? { max_connections: wrap(cb.maxConnections) } : {}),
            ...(cb.maxPendingRequests !== undefined
              ? { max_pending_requests: wrap(cb.maxPendingRequests) }
              : {}),
            ...(cb.maxRequests !== undefined ? { max_requests: wrap(cb.maxRequests) } : {}),
            ...(cb.maxRetries !== undefined ? { max_retries: wrap(cb.maxRetries) } : {}),
          },
        ],
      };
    }
    if (p?.outlierDetection) {
      const od = p.outlierDetection;
      c.outlier_detection = {
        ...(od.consecutive5xx !== undefined ? { consecutive_5xx: wrap(od.consecutive5xx) } : {}),
        ...(od.interval ? { interval: duration(parseDurationMs(od.interval)) } : {}),
        ...(od.baseEjectionTime
          ? { base_ejection_time: duration(parseDurationMs(od.baseEjectionTime)) }
          : {}),
        ...(od.maxEjectionPercent !== undefined ? { max_ejection_percent: wrap(od.maxEjectionPercent) } : {}),
      };
    }
    if (p?.healthCheck) {
      const hc = p.healthCheck;
      c.health_checks = [
        {
          timeout: duration(parseDurationMs(hc.timeout)),
          interval: duration(parseDurationMs(hc.interval)),
          unhealthy_threshold: wrap(hc.unhealthyThreshold),
          healthy_threshold: wrap(hc.healthyThreshold),
          ...(hc.http
            ? {
                http_health_check: {
                  path: hc.http.path,
                  host: svc.name,
                  ...(svc.spec.protocol === 'http' ? {} : { codec_client_type: 'HTTP2' }),
                },
              }
            : { tcp_health_check: {} }),
        },
      ];
    }
    return c;
  }

  // --- endpoints --------------------------------------------------------

  private cla(svc: Service, subset: string, labels: Labels, caller: ProxyIdentity['locality']): Obj {
    const failover = this.policy(svc.name)?.spec.localityFailover === true;
    const key = `${svc.name}|${subset}|${failover ? localityKey(caller) : ''}`;
    const memo = this.claMemo.get(key);
    if (memo) return memo;
    const name = outboundClusterName(svc.name, svc.spec.port, subset);
    const groups = new Map<string, { locality?: Instance['spec']['locality']; instances: Instance[] }>();
    for (const inst of this.snapshot.instancesByService.get(svc.name) ?? []) {
      // Unhealthy and draining instances get no new traffic.
      if (inst.spec.health !== 'healthy' || !matches(inst.spec.labels, labels)) continue;
      const k = localityKey(inst.spec.locality);
      let g = groups.get(k);
      if (!g) {
        g = { locality: inst.spec.locality, instances: [] };
        groups.set(k, g);
      }
      g.instances.push(inst);
    }
    const endpoints = [...groups.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([, g]) => ({
        ...(g.locality
          ? {
              locality: {
                region: g.locality.region ?? '',
                zone: g.locality.zone ?? '',
                sub_zone: g.locality.subZone ?? '',
              },
            }
          : {}),
        lb_endpoints: g.instances.map((inst) => ({
          endpoint: { address: socketAddress(inst.spec.address, inst.spec.port) },
          health_status: 'HEALTHY',
        })),
        ...(failover ? { priority: failoverPriority(caller, g.locality) } : {}),
      }));
    if (failover) {
      // Priorities must be dense (0, 1, ...): renumber the levels present.
      const levels = [...new Set(endpoints.map((e) => e.priority as number))].sort((a, b) => a - b);
      for (const e of endpoints) (e as Obj).priority = levels.indexOf(e.priority as number);
    }
    const out: Obj = { cluster_name: name, endpoints };
    this.claMemo.set(key, out);
    return out;
  }

  // --- routes -----------------------------------------------------------

  private resolve(from: string, ref: { service?: string; subset?: Labels }): Target {
    const target = ref.service ?? from;
    const svc = this.snapshot.services.get(target);
    if (!svc) return { ok: false, reason: `service "${target}" does not exist` };
    if (!isHttp(svc)) return { ok: false, reason: `service "${target}" is not an http service` };
    return { ok: true, cluster: outboundClusterName(target, svc.spec.port, subsetName(ref.subset)) };
  }

  private routeConfig(port: number, view: View): Obj {
    const memoKey = `${port}|${view.key}`;
    const memo = this.routeMemo.get(memoKey);
    if (memo) return memo;
    const all = this.portPlan.get(port)?.http ?? [];
    const services = view.services ? all.filter((svc) => view.services!.has(svc.name)) : all;
    const vhosts = services.map((svc) => this.virtualHost(svc, port, all.length === 1));
    // Outside the view: say so rather than a bare 404 from Envoy.
    if (services.length < all.length) vhosts.push(NOT_IN_VIEW);
    const head: Obj = { name: outboundRouteName(port), validate_clusters: wrap(false) };
    const rc: Obj = { name: head.name, virtual_hosts: vhosts, validate_clusters: head.validate_clusters };
    composites.set(rc, { head, field: 'virtual_hosts', items: vhosts });
    this.routeMemo.set(memoKey, rc);
    return rc;
  }

  private virtualHost(svc: Service, port: number, onlyOne: boolean): Obj {
    const key = `${port}|${svc.name}`;
    let vh = this.vhostMemo.get(key);
    if (vh) return vh;
    const domains = [svc.name, `${svc.name}:${port}`, `${svc.name}.mesh`, `${svc.name}.mesh:${port}`];
    // The only service on its port also answers any Host (e.g. localhost:port).
    if (onlyOne) domains.push('*');
    const routes: Obj[] = [];
    for (const tr of this.snapshot.routesByService.get(svc.name) ?? []) {
      for (const rule of tr.spec.http) routes.push(this.route(svc, rule));
    }
    routes.push({
      name: 'default',
      match: { prefix: '/' },
      route: { cluster: outboundClusterName(svc.name, port) },
    });
    vh = { name: svc.name, domains, routes };
    this.vhostMemo.set(key, vh);
    return vh;
  }

  private route(svc: Service, rule: TrafficRoute['spec']['http'][number]): Obj {
    const r: Obj = { match: routeMatch(rule.match) };
    const targets = rule.backends
      .map((b) => ({ target: this.resolve(svc.name, b), weight: b.weight ?? 1 }))
      .filter((t) => t.weight > 0);
    const action: Obj = {};
    if (targets.length === 1 && !targets[0].target.ok) {
      r.direct_response = {
        status: 503,
        body: { inline_string: `meshplane: ${targets[0].target.reason}\n` },
      };
    } else {
      if (targets.length === 1 && targets[0].target.ok) action.cluster = targets[0].target.cluster;
      else {
        action.weighted_clusters = {
          clusters: targets.map((t) => ({
            name: t.target.ok ? t.target.cluster : BLACKHOLE_CLUSTER,
            weight: wrap(t.weight),
          })),
        };
      }
      if (rule.timeout !== undefined) action.timeout = duration(parseDurationMs(rule.timeout));
      if (rule.retries) {
        const rt = rule.retries;
        action.retry_policy = {
          retry_on: (rt.on ?? ['5xx', 'reset', 'connect-failure']).join(','),
          num_retries: wrap(rt.attempts),
          ...(rt.perTryTimeout ? { per_try_timeout: duration(parseDurationMs(rt.perTryTimeout)) } : {}),
          ...(rt.backoff
            ? {
                retry_back_off: {
                  base_interval: duration(parseDurationMs(rt.backoff.base)),
                  max_interval: duration(
                    rt.backoff.max ? parseDurationMs(rt.backoff.max) : 10 * parseDurationMs(rt.backoff.base),
                  ),
                },
              }
            : {}),
        };
      }
      if (rule.mirror) {
        const m = this.resolve(svc.name, rule.mirror);
        if (m.ok) {
          action.request_mirror_policies = [
            {
              cluster: m.cluster,
              runtime_fraction: { default_value: fractionalPercent(rule.mirror.percent) },
            },
          ];
        }
      }
      r.route = action;
    }
    const req = rule.headers?.request;
    const res = rule.headers?.response;
    if (req) Object.assign(r, headerEdits(req, 'request'));
    if (res) Object.assign(r, headerEdits(res, 'response'));
    if (rule.fault) {
      const f = rule.fault;
      r.typed_per_filter_config = {
        [FILTER.fault]: {
          '@type': TYPE.fault,
          ...(f.delay
            ? {
                delay: {
                  fixed_delay: duration(parseDurationMs(f.delay.duration)),
                  percentage: fractionalPercent(f.delay.percent),
                },
              }
            : {}),
          ...(f.abort
            ? { abort: { http_status: f.abort.status, percentage: fractionalPercent(f.abort.percent) } }
            : {}),
        },
      };
    }
    return r;
  }

  // --- listeners --------------------------------------------------------

  /** Listeners that equal inputs make equal are made once per translation (and encoded once). */
  private memo(key: string, deps: { service?: string; inbound?: string }, make: () => Obj): Obj {
    let e = this.listenerMemo.get(key);
    if (!e) {
      e = { ...deps, obj: make() };
      this.listenerMemo.set(key, e);
    }
    return e.obj;
  }

  /**
   * Whom a sidecar's outbound HTTP listeners name: its service when the Mesh's tracing
   * reports it by name (OpenTelemetry's service_name), else nobody, and then every
   * sidecar's listener on a port is the same but for the address.
   */
  private outboundCaller(proxy: ProxyIdentity): string {
    return this.snapshot.mesh.spec.tracing?.provider === 'opentelemetry'
      ? (proxy.service ?? proxy.nodeId)
      : '';
  }

  private httpOutboundListener(proxy: ProxyIdentity, port: number): Obj {
    const caller = this.outboundCaller(proxy);
    // All but the address is made (and encoded) once per port and caller.
    const template = this.memo(`http|${port}|${caller}`, {}, () =>
      this.makeHttpOutboundListener(port, caller),
    );
    return this.memo(`http|${port}|${proxy.outboundAddress}|${caller}`, {}, () => {
      const address = socketAddress(proxy.outboundAddress, port);
      const l = { name: template.name, address, ...template };
      overlays.set(l, { base: template, overlay: { address } });
      return l;
    });
  }

  /** An outbound HTTP listener without its address (see httpOutboundListener). */
  private makeHttpOutboundListener(port: number, caller: string): Obj {
    const name = outboundListenerName(port);
    return {
      name,
      traffic_direction: 'OUTBOUND',
      filter_chains: [
        {
          filters: [
            {
              name: FILTER.hcm,
              typed_config: {
                '@type': TYPE.hcm,
                stat_prefix: statPrefix(name),
                rds: { route_config_name: outboundRouteName(port), config_source: adsConfigSource() },
                ...this.observability(caller),
                http_filters: [{ name: FILTER.fault, typed_config: { '@type': TYPE.fault } }, routerFilter()],
              },
            },
          ],
        },
      ],
    };
  }

  private tcpOutboundListener(proxy: ProxyIdentity, svc: Service): Obj {
    return this.memo(`tcp|${svc.name}|${proxy.outboundAddress}`, { service: svc.name }, () =>
      this.makeTcpOutboundListener(proxy.outboundAddress, svc),
    );
  }

  private makeTcpOutboundListener(outboundAddress: string, svc: Service): Obj {
    const name = outboundListenerName(svc.spec.port);
    return {
      name,
      address: socketAddress(outboundAddress, svc.spec.port),
      traffic_direction: 'OUTBOUND',
      filter_chains: [
        {
          filters: [
            {
              name: FILTER.tcpProxy,
              typed_config: {
                '@type': TYPE.tcpProxy,
                stat_prefix: statPrefix(name),
                cluster: outboundClusterName(svc.name, svc.spec.port),
              },
            },
          ],
        },
      ],
    };
  }

  /** The inbound side: a listener on the pod's inbound port forwarding to the local app. */
  private inbound(proxy: ProxyIdentity): { listener: Obj; cluster: Obj; route?: Obj } | undefined {
    if (!proxy.service || !proxy.inboundPort || !proxy.appPort) return undefined;
    // The sidecars of one service share all but the listener's address: made once per service.
    const key = `${proxy.service}|${proxy.inboundPort}|${proxy.appPort}|${proxy.appAddress}`;
    let shared = this.inboundMemo.get(key);
    if (!shared) {
      shared = this.makeInbound(proxy.service, proxy.inboundPort, proxy.appPort, proxy.appAddress);
      this.inboundMemo.set(key, shared);
    }
    const { cluster, route, template } = shared;
    const inboundPort = proxy.inboundPort;
    const listener = this.memo(
      `inbound|${key}|${proxy.address}`,
      { service: proxy.service, inbound: key },
      () => {
        const address = socketAddress(proxy.address, inboundPort);
        const l = { name: template.name, address, ...template };
        overlays.set(l, { base: template, overlay: { address } });
        return l;
      },
    );
    return { listener, cluster, route };
  }

  private makeInbound(
    service: string,
    inboundPort: number,
    appPort: number,
    appAddress: string,
  ): { cluster: Obj; route?: Obj; template: Obj } {
    const side = this.inboundSide(service, inboundPort, appPort);
    // All but the app's address is the service's (made and encoded once); only that is the sidecar's.
    const load_assignment = {
      cluster_name: side.clusterBase.name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(appAddress, appPort) } }] }],
    };
    const { name, type, connect_timeout, ...rest } = side.clusterBase;
    const cluster: Obj = { name, type, connect_timeout, load_assignment, ...rest };
    overlays.set(cluster, { base: side.clusterBase, overlay: { load_assignment } });
    return { cluster, route: side.route, template: side.template };
  }

  /**
   * The inbound listener (sans address), route and cluster (sans the app's address) of a
   * service's sidecars: made once per service, inbound and app port (inboundSideMemo), and
   * encoded once; each sidecar adds only its addresses (overlays).
   */
  private inboundSide(
    service: string,
    inboundPort: number,
    appPort: number,
  ): { route?: Obj; template: Obj; clusterBase: Obj } {
    const sideKey = `${service}|${inboundPort}|${appPort}`;
    const memo = this.inboundSideMemo.get(sideKey);
    if (memo) return memo;
    const proxy = { service, inboundPort };
    const protocol = this.snapshot.services.get(service)?.spec.protocol ?? 'http';
    const clusterName = inboundClusterName(service, appPort);
    const name = inboundListenerName(proxy.inboundPort);
    const authz = this.snapshot.authorizationByService.get(proxy.service) ?? [];
    let filters: Obj[];
    let route: Obj | undefined;
    if (protocol === 'tcp') {
      filters = [
        ...networkRbacFilters(authz, this.trustDomain, statPrefix(name)),
        {
          name: FILTER.tcpProxy,
          typed_config: { '@type': TYPE.tcpProxy, stat_prefix: statPrefix(name), cluster: clusterName },
        },
      ];
    } else {
      // The listener's filters never change; authorization and rate limits come per route over
      // RDS, so that a policy change applies to open connections at once (a listener change
      // would leave them on the old filter chain until they drain).
      const rateLimit = this.policy(proxy.service)?.spec.rateLimit;
      route = {
        name: inboundRouteName(proxy.inboundPort),
        virtual_hosts: [
          {
            name: 'inbound',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                // Timeouts are the caller's route's to enforce.
                route: { cluster: clusterName, timeout: duration(0) },
                ...perRouteConfig({
                  ...httpRbacPerRoute(authz, this.trustDomain),
                  ...(rateLimit ? { [FILTER.localRateLimit]: localRateLimit(rateLimit) } : {}),
                }),
              },
            ],
          },
        ],
        validate_clusters: wrap(false),
      };
      filters = [
        {
          name: FILTER.hcm,
          typed_config: {
            '@type': TYPE.hcm,
            stat_prefix: statPrefix(name),
            rds: { route_config_name: inboundRouteName(proxy.inboundPort), config_source: adsConfigSource() },
            ...this.observability(proxy.service),
            http_filters: [
              ...httpRbacFilters(),
              {
                name: FILTER.localRateLimit,
                typed_config: { '@type': TYPE.localRateLimit, stat_prefix: 'inbound_rate_limit' },
              },
              routerFilter(),
            ],
          },
        },
      ];
    }
    const listener: Obj = { name, traffic_direction: 'INBOUND' };
    const tls = { filters, transport_socket: downstreamTlsSocket(this.trustDomain) };
    const mode = this.mtlsMode(proxy.service);
    if (mode === 'disabled') listener.filter_chains = [{ filters }];
    else if (mode === 'strict') listener.filter_chains = [tls];
    else {
      // Permissive: TLS from sidecars, plaintext from outside the mesh, told apart by tls_inspector.
      listener.listener_filters = [
        { name: FILTER.tlsInspector, typed_config: { '@type': TYPE.tlsInspector } },
      ];
      listener.filter_chains = [{ filter_chain_match: { transport_protocol: 'tls' }, ...tls }, { filters }];
    }
    const clusterBase: Obj = {
      name: clusterName,
      type: 'STATIC',
      connect_timeout: duration(1_000),
      ...(protocol === 'tcp'
        ? {}
        : {
            typed_extension_protocol_options: appProtocolOptions(protocol === 'http2' || protocol === 'grpc'),
          }),
    };
    const side = { route, template: listener, clusterBase };
    this.inboundSideMemo.set(sideKey, side);
    return side;
  }
}

function perRouteConfig(configs: Obj): Obj {
  return Object.keys(configs).length > 0 ? { typed_per_filter_config: configs } : {};
}

/** Same zone: 0; same region: 1; elsewhere: 2 (Envoy fails over by priority). */
function failoverPriority(caller: ProxyIdentity['locality'], at: Instance['spec']['locality']): number {
  if (!caller || !at) return 0;
  if (caller.region === at.region && caller.zone === at.zone) return 0;
  if (caller.region === at.region) return 1;
  return 2;
}

type HeaderMatch = { exact?: string; prefix?: string; regex?: string; present?: boolean };

function stringMatch(m: HeaderMatch): Obj {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex } };
}

function routeMatch(match: TrafficRoute['spec']['http'][number]['match']): Obj {
  const out: Obj = {};
  const path = match?.path;
  if (path?.exact !== undefined) out.path = path.exact;
  else if (path?.regex !== undefined) out.safe_regex = { regex: path.regex };
  else out.prefix = path?.prefix ?? '/';
  const headers: Obj[] = [];
  for (const [name, m] of Object.entries(match?.headers ?? {}).sort()) headers.push(headerMatcher(name, m));
  if (match?.methods) {
    headers.push(
      match.methods.length === 1
        ? { name: ':method', string_match: { exact: match.methods[0] } }
        : { name: ':method', string_match: { safe_regex: { regex: `^(${match.methods.join('|')})$` } } },
    );
  }
  if (headers.length > 0) out.headers = headers;
  const query = Object.entries(match?.query ?? {}).sort();
  if (query.length > 0) {
    out.query_parameters = query.map(([name, m]) =>
      m.present !== undefined ? { name, present_match: m.present } : { name, string_match: stringMatch(m) },
    );
  }
  return out;
}

function headerEdits(
  e: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] },
  side: 'request' | 'response',
): Obj {
  const add = [
    ...Object.entries(e.set ?? {}).map(([key, value]) => ({
      header: { key, value },
      append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    ...Object.entries(e.add ?? {}).map(([key, value]) => ({
      header: { key, value },
      append_action: 'APPEND_IF_EXISTS_OR_ADD',
    })),
  ];
  return {
    ...(add.length > 0 ? { [`${side}_headers_to_add`]: add } : {}),
    ...(e.remove?.length ? { [`${side}_headers_to_remove`]: e.remove } : {}),
  };
}

/** A token bucket per instance (a per-route LocalRateLimit for the inbound route). */
function localRateLimit(rl: { requestsPerSecond: number; burst?: number }): Obj {
  const always = {
    default_value: { numerator: 100, denominator: 'HUNDRED' },
    runtime_key: 'meshplane_rate_limit',
  };
  return {
    '@type': TYPE.localRateLimit,
    stat_prefix: 'inbound_rate_limit',
    token_bucket: {
      max_tokens: rl.burst ?? rl.requestsPerSecond,
      tokens_per_fill: wrap(rl.requestsPerSecond),
      fill_interval: duration(1_000),
    },
    filter_enabled: always,
    filter_enforced: always,
  };
}
