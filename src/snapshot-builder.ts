// The push pipeline: store change feed -> coalescing -> snapshot at revision R ->
// translate per proxy -> encode (once per shared object) -> xDS cache -> ADS.
// The only module that imports the registry, the translator and xds together.
import { type EncodedResource, encodeResource } from '../envoy-protos';
import type { Logger } from './log';
import { type Kind, type MeshObject, parseDurationMs } from './model';
import type { ChangeEvent, Store } from './registry';
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
} from './translator';
import type { Obj } from './translator/envoy';
import {
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  type ProxyStatus,
  ROUTE_TYPE,
  SECRET_TYPE,
  type SnapshotUpdate,
  type XdsCache,
} from './xds';

export interface SnapshotBuilderOptions {
  readonly store: Store;
  readonly cache: XdsCache;
  /** Workload certificates; without it proxies get no secrets (mTLS cannot work). */
  readonly certs?: CertManager;
  readonly log: Logger;
  /** Wait this long after the last change before building (default 10 ms)... */
  readonly quietMs?: number;
  /** ...but never longer than this after the first one (default 100 ms). */
  readonly maxDelayMs?: number;
  /** Told when a build changed a proxy's resources: from when (the first store change it reflects). */
  readonly onProxyUpdated?: (nodeId: string, changeSeenAt: number, revision: number) => void;
  /** Told after each build: revision, proxies updated, duration, whether it was the endpoint fast path. */
  readonly onBuild?: (b: { revision: number; proxies: number; ms: number; endpointsOnly: boolean }) => void;
}

const key = (kind: string, name: string) => `${kind}/${name}`;

export class SnapshotBuilder {
  private readonly objects = new Map<string, MeshObject>();
  private readonly proxies = new Map<string, ProxyIdentity>();
  private revision = 0;
  private translator: MeshTranslator;
  private encoded = new WeakMap<Obj, EncodedResource>();
  private warnings = new Map<string, string[]>();
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  /** When the first store change reflected by the build in progress was seen. */
  private changeSeenAt = Date.now();
  private pendingKinds = new Set<Kind>();
  private pendingRevision = 0;
  private readonly revisionWaiters: { revision: number; resolve: () => void }[] = [];
  private readonly secretMemo = new WeakMap<WorkloadCertificate, EncodedResource>();
  private trustMemo: { pem: string; encoded: EncodedResource } | undefined;

  constructor(private readonly o: SnapshotBuilderOptions) {
    this.translator = new MeshTranslator(buildMeshSnapshot(0, []));
  }

  /** Loads the current state and follows the store's change feed. */
  async start(): Promise<void> {
    const snap = await this.o.store.snapshot();
    for (const obj of snap.objects) this.objects.set(key(obj.kind, obj.name), strip(obj));
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
    this.proxies.delete(nodeId);
    this.o.cache.delete(nodeId);
  }

  private onChange(ev: ChangeEvent): void {
    const k = key(ev.kind, ev.name);
    if (ev.op === 'delete') this.objects.delete(k);
    else this.objects.set(k, strip(ev.object));
    this.pendingKinds.add(ev.kind);
    this.pendingRevision = Math.max(this.pendingRevision, ev.revision);
    const now = Date.now();
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    const quiet = this.o.quietMs ?? 10;
    const wait = Math.max(0, Math.min(quiet, this.firstPendingAt + (this.o.maxDelayMs ?? 100) - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    this.changeSeenAt = this.firstPendingAt;
    const endpointsOnly = this.pendingKinds.size === 1 && this.pendingKinds.has('Instance');
    this.pendingKinds = new Set();
    this.revision = this.pendingRevision;
    this.rebuild(endpointsOnly);
  }

  private rebuild(endpointsOnly: boolean): void {
    const started = performance.now();
    this.translator = new MeshTranslator(buildMeshSnapshot(this.revision, [...this.objects.values()]));
    const mesh = this.translator.snapshot.mesh.spec;
    this.o.certs?.configure({ trustDomain: mesh.trustDomain, ttlMs: parseDurationMs(mesh.mtls.certTTL) });
    // Encoded bytes are shared by every proxy that gets the same object in this revision.
    this.encoded = new WeakMap();
    this.warnings = new Map();
    for (const w of this.translator.warnings) {
      const k = key(w.kind, w.name);
      this.warnings.set(k, [...(this.warnings.get(k) ?? []), w.message]);
    }
    for (const [nodeId, identity] of this.proxies) {
      const changed = endpointsOnly
        ? this.o.cache.set(nodeId, {
            [ENDPOINT_TYPE]: this.encodeAll(ENDPOINT_TYPE, this.translator.endpoints(identity)),
          })
        : this.o.cache.set(nodeId, this.resourcesFor(identity));
      if (changed.length > 0) this.o.onProxyUpdated?.(nodeId, this.changeSeenAt, this.revision);
    }
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
    this.o.onBuild?.({ revision: this.revision, proxies: this.proxies.size, ms, endpointsOnly });
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
    return {
      [SECRET_TYPE]: this.secretsFor(identity),
      [CLUSTER_TYPE]: this.encodeAll(CLUSTER_TYPE, r.clusters),
      [ENDPOINT_TYPE]: this.encodeAll(ENDPOINT_TYPE, r.endpoints),
      [LISTENER_TYPE]: this.encodeAll(LISTENER_TYPE, r.listeners),
      [ROUTE_TYPE]: this.encodeAll(ROUTE_TYPE, r.routes),
    };
  }

  private encodeAll(typeUrl: string, objs: Obj[]): EncodedResource[] {
    return objs.map((o) => {
      let e = this.encoded.get(o);
      if (!e) {
        e = encodeResource(typeUrl, o);
        this.encoded.set(o, e);
      }
      return e;
    });
  }
}

/** The document without the store's metadata. */
function strip(o: MeshObject): MeshObject {
  const { kind, name, labels, spec } = o as MeshObject & { labels?: Record<string, string> };
  return { kind, name, ...(labels ? { labels } : {}), spec } as MeshObject;
}

export type { Warning };
