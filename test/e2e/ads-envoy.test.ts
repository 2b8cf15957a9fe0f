// Real Envoy 1.40 against the ADS server: one sidecar speaks State-of-the-World
// (api_type GRPC), one Delta (DELTA_GRPC). Resources are built by hand here.
import assert from 'node:assert/strict';
import type { EncodedResource } from '../../envoy-protos';
import { buildBootstrap } from '../../src/bootstrap';
import {
  AdsServer,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  proxyStatusJson,
  proxySyncState,
  ROUTE_TYPE,
  XdsCache,
} from '../../src/xds';
import { startTestApp, type TestApp } from '../support/app';
import { type EnvoyProcess, startEnvoy } from '../support/envoy';
import { eventually } from '../support/eventually';
import { httpGet } from '../support/http';
import { cla, edsCluster, httpListener, routeTo } from '../support/resources';

const LISTEN_PORT = 10000;
const ADMIN_PORT = 9901;

interface Sidecar {
  readonly nodeId: string;
  readonly address: string;
  readonly apiType: 'GRPC' | 'DELTA_GRPC';
  envoy?: EnvoyProcess;
}

describe('e2e: real Envoy over ADS (SotW and Delta)', function () {
  this.timeout(120_000);
  const cache = new XdsCache();
  let server: AdsServer;
  let app1: TestApp;
  let app2: TestApp;
  const sidecars: Sidecar[] = [
    { nodeId: 'envoy-sotw', address: '127.0.0.31', apiType: 'GRPC' },
    { nodeId: 'envoy-delta', address: '127.0.0.32', apiType: 'DELTA_GRPC' },
  ];

  /** What each sidecar gets: a listener on its own address, a route, clusters and endpoints. */
  function configure(
    s: Sidecar,
    o: {
      routeTo: string;
      header: string;
      extraClusters?: EncodedResource[];
      extraRoute?: Record<string, unknown>;
    },
  ): void {
    cache.set(s.nodeId, {
      [CLUSTER_TYPE]: [edsCluster(o.routeTo), ...(o.extraClusters ?? [])],
      [ENDPOINT_TYPE]: [app1, app2].map((a) => cla(a.name, [{ address: a.address, port: a.port }])),
      [LISTENER_TYPE]: [httpListener('ingress', s.address, LISTEN_PORT, 'local')],
      [ROUTE_TYPE]: [routeTo('local', o.routeTo, { 'x-route-version': o.header }, o.extraRoute)],
    });
  }

  const url = (s: Sidecar) => `http://${s.address}:${LISTEN_PORT}/hello`;
  let xdsPort: number;
  // Short keepalive pings, so that a test can show an idle stream survives several of them.
  const serverOptions = { cache, gateTimeoutMs: 3_000, keepaliveTimeMs: 500, keepaliveTimeoutMs: 2_000 };

  before(async () => {
    server = new AdsServer(serverOptions);
    xdsPort = await server.listen('127.0.0.1:0');
    app1 = await startTestApp({ name: 'backend-1', address: '127.0.0.21' });
    app2 = await startTestApp({ name: 'backend-2', address: '127.0.0.22' });
    for (const s of sidecars) configure(s, { routeTo: app1.name, header: 'v1' });
    for (const s of sidecars) {
      s.envoy = await startEnvoy({
        name: s.nodeId,
        adminAddress: s.address,
        adminPort: ADMIN_PORT,
        bootstrap: buildBootstrap({
          nodeId: s.nodeId,
          cluster: 'e2e',
          xdsAddress: '127.0.0.1',
          xdsPort,
          apiType: s.apiType,
          adminAddress: s.address,
          adminPort: ADMIN_PORT,
        }),
      });
    }
  });

  after(async () => {
    await Promise.all(sidecars.map((s) => s.envoy?.stop()));
    await server?.shutdown(1_000);
    await app1?.close();
    await app2?.close();
  });

  for (const s of sidecars) {
    describe(`${s.apiType} sidecar`, () => {
      it('connects, receives listener, route, cluster and endpoints, and carries HTTP to the app', async () => {
        const envoy = s.envoy!;
        await eventually(async () => (await envoy.admin('/ready')).status === 200, {
          message: `${s.nodeId} ready`,
          timeoutMs: 20_000,
        });
        assert.equal(await envoy.stat('control_plane.connected_state'), 1);
        const res = await eventually(async () => {
          const r = await httpGet(url(s));
          assert.equal(r.status, 200, r.body);
          return r;
        });
        assert.equal(JSON.parse(res.body).name, 'backend-1');
        assert.equal(res.headers['x-route-version'], 'v1');
        const status = server.proxy(s.nodeId)!;
        assert.equal(status.protocol, s.apiType === 'GRPC' ? 'sotw' : 'delta');
        await eventually(() => assert.equal(proxySyncState(status), 'SYNCED'));
        // Envoy waited for no initial fetch timeout: every first request was answered.
        assert.equal(await envoy.stat('cluster_manager.cds.init_fetch_timeout'), 0);
      });

      it('applies a route change without a restart (traffic and /config_dump)', async () => {
        const envoy = s.envoy!;
        configure(s, { routeTo: app1.name, header: 'v2' });
        await eventually(async () => {
          const r = await httpGet(url(s));
          assert.equal(r.headers['x-route-version'], 'v2');
        });
        const dump = await envoy.configDump('dynamic_route_configs');
        const routes = JSON.stringify(dump);
        assert.match(routes, /"x-route-version"/);
        assert.match(routes, /"value":"v2"/);
        assert.doesNotMatch(routes, /"value":"v1"/);
      });

      it('moves the route to another backend with no failed request on the way', async () => {
        const envoy = s.envoy!;
        const seen: { status: number; name?: string }[] = [];
        let stop = false;
        const loop = (async () => {
          for (let i = 0; i < 3_000 && !stop; i++) {
            const r = await httpGet(url(s));
            seen.push({ status: r.status, name: r.status === 200 ? JSON.parse(r.body).name : undefined });
          }
        })();
        await eventually(() => seen.length > 5);
        configure(s, { routeTo: app2.name, header: 'v3' });
        await eventually(() => seen.slice(-20).filter((x) => x.name === 'backend-2').length === 20, {
          message: 'traffic moved to backend-2',
        });
        stop = true;
        await loop;
        const failed = seen.filter((x) => x.status !== 200);
        assert.deepEqual(failed, [], `${failed.length} of ${seen.length} requests failed during the switch`);
        assert.ok(seen.some((x) => x.name === 'backend-1') && seen.some((x) => x.name === 'backend-2'));
        // The old cluster leaves once nothing routes to it.
        await eventually(async () => {
          const dump = JSON.stringify(await envoy.configDump('dynamic_active_clusters'));
          assert.match(dump, /"name":"backend-2"/);
          assert.doesNotMatch(dump, /"name":"backend-1"/);
        });
      });

      it('records the NACK of an invalid resource with Envoy’s message while traffic keeps flowing', async () => {
        const envoy = s.envoy!;
        const rejectedBefore = (await envoy.stat('cluster_manager.cds.update_rejected')) ?? 0;
        // A negative connect_timeout encodes fine but fails Envoy's proto validation.
        const bad = edsCluster('bad-cluster', { connect_timeout: { seconds: -1 } });
        configure(s, { routeTo: app2.name, header: 'v3', extraClusters: [bad] });
        const nack = await eventually(() => {
          const n = server.proxy(s.nodeId)?.types.get(CLUSTER_TYPE)?.lastNack;
          assert.ok(n, 'no NACK recorded yet');
          return n;
        });
        assert.match(nack.message, /duration/i, nack.message);
        assert.equal(proxySyncState(server.proxy(s.nodeId)!), 'NACKED');
        assert.ok(((await envoy.stat('cluster_manager.cds.update_rejected')) ?? 0) > rejectedBefore);
        // Traffic keeps flowing on the last good config.
        for (let i = 0; i < 20; i++) {
          const r = await httpGet(url(s));
          assert.equal(r.status, 200);
          assert.equal(JSON.parse(r.body).name, 'backend-2');
        }
        // No resend loop: the proxy rejected once and was not pushed the same content again.
        const nacks = server.proxy(s.nodeId)!.types.get(CLUSTER_TYPE)!.nacks;
        const pushes = server.proxy(s.nodeId)!.types.get(CLUSTER_TYPE)!.pushes;
        await httpGet(url(s));
        assert.equal(server.proxy(s.nodeId)!.types.get(CLUSTER_TYPE)!.pushes, pushes);
        assert.equal(server.proxy(s.nodeId)!.types.get(CLUSTER_TYPE)!.nacks, nacks);

        // Removing the bad cluster brings the proxy back in sync.
        configure(s, { routeTo: app2.name, header: 'v4' });
        await eventually(() =>
          assert.equal(
            proxySyncState(server.proxy(s.nodeId)!),
            'SYNCED',
            JSON.stringify(proxyStatusJson(server.proxy(s.nodeId)!).types),
          ),
        );
        await eventually(async () => assert.equal((await httpGet(url(s))).headers['x-route-version'], 'v4'));
      });
    });
  }

  // Nested so that mocha runs these after the per-sidecar suites above.
  describe('control plane', () => {
    it('keeps idle ADS streams open across many keepalive pings', async () => {
      const since = sidecars.map((s) => server.proxy(s.nodeId)!.connectedSince.getTime());
      const cx = await Promise.all(
        sidecars.map((s) => s.envoy!.stat('cluster.meshplane_xds.upstream_cx_total')),
      );
      // The idle period is what is tested here: five keepalive intervals with no xDS traffic.
      await new Promise((r) => setTimeout(r, 2_500));
      for (const [i, s] of sidecars.entries()) {
        assert.equal(server.proxy(s.nodeId)!.disconnectedAt, undefined);
        assert.equal(server.proxy(s.nodeId)!.connectedSince.getTime(), since[i]);
        assert.equal(await s.envoy!.stat('cluster.meshplane_xds.upstream_cx_total'), cx[i]);
        assert.equal(await s.envoy!.stat('control_plane.connected_state'), 1);
      }
    });

    it('survives a control-plane restart: traffic flows meanwhile, and the new process converges the proxies', async () => {
      await server.shutdown(1_000);
      for (const s of sidecars) {
        await eventually(async () => assert.equal(await s.envoy!.stat('control_plane.connected_state'), 0));
        const r = await httpGet(url(s));
        assert.equal(r.status, 200, 'Envoy keeps its last config while the control plane is away');
      }
      // A new server process knows nothing of the old streams; versions are content-derived.
      const restarted = new XdsCache();
      server = new AdsServer({ ...serverOptions, cache: restarted });
      for (const s of sidecars) {
        restarted.set(s.nodeId, {
          [CLUSTER_TYPE]: [edsCluster(app1.name)],
          [ENDPOINT_TYPE]: [cla(app1.name, [{ address: app1.address, port: app1.port }])],
          [LISTENER_TYPE]: [httpListener('ingress', s.address, LISTEN_PORT, 'local')],
          [ROUTE_TYPE]: [routeTo('local', app1.name, { 'x-route-version': 'after-restart' })],
        });
      }
      await server.listen(`127.0.0.1:${xdsPort}`);
      for (const s of sidecars) {
        await eventually(
          async () => {
            assert.equal(await s.envoy!.stat('control_plane.connected_state'), 1);
            const r = await httpGet(url(s));
            assert.equal(r.headers['x-route-version'], 'after-restart');
            assert.equal(JSON.parse(r.body).name, 'backend-1');
          },
          { timeoutMs: 20_000, message: `${s.nodeId} converged after the restart` },
        );
        await eventually(() =>
          assert.equal(
            proxySyncState(server.proxy(s.nodeId)!),
            'SYNCED',
            JSON.stringify(proxyStatusJson(server.proxy(s.nodeId)!), null, 1),
          ),
        );
      }
    });
  });
});
