// One ADS stream: subscriptions, nonces, ACK/NACK and pushes for each type URL,
// in State-of-the-World or Delta form. Rules are numbered as in
// shared/design/XDS-PROTOCOL.md; the spec is
// https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol
import * as grpc from '@grpc/grpc-js';
import type { EncodedResource } from '../../envoy-protos';
import type { Node__Output } from '../../envoy-protos/generated/envoy/config/core/v3/Node';
import type { DeltaDiscoveryRequest__Output } from '../../envoy-protos/generated/envoy/service/discovery/v3/DeltaDiscoveryRequest';
import type { DiscoveryRequest__Output } from '../../envoy-protos/generated/envoy/service/discovery/v3/DiscoveryRequest';
import type { Struct__Output } from '../../envoy-protos/generated/google/protobuf/Struct';
import type { Value__Output } from '../../envoy-protos/generated/google/protobuf/Value';
import type { Logger } from '../log';
import {
  largestPart,
  partsOf,
  type ResourceSet,
  sameNames,
  type TypeChanges,
  transitionOf,
  type XdsCache,
} from './cache';
import type { ServerStreamCall } from './grpc-http2';
import { NameSet } from './names';
import type { AuthResult } from './server';
import type { NackRecord, ProxyStatus, SentRecord, TypeStatus, XdsProtocol } from './status';
import {
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  isFullStateInSotw,
  isTypeUrl,
  LISTENER_TYPE,
  PUSH_ORDER,
  ROUTE_TYPE,
  SECRET_TYPE,
  type TypeUrl,
} from './type-urls';
import {
  changesDelta,
  resourceHash,
  resourcesVersion,
  type SharedBase,
  VersionMap,
  VersionSum,
} from './version';
import {
  deltaEntry,
  deltaHead,
  deltaListEntries,
  deltaPartEntries,
  SerializedParts,
  sotwEntry,
  sotwHead,
} from './wire';

/** A server-side ADS call, SotW or Delta: requests arrive as 'data' events. */
export type AdsCall = ServerStreamCall;

export interface StreamContext {
  readonly cache: XdsCache;
  readonly log: Logger;
  readonly gateTimeoutMs: number;
  readonly nackBackoff: { readonly initial: number; readonly max: number };
  emit(event: string, ...args: unknown[]): void;
  onUnknownType(): void;
  /** A Delta response went out as a shared transition's assembled changes. */
  onSharedResponse(): void;
  /** Runs the stream's pending work soon, in turn with the other streams (see StreamScheduler). */
  schedule(stream: AdsStream): void;
}

/**
 * Runs streams' work (requests, pushes) in turns of a few milliseconds, giving
 * the event loop back between turns: a thousand sidecars connecting, or a
 * change reaching a thousand of them, never holds the loop for seconds (new
 * connections keep being accepted, REST calls answered, ACKs read).
 */
export class StreamScheduler {
  private readonly queue = new Set<AdsStream>();
  private scheduled = false;

  constructor(private readonly budgetMs = 10) {}

  add(stream: AdsStream): void {
    this.queue.add(stream);
    this.wake();
  }

  private wake(): void {
    if (this.scheduled || this.queue.size === 0) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const until = performance.now() + this.budgetMs;
    for (const s of this.queue) {
      this.queue.delete(s);
      s.run();
      if (performance.now() >= until) break;
    }
    this.wake();
  }
}

type Identify = (stream: AdsStream) => AuthResult & { status?: ProxyStatus };

/** Per (stream, type URL) state; the fields below the line are used by one protocol only. */
interface TypeState {
  readonly typeUrl: TypeUrl;
  /** A request of this type arrived on this stream. */
  subscribed: boolean;
  wildcard: boolean;
  names: NameSet;
  /** The cache changed since the last response was computed. */
  dirty: boolean;
  /** Names the cache changed since the last response (Delta looks only at these)... */
  pending: Set<string>;
  /** ...and the names of these change maps (kept whole: they are often shared by every proxy). */
  pendingChanges: TypeChanges[];
  /** ...unless everything must be looked at (new subscriptions, a NACK). */
  fullScan: boolean;
  /** Set by handle() when the request changed what is subscribed. */
  subscriptionChanged: boolean;
  /** The version of the subscribed resources the cache holds, kept as they change. */
  current: VersionSum;
  /** Subscribed names the cache does not hold. */
  missing: Set<string>;
  /** When the cache last changed for this type with no push since (push latency). */
  dirtySince?: number;
  /** The client waits for an answer (first request, newly subscribed names). */
  mustRespond: boolean;
  /** The latest response not yet ACKed or NACKed. */
  outstanding?: { nonce: string; sentAt: number };
  gateTimedOut: boolean;
  consecutiveNacks: number;
  nackBackoffUntil: number;
  status: TypeStatus;
  // --- SotW
  /** Every request so far had empty resource_names (legacy wildcard for LDS/CDS, rule 3.3). */
  legacyWildcard: boolean;
  latestNonce?: string;
  sentVersion?: string;
  /** What the last response held (SotW keeps it to retain clusters during make-before-break). */
  sent: Map<string, EncodedResource>;
  parkedVersion?: string;
  /** Re-send even when unchanged (a cluster that warms needs its CLA, rule 5.3). */
  forceResend: boolean;
  /** EDS only: CLAs that pushed clusters wait for, with when the wait began (rule 5.2). */
  awaitingWarm: Map<string, number>;
  // --- Delta
  /** name -> version the client holds. */
  known: VersionMap;
  inflight: Map<string, DeltaInflight>;
  /** name -> version the client rejected: not re-sent until it changes (rule 2.6). */
  parked: Map<string, string>;
  /** Names to send even when the client is thought to hold them (rule 4.2). */
  force: Set<string>;
}

