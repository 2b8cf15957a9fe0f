// Wires the control plane together: store, xDS cache and ADS server, REST API,
// instance lifecycles, metrics. The only module that knows all of them.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import packageJson from '../package.json';
import { createApiApp } from './api/app';
import { ChangeTracker } from './changes';
import { FastHistogram } from './fast-histogram';
import { IdleCompaction } from './idle-compaction';
import { InstanceLifecycle } from './instances';
import type { Logger } from './log';
import { createSqliteStore, type Store } from './registry';
import { type CaMaterial, MeshCa } from './sds/ca';
import { CertManager } from './sds/certs';
import { TokenService } from './sds/tokens';
import { SnapshotBuilder } from './snapshot-builder';
import {
  AdsServer,
  type NackRecord,
  type ProxyIdentity,
  type ProxyStatus,
  proxySyncState,
  SHORT_NAMES,
  type TypeUrl,
  XdsCache,
} from './xds';

export const VERSION: string = packageJson.version;

export interface ControlPlaneConfig {
  readonly httpAddress: string;
  readonly xdsAddress: string;
  readonly dataDir: string;
  readonly store: 'sqlite' | 'postgres';
  readonly postgresUrl?: string;
  /** From MESHPLANE_ADMIN_TOKEN; else read from (or generated into) <dataDir>/admin-token. */
  readonly adminToken?: string;
  readonly readsRequireToken: boolean;
  /** What bootstraps tell sidecars to dial (host:port); default: the xDS address, 0.0.0.0 as 127.0.0.1. */
  readonly xdsAdvertiseAddress?: string;
  readonly instanceGraceMs: number;
  /** Versions kept per object for history and rollback (default 20). */
  readonly historyLimit?: number;
  /** Accept ADS streams without a valid bootstrap token (development only). */
  readonly insecureXds?: boolean;
  /** An operator-provided CA (PEM files); else one is generated on first start and kept in the store. */
  readonly caCertFile?: string;
  readonly caKeyFile?: string;
  readonly log: Logger;
}

const CA_META = 'sds/ca';

/** The mesh CA: from the operator's files, else the stored one, else a new one (stored). */
export async function loadCa(
  store: Pick<Store, 'getMeta' | 'setMeta'>,
  files: { cert?: string; key?: string },
  log: Logger,
): Promise<MeshCa> {
  if (files.cert || files.key) {
    if (!files.cert || !files.key) throw new Error('--ca-cert and --ca-key go together');
    return MeshCa.load({
      certPem: fs.readFileSync(files.cert, 'utf8'),
      keyPem: fs.readFileSync(files.key, 'utf8'),
    });
  }
  const stored = await store.getMeta(CA_META);
  if (stored) return MeshCa.load(JSON.parse(stored) as CaMaterial);
  const ca = await MeshCa.generate('mesh.local', new Date());
  await store.setMeta(CA_META, JSON.stringify(ca.material));
  log.info({ notAfter: ca.notAfter.toISOString() }, 'mesh CA generated');
  return ca;
}

export interface ControlPlane {
  readonly httpPort: number;
  readonly xdsPort: number;
  readonly store: Store;
  readonly ads: AdsServer;
  readonly cache: XdsCache;
  readonly adminToken: string;
  close(): Promise<void>;
}

/** Splits `host:port` (IPv6 in brackets); throws naming the flag on a bad value. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = value.match(/^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`${flag}: expected host:port, got "${value}"`);
  return { host: m[1] ?? m[2]!, port };
}

/** The admin token: the configured one, else the one in the data dir, else a new one written there (0600). */
export function loadAdminToken(dataDir: string, configured?: string): string {
  if (configured) return configured;
  const file = path.join(dataDir, 'admin-token');
  if (fs.existsSync(file)) {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!token) throw new Error(`${file} is empty: delete it to have a new admin token generated`);
    return token;
  }
  const token = randomBytes(24).toString('base64url');
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

