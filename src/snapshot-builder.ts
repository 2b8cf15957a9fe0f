// The push pipeline: store change feed -> coalescing -> snapshot at revision R ->
// translate per proxy -> encode (once per shared object) -> xDS cache -> ADS.
// The only module that imports the registry, the translator and xds together.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { stringify as toYaml } from 'yaml';
import {
  decodeResource,
  type EncodedResource,
  encodeComposite,
  encodeItem,
  encodeOverlay,
  encodeResource,
} from '../envoy-protos';
import type { Logger } from './log';
import { processCpuLoad } from './loop-load';
import { type Instance, type Kind, type MeshObject, parseDurationMs } from './model';
import type { ChangeEvent, Store } from './registry';
import { unifiedDiff } from './registry/versions';
import type { WorkloadCertificate } from './sds/ca';
import type { CertManager } from './sds/certs';
import {
  buildMeshSnapshot,
  IDENTITY_SECRET,
  MeshTranslator,
  type ProxyIdentity,
  proxyIdentity,
  TRUST_SECRET,
  type Warning,
  withInstanceChanges,
} from './translator';
import type { Obj } from './translator/envoy';
import {
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  type NackRecord,
  type ProxyStatus,
  ROUTE_TYPE,
  SECRET_TYPE,
  SHORT_NAMES,
  type SnapshotUpdate,
  type TypeUrl,
  type XdsCache,
} from './xds';

export interface SnapshotBuilderOptions {
  readonly store: Store;
  readonly cache: XdsCache;
  /** Workload certificates; without it proxies get no secrets (mTLS cannot work). */
  readonly certs?: CertManager;
  readonly log: Logger;
  /** Wait this long after the last change before building (default 2 ms)... */
  readonly quietMs?: number;
  /** ...but never longer than this after the first one (default 100 ms). */
  readonly maxDelayMs?: number;
  /**
   * Under churn the window grows beyond maxDelayMs while the server uses more CPU than this
   * (in cores, default 0.55), up to churnMaxDelayMs (default 300 ms), and shrinks back as the
   * load falls: each proxy then gets fewer, larger pushes. (At 1,000 proxies and 50 changes a
   * second: 0.73 instead of 1.04 cores, per-change p99 unchanged.) CPU, not the event loop's
   * busy share: that also counts the loop blocked in the store's fsync, which costs nothing.
   */
  readonly churnLoadTarget?: number;
  readonly churnMaxDelayMs?: number;
  /**
   * The CPU the process used since the previous call, in cores (default: processCpuLoad, from
   * process.cpuUsage). Tests give their own.
   */
  readonly loadSinceLastCall?: () => number;
  /** Told every change of the store's change feed, as it is seen. */
  readonly onStoreChange?: (ev: ChangeEvent) => void;
  /** Told after each build: the revision and the proxies whose resources changed in it. */
  readonly onBuilt?: (revision: number, affected: readonly string[]) => void;
  /** Told after each build: revision, proxies updated, duration, whether it was the endpoint fast path. */
  readonly onBuild?: (b: {
    revision: number;
    proxies: number;
    ms: number;
    endpointsOnly: boolean;
    /** From the first change the build gathered to its start (the coalescing window); none for the first build. */
    waitedMs?: number;
  }) => void;
}

const key = (kind: string, name: string) => `${kind}/${name}`;

