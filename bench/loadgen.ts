// The load generator: a child process (forked by bench/run.ts, driven over IPC)
// that opens one ADS stream per simulated proxy, each on its own HTTP/2
// connection, and behaves like Envoy on the wire (shared/design/XDS-PROTOCOL.md):
// CDS wildcard first; EDS for every EDS cluster received and SDS for every
// secret a cluster or listener names; LDS once its clusters warmed (or after
// initial_fetch_timeout); RDS for every route name in its listeners. Every
// response is ACKed at once. For each change the harness makes, it reports when
// each proxy ACKed a response that contains the change's marker bytes.
//
// Memory: decoded resources are not kept; per proxy only names (interned) and
// small shared summaries of clusters and listeners, memoized by content.
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { status as grpcStatus } from '@grpc/grpc-js';
import { decodeResource, envoyRoot } from '../envoy-protos';
import { GrpcStream, type StreamEnd } from './lib/grpc-stream';
import type {
  Dist,
  FromLoadgen,
  LoadgenStats,
  Protocol,
  ProxySpec,
  ReadySummary,
  ToLoadgen,
} from './lib/messages';
import {
  countOccurrences,
  deltaAck,
  deltaRequest,
  intern,
  parseDeltaResponse,
  parseSotwResponse,
  type RawResponse,
  withoutField,
} from './lib/proto';
import { Histogram, percentile } from './lib/stats';

const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const LDS = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const RDS = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const SDS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

const ADS_SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService/';

function send(m: FromLoadgen): void {
  process.send?.(m);
}

// ---------------------------------------------------------------------------
// Encoding requests (small, few) with protobufjs; responses stay raw bytes.

const root = envoyRoot();
const DeltaRequest = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const SotwRequest = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');

function encode(type: typeof DeltaRequest, obj: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.fromObject(obj)).finish());
}

function nodeOf(p: ProxySpec): Record<string, unknown> {
  // google.protobuf.Value comes from protobufjs' bundled descriptors: camelCase field names.
  const str = (v: string) => ({ stringValue: v });
  const num = (v: number) => ({ numberValue: v });
  return {
    id: p.nodeId,
    cluster: p.service,
    user_agent_name: 'meshplane-bench',
    metadata: {
      fields: {
        service: str(p.service),
        address: str(p.address),
        inboundPort: num(15006),
        appPort: num(8080),
      },
    },
  };
}

// ---------------------------------------------------------------------------
// What clusters and listeners refer to, decoded once per distinct content.

interface Refs {
  /** EDS cluster: the ClusterLoadAssignment name it waits for. */
  readonly eds?: string;
  readonly routes: readonly string[];
  readonly secrets: readonly string[];
}

/** By resource version key (Delta) or content hash (SotW). */
const refsMemo = new Map<string | number, Refs>();
/** One object per distinct content: a proxy sees its references change only when they do. */
const refsByContent = new Map<string, Refs>();

function canonical(r: Refs): Refs {
  const k = `${r.eds ?? ''}\u0000${r.routes.join('\u0001')}\u0000${r.secrets.join('\u0001')}`;
  const hit = refsByContent.get(k);
  if (hit) return hit;
  if (refsByContent.size > 200_000) refsByContent.clear();
  refsByContent.set(k, r);
  return r;
}

function collectRefs(node: unknown, routes: Set<string>, secrets: Set<string>, depth = 0): void {
  if (depth > 40 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const x of node) collectRefs(x, routes, secrets, depth + 1);
    return;
  }
  const o = node as Record<string, unknown>;
  const rds = o.rds as { route_config_name?: unknown } | undefined;
  if (rds && typeof rds.route_config_name === 'string') routes.add(intern(rds.route_config_name));
  if (o.sds_config !== undefined && typeof o.name === 'string') secrets.add(intern(o.name));
  for (const v of Object.values(o))
    if (v !== null && typeof v === 'object') collectRefs(v, routes, secrets, depth + 1);
}