/**
 * A Delta response not yet ACKed, with what a NACK must undo (rule 4.7). Arrays,
 * not maps: in a connect storm every proxy has a response of a thousand
 * clusters and one of a thousand CLAs in flight at once.
 */
interface DeltaInflight {
  readonly version: string;
  readonly sentAt: number;
  readonly sent: readonly EncodedResource[];
  /** What the client held before each of `sent` (undefined: nothing). */
  readonly sentPrev: readonly (string | undefined)[];
  readonly removed: readonly string[];
  /** What the client held before each of `removed`. */
  readonly removedPrev: readonly (string | undefined)[];
}

/** Marks a resource whose state on the client is unknown after a NACK: any version differs. */
const UNKNOWN = '';

/**
 * The one empty collection every type state starts with for what it seldom or
 * never fills (a Delta stream's SotW `sent`, a cluster type's `awaitingWarm`,
 * parked or forced names): five types x thousands of streams of empty Maps and
 * Sets are megabytes. Reads are free; the first write goes through setOf or
 * mapOf, which make a real one. Writing into these is a bug: it throws.
 */
class EmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('the shared empty map is never written');
  }
}
class EmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error('the shared empty set is never written');
  }
}
const NO_MAP: Map<never, never> = new EmptyMap();
const NO_SET: Set<never> = new EmptySet();
const emptyMap = <K, V>() => NO_MAP as unknown as Map<K, V>;
const emptySet = <T>() => NO_SET as unknown as Set<T>;

type LazySet = 'force' | 'missing' | 'pending';
type LazyMap = 'parked' | 'inflight';

/** The type state's own set, made on its first write. */
function setOf(st: TypeState, key: LazySet): Set<string> {
  if (st[key] === NO_SET) st[key] = new Set();
  return st[key];
}

/** The type state's own map, made on its first write. */
function mapOf<K extends LazyMap>(st: TypeState, key: K): TypeState[K] {
  if (st[key] === NO_MAP) st[key] = new Map() as TypeState[K];
  return st[key];
}