export class SnapshotBuilder {
  private readonly objects = new Map<string, MeshObject>();
  /** Store metadata of each object (for provenance and blame). */
  private readonly meta = new Map<string, { resourceVersion: string; revision: number }>();
  /** Each object as it was before its latest change (undefined: it did not exist). */
  private readonly previous = new Map<string, MeshObject | undefined>();
  /** Objects whose latest version a proxy rejected: the version served instead. */
  private readonly quarantined = new Map<
    string,
    { resourceVersion: string; serving: MeshObject | undefined }
  >();
  /** NACKs attributed to each object (cleared when the object changes). */
  private readonly nacks = new Map<string, ObjectNack[]>();
  private readonly proxies = new Map<string, ProxyIdentity>();
  /**
   * The translated endpoint list each proxy's cache entry was last set from: an endpoint build
   * skips a proxy whose view's list is the same array (the cache already holds it), so a change
   * costs only the proxies whose views it touches.
   */
  private readonly endpointLists = new Map<string, Obj[]>();
  private revision = 0;
  private translator: MeshTranslator;
  private readonly encoded = new WeakMap<Obj, EncodedResource>();
  private readonly encodedLists = new WeakMap<Obj[], EncodedResource[]>();
  private readonly byContent = new ContentMemo();
  private warnings = new Map<string, string[]>();
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  /** When the last ten changes arrived (churn: all ten within a second). */
  private readonly recentChanges: number[] = [];
  /** The churn window now (see churnLoadTarget), and whether the pending build is under churn. */
  private churnDelayMs: number;
  private pendingChurn = false;
  /** The loop's load over the last few builds under churn (undefined when not under churn). */
  private churnLoad: number | undefined;
  private readonly loadSinceLastCall: () => number;
  private pendingKinds = new Set<Kind>();
  /** Instances changed since the last build, with what that build served of each (withInstanceChanges). */
  private readonly instanceChanges = new Map<string, Instance | undefined>();
  /** The next build may apply instanceChanges to the last build's snapshot (no quarantine came or went). */
  private incremental = false;
  private pendingRevision = 0;
  private readonly revisionWaiters: { revision: number; resolve: () => void }[] = [];
  private readonly secretMemo = new WeakMap<WorkloadCertificate, EncodedResource>();
  private trustMemo: { pem: string; encoded: EncodedResource } | undefined;

  constructor(private readonly o: SnapshotBuilderOptions) {
    this.translator = new MeshTranslator(buildMeshSnapshot(0, []));
    this.churnDelayMs = o.maxDelayMs ?? 100;
    this.loadSinceLastCall = o.loadSinceLastCall ?? processCpuLoad();
  }

  /** Loads the current state and follows the store's change feed. */
  async start(): Promise<void> {
    const snap = await this.o.store.snapshot();
    for (const obj of snap.objects) {
      this.objects.set(key(obj.kind, obj.name), strip(obj));
      this.meta.set(key(obj.kind, obj.name), {
        resourceVersion: obj.resourceVersion,
        revision: obj.revision,
      });
    }
    this.revision = snap.revision;
    this.rebuild(false);
    this.unwatch = this.o.store.watch(snap.revision, (ev) => this.onChange(ev), {
      onError: (err) => this.o.log.error({ err: err.message }, 'change feed failed'),
    });
  }

  stop(): void {
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
  }

  /** The revision of the last build. */
  get builtRevision(): number {
    return this.translator.snapshot.revision;
  }

