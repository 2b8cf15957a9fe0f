// The demo mesh: frontend -> api -> reviews (v1 and v2). One description shared by
// the docker-compose example (examples/docker-compose: its bootstraps are generated
// from it) and `meshplane demo` (the same topology as local processes). The
// compose file and policies/services.yaml must agree with it; test/compose checks.

/** A service of the demo, with the port its callers use (its outbound listener). */
export interface DemoService {
  readonly name: string;
  readonly port: number;
}

/** One workload ("pod"): an app and its Envoy sidecar. */
export interface DemoPod {
  /** The pod name: compose service name of the app, node id, instance name. */
  readonly name: string;
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The service this pod's app calls (through its sidecar) before answering. */
  readonly upstream?: string;
  /** Paths under which the app fails every second request with 503 (to show retries). */
  readonly flakyPathPrefix?: string;
  /** Its static IP on the compose network. */
  readonly composeAddress: string;
  /** Its own loopback address in `meshplane demo`. */
  readonly localAddress: string;
  /** The host port its sidecar's admin API is published on (compose). */
  readonly composeAdminHostPort: number;
}

export const DEMO_SERVICES: readonly DemoService[] = [
  { name: 'frontend', port: 9000 },
  { name: 'api', port: 9081 },
  { name: 'reviews', port: 9080 },
];

/** Every app listens here (on 127.0.0.1 under compose, on its pod address in the local demo). */
export const APP_PORT = 8080;
/** The sidecar's inbound listener (mesh mTLS in, plaintext to the app). */
export const INBOUND_PORT = 15006;
/** The sidecar's admin API (stats, config_dump, /stats/prometheus). */
export const ADMIN_PORT = 9901;
/** meshplane's REST API and xDS ports (the `meshplane serve` defaults). */
export const MESHPLANE_HTTP_PORT = 8080;
export const MESHPLANE_XDS_PORT = 18000;

export const COMPOSE_NETWORK = {
  name: 'mesh',
  subnet: '172.28.0.0/24',
  /** Where Docker hands out dynamic addresses (the init job): away from the static ones. */
  ipRange: '172.28.0.128/25',
  meshplaneAddress: '172.28.0.10',
  prometheusAddress: '172.28.0.30',
} as const;

/** The host name sidecars dial for xDS under compose (the compose service). */
export const COMPOSE_MESHPLANE_HOST = 'meshplane';

/** The local demo's control plane (REST and xDS), on its own loopback address. */
export const LOCAL_MESHPLANE_ADDRESS = '127.0.0.140';

export const DEMO_PODS: readonly DemoPod[] = [
  {
    name: 'frontend',
    service: 'frontend',
    labels: { version: 'v1' },
    upstream: 'api',
    composeAddress: '172.28.0.21',
    localAddress: '127.0.0.141',
    composeAdminHostPort: 19001,
  },
  {
    name: 'api',
    service: 'api',
    labels: { version: 'v1' },
    upstream: 'reviews',
    flakyPathPrefix: '/flaky',
    composeAddress: '172.28.0.22',
    localAddress: '127.0.0.142',
    composeAdminHostPort: 19002,
  },
  {
    name: 'reviews-v1',
    service: 'reviews',
    labels: { version: 'v1' },
    composeAddress: '172.28.0.23',
    localAddress: '127.0.0.143',
    composeAdminHostPort: 19003,
  },
  {
    name: 'reviews-v2',
    service: 'reviews',
    labels: { version: 'v2' },
    composeAddress: '172.28.0.24',
    localAddress: '127.0.0.144',
    composeAdminHostPort: 19004,
  },
];

/** The port callers use for `service`. */
export function servicePort(service: string): number {
  const s = DEMO_SERVICES.find((x) => x.name === service);
  if (!s) throw new Error(`no demo service "${service}"`);
  return s.port;
}

/** `version=v1` (the `labels` query parameter of GET /v1/bootstrap). */
export function labelSelector(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