function refsOf(typeUrl: string, versionKey: number, buf: Buffer, start: number, end: number): Refs {
  // A Delta version is a hash of the resource's bytes (name included): its key is the key.
  const key =
    versionKey || `${typeUrl}\u0000${createHash('sha1').update(buf.subarray(start, end)).digest('base64')}`;
  const hit = refsMemo.get(key);
  if (hit) return hit;
  // Listeners differ per sidecar only in their address (field 2), inbound clusters in their
  // load_assignment (33, the app's address); neither refers to anything: resources alike but for
  // it are decoded once.
  const drop = typeUrl === LDS ? 2 : typeUrl === CDS ? 33 : 0;
  const sansAddress = drop ? withoutField(buf, start, end, drop) : undefined;
  const likeKey = sansAddress && `${drop}:${createHash('sha1').update(sansAddress).digest('base64')}`;
  const like = likeKey ? refsMemo.get(likeKey) : undefined;
  if (like) {
    refsMemo.set(key, like);
    return like;
  }
  const obj = decodeResource(typeUrl, buf.subarray(start, end));
  const routes = new Set<string>();
  const secrets = new Set<string>();
  collectRefs(obj, routes, secrets);
  let eds: string | undefined;
  if (typeUrl === CDS && obj.type === 'EDS') {
    const svc = (obj.eds_cluster_config as { service_name?: string } | undefined)?.service_name;
    eds = intern(svc || String(obj.name));
  }
  const refs = canonical({ eds, routes: [...routes], secrets: [...secrets] });
  if (refsMemo.size > 200_000) refsMemo.clear();
  refsMemo.set(key, refs);
  if (likeKey) refsMemo.set(likeKey, refs);
  return refs;
}

// ---------------------------------------------------------------------------
// Change markers.

interface Marker {
  readonly id: number;
  readonly tag: string;
  /** Set by the 't0' message (the change is made after the watch is in place). */
  t0: number | undefined;
  /** Finished before its t0 arrived: report once it does. */
  pendingFinish?: boolean;
  readonly typeUrl: string;
  readonly bytes: Buffer;
  readonly resource?: string;
  readonly expect: number;
  /** Per proxy: 0 not eligible, 1 waiting, 2 seen. */
  readonly state: Uint8Array;
  /** Per proxy: occurrences ACKed so far (expect > 1). */
  readonly counts?: Uint32Array;
  /** Per proxy: when it ACKed the change (epoch ms). */
  readonly ackedAt: Float64Array;
  /** Proxies that ACKed more than 1 s after the change, with the gap since their response before. */
  slow?: { nodeId: string; ms: number; previousResponseMsBefore: number | null }[];
  total: number;
  seen: number;
  timer?: NodeJS.Timeout;
  done: boolean;
}

const markers = new Map<number, Marker>();
/**
 * Active markers, indexed so that a response costs one lookup per resource
 * whatever the number of changes in flight: typeUrl -> resource name -> markers
 * (resource-scoped), and typeUrl -> markers searched in the whole response.
 */
const byResource = new Map<string, Map<string, Set<Marker>>>();
const wholeResponse = new Map<string, Set<Marker>>();
const pooled = new Map<string, Histogram>();

function activeSet(m: Marker): Set<Marker> {
  if (m.resource === undefined) {
    const whole = wholeResponse.get(m.typeUrl) ?? new Set<Marker>();
    wholeResponse.set(m.typeUrl, whole);
    return whole;
  }
  const names = byResource.get(m.typeUrl) ?? new Map<string, Set<Marker>>();
  byResource.set(m.typeUrl, names);
  const set = names.get(m.resource) ?? new Set<Marker>();
  names.set(m.resource, set);
  return set;
}

function activate(m: Marker): void {
  markers.set(m.id, m);
  activeSet(m).add(m);
}

function deactivate(m: Marker): void {
  const set = activeSet(m);
  set.delete(m);
  if (set.size === 0 && m.resource !== undefined) byResource.get(m.typeUrl)?.delete(m.resource);
}

function finish(m: Marker, timedOut: boolean): void {
  if (m.done) return;
  m.done = true;
  if (m.timer) clearTimeout(m.timer);
  deactivate(m);
  if (m.t0 === undefined) {
    m.pendingFinish = true;
    return;
  }
  report(m, timedOut);
}