  /** Resolves once a build at `revision` or later is in the cache (or after timeoutMs). */
  waitForRevision(revision: number, timeoutMs = 2_000): Promise<boolean> {
    if (this.builtRevision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.revisionWaiters.push({
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      });
    });
  }

  /** A service's certificate was issued or rotated: push it to that service's proxies (SDS only). */
  identityIssued(service: string): void {
    for (const [nodeId, identity] of this.proxies) {
      if (identity.service === service)
        this.o.cache.set(nodeId, { [SECRET_TYPE]: this.secretsFor(identity) });
    }
  }

  /** The objects translation uses: quarantined ones replaced by what is served instead. */
  private servedObjects(): MeshObject[] {
    if (this.quarantined.size === 0) return [...this.objects.values()];
    const out: MeshObject[] = [];
    for (const [k, o] of this.objects) {
      const q = this.quarantined.get(k);
      if (!q) out.push(o);
      else if (q.serving) out.push(q.serving);
    }
    return out;
  }

  /**
   * A proxy rejected a response. Find the mesh objects behind the rejected
   * resources; blame the most recently changed of them, attach the NACK to its
   * status and quarantine its new version (serve the one before it), so that
   * unrelated changes keep converging. Returns the blamed objects.
   */
  proxyRejected(nodeId: string, typeUrl: TypeUrl, nack: NackRecord): ObjectRefWithVersion[] {
    const identity = this.proxies.get(nodeId);
    if (!identity) return [];
    const kind = SHORT_NAMES[typeUrl];
    // Provenance against what was intended (quarantined versions included): a proxy may reject
    // a response sent before an earlier quarantine took effect.
    const intended =
      this.quarantined.size === 0
        ? this.translator
        : new MeshTranslator(buildMeshSnapshot(this.revision, [...this.objects.values()]));
    const candidates = new Map<string, ObjectRefWithVersion>();
    for (const name of nack.resources.slice(0, 500)) {
      for (const ref of intended.contributors(identity, kind, name)) {
        const k = key(ref.kind, ref.name);
        const m = this.meta.get(k);
        if (m) candidates.set(k, { ...ref, ...m });
      }
    }
    if (candidates.size === 0) return [];
    // Already quarantined contributors explain it; otherwise blame the most recent change.
    const already = [...candidates.entries()].filter(([k]) => this.quarantined.has(k)).map(([, c]) => c);
    const newest = Math.max(...[...candidates.values()].map((c) => c.revision));
    const blamed =
      already.length > 0 ? already : [...candidates.values()].filter((c) => c.revision === newest);
    let changed = false;
    for (const b of blamed) {
      const k = key(b.kind, b.name);
      const list = this.nacks.get(k) ?? [];
      list.push({
        proxy: nodeId,
        type: kind,
        message: nack.message,
        at: nack.at.toISOString(),
        resourceVersion: b.resourceVersion,
      });
      this.nacks.set(k, list.slice(-20));
      if (!this.quarantined.has(k)) {
        this.quarantined.set(k, { resourceVersion: b.resourceVersion, serving: this.previous.get(k) });
        this.incremental = false;
        changed = true;
        this.o.log.warn(
          { nodeId, kind: b.kind, name: b.name, resourceVersion: b.resourceVersion, message: nack.message },
          'rejected by a proxy: quarantined; its previous version is served',
        );
      }
    }
    // Rebuild outside the stream's request handling that told us.
    if (changed) setImmediate(() => this.rebuild(false));
    return blamed;
  }

  /**
   * What applying `docs` would do to each connected proxy, without doing it:
   * per proxy and resource type, the names added, changed and removed, and a
   * unified diff of the changed resources (as Envoy would see them).
   */
  preview(docs: readonly MeshObject[]): ProxyPreview[] {
    const objs = new Map(this.servedObjects().map((o) => [key(o.kind, o.name), o] as const));
    for (const d of docs) objs.set(key(d.kind, d.name), strip(d));
    const t = new MeshTranslator(buildMeshSnapshot(this.revision + 1, [...objs.values()]));
    const encoded = new WeakMap<Obj, EncodedResource>();
    const encode = (typeUrl: string, o: Obj) => encodeWith(t, typeUrl, o, encoded);
    const asYaml = (typeUrl: string, value: Uint8Array) =>
      toYaml(decodeResource(typeUrl, value), { lineWidth: 0 });
    const out: ProxyPreview[] = [];
    for (const [nodeId, identity] of [...this.proxies.entries()].sort()) {
      const r = t.translate(identity);
      const preview: ProxyPreview = { nodeId, added: {}, changed: {}, removed: {}, diff: '' };
      const diffs: string[] = [];
      for (const [kind, typeUrl, objsOfType] of [
        ['clusters', CLUSTER_TYPE, r.clusters],
        ['endpoints', ENDPOINT_TYPE, r.endpoints],
        ['listeners', LISTENER_TYPE, r.listeners],
        ['routes', ROUTE_TYPE, r.routes],
      ] as const) {
        const current = this.o.cache.get(nodeId, typeUrl);
        const next = new Map(objsOfType.map((o) => encode(typeUrl, o)).map((e) => [e.name, e] as const));
        const added = [...next.keys()].filter((n) => !current.has(n));
        const removed = [...current.keys()].filter((n) => !next.has(n));
        const changed = [...next.values()].filter(
          (e) => current.has(e.name) && current.get(e.name)!.version !== e.version,
        );
        if (added.length > 0) preview.added[kind] = added;
        if (removed.length > 0) preview.removed[kind] = removed;
        if (changed.length > 0) preview.changed[kind] = changed.map((e) => e.name);
        for (const e of changed) {
          diffs.push(
            unifiedDiff(asYaml(typeUrl, current.get(e.name)!.value), asYaml(typeUrl, e.value), {
              fromLabel: `${kind}/${e.name} (now)`,
              toLabel: `${kind}/${e.name} (after)`,
            }),
          );
        }
        for (const n of added)
          diffs.push(
            unifiedDiff('', asYaml(typeUrl, next.get(n)!.value), {
              fromLabel: '/dev/null',
              toLabel: `${kind}/${n}`,
            }),
          );
        for (const n of removed)
          diffs.push(
            unifiedDiff(asYaml(typeUrl, current.get(n)!.value), '', {
              fromLabel: `${kind}/${n}`,
              toLabel: '/dev/null',
            }),
          );
      }
      if (diffs.length > 0) {
        preview.diff = diffs.join('\n');
        out.push(preview);
      }
    }
    return out;
  }

  /** The quarantined objects a proxy rejected (it runs without them): its proxy status stays NACKED. */
  rejectedBy(nodeId: string): { kind: string; name: string; type: string; message: string }[] {
    const out: { kind: string; name: string; type: string; message: string }[] = [];
    for (const k of this.quarantined.keys()) {
      const n = (this.nacks.get(k) ?? []).filter((x) => x.proxy === nodeId).pop();
      if (!n) continue;
      const [kind, name] = k.split('/');
      out.push({ kind, name, type: n.type, message: n.message });
    }
    return out;
  }

  /** NACKs attributed to an object, and whether its latest version is quarantined. */
  rejectionsFor(
    kind: Kind,
    name: string,
  ): { nacks: ObjectNack[]; quarantined?: { resourceVersion: string; serving?: string } } {
    const k = key(kind, name);
    const q = this.quarantined.get(k);
    return {
      nacks: this.nacks.get(k) ?? [],
      ...(q
        ? {
            quarantined: {
              resourceVersion: q.resourceVersion,
              serving: q.serving ? 'previous version' : 'none',
            },
          }
        : {}),
    };
  }

  /** Warnings about an object from the last translation. */
  warningsFor(kind: Kind, name: string): string[] {
    return this.warnings.get(key(kind, name)) ?? [];
  }

  /**
   * A proxy connected: build its resources at once (synchronously, so that its
   * first requests are answered with them).
   */
  proxyConnected(p: ProxyStatus): void {
    const identity = proxyIdentity(p.nodeId, p.metadata);
    this.proxies.set(p.nodeId, identity);
    this.o.cache.set(p.nodeId, this.resourcesFor(identity));
  }

  proxyDisconnected(nodeId: string, isBack: () => boolean): void {
    if (isBack()) return;
    const identity = this.proxies.get(nodeId);
    if (identity) this.translator.forget(identity);
    this.proxies.delete(nodeId);
    this.endpointLists.delete(nodeId);
    this.o.cache.delete(nodeId);
  }

  private onChange(ev: ChangeEvent): void {
    this.o.onStoreChange?.(ev);
    const k = key(ev.kind, ev.name);
    if (ev.kind === 'Instance' && !this.instanceChanges.has(k))
      this.instanceChanges.set(k, this.objects.get(k) as Instance | undefined);
    if (this.quarantined.has(k)) this.incremental = false;
    this.previous.set(k, this.objects.get(k));
    // A new version (a fix) lifts the quarantine and clears the NACKs of the old one.
    this.quarantined.delete(k);
    this.nacks.delete(k);
    if (ev.op === 'delete') {
      this.objects.delete(k);
      this.meta.delete(k);
    } else {
      this.objects.set(k, strip(ev.object));
      this.meta.set(k, { resourceVersion: ev.object.resourceVersion, revision: ev.object.revision });
    }
    this.pendingKinds.add(ev.kind);
    this.pendingRevision = Math.max(this.pendingRevision, ev.revision);
    const now = Date.now();
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    // A few ms when idle. Under churn (ten or more changes in the last second) a build gathers
    // every change of a window after the first: each proxy then gets one push for all of them,
    // at most about ten a second, and the cost of pushing (which grows with the proxies, not
    // with the changes) stays bounded whatever the rate of changes. The window is maxDelayMs,
    // longer while the server is busy (adaptChurnDelay).
    this.recentChanges.push(now);
    if (this.recentChanges.length > 10) this.recentChanges.shift();
    const churn = this.recentChanges.length === 10 && now - this.recentChanges[0] <= 1_000;
    this.pendingChurn ||= churn;
    const maxDelay = churn ? this.churnDelayMs : (this.o.maxDelayMs ?? 100);
    const quiet = churn ? maxDelay : (this.o.quietMs ?? 2);
    const wait = Math.max(0, Math.min(quiet, this.firstPendingAt + maxDelay - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    this.adaptChurnDelay();
    const endpointsOnly = this.pendingKinds.size === 1 && this.pendingKinds.has('Instance');
    this.pendingKinds = new Set();
    this.revision = this.pendingRevision;
    this.rebuild(endpointsOnly, Date.now() - this.firstPendingAt);
  }

  /**
   * A build under churn costs a push to every proxy it touches, whatever the number of changes
   * it gathers: when the server used more CPU than the target, the next window is longer, and
   * shorter when it used less; never below maxDelayMs. The load of one window is noisy (a build's pushes
   * and ACKs fall in it or in the next, a collection may run): the window follows an average over
   * the last second or two, by at most a tenth per build, so that it settles where the load meets
   * the target rather than swinging around it. A change waits at most one window, so the swings
   * were the tail of the time to converge (S3: windows of 100 to 300 ms for 170 on average).
   */
  private adaptChurnDelay(): void {
    const load = this.loadSinceLastCall();
    const floor = this.o.maxDelayMs ?? 100;
    if (!this.pendingChurn) {
      this.churnDelayMs = floor;
      this.churnLoad = undefined;
      return;
    }
    this.pendingChurn = false;
    this.churnLoad = this.churnLoad === undefined ? load : this.churnLoad * 0.8 + load * 0.2;
    const target = this.o.churnLoadTarget ?? 0.55;
    const factor = Math.min(1.1, Math.max(0.9, this.churnLoad / target));
    this.churnDelayMs = Math.round(
      Math.min(this.o.churnMaxDelayMs ?? 300, Math.max(floor, this.churnDelayMs * factor)),
    );
  }

  /** The window a build under churn waits for now (ms). */
  get churnDelay(): number {
    return this.churnDelayMs;
  }

  private rebuild(endpointsOnly: boolean, waitedMs?: number): void {
    const started = performance.now();
    const previous = this.translator;
    // Under churn most builds change instances alone: their services' lists are made again, not all.
    const snapshot =
      endpointsOnly && this.incremental
        ? withInstanceChanges(
            previous.snapshot,
            this.revision,
            this.servedObjects(),
            [...this.instanceChanges].map(([k, before]) => ({
              before,
              after: this.objects.get(k) as Instance | undefined,
            })),
          )
        : buildMeshSnapshot(this.revision, this.servedObjects());
    this.instanceChanges.clear();
    this.incremental = this.quarantined.size === 0;
    this.translator = new MeshTranslator(snapshot, previous);
    const mesh = this.translator.snapshot.mesh.spec;
    this.o.certs?.configure({ trustDomain: mesh.trustDomain, ttlMs: parseDurationMs(mesh.mtls.certTTL) });
    // A service with instances will have sidecars: its identity is issued now, in the background,
    // not when the first of them connects (a connect storm then waits for no key generation).
    if (this.o.certs) {
      const snapshot = this.translator.snapshot;
      for (const service of snapshot.instancesByService.keys())
        if (snapshot.services.has(service)) this.o.certs.ensure(service);
    }
    // Encoded bytes are shared by every proxy that gets the same object, in this build and in later
    // ones that reuse the object (weakly held: they go with the translation that made them).
    this.warnings = new Map();
    for (const w of this.translator.warnings) {
      const k = key(w.kind, w.name);
      this.warnings.set(k, [...(this.warnings.get(k) ?? []), w.message]);
    }
    const affected: string[] = [];
    for (const [nodeId, identity] of this.proxies) {
      let changed: TypeUrl[];
      if (endpointsOnly) {
        const list = this.translator.endpoints(identity);
        if (this.endpointLists.get(nodeId) === list) continue;
        this.endpointLists.set(nodeId, list);
        changed = this.o.cache.set(nodeId, { [ENDPOINT_TYPE]: this.encodeAll(ENDPOINT_TYPE, list) });
      } else changed = this.o.cache.set(nodeId, this.resourcesFor(identity));
      if (changed.length > 0) affected.push(nodeId);
    }
    // The shared lists are compared with the previous ones and encoded now, not by the first
    // proxy to connect after the build (which would stall the loop in a connect storm).
    this.encodeAll(CLUSTER_TYPE, this.translator.outboundClusters());
    this.encodeAll(ENDPOINT_TYPE, this.translator.endpoints({ service: undefined, locality: undefined }));
    this.translator.release();
    this.o.onBuilt?.(this.revision, affected);
    const ms = performance.now() - started;
    for (const w of [...this.revisionWaiters]) {
      if (w.revision <= this.revision) {
        this.revisionWaiters.splice(this.revisionWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
    this.o.log.debug(
      { revision: this.revision, proxies: this.proxies.size, ms, endpointsOnly },
      'snapshot built',
    );
    this.o.onBuild?.({ revision: this.revision, proxies: this.proxies.size, ms, endpointsOnly, waitedMs });
  }

  /** The proxy's own identity (when issued) and the trust bundle. */
  private secretsFor(identity: ProxyIdentity): EncodedResource[] {
    const certs = this.o.certs;
    if (!certs) return [];
    const out: EncodedResource[] = [];
    const rootPem = certs.ca.rootPem;
    let trust = this.trustMemo;
    if (trust?.pem !== rootPem) {
      const encoded = encodeResource(SECRET_TYPE, {
        name: TRUST_SECRET,
        validation_context: { trusted_ca: { inline_string: rootPem } },
      });
      trust = { pem: rootPem, encoded };
      this.trustMemo = trust;
    }
    out.push(trust.encoded);
    if (identity.service) {
      const cert = certs.get(identity.service);
      if (!cert) certs.ensure(identity.service);
      else {
        let e = this.secretMemo.get(cert);
        if (!e) {
          e = encodeResource(SECRET_TYPE, {
            name: IDENTITY_SECRET,
            tls_certificate: {
              certificate_chain: { inline_string: cert.certPem },
              private_key: { inline_string: cert.keyPem },
            },
          });
          this.secretMemo.set(cert, e);
        }
        out.push(e);
      }
    }
    return out;
  }

  private resourcesFor(identity: ProxyIdentity): SnapshotUpdate {
    const r = this.translator.translate(identity);
    this.endpointLists.set(identity.nodeId, r.endpoints);
    // Every proxy's clusters start with its view's outbound ones: one shared part, indexed once.
    const shared = r.outbound;
    return {
      [SECRET_TYPE]: this.secretsFor(identity),
      [CLUSTER_TYPE]: {
        parts: [
          this.encodeAll(CLUSTER_TYPE, shared),
          this.encodeEach(CLUSTER_TYPE, r.clusters.slice(shared.length)),
        ],
      },
      [ENDPOINT_TYPE]: this.encodeAll(ENDPOINT_TYPE, r.endpoints),
      [LISTENER_TYPE]: this.encodeAll(LISTENER_TYPE, r.listeners),
      [ROUTE_TYPE]: this.encodeAll(ROUTE_TYPE, r.routes),
    };
  }

  private encodeAll(typeUrl: string, objs: Obj[]): EncodedResource[] {
    // A list shared by many proxies (the same array) is encoded once per build.
    const shared = this.encodedLists.get(objs);
    if (shared) return shared;
    const out = this.encodeEach(typeUrl, objs);
    this.encodedLists.set(objs, out);
    return out;
  }

  private encodeEach(typeUrl: string, objs: Obj[]): EncodedResource[] {
    return objs.map((o) => encodeWith(this.translator, typeUrl, o, this.encoded, this.byContent));
  }
}

/** Encoded items of composite resources, by item (see MeshTranslator.compositeOf). */
const itemEntries = new WeakMap<Obj, Buffer>();

/**
 * Encodes a translated object once (memoized by identity); one made of a
 * shared base and a few fields of its own encodes the base once for all, and
 * one made of shared items encodes each item once for all.
 */
function encodeWith(
  translator: MeshTranslator,
  typeUrl: string,
  o: Obj,
  memo: WeakMap<Obj, EncodedResource>,
  byContent?: ContentMemo,
): EncodedResource {
  let e = memo.get(o);
  if (e) return e;
  const composite = translator.compositeOf(o);
  const composed = translator.overlayOf(o);
  if (composite) {
    const entries = composite.items.map((item) => {
      let b = itemEntries.get(item);
      if (!b) {
        b = encodeItem(typeUrl, composite.field, item);
        itemEntries.set(item, b);
      }
      return b;
    });
    e = encodeComposite(typeUrl, composite.head, composite.field, entries);
  } else if (composed) {
    for (const k of Object.keys(composed.overlay))
      if (k in composed.base)
        throw new Error(`overlay field ${k} is also in the base of ${typeUrl} ${o.name}`);
    e = encodeOverlay(encodeWith(translator, typeUrl, composed.base, memo, byContent), composed.overlay);
  } else e = byContent ? byContent.encode(typeUrl, o) : encodeResource(typeUrl, o);
  memo.set(o, e);
  return e;
}

/**
 * Encodings by content, for objects a new translation made again with the same
 * content (a route configuration rebuilt because some service changed): its
 * JSON is much cheaper to make than its protobuf encoding, and the encoded
 * resource that comes back is the same object as before (shared, indexed once).
 * Bounded: forgotten all at once past `max` entries.
 */
class ContentMemo {
  private readonly m = new Map<string, EncodedResource>();

  constructor(private readonly max = 50_000) {}

  encode(typeUrl: string, o: Obj): EncodedResource {
    const key = createHash('sha256')
      .update(typeUrl)
      .update('\n')
      .update(JSON.stringify(o))
      .digest('base64url');
    let e = this.m.get(key);
    if (!e) {
      e = encodeResource(typeUrl, o);
      if (this.m.size >= this.max) this.m.clear();
      this.m.set(key, e);
    }
    return e;
  }
}

/** The document without the store's metadata. */
function strip(o: MeshObject): MeshObject {
  const { kind, name, labels, spec } = o as MeshObject & { labels?: Record<string, string> };
  return { kind, name, ...(labels ? { labels } : {}), spec } as MeshObject;
}

export type { Warning };

/** A NACK attributed to an object. */
export interface ObjectNack {
  readonly proxy: string;
  readonly type: string;
  readonly message: string;
  readonly at: string;
  readonly resourceVersion: string;
}

/** What a dry run would do to one proxy. */
export interface ProxyPreview {
  readonly nodeId: string;
  readonly added: Record<string, string[]>;
  readonly changed: Record<string, string[]>;
  readonly removed: Record<string, string[]>;
  diff: string;
}

export interface ObjectRefWithVersion {
  readonly kind: Kind;
  readonly name: string;
  readonly resourceVersion: string;
  readonly revision: number;
}