export async function startControlPlane(c: ControlPlaneConfig): Promise<ControlPlane> {
  const log = c.log;
  if (c.store === 'postgres') {
    throw new Error(
      '--store postgres: the PostgreSQL store is not available in this version; use --store sqlite',
    );
  }
  fs.mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = loadAdminToken(c.dataDir, c.adminToken);
  const store = createSqliteStore({ dataDir: c.dataDir, historyLimit: c.historyLimit });
  const tokens = await TokenService.open(store);
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics, prefix: 'meshplane_process_' });
  new Gauge({
    name: 'meshplane_connected_proxies',
    help: 'ADS streams currently open',
    registers: [metrics],
    collect() {
      this.set(ads.connectedCount);
    },
  });
  new Gauge({
    name: 'meshplane_store_revision',
    help: 'the mesh revision of the store',
    registers: [metrics],
    async collect() {
      this.set(await store.revision());
    },
  });

  const cache = new XdsCache();
  const ca = await loadCa(store, { cert: c.caCertFile, key: c.caKeyFile }, log);
  // Authenticated xDS: a stream must carry a valid bootstrap token for the service its node claims.
  const authenticate = c.insecureXds
    ? undefined
    : (id: ProxyIdentity) => {
        const header = String(id.callMetadata.get('authorization')[0] ?? '');
        const token = header.match(/^Bearer\s+(.+)$/i)?.[1];
        const service = typeof id.metadata.service === 'string' ? id.metadata.service : '';
        const verdict = tokens.verify(token, service);
        return verdict.ok
          ? ({ ok: true } as const)
          : ({ ok: false, code: grpc.status.PERMISSION_DENIED, message: verdict.message } as const);
      };
  const ads = new AdsServer({ cache, authenticate, log: log.child({ module: 'xds' }) });
  let builder: SnapshotBuilder | undefined;
  const certs = new CertManager({
    ca,
    log: log.child({ module: 'sds' }),
    onIssued: (service) => builder?.identityIssued(service),
  });
  const m = createMetrics(metrics);
  // Every type's counters exist from the start (a dashboard shows 0, not "no data").
  for (const type of Object.values(SHORT_NAMES))
    for (const c of [m.pushes.counter, m.acks.counter, m.nacks]) c.inc({ type }, 0);
  const converged = m.convergence.child();
  const changes = new ChangeTracker({ onConverged: converged });
  builder = new SnapshotBuilder({
    store,
    cache,
    certs,
    log: log.child({ module: 'snapshot' }),
    onBuild: (b) => {
      m.translation.observe({ path: b.endpointsOnly ? 'endpoints' : 'full' }, b.ms / 1000);
      if (b.waitedMs !== undefined) m.buildWait.observe(b.waitedMs / 1000);
    },
    onStoreChange: (ev) => changes.recorded(ev),
    onBuilt: (revision, affected) => changes.built(revision, affected),
  });
  await builder.start();
  const snapshots = builder;
  // Registered first: a connecting proxy's resources must be in the cache before its first answer.
  ads.on('connect', (p: ProxyStatus) => snapshots.proxyConnected(p));
  // Per-type children bound once: every push and every ACK counts, a thousand per change.
  const byType = <T>(child: (type: string) => T) =>
    new Map(Object.entries(SHORT_NAMES).map(([t, type]) => [t as TypeUrl, child(type)]));
  const pushesOf = byType((type) => m.pushes.tally(type));
  const pushLatencyOf = byType((type) => m.pushLatency.child(type));
  const acksOf = byType((type) => m.acks.tally(type));
  ads.on('push', (_p: ProxyStatus, typeUrl: TypeUrl, _sent: unknown, latencyMs?: number) => {
    const t = pushesOf.get(typeUrl);
    if (t) t.n++;
    if (latencyMs !== undefined) pushLatencyOf.get(typeUrl)?.(latencyMs / 1000);
  });
  ads.on('ack', (p: ProxyStatus, typeUrl: TypeUrl, _version: string, at: number) => {
    const t = acksOf.get(typeUrl);
    if (t) t.n++;
    if (proxySyncState(p) === 'SYNCED') changes.proxySynced(p.nodeId, at);
  });
  ads.on('nack', (p: ProxyStatus, typeUrl: TypeUrl, nack: NackRecord) => {
    m.nacks.inc({ type: SHORT_NAMES[typeUrl] });
    changes.proxyRejected(p.nodeId, SHORT_NAMES[typeUrl], nack.message);
    snapshots.proxyRejected(p.nodeId, typeUrl, nack);
  });
  ads.on('disconnect', (p: ProxyStatus) => {
    changes.proxyGone(p.nodeId);
    snapshots.proxyDisconnected(p.nodeId, () => ads.proxy(p.nodeId)?.disconnectedAt === undefined);
  });
  new Gauge({
    name: 'meshplane_certificate_expiry_timestamp_seconds',
    help: 'when each service workload certificate (and the CA, service="") expires',
    labelNames: ['service'],
    registers: [metrics],
    collect() {
      this.reset();
      this.set({ service: '' }, ca.notAfter.getTime() / 1000);
      for (const e of certs.expiries()) this.set({ service: e.service }, e.notAfter.getTime() / 1000);
    },
  });
  new Gauge({
    name: 'meshplane_built_revision',
    help: 'the store revision of the last configuration built for the proxies',
    registers: [metrics],
    collect() {
      this.set(snapshots.builtRevision);
    },
  });
  const instances = new InstanceLifecycle({
    store,
    log: log.child({ module: 'instances' }),
    disconnectGraceMs: c.instanceGraceMs,
  });
  const compactions = new Counter({
    name: 'meshplane_idle_compactions_total',
    help: 'compacting collections run once the server was idle after a burst of work (memory given back)',
    registers: [metrics],
  });
  const idle = new IdleCompaction({
    log: log.child({ module: 'memory' }),
    onCompacted: () => compactions.inc(),
  });
  ads.on('connect', (p: ProxyStatus) => void instances.proxyConnected(p));
  // Back = a status for the node that is not disconnected (a pruned status is not back).
  ads.on('disconnect', (p: ProxyStatus) =>
    instances.proxyDisconnected(p, () => {
      const now = ads.proxy(p.nodeId);
      return now !== undefined && now.disconnectedAt === undefined;
    }),
  );

  const xds = parseHostPort(c.xdsAddress, '--xds-address');
  const xdsPort = await ads.listen(c.xdsAddress);
  let xdsListening = true;
  const advertise = c.xdsAdvertiseAddress
    ? parseHostPort(c.xdsAdvertiseAddress, '--xds-advertise-address')
    : { host: xds.host === '0.0.0.0' || xds.host === '::' ? '127.0.0.1' : xds.host, port: xdsPort };

  let storeOpen = true;
  const app = createApiApp({
    store,
    ads,
    cache,
    tokens,
    heartbeat: (name) => instances.heartbeat(name),
    adminToken,
    readsRequireToken: c.readsRequireToken,
    xdsAdvertise: { address: advertise.host, port: advertise.port },
    metrics,
    ready: () => storeOpen && xdsListening,
    log: log.child({ module: 'api' }),
    version: VERSION,
    builder: snapshots,
    changes,
    trustBundle: () => ca.rootPem,
  });
  const httpAddr = parseHostPort(c.httpAddress, '--http-address');
  const server = http.createServer(app);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(httpAddr.port, httpAddr.host, () => resolve());
  });
  const httpPort = (server.address() as AddressInfo).port;
  log.info(
    { http: `${httpAddr.host}:${httpPort}`, xds: `${xds.host}:${xdsPort}`, dataDir: c.dataDir },
    'meshplane serving',
  );

  return {
    httpPort,
    xdsPort,
    store,
    ads,
    cache,
    adminToken,
    async close() {
      xdsListening = false;
      idle.stop();
      instances.close();
      snapshots.stop();
      certs.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      await ads.shutdown(5_000);
      storeOpen = false;
      await store.close();
    },
  };
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A counter by type whose hot-path increments are plain additions (`tally(type).n++`, once per
 * push or ACK), handed to prom-client when /metrics is read.
 */