function structToJson(s: Struct__Output | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: Value__Output): unknown {
  switch (v.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJson(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

class StreamClosed extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export abstract class AdsStream {
  abstract readonly protocol: XdsProtocol;
  protected readonly types = new Map<TypeUrl, TypeState>();
  protected node: Node__Output | undefined;
  protected proxyStatus: ProxyStatus | undefined;
  protected readonly log: Logger;
  /** Debug logging is on: only then are the per-request and per-response records built. */
  private readonly debug: boolean;
  private nonceCounter = 0;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  /** When pump() last asked to run again (Infinity: no need). */
  private wantAt = Number.POSITIVE_INFINITY;
  private unwatch: (() => void) | undefined;
  private readonly closeHandlers: (() => void)[] = [];
  /** Requests received and not yet handled (they are handled in the stream's turn). */
  private readonly inbox: (DiscoveryRequest__Output | DeltaDiscoveryRequest__Output)[] = [];
  /** When each request of the inbox arrived (ms since the epoch): an ACK counts from then, not from its turn. */
  private readonly inboxAt: number[] = [];
  /** When the request being handled arrived. */
  private requestAt = 0;
  /** The cache changed: a push may be due at the stream's next turn. */
  private pumpDue = false;

  /** Some subscribed type has a push due (an ACK alone, with none due, needs no pump). */
  private anyDue(): boolean {
    for (const st of this.types.values()) if (st.subscribed && (st.dirty || st.mustRespond)) return true;
    return false;
  }

  constructor(
    protected readonly call: AdsCall,
    protected readonly ctx: StreamContext,
    private readonly identify: Identify,
  ) {
    this.log = ctx.log.child({ peer: call.getPeer() });
    this.debug = this.log.isLevelEnabled?.('debug') ?? true;
    call.on('data', (req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output) => {
      if (this.closed) return;
      this.inbox.push(req);
      this.inboxAt.push(Date.now());
      this.ctx.schedule(this);
    });
    call.on('end', () => this.close());
    call.on('close', () => this.close());
  }

  get nodeId(): string {
    return this.node?.id ?? '';
  }

  get nodeIdIfKnown(): string | undefined {
    return this.proxyStatus ? this.node?.id : undefined;
  }

  get cluster(): string {
    return this.node?.cluster ?? '';
  }

  get metadata(): Record<string, unknown> {
    return structToJson(this.node?.metadata);
  }

  subscriptions(): Map<TypeUrl, { wildcard: boolean; names: string[] }> {
    return new Map(
      [...this.types.values()]
        .filter((t) => t.subscribed)
        .map((t) => [t.typeUrl, { wildcard: t.wildcard, names: [...t.names].sort() }]),
    );
  }

  onClose(fn: () => void): void {
    this.closeHandlers.push(fn);
  }

  /** Ends the stream with OK (graceful shutdown, or a newer stream of the same proxy). */
  end(): void {
    if (this.closed) return;
    try {
      this.call.end();
    } catch {
      // already gone
    }
    this.close();
  }

  private fail(code: grpc.status, message: string): void {
    if (this.closed) return;
    this.log.warn({ nodeId: this.node?.id, code, message }, 'xDS stream closed with an error');
    this.call.fail(code, message);
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.unwatch?.();
    for (const h of this.closeHandlers) h();
  }

  /** The stream's turn: handle the requests received, then push what is due. */
  run(): void {
    const requests = this.inbox.splice(0);
    const arrivals = this.inboxAt.splice(0);
    for (let i = 0; i < requests.length; i++) {
      if (this.closed) return;
      this.requestAt = arrivals[i];
      this.receive(requests[i]);
    }
    if (this.pumpDue || (requests.length > 0 && this.anyDue())) {
      this.pumpDue = false;
      this.pump();
    }
  }

  private receive(req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output): void {
    if (this.closed) return;
    try {
      // Rule 1.3: type_url is mandatory on every ADS request.
      if (!req.type_url)
        throw new StreamClosed(grpc.status.INVALID_ARGUMENT, 'type_url is required on every ADS request');
      if (!this.node) this.start(req.node);
      else if (req.node?.id && req.node.id !== this.node.id) {
        // Rule 1.2: identity is fixed by the first request.
        this.log.warn(
          { nodeId: this.node.id, claimed: req.node.id },
          'node id changed on a stream; keeping the first',
        );
      }
      if (!isTypeUrl(req.type_url)) {
        this.ctx.onUnknownType();
        this.log.warn(
          { nodeId: this.nodeId, typeUrl: req.type_url },
          'request for a type meshplane does not serve',
        );
        return;
      }
      if (this.debug) {
        const d = req as Partial<DeltaDiscoveryRequest__Output & DiscoveryRequest__Output>;
        this.log.debug(
          {
            nodeId: this.nodeId,
            typeUrl: req.type_url,
            nonce: req.response_nonce,
            names: d.resource_names,
            subscribe: d.resource_names_subscribe,
            unsubscribe: d.resource_names_unsubscribe,
            nack: Boolean(req.error_detail),
          },
          'request',
        );
      }
      const st = this.state(req.type_url);
      st.subscriptionChanged = false;
      this.handle(st, req);
      if (st.subscriptionChanged) {
        st.fullScan = true;
        st.names.maybeRebase(() => largestPart(this.resources(st.typeUrl))?.map);
        this.refreshStatus(st);
      }
    } catch (err) {
      if (err instanceof StreamClosed) this.fail(err.code, err.message);
      else {
        this.log.error({ nodeId: this.node?.id, err: (err as Error).stack }, 'xDS stream failed');
        this.fail(grpc.status.INTERNAL, 'internal error');
      }
    }
  }

  private start(node: Node__Output | null): void {
    if (!node?.id)
      throw new StreamClosed(grpc.status.INVALID_ARGUMENT, 'the first request must carry node.id');
    this.node = node;
    const verdict = this.identify(this);
    if (!verdict.ok) {
      this.node = undefined;
      throw new StreamClosed(verdict.code, verdict.message);
    }
    this.proxyStatus = verdict.status;
    this.unwatch = this.ctx.cache.watch(node.id, (changes) => {
      for (const [t, names] of changes) {
        const st = this.types.get(t);
        if (!st) continue;
        st.dirty = true;
        st.dirtySince ??= Date.now();
        this.cacheChanged(st, names);
      }
      this.pumpDue = true;
      this.ctx.schedule(this);
    });
  }

  protected state(typeUrl: TypeUrl): TypeState {
    let st = this.types.get(typeUrl);
    if (!st) {
      // Every field from the start, in one order: the ACK path reads five of these per ACK, and
      // objects that grew their fields in different orders would each have their own shape.
      const status: TypeStatus = {
        typeUrl,
        lastSent: undefined,
        lastAcked: undefined,
        lastNack: undefined,
        current: undefined,
        missing: undefined,
        pushes: 0,
        acks: 0,
        nacks: 0,
      };
      this.proxyStatus?.types.set(typeUrl, status);
      // Every field from the start (optional ones as undefined): one shape for every type state,
      // read on every push and ACK of a thousand streams.
      st = {
        typeUrl,
        subscribed: false,
        wildcard: false,
        names: new NameSet(),
        dirty: false,
        pending: emptySet(),
        pendingChanges: [],
        fullScan: true,
        subscriptionChanged: false,
        current: new VersionSum(),
        missing: emptySet(),
        mustRespond: false,
        gateTimedOut: false,
        consecutiveNacks: 0,
        nackBackoffUntil: 0,
        status,
        legacyWildcard: true,
        sent: this.protocol === 'sotw' ? new Map() : emptyMap(),
        forceResend: false,
        awaitingWarm: typeUrl === ENDPOINT_TYPE ? new Map() : emptyMap(),
        known: new VersionMap(),
        inflight: emptyMap(),
        parked: emptyMap(),
        force: emptySet(),
        dirtySince: undefined,
        outstanding: undefined,
        latestNonce: undefined,
        sentVersion: undefined,
        parkedVersion: undefined,
      };
      this.types.set(typeUrl, st);
    }
    return st;
  }

  protected resources(typeUrl: TypeUrl): ResourceSet {
    return this.ctx.cache.get(this.nodeId, typeUrl);
  }

  /**
   * The status view of what the proxy should hold now: the version of its
   * subscribed resources, and subscribed names the cache does not hold (it
   * waits for them: STALE). Recomputed when the subscription changes; kept up
   * to date name by name when the cache changes (cacheChanged).
   */
  protected refreshStatus(st: TypeState): void {
    const all = this.resources(st.typeUrl);
    const parts = partsOf(all);
    // Names that are a whole shared part of the set plus a few: the part counts by its memoized sum.
    const covered = st.names.coveredBase();
    const part = covered && parts?.find((p) => p.map === covered);
    const rest: Iterable<string> = part ? st.names.addedNames() : st.names;
    st.current.clear();
    if (st.wildcard && parts) for (const p of parts) st.current.addDelta(p.sum());
    else if (st.wildcard) for (const r of all.values()) st.current.add(resourceHash(r));
    else {
      if (part) st.current.addDelta(part.sum());
      for (const n of rest) {
        const r = all.get(n);
        if (r) st.current.add(resourceHash(r));
      }
    }
    st.missing = emptySet();
    for (const n of rest) if (!all.has(n)) setOf(st, 'missing').add(n);
    st.status.current = st.current.toString();
    st.status.missing = [...st.missing];
  }

  /** The cache changed these names: keep the status view and the names to look at in step. */
  private cacheChanged(st: TypeState, changes: TypeChanges): void {
    if (this.protocol === 'delta') st.pendingChanges.push(changes);
    if (st.wildcard && st.names.size === 0) {
      // Every name counts and none can be missing: the version moves by the map's (memoized) sum.
      st.current.addDelta(changesDelta(changes));
      st.status.current = st.current.toString();
      return;
    }
    if (!st.wildcard && this.subscribedToAll(st, changes)) {
      // New versions of names all subscribed: none goes missing or stops missing.
      st.current.addDelta(changesDelta(changes));
      st.status.current = st.current.toString();
      return;
    }
    let missingChanged = false;
    for (const [n, c] of changes) {
      if (!st.wildcard && !st.names.has(n)) continue;
      if (c.before) st.current.sub(resourceHash(c.before));
      if (c.after) st.current.add(resourceHash(c.after));
      if (st.names.has(n)) {
        if (c.after && st.missing.delete(n)) missingChanged = true;
        else if (!c.after && !st.missing.has(n)) {
          setOf(st, 'missing').add(n);
          missingChanged = true;
        }
      }
    }
    st.status.current = st.current.toString();
    if (missingChanged) st.status.missing = [...st.missing];
  }

  /** The changes are a shared list's new versions (SharedTransition) and every name of that list is subscribed. */
  protected subscribedToAll(st: TypeState, changes: TypeChanges): boolean {
    const t = transitionOf(changes);
    if (!t?.modifiesOnly) return false;
    const covered = st.names.coveredBase();
    return covered !== undefined && sameNames(covered, t.from);
  }

  protected nextNonce(): string {
    this.nonceCounter++;
    return String(this.nonceCounter);
  }

  protected recordAck(st: TypeState, version: string, nonce: string): void {
    st.outstanding = undefined;
    st.consecutiveNacks = 0;
    st.nackBackoffUntil = 0;
    st.status.lastAcked = { version, nonce, at: new Date(this.requestAt) };
    st.status.acks++;
    this.ctx.emit('ack', this.proxyStatus, st.typeUrl, version, this.requestAt);
  }

  protected recordNack(
    st: TypeState,
    version: string,
    nonce: string,
    detail: { code: number; message: string },
    resources: readonly string[],
  ): void {
    st.outstanding = undefined;
    st.consecutiveNacks++;
    const { initial, max } = this.ctx.nackBackoff;
    st.nackBackoffUntil = Date.now() + Math.min(max, initial * 2 ** (st.consecutiveNacks - 1));
    const nack: NackRecord = {
      version,
      nonce,
      at: new Date(),
      message: detail.message,
      code: detail.code,
      resources: [...resources],
    };
    st.status.lastNack = nack;
    st.status.nacks++;
    // Rejected clusters never warm; listeners need not wait for their CLAs.
    if (st.typeUrl === CLUSTER_TYPE) this.types.get(ENDPOINT_TYPE)?.awaitingWarm.clear();
    this.log.warn({ nodeId: this.nodeId, typeUrl: st.typeUrl, version, message: detail.message }, 'NACK');
    this.ctx.emit('nack', this.proxyStatus, st.typeUrl, nack);
  }

  protected recordSent(st: TypeState, version: string, nonce: string, resources: number): void {
    st.outstanding = { nonce, sentAt: Date.now() };
    st.gateTimedOut = false;
    const sent: SentRecord = { version, nonce, at: new Date(), resources };
    st.status.lastSent = sent;
    st.status.pushes++;
    const latencyMs = st.dirtySince === undefined ? undefined : Date.now() - st.dirtySince;
    st.dirtySince = undefined;
    this.ctx.emit('push', this.proxyStatus, st.typeUrl, sent, latencyMs);
  }

  /**
   * The client dropped names: what it holds changed without a response. Keep the
   * ACKed view in step (unless a response is in flight; its ACK will say).
   */
  protected afterUnsubscribe(st: TypeState, heldVersion: () => string): void {
    if (st.outstanding || !st.status.lastAcked) return;
    st.status.lastAcked = { ...st.status.lastAcked, version: heldVersion(), at: new Date() };
  }

  /** True while listeners or routes still have a push to make or to see ACKed. */
  protected routingPending(): boolean {
    for (const t of ROUTING_TYPES) {
      const st = this.types.get(t);
      if (st?.subscribed && (st.dirty || st.outstanding)) return true;
    }
    return false;
  }

  /**
   * Sends what is due, type by type in make-before-break order (rule 5.1).
   * Secrets, clusters and endpoints go at once; a listener or route push waits
   * while an earlier type's response is not yet ACKed or a pushed cluster still
   * waits for its CLA (rule 5.2), for at most gateTimeoutMs. A client's own
   * request is answered at once.
   */
  protected pump(): void {
    if (this.closed || !this.node) return;
    const now = Date.now();
    let gated = false;
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const t of PUSH_ORDER) {
      const st = this.types.get(t);
      if (!st?.subscribed) continue;
      if (t === LISTENER_TYPE) {
        // Listeners and routes wait until the clusters pushed before them got their CLAs (rule 5.2).
        const since = this.oldestWarmWait();
        if (since !== undefined && now < since + this.ctx.gateTimeoutMs) {
          gated = true;
          wakeAt = Math.min(wakeAt, since + this.ctx.gateTimeoutMs);
        }
      }
      // Only listeners and routes wait: clusters and endpoints go back to back, because
      // Envoy holds a CDS ACK until the changed clusters got their CLAs (they warm).
      const waits = t === LISTENER_TYPE || t === ROUTE_TYPE;
      if (st.mustRespond || (st.dirty && !(waits && gated))) {
        if (!st.mustRespond && now < st.nackBackoffUntil) {
          wakeAt = Math.min(wakeAt, st.nackBackoffUntil);
        } else {
          // Clusters (and, in Delta, their endpoints) leave only after routes moved away (rule 5.1).
          const retain = (t === CLUSTER_TYPE || t === ENDPOINT_TYPE) && this.routingPending();
          const retained = this.respond(st, retain);
          st.mustRespond = false;
          st.dirty = retained;
        }
      }
      if (st.outstanding && t !== SECRET_TYPE) {
        const until = st.outstanding.sentAt + this.ctx.gateTimeoutMs;
        if (now < until) {
          gated = true;
          wakeAt = Math.min(wakeAt, until);
        } else if (!st.gateTimedOut) {
          st.gateTimedOut = true;
          this.log.warn(
            { nodeId: this.nodeId, typeUrl: t },
            'no ACK within the gate timeout; pushing later types anyway',
          );
        }
      }
      if (st.dirty && waits && gated) wakeAt = Math.min(wakeAt, now + this.ctx.gateTimeoutMs);
    }
    this.schedule(wakeAt);
  }

  private oldestWarmWait(): number | undefined {
    const eds = this.types.get(ENDPOINT_TYPE);
    if (!eds || eds.awaitingWarm.size === 0) return undefined;
    this.warmed(eds, []);
    let oldest: number | undefined;
    for (const since of eds.awaitingWarm.values()) {
      if (oldest === undefined || since < oldest) oldest = since;
    }
    return oldest;
  }

  /** After a CDS push: the CLAs of the added or changed EDS clusters must follow (rules 5.2, 5.3). */
  protected expectWarming(
    pushed: Iterable<EncodedResource>,
    force: (eds: TypeState, name: string) => void,
  ): void {
    const eds = this.types.get(ENDPOINT_TYPE);
    if (!eds?.subscribed) return;
    const now = Date.now();
    for (const r of pushed) {
      if (!r.warms) continue;
      eds.awaitingWarm.set(r.warms, now);
      force(eds, r.warms);
    }
  }

  /** After an EDS response: these CLAs have arrived, or do not exist (nothing to wait for). */
  protected warmed(eds: TypeState, answered: Iterable<string>): void {
    for (const n of answered) eds.awaitingWarm.delete(n);
    const all = this.resources(ENDPOINT_TYPE);
    for (const n of [...eds.awaitingWarm.keys()]) if (!all.has(n)) eds.awaitingWarm.delete(n);
  }

  /**
   * Runs pump() again at `at` (a gate or a NACK back-off ends; Infinity: nothing
   * to wait for). A timer that is due sooner is kept rather than replaced, and
   * one nobody needs any more is left to fire and do nothing: a push and its
   * ACK then cost no timer changes, and a thousand timers that come due together
   * cost a check each, not a pump.
   */
  private schedule(at: number): void {
    if (this.closed) return;
    let want = at;
    if (Number.isFinite(want)) {
      let anyDirty = false;
      for (const st of this.types.values()) if (st.subscribed && st.dirty) anyDirty = true;
      if (!anyDirty) want = Number.POSITIVE_INFINITY;
    }
    this.wantAt = want;
    if (!Number.isFinite(want) || (this.timer && this.timerAt <= want)) return;
    if (this.timer) clearTimeout(this.timer);
    this.arm(want);
  }

  private arm(at: number): void {
    this.timerAt = at;
    this.timer = setTimeout(() => this.timerFired(), Math.max(1, at - Date.now()));
    this.timer.unref();
  }

  private timerFired(): void {
    this.timer = undefined;
    if (this.closed || !Number.isFinite(this.wantAt)) return;
    if (Date.now() < this.wantAt) this.arm(this.wantAt);
    else this.pump();
  }

  /** Sends a response: its encoded header, then each resource's entry (encoded once, shared by every stream). */
  protected write(
    head: Buffer,
    resources: readonly EncodedResource[],
    entry: (r: EncodedResource) => Buffer | Buffer[],
    describe: () => object,
    /** Entries already assembled (a whole shared part's), sent before those of `resources`. */
    assembled?: Buffer,
  ): void {
    if (this.debug) this.log.debug({ nodeId: this.nodeId, ...describe() }, 'response');
    const entries = resources.map(entry);
    if (assembled) entries.unshift(assembled);
    this.call.write(new SerializedParts(head, entries));
  }

  /** Handles one request of a served type (subscriptions, ACK/NACK). */
  protected abstract handle(
    st: TypeState,
    req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output,
  ): void;

  /**
   * Sends a response for the type when one is due; returns whether removals
   * were held back (the type stays dirty until they can go).
   */
  protected abstract respond(st: TypeState, retainRemovals: boolean): boolean;
}

/** State-of-the-World: every response holds the full set of a type (or of the requested names). */
export class SotwStream extends AdsStream {
  readonly protocol = 'sotw' as const;

  protected handle(st: TypeState, raw: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output): void {
    const req = raw as DiscoveryRequest__Output;
    const typeUrl = st.typeUrl;
    const first = !st.subscribed;
    if (!first && st.latestNonce !== undefined) {
      // Rule 2.5: a request that does not answer the latest response is stale; ignore it.
      // Rule 1.8: the first request of a type is served whatever nonce it carries.
      if (req.response_nonce !== st.latestNonce) {
        this.log.debug({ nodeId: this.nodeId, typeUrl, nonce: req.response_nonce }, 'stale nonce ignored');
        return;
      }
      if (st.outstanding?.nonce === req.response_nonce) {
        // Rule 2.1: error_detail tells a NACK from an ACK, never the version.
        if (req.error_detail) {
          st.parkedVersion = st.sentVersion;
          this.recordNack(
            st,
            st.sentVersion ?? '',
            req.response_nonce,
            { code: req.error_detail.code, message: req.error_detail.message },
            [...st.sent.keys()],
          );
        } else {
          st.parkedVersion = undefined;
          this.recordAck(st, req.version_info, req.response_nonce);
        }
      }
    }

    // Rule 3.3: subscription, wildcard and the legacy empty-list wildcard.
    const names = req.resource_names;
    if (names.length > 0) st.legacyWildcard = false;
    const wildcard = (isFullStateInSotw(typeUrl) && st.legacyWildcard) || names.includes('*');
    const next = new Set(names.filter((n) => n !== '*'));
    // Added: a name the client did not hold before (a name already sent under the wildcard is not news).
    let added = wildcard && !st.wildcard;
    for (const n of next) if (!st.names.has(n) && !st.sent.has(n)) added = true;
    let removed = false;
    for (const n of st.names) {
      if (next.has(n)) continue;
      st.sent.delete(n); // rule 3.4: clear "sent" on unsubscribe
      removed = true;
    }
    if (first || added || removed || wildcard !== st.wildcard || next.size !== st.names.size)
      st.subscriptionChanged = true;
    st.wildcard = wildcard;
    st.names = new NameSet(next);
    if (removed && !added && !first) {
      this.afterUnsubscribe(st, () => resourcesVersion(st.sent.values()));
    }

    if (first) {
      st.subscribed = true;
      st.dirty = true;
      // Rule 3.7: a reconnecting client with exactly the current content gets no push.
      const { desired, version } = this.desired(st, false);
      if (req.version_info && req.version_info === version) {
        st.sent = desired;
        st.sentVersion = version;
        st.dirty = false;
        st.status.current = version;
        st.status.lastAcked = { version, nonce: '', at: new Date() };
        this.log.debug(
          { nodeId: this.nodeId, typeUrl, version },
          'reconnect at the current version; nothing to send',
        );
        return;
      }
      st.mustRespond = true; // rule 3.5: answer the first request at once, even when empty
    } else if (added) {
      st.mustRespond = true; // rule 3.4: added names are always answered
    }
  }

  private desired(
    st: TypeState,
    retainRemovals: boolean,
  ): { desired: Map<string, EncodedResource>; version: string; retained: boolean } {
    const all = this.resources(st.typeUrl);
    const desired = new Map<string, EncodedResource>();
    if (st.wildcard) for (const [n, r] of all) desired.set(n, r);
    for (const n of st.names) {
      const r = all.get(n);
      if (r) desired.set(n, r); // rule 3.6: a missing named resource is simply not sent
    }
    const current = resourcesVersion(desired.values());
    let retained = false;
    // Rule 5.1: with full-state CDS, clusters leave only after the routes stopped using them.
    if (retainRemovals && isFullStateInSotw(st.typeUrl)) {
      for (const [n, r] of st.sent) {
        if (!desired.has(n)) {
          desired.set(n, r);
          retained = true;
        }
      }
    }
    const version = retained ? resourcesVersion(desired.values()) : current;
    return { desired, version, retained };
  }

  protected respond(st: TypeState, retainRemovals: boolean): boolean {
    const { desired, version, retained } = this.desired(st, retainRemovals);
    if (!st.mustRespond && !st.forceResend) {
      if (version === st.sentVersion) return retained; // rule 1.9: only news
      if (version === st.parkedVersion) return retained; // rule 2.6: never resend rejected content
    }
    const nonce = this.nextNonce();
    this.write(sotwHead(version, st.typeUrl, nonce), [...desired.values()], sotwEntry, () => ({
      typeUrl: st.typeUrl,
      nonce,
      resources: [...desired.keys()].slice(0, 20),
    }));
    // Rule 5.3: clusters added or changed warm until their CLA arrives, even an unchanged one.
    if (st.typeUrl === CLUSTER_TYPE) {
      const pushed = [...desired.values()].filter((r) => st.sent.get(r.name)?.version !== r.version);
      this.expectWarming(pushed, (eds) => {
        eds.forceResend = true;
        eds.dirty = true;
      });
    }
    if (st.typeUrl === ENDPOINT_TYPE) this.warmed(st, desired.keys());
    st.sent = desired;
    st.sentVersion = version;
    st.latestNonce = nonce;
    st.forceResend = false;
    this.recordSent(st, version, nonce, desired.size);
    return retained;
  }
}

/** Delta (incremental): responses carry only what changed, and what was removed. */
export class DeltaStream extends AdsStream {
  readonly protocol = 'delta' as const;

  protected handle(st: TypeState, raw: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output): void {
    const req = raw as DeltaDiscoveryRequest__Output;
    if (!st.subscribed) {
      st.subscribed = true;
      st.dirty = true;
      st.subscriptionChanged = true;
      // Rule 4.8: seed what the client holds from initial_resource_versions.
      const initial = Object.entries(req.initial_resource_versions ?? {});
      for (const [n, v] of initial) st.known.set(n, v);
      if (initial.length > 0) {
        // What a reconnecting client declares it holds is what it accepted before.
        st.status.lastAcked = { version: st.known.version, nonce: '', at: new Date() };
      }
      // Rule 4.1: a first request subscribing nothing is the legacy wildcard.
      if (req.resource_names_subscribe.length === 0) st.wildcard = true;
      // A fresh client waits for an answer even when there is nothing (rule 3.5).
      if (initial.length === 0) st.mustRespond = true;
      for (const raw of req.resource_names_subscribe) {
        const n = this.intern(st, raw);
        if (n === '*') st.wildcard = true;
        else {
          st.names.add(n);
          if (!st.known.has(n)) setOf(st, 'force').add(n);
        }
      }
      if (st.force.size > 0) st.mustRespond = true;
      return;
    }

    // Rule 4.6: a nonce ACKs (or with error_detail NACKs) that response.
    if (req.response_nonce) {
      const inflight = st.inflight.get(req.response_nonce);
      if (inflight) {
        st.inflight.delete(req.response_nonce);
        if (req.error_detail) {
          // Rule 4.7: nothing of that response was surely accepted.
          for (const r of inflight.sent) {
            if (st.known.get(r.name) === r.version) st.known.set(r.name, UNKNOWN);
            mapOf(st, 'parked').set(r.name, r.version);
          }
          inflight.removed.forEach((n, i) => {
            const prev = inflight.removedPrev[i];
            if (!st.known.has(n) && prev !== undefined) st.known.set(n, prev);
          });
          st.fullScan = true;
          this.recordNack(
            st,
            inflight.version,
            req.response_nonce,
            { code: req.error_detail.code, message: req.error_detail.message },
            inflight.sent.map((r) => r.name),
          );
        } else {
          if (st.parked.size > 0) for (const r of inflight.sent) st.parked.delete(r.name);
          this.recordAck(st, inflight.version, req.response_nonce);
        }
        // Responses may be pipelined: the type stays outstanding until the latest one is answered.
        let latest: [string, DeltaInflight] | undefined;
        for (const e of st.inflight) latest = e;
        if (latest) st.outstanding = { nonce: latest[0], sentAt: latest[1].sentAt };
      }
    }

    // Rule 4.1 / 4.6: subscription changes apply whatever the nonce.
    if (req.resource_names_subscribe.length > 0 || req.resource_names_unsubscribe.length > 0)
      st.subscriptionChanged = true;
    for (const raw of req.resource_names_subscribe) {
      const n = this.intern(st, raw);
      st.mustRespond = true;
      if (n === '*') {
        st.wildcard = true;
        for (const name of this.resources(st.typeUrl).keys())
          if (!st.known.has(name)) setOf(st, 'force').add(name);
      } else {
        st.names.add(n);
        setOf(st, 'force').add(n); // rule 4.2: every subscribed name is answered
      }
    }
    for (const n of req.resource_names_unsubscribe) {
      if (n === '*') {
        st.wildcard = false;
        for (const name of [...st.known.keys()]) if (!st.names.has(name)) st.known.delete(name);
        continue;
      }
      st.names.delete(n);
      st.force.delete(n);
      if (st.wildcard && this.resources(st.typeUrl).has(n)) {
        // Rule 4.4: still covered by the wildcard: the client may have dropped it; send it again.
        setOf(st, 'force').add(n);
        st.mustRespond = true;
      } else {
        st.known.delete(n);
      }
    }
    if (req.resource_names_unsubscribe.length > 0) this.afterUnsubscribe(st, () => st.known.version);
  }

  /** The cache's own string for a subscribed name (a thousand proxies then hold one copy, not a thousand). */
  private intern(st: TypeState, name: string): string {
    return this.resources(st.typeUrl).get(name)?.name ?? name;
  }

  protected respond(st: TypeState, retainRemovals: boolean): boolean {
    if (this.respondShared(st)) return false;
    const all = this.resources(st.typeUrl);
    // A client holding nothing (its first response of the type) can only be sent what it wants.
    const fresh = st.known.size === 0;
    const send: EncodedResource[] = [];
    // Only the names that changed in the cache or must be answered, unless everything must be looked at.
    let candidates: Iterable<string>;
    // A client holding nothing, with nothing parked, is sent every resource it wants that the cache
    // holds: all of them (wildcard), or the whole first part of the cache's list when it subscribed
    // to every name of it (a thousand CLAs), with no lookup per name. (Its subscribed names are all
    // forced, rule 4.2; for a client holding nothing that only matters to names the cache lacks.)
    let bulk: SharedBase | undefined;
    const plainFirst = fresh && st.parked.size === 0;
    if (plainFirst && !st.wildcard) {
      const first = partsOf(all)?.[0];
      bulk = first && st.names.coveredBase() === first.map ? first : undefined;
      candidates = bulk ? st.names.addedNames() : st.names;
      if (bulk) for (const r of bulk.map.values()) send.push(r);
    } else if (fresh && !st.wildcard) candidates = st.names;
    else if (plainFirst && st.force.size === 0 && st.names.size === 0) {
      candidates = EMPTY_NAMES;
      for (const r of all.values()) send.push(r);
    } else if (fresh && st.names.size === 0) candidates = all.keys();
    else if (st.fullScan) {
      const set = new Set(st.names);
      if (st.wildcard) for (const n of all.keys()) set.add(n);
      for (const n of st.known.keys()) set.add(n);
      candidates = set;
    } else if (st.pendingChanges.length === 1 && st.pending.size === 0 && st.force.size === 0) {
      candidates = st.pendingChanges[0].keys();
    } else {
      const set = setOf(st, 'pending');
      for (const c of st.pendingChanges) for (const n of c.keys()) set.add(n);
      for (const n of st.force) set.add(n);
      candidates = set;
    }
    st.pending = emptySet();
    st.pendingChanges = [];
    st.fullScan = false;

    /** What the client held of each resource in `send` (for NACK rollback, rule 4.7). */
    const sentPrev: (string | undefined)[] = new Array(send.length).fill(undefined);
    const removed: string[] = [];
    let retained = false;
    for (const n of candidates) {
      const r = all.get(n);
      const wanted = st.wildcard || st.names.has(n);
      if (r && wanted) {
        const forced = st.force.has(n);
        const held = st.known.get(n);
        if (!forced && held === r.version) continue;
        if (!forced && st.parked.get(n) === r.version) continue; // rule 2.6
        send.push(r);
        sentPrev.push(held);
      } else if (st.known.has(n)) {
        // Rule 4.4: the client holds it and it is gone. Secrets are never removed (rule 4.5, E#32832).
        if (st.typeUrl === SECRET_TYPE) st.known.delete(n);
        else if (retainRemovals) {
          retained = true; // rule 5.1: clusters leave after routes moved
          setOf(st, 'pending').add(n);
        } else removed.push(n);
      } else if (st.force.has(n) && st.names.has(n) && st.typeUrl !== SECRET_TYPE) {
        removed.push(n); // rule 4.5: tell the client at once that it does not exist; keep watching
      }
    }
    st.force = emptySet();
    if (send.length === 0 && removed.length === 0 && !st.mustRespond) return retained;

    const removedPrev: (string | undefined)[] = new Array(removed.length);
    const anyParked = st.parked.size > 0;
    // A response that holds a whole shared part: when it is the first of the type, the client holds
    // that part (adopted at once); and the part's entries go assembled in one piece, made once
    // (deltaPartEntries), except for endpoints: their lists change with every instance registered,
    // and in a connect storm each build's list would get its own copy, garbage a build later.
    const whole = anyParked ? undefined : bulk && bulk === largestPart(all) ? bulk : wholePart(all, send);
    const assembled = whole && st.typeUrl !== ENDPOINT_TYPE ? deltaPartEntries(whole) : undefined;
    if (whole && fresh) {
      st.known.adopt(whole);
      for (const r of send) if (whole.map.get(r.name) !== r) st.known.set(r.name, r);
    } else
      for (const r of send) {
        st.known.set(r.name, r);
        if (anyParked) st.parked.delete(r.name);
      }
    removed.forEach((n, i) => {
      removedPrev[i] = st.known.get(n);
      st.known.delete(n);
    });
    const largest = largestPart(all);
    if (!st.known.catchUp(largest)) st.known.maybeRebase(() => largest);
    const version = st.known.version;
    const nonce = this.nextNonce();
    this.write(
      deltaHead(version, st.typeUrl, nonce, removed),
      assembled && whole ? send.filter((r) => whole.map.get(r.name) !== r) : send,
      deltaEntry,
      () => ({ typeUrl: st.typeUrl, nonce, resources: send.slice(0, 20).map((r) => r.name), removed }),
      assembled,
    );
    this.sent(st, version, nonce, { sent: send, sentPrev, removed, removedPrev });
    return retained;
  }

  /**
   * The common case under churn, answered without looking at names one by one: the only news is
   * one shared transition of a list (every proxy of the view got the same changes map, see
   * SharedTransition), each change is a new version of a resource the client subscribed to, and
   * the client holds the list replaced, apart from names the change does not touch. The response
   * is then the transition's resources, assembled once for every proxy; what the client holds
   * moves to the new list in O(changes). Returns false when the general path must answer.
   */
  private respondShared(st: TypeState): boolean {
    if (st.fullScan || st.pendingChanges.length !== 1 || st.pending.size > 0) return false;
    if (st.force.size > 0 || st.parked.size > 0 || st.known.size === 0) return false;
    const changes = st.pendingChanges[0];
    const t = transitionOf(changes);
    if (!t?.modifiesOnly || t.after.length === 0) return false;
    // Every changed name is subscribed: all of the list replaced are (the lists have the same names), or each is.
    if (!st.wildcard && !this.subscribedToAll(st, changes)) {
      for (const n of changes.keys()) if (!st.names.has(n)) return false;
    }
    const to = t.to;
    if (!to || !st.known.advance(t.from, to, changes.keys(), changesDelta(changes))) return false;
    st.pendingChanges = [];
    const version = st.known.version;
    const nonce = this.nextNonce();
    this.write(
      deltaHead(version, st.typeUrl, nonce, EMPTY_NAMES),
      EMPTY_RESOURCES,
      deltaEntry,
      () => ({
        typeUrl: st.typeUrl,
        nonce,
        resources: t.after.slice(0, 20).map((r) => r.name),
        shared: true,
      }),
      deltaListEntries(t.after),
    );
    this.sent(st, version, nonce, {
      sent: t.after,
      sentPrev: t.beforeVersions,
      removed: EMPTY_NAMES,
      removedPrev: EMPTY_VERSIONS,
    });
    this.ctx.onSharedResponse();
    return true;
  }

  /** After a Delta response went: warming (rules 5.2, 5.3), what a NACK must undo (rule 4.7), status. */
  private sent(
    st: TypeState,
    version: string,
    nonce: string,
    r: Omit<DeltaInflight, 'version' | 'sentAt'>,
  ): void {
    // Rule 5.3: a pushed EDS cluster warms until its CLA arrives, so the CLA goes again.
    if (st.typeUrl === CLUSTER_TYPE) {
      this.expectWarming(r.sent, (eds, name) => {
        if (eds.names.has(name) || eds.wildcard) {
          setOf(eds, 'force').add(name);
          eds.dirty = true;
        }
      });
    }
    if (st.typeUrl === ENDPOINT_TYPE && st.awaitingWarm.size > 0)
      this.warmed(st, [...r.sent.map((e) => e.name), ...r.removed]);
    mapOf(st, 'inflight').set(nonce, { version, ...r, sentAt: Date.now() });
    this.recordSent(st, version, nonce, r.sent.length);
  }
}

const EMPTY_NAMES: readonly string[] = [];
const EMPTY_VERSIONS: readonly (string | undefined)[] = [];
const EMPTY_RESOURCES: readonly EncodedResource[] = [];
const ROUTING_TYPES = [LISTENER_TYPE, ROUTE_TYPE] as const;

/** The largest shared part of `all` when `send` holds every resource of it, else undefined. */
function wholePart(all: ResourceSet, send: readonly EncodedResource[]): SharedBase | undefined {
  const big = largestPart(all);
  if (!big || send.length < big.map.size) return undefined;
  let n = 0;
  for (const r of send) if (big.map.get(r.name) === r) n++;
  return n === big.map.size ? big : undefined;
}