function report(m: Marker, timedOut: boolean): void {
  markers.delete(m.id);
  const t0 = m.t0 ?? 0;
  const lat: number[] = [];
  let hist = pooled.get(m.tag);
  if (!hist) {
    hist = new Histogram();
    pooled.set(m.tag, hist);
  }
  for (let i = 0; i < m.state.length; i++) {
    if (m.state[i] === 2) {
      lat.push(m.ackedAt[i] - t0);
      hist.add(m.ackedAt[i] - t0);
    }
  }
  const complete = m.seen >= m.total;
  send({
    op: 'converged',
    result: {
      id: m.id,
      total: m.total,
      seen: m.seen,
      allAckedMs: complete ? (lat.length > 0 ? Math.max(...lat) : 0) : null,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.length > 0 ? Math.max(...lat) : null,
      timedOut: timedOut && !complete,
      ...(m.slow ? { slow: m.slow } : {}),
    },
  });
  if (m.slow && lat.length > 0 && Math.max(...lat) > 5000)
    console.error(`change ${m.id} (${m.tag}): proxies over 1 s: ${JSON.stringify(m.slow)}`);
}

function markerHit(m: Marker, idx: number, now: number): void {
  if (m.state[idx] !== 1) return;
  m.state[idx] = 2;
  m.ackedAt[idx] = now;
  m.seen++;
  // A proxy that took over a second: which one, and how long its stream had been silent.
  if (m.t0 !== undefined && now - m.t0 > 1000 && (m.slow?.length ?? 0) < 10) {
    const p = proxies[idx];
    if (!m.slow) m.slow = [];
    m.slow.push({
      nodeId: p?.spec.nodeId ?? String(idx),
      ms: now - m.t0,
      previousResponseMsBefore: p && p.previousResponseAt > 0 ? now - p.previousResponseAt : null,
    });
  }
  if (m.seen >= m.total) finish(m, false);
}

/** A proxy's stream is gone: it no longer counts towards any change. */
function markerDropProxy(idx: number): void {
  for (const m of [...markers.values()]) {
    if (m.done || m.state[idx] !== 1) continue;
    m.state[idx] = 0;
    m.total--;
    if (m.seen >= m.total) finish(m, false);
  }
}

function count(m: Marker, idx: number, n: number, now: number): void {
  if (n === 0 || m.state[idx] !== 1) return;
  if (m.counts) {
    m.counts[idx] += n;
    if (m.counts[idx] < m.expect) return;
  }
  markerHit(m, idx, now);
}

/** Checks an ACKed response for the active markers of its type. */
function checkMarkers(idx: number, buf: Buffer, r: RawResponse, now: number): void {
  const names = byResource.get(r.typeUrl);
  if (names && names.size > 0) {
    for (const res of r.resources) {
      const set = names.get(res.name);
      if (!set) continue;
      for (const m of [...set]) {
        if (m.state[idx] === 1) count(m, idx, countOccurrences(buf, m.bytes, res.start, res.end), now);
      }
    }
  }
  const whole = wholeResponse.get(r.typeUrl);
  if (whole && whole.size > 0) {
    for (const m of [...whole]) if (m.state[idx] === 1) count(m, idx, countOccurrences(buf, m.bytes), now);
  }
}

// ---------------------------------------------------------------------------
// One simulated proxy.

/** Reconnect attempts per proxy before it counts as failed. */
const MAX_ATTEMPTS = 30;

interface Totals {
  reconnects: number;
  bytes: number;
  responses: number;
  requests: number;
  nacks: number;
  errors: Record<string, number>;
}

const totals: Totals = { reconnects: 0, bytes: 0, responses: 0, requests: 0, nacks: 0, errors: {} };