function tallied(o: { name: string; help: string; registers: Registry[] }) {
  const tallies = new Map<string, { n: number }>();
  const counter = new Counter({
    ...o,
    labelNames: ['type'],
    collect() {
      for (const [type, t] of tallies) {
        if (t.n > 0) this.inc({ type }, t.n);
        t.n = 0;
      }
    },
  });
  const tally = (type: string) => {
    let t = tallies.get(type);
    if (!t) {
      t = { n: 0 };
      tallies.set(type, t);
    }
    return t;
  };
  return { counter, tally };
}

/** The control plane's own series (shared/design/API.md: /metrics). */
function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    pushes: tallied({ name: 'meshplane_xds_pushes_total', help: 'xDS responses sent, by type', registers }),
    acks: tallied({ name: 'meshplane_xds_acks_total', help: 'xDS ACKs received, by type', registers }),
    nacks: new Counter({
      name: 'meshplane_xds_nacks_total',
      help: 'xDS NACKs received (Envoy rejected config), by type',
      labelNames: ['type'],
      registers,
    }),
    pushLatency: new FastHistogram({
      name: 'meshplane_xds_push_latency_seconds',
      help: "from a proxy's resources changing in the cache to the response being written, by type",
      labelName: 'type',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    translation: new Histogram({
      name: 'meshplane_translation_duration_seconds',
      help: 'time to translate and encode one revision for every connected proxy (path: full or endpoints)',
      labelNames: ['path'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    buildWait: new Histogram({
      name: 'meshplane_build_wait_seconds',
      help:
        'from the first change a build gathers to the build starting: a few ms when idle, a window that ' +
        'grows with the load under churn (at most 300 ms)',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1],
      registers,
    }),
    convergence: new FastHistogram({
      name: 'meshplane_proxy_convergence_seconds',
      help: 'from a store change to each affected proxy having ACKed everything (one observation per change and proxy)',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  };
}