function setEq(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function covered(wanted: ReadonlySet<string>, answered: ReadonlySet<string>): boolean {
  for (const x of wanted) if (!answered.has(x)) return false;
  return true;
}

class SimProxy {
  private call: GrpcStream | undefined;
  open = false;
  /** When the response before the one being handled arrived (epoch ms; 0: none yet). */
  previousResponseAt = 0;
  failed: string | undefined;
  private closing = false;
  private attempts = 0;
  private xdsAddress = '';
  private retryTimer: NodeJS.Timeout | undefined;
  private sentNode = false;
  private readonly clusters = new Map<string, Refs>();
  private readonly listeners = new Map<string, Refs>();
  /** Names subscribed, per named type. */
  private readonly sub = new Map<string, Set<string>>([
    [EDS, new Set()],
    [RDS, new Set()],
    [SDS, new Set()],
  ]);
  /** Names answered (present, or reported absent), per named type. */
  private readonly answered = new Map<string, Set<string>>([
    [EDS, new Set()],
    [RDS, new Set()],
    [SDS, new Set()],
  ]);
  /** SotW: the latest version and nonce per type. */
  private readonly latest = new Map<string, { version: string; nonce: string }>();
  private ldsRequested = false;
  private ldsTimer: NodeJS.Timeout | undefined;
  connectedAt = 0;
  cdsAckAt = 0;
  edsDoneAt = 0;
  sdsDoneAt = 0;
  ldsAckAt = 0;
  rdsDoneAt = 0;

  constructor(
    readonly idx: number,
    readonly spec: ProxySpec,
    private readonly protocol: Protocol,
    private readonly initialFetchTimeoutMs: number,
  ) {}

  get ready(): boolean {
    return this.rdsDoneAt > 0 && this.edsDoneAt > 0 && this.cdsAckAt > 0 && this.ldsAckAt > 0;
  }

  start(xdsAddress: string): void {
    this.xdsAddress = xdsAddress;
    this.call = new GrpcStream({
      address: xdsAddress,
      path: `${ADS_SERVICE}${this.protocol === 'delta' ? 'Delta' : 'Stream'}AggregatedResources`,
      metadata: this.spec.token ? { authorization: `Bearer ${this.spec.token}` } : {},
      // Envoy's HTTP/2 flow-control windows for its xDS gRPC client: 256 MiB per stream and per
      // connection (http2_protocol_options initial_stream/connection_window_size defaults), so a
      // large response is not paced by 64 KiB window updates.
      windowBytes: 256 * 1024 * 1024,
      onMessage: (buf) => this.onResponse(buf),
      onEnd: (e) => this.onEnd(e),
    });
    this.open = true;
    this.request(CDS, { subscribe: [] });
  }

  close(): void {
    this.closing = true;
    if (this.ldsTimer) clearTimeout(this.ldsTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.open = false;
    this.call?.close();
  }

  /**
   * The stream ended: like Envoy, reconnect with jittered backoff (the bootstrap's
   * 0.25 s base, 5 s max), starting over (this client does not send
   * initial_resource_versions); give up after MAX_ATTEMPTS.
   */
  private onEnd(s: StreamEnd): void {
    if (!this.open || this.closing) return;
    this.open = false;
    if (this.ldsTimer) clearTimeout(this.ldsTimer);
    const message = `${grpcStatus[s.code] ?? s.code}: ${s.details}`
      .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
      .slice(0, 100);
    totals.errors[message] = (totals.errors[message] ?? 0) + 1;
    markerDropProxy(this.idx);
    if (++this.attempts > MAX_ATTEMPTS) {
      this.failed = message;
      return;
    }
    totals.reconnects++;
    this.reset();
    const backoff = Math.min(5_000, 250 * 2 ** Math.min(this.attempts - 1, 5)) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimeout(() => {
      if (!this.closing) this.start(this.xdsAddress);
    }, backoff);
  }

  private reset(): void {
    this.sentNode = false;
    this.clusters.clear();
    this.listeners.clear();
    for (const m of [this.sub, this.answered]) for (const set of m.values()) set.clear();
    this.latest.clear();
    this.ldsRequested = false;
    this.connectedAt = 0;
    this.cdsAckAt = 0;
    this.edsDoneAt = 0;
    this.sdsDoneAt = 0;
    this.ldsAckAt = 0;
    this.rdsDoneAt = 0;
  }

  /** Sends a request: a subscription change, or an ACK (nonce). */
  private request(
    typeUrl: string,
    o: { subscribe?: string[]; unsubscribe?: string[]; nonce?: string; version?: string },
  ): void {
    if (!this.open || !this.call) return;
    const node = this.sentNode ? undefined : nodeOf(this.spec);
    this.sentNode = true;
    let buf: Buffer;
    if (this.protocol === 'delta' && !node && !o.subscribe?.length && !o.unsubscribe?.length) {
      buf = deltaAck(typeUrl, o.nonce ?? '');
    } else if (this.protocol === 'delta' && !node) {
      buf = deltaRequest(typeUrl, o.subscribe ?? [], o.unsubscribe ?? [], o.nonce ?? '');
    } else if (this.protocol === 'delta') {
      buf = encode(DeltaRequest, {
        ...(node ? { node } : {}),
        type_url: typeUrl,
        resource_names_subscribe: o.subscribe ?? [],
        resource_names_unsubscribe: o.unsubscribe ?? [],
        response_nonce: o.nonce ?? '',
      });
    } else {
      // SotW: every request carries the full name list (wildcard types: none) and the latest nonce.
      const last = this.latest.get(typeUrl);
      const names = typeUrl === CDS || typeUrl === LDS ? [] : [...(this.sub.get(typeUrl) ?? [])];
      buf = encode(SotwRequest, {
        ...(node ? { node } : {}),
        type_url: typeUrl,
        version_info: o.version ?? last?.version ?? '',
        response_nonce: o.nonce ?? last?.nonce ?? '',
        resource_names: names,
      });
    }
    totals.requests++;
    this.call.write(buf);
  }

  private onResponse(buf: Buffer): void {
    if (!this.open) return;
    totals.bytes += buf.length;
    totals.responses++;
    const r = this.protocol === 'delta' ? parseDeltaResponse(buf) : parseSotwResponse(buf);
    if (this.connectedAt === 0) this.connectedAt = Date.now();
    const t = r.typeUrl;
    // Whether what the clusters or listeners refer to changed (what to subscribe to next).
    let refsChanged = false;
    if (t === CDS || t === LDS) {
      const held = t === CDS ? this.clusters : this.listeners;
      if (this.protocol === 'sotw') {
        held.clear(); // full state
        refsChanged = true;
      }
      for (const n of r.removed) if (held.delete(n)) refsChanged = true;
      for (const res of r.resources) {
        const refs = refsOf(t, res.key, buf, res.start, res.end);
        if (held.get(res.name) !== refs) {
          held.set(res.name, refs);
          refsChanged = true;
        }
      }
    } else {
      const answered = this.answered.get(t);
      if (answered) {
        for (const res of r.resources) answered.add(res.name);
        for (const n of r.removed) answered.add(n);
      }
    }
    // ACK at once.
    if (this.protocol === 'sotw') this.latest.set(t, { version: r.versionInfo, nonce: r.nonce });
    this.request(t, { nonce: r.nonce, version: r.versionInfo });
    const now = Date.now();
    checkMarkers(this.idx, buf, r, now);
    this.previousResponseAt = now;

    if (t === CDS) {
      if (this.cdsAckAt === 0) {
        this.cdsAckAt = now;
        this.ldsTimer = setTimeout(() => this.requestLds(), this.initialFetchTimeoutMs);
      }
      if (refsChanged)
        this.resubscribe(EDS, new Set([...this.clusters.values()].flatMap((c) => (c.eds ? [c.eds] : []))));
    }
    if (refsChanged) {
      const secrets = new Set<string>();
      for (const held of [this.clusters, this.listeners])
        for (const x of held.values()) for (const s of x.secrets) secrets.add(s);
      this.resubscribe(SDS, secrets);
    }
    if (t === LDS) {
      if (this.ldsAckAt === 0) this.ldsAckAt = now;
      if (refsChanged) this.resubscribe(RDS, new Set([...this.listeners.values()].flatMap((l) => l.routes)));
    }
    this.phases(now);
  }

  /** Envoy-like: after CDS, one request with the new names of a dependent type. */
  private resubscribe(typeUrl: string, wanted: Set<string>): void {
    const current = this.sub.get(typeUrl)!;
    if (setEq(current, wanted)) return;
    const add = [...wanted].filter((n) => !current.has(n));
    const remove = [...current].filter((n) => !wanted.has(n));
    const answered = this.answered.get(typeUrl)!;
    for (const n of remove) answered.delete(n);
    this.sub.set(typeUrl, wanted);
    this.request(typeUrl, { subscribe: add, unsubscribe: remove });
  }

  private requestLds(): void {
    if (this.ldsRequested || !this.open) return;
    this.ldsRequested = true;
    if (this.ldsTimer) clearTimeout(this.ldsTimer);
    this.request(LDS, { subscribe: [] });
  }

  private phases(now: number): void {
    if (this.cdsAckAt === 0) return;
    if (this.edsDoneAt === 0 && covered(this.sub.get(EDS)!, this.answered.get(EDS)!)) this.edsDoneAt = now;
    if (this.sdsDoneAt === 0 && covered(this.sub.get(SDS)!, this.answered.get(SDS)!)) this.sdsDoneAt = now;
    // Clusters warm until their CLAs and secrets arrived; then Envoy asks for listeners.
    if (!this.ldsRequested && this.edsDoneAt > 0 && this.sdsDoneAt > 0) this.requestLds();
    if (this.ldsAckAt > 0 && this.rdsDoneAt === 0 && covered(this.sub.get(RDS)!, this.answered.get(RDS)!)) {
      this.rdsDoneAt = now;
    }
  }
}

// ---------------------------------------------------------------------------
// The fleet and the IPC loop.

let proxies: SimProxy[] = [];
let connectT0 = 0;
let rampTimer: NodeJS.Timeout | undefined;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function dist(values: number[]): Dist {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length > 0 ? Math.max(...values) : null,
  };
}

function readySummary(timedOut: boolean): ReadySummary {
  const at = (f: (p: SimProxy) => number) =>
    dist(proxies.map(f).flatMap((t) => (t > 0 ? [t - connectT0] : [])));
  const errors: Record<string, number> = {};
  for (const p of proxies) if (p.failed) errors[p.failed] = (errors[p.failed] ?? 0) + 1;
  return {
    total: proxies.length,
    ready: proxies.filter((p) => p.ready).length,
    failed: proxies.filter((p) => p.failed !== undefined).length,
    errors,
    streamErrors: { ...totals.errors },
    reconnects: totals.reconnects,
    connected: at((p) => p.connectedAt),
    cdsAcked: at((p) => p.cdsAckAt),
    edsDone: at((p) => p.edsDoneAt),
    sdsDone: at((p) => p.sdsDoneAt),
    ldsAcked: at((p) => p.ldsAckAt),
    rdsDone: at((p) => p.rdsDoneAt),
    allTypes: at((p) => (p.ready ? Math.max(p.cdsAckAt, p.edsDoneAt, p.ldsAckAt, p.rdsDoneAt) : 0)),
    allTypesWithSds: at((p) =>
      p.ready && p.sdsDoneAt > 0
        ? Math.max(p.cdsAckAt, p.edsDoneAt, p.ldsAckAt, p.rdsDoneAt, p.sdsDoneAt)
        : 0,
    ),
    timedOut,
  };
}

function connect(m: Extract<ToLoadgen, { op: 'connect' }>): void {
  const base = proxies.length;
  const fresh = m.proxies.map((spec, i) => new SimProxy(base + i, spec, m.protocol, m.initialFetchTimeoutMs));
  proxies = proxies.concat(fresh);
  connectT0 = Date.now();
  let next = 0;
  const step = m.rampMs / Math.max(1, fresh.length);
  const tick = () => {
    const due = Math.floor((Date.now() - connectT0) / Math.max(step, 1e-9)) + 1;
    while (next < fresh.length && next < due) fresh[next++].start(m.xdsAddress);
    if (next < fresh.length) rampTimer = setTimeout(tick, 5);
    else rampTimer = undefined;
  };
  tick();
  send({ op: 'connect-started' });
}

function waitReady(timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const poll = () => {
    const pending = proxies.filter((p) => !p.ready && p.failed === undefined).length;
    const sdsPending = proxies.filter((p) => p.sdsDoneAt === 0 && p.failed === undefined).length;
    if ((pending === 0 && sdsPending === 0 && !rampTimer) || Date.now() > deadline) {
      send({ op: 'ready', summary: readySummary(pending > 0 || sdsPending > 0) });
      return;
    }
    setTimeout(poll, 25);
  };
  poll();
}

function watch(m: Extract<ToLoadgen, { op: 'watch' }>): void {
  const n = proxies.length;
  const state = new Uint8Array(n);
  const except = new Set(m.exceptServices ?? []);
  let total = 0;
  for (const p of proxies) {
    if (p.open && !except.has(p.spec.service)) {
      state[p.idx] = 1;
      total++;
    }
  }
  const expect = m.expect ?? 1;
  const marker: Marker = {
    id: m.id,
    tag: m.tag,
    t0: undefined,
    typeUrl: m.typeUrl,
    bytes: Buffer.from(m.marker, 'hex'),
    resource: m.resource,
    expect,
    state,
    counts: expect > 1 ? new Uint32Array(n) : undefined,
    ackedAt: new Float64Array(n),
    total,
    seen: 0,
    done: false,
  };
  activate(marker);
  send({ op: 'watching', id: m.id });
  marker.timer = setTimeout(() => finish(marker, true), m.timeoutMs);
  if (total === 0) finish(marker, false);
}

let lastCpu = 0;
function stats(): LoadgenStats {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  lastCpu = (cpu.user + cpu.system) / 1e6;
  const s: LoadgenStats = {
    streams: proxies.length,
    open: proxies.filter((p) => p.open).length,
    bytesReceived: totals.bytes,
    responses: totals.responses,
    requestsSent: totals.requests,
    nacksSent: totals.nacks,
    streamErrors: { ...totals.errors },
    reconnects: totals.reconnects,
    rssMb: Math.round(mem.rss / 1048576),
    heapUsedMb: Math.round(mem.heapUsed / 1048576),
    cpuSeconds: lastCpu,
    maxLoopDelayMs: Math.round(loopDelay.max / 1e6),
  };
  loopDelay.reset();
  return s;
}

function closeAll(): void {
  if (rampTimer) clearTimeout(rampTimer);
  for (const m of [...markers.values()]) {
    m.t0 ??= Date.now();
    finish(m, true);
  }
  for (const p of proxies) p.close();
  send({ op: 'closed' });
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('message', (raw: unknown) => {
  const m = raw as ToLoadgen;
  try {
    switch (m.op) {
      case 'connect':
        connect(m);
        break;
      case 'wait-ready':
        waitReady(m.timeoutMs);
        break;
      case 'watch':
        watch(m);
        break;
      case 't0': {
        const marker = markers.get(m.id);
        if (marker) {
          marker.t0 = m.t0;
          if (marker.pendingFinish) report(marker, marker.seen < marker.total);
        }
        break;
      }
      case 'pooled': {
        const h = pooled.get(m.tag);
        send({
          op: 'pooled',
          tag: m.tag,
          dist: h
            ? { n: h.n, p50: h.percentile(50), p99: h.percentile(99), max: h.maxValue }
            : { n: 0, p50: null, p99: null, max: null },
        });
        break;
      }
      case 'stats':
        send({ op: 'stats', stats: stats() });
        break;
      case 'close':
        closeAll();
        break;
    }
  } catch (err) {
    send({ op: 'error', message: (err as Error).stack ?? String(err) });
  }
});

// The harness going away (even by SIGKILL) closes the IPC channel: end with it.
// An orderly exit on SIGTERM (the harness's stop), so that a --cpu-prof profile gets written.
process.on('SIGTERM', () => process.exit(0));

process.on('disconnect', () => {
  for (const p of proxies) p.close();
  process.exit(0);
});
