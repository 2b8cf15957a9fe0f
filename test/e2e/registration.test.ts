// Instance registration against a real `meshplane serve` (--instance-grace 1s):
// REST-registered instances with a TTL live by their heartbeats; a real Envoy
// started from a bootstrap fetched over REST registers itself from its node
// metadata and is deregistered a grace period after it stops, also when the
// control plane restarted in between.
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { XDS_REGISTERED_LABEL } from '../../src/instances';
import { type EnvoyProcess, startEnvoy } from '../support/envoy';
import { eventually } from '../support/eventually';
import { errorOf, type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const ADMIN_PORT = 9901;
const INBOUND_PORT = 15006;

interface Sidecar {
  readonly service: string;
  readonly address: string;
  readonly appPort: number;
  readonly labels: Record<string, string>;
  envoy?: EnvoyProcess;
}

/** The node id (and instance name) the bootstrap endpoint derives. */
const instanceName = (s: Sidecar) => `${s.service}-${s.address.replace(/\./g, '-')}`;

describe('e2e: instance registration (TTL heartbeats, Envoy node metadata)', function () {
  this.timeout(60_000);
  let mp: Meshplane;
  const sidecars: Sidecar[] = [];
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.55', args: ['--instance-grace', '1s'] });
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.envoy?.stop()));
    await mp?.stop();
  });

  const instance = async (name: string) => mp.api('GET', `/v1/instances/${name}`);
  const exists = async (name: string) => {
    const res = await instance(name);
    assert.ok(res.status === 200 || res.status === 404, res.body);
    return res.status === 200;
  };

  /** Fetches a bootstrap over REST as an operator would and starts Envoy with it. */
  async function startSidecar(s: Sidecar): Promise<EnvoyProcess> {
    const query = new URLSearchParams({
      service: s.service,
      address: s.address,
      appPort: String(s.appPort),
      inboundPort: String(INBOUND_PORT),
      adminPort: String(ADMIN_PORT),
      labels: Object.entries(s.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    });
    const res = await mp.api('GET', `/v1/bootstrap?${query}`);
    assert.equal(res.status, 200, res.body);
    assert.match(String(res.headers['content-type']), /yaml/);
    const bootstrap = parseYaml(res.body);
    assert.equal(bootstrap.node.id, instanceName(s));
    const xds = bootstrap.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint;
    assert.deepEqual(xds.address.socket_address, { address: mp.address, port_value: mp.xdsPort });
    sidecars.push(s);
    s.envoy = await startEnvoy({
      name: instanceName(s),
      bootstrap,
      adminAddress: s.address,
      adminPort: ADMIN_PORT,
    });
    return s.envoy;
  }

  function assertRegistered(obj: any, s: Sidecar): void {
    assert.equal(obj.kind, 'Instance');
    assert.equal(obj.name, instanceName(s));
    assert.deepEqual(obj.labels, { [XDS_REGISTERED_LABEL]: 'xds' });
    assert.deepEqual(obj.spec, {
      service: s.service,
      address: s.address,
      port: INBOUND_PORT,
      labels: s.labels,
      health: 'healthy',
    });
  }

  it('removes a TTL instance without heartbeats within 5 s; one with heartbeats stays, until they stop', async () => {
    const doc = (name: string) => ({
      kind: 'Instance',
      name,
      spec: { service: 'ttl', address: '127.0.0.60', port: 8080, ttl: '2s' },
    });
    const start = Date.now();
    const res = await mp.api('POST', '/v1/apply', [doc('ttl-silent'), doc('ttl-beating')]);
    assert.equal(res.status, 200, res.body);

    let beats = 0;
    let beatError: string | undefined;
    const beat = async () => {
      const r = await mp.api('POST', '/v1/instances/ttl-beating/heartbeat');
      if (r.status === 200) {
        beats++;
        assert.ok(Date.parse(r.json.expiresAt) > Date.now(), 'expiresAt is in the future');
      } else beatError = `${r.status} ${r.body}`;
    };
    await beat();
    // A sidecar's heartbeat loop: every 500 ms, a quarter of the TTL.
    const heartbeats = setInterval(() => void beat().catch((e) => (beatError = String(e))), 500);
    try {
      await eventually(async () => !(await exists('ttl-silent')), {
        timeoutMs: 5_000 - (Date.now() - start),
        intervalMs: 100,
        message: 'the silent TTL instance is deregistered',
      });
      const goneAfter = Date.now() - start;
      assert.ok(goneAfter < 5_000, `gone after ${goneAfter} ms`);
      // The heartbeating one outlives its TTL twice over, checked all along.
      while (Date.now() - start < 4_500) {
        assert.ok(
          await exists('ttl-beating'),
          `the heartbeating instance vanished after ${Date.now() - start} ms`,
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(beatError, undefined);
      assert.ok(beats >= 6, `${beats} heartbeats`);
    } finally {
      clearInterval(heartbeats);
    }
    // Without heartbeats it goes too: they were what kept it.
    const stopped = Date.now();
    await eventually(async () => !(await exists('ttl-beating')), {
      timeoutMs: 5_000,
      intervalMs: 100,
      message: 'the instance is deregistered once its heartbeats stop',
    });
    assert.ok(Date.now() - stopped >= 1_000, 'not before its TTL ran out');

    const missing = await mp.api('POST', '/v1/instances/ttl-beating/heartbeat');
    assert.equal(missing.status, 404);
    assert.equal(errorOf(missing).code, 'NOT_FOUND');
  });

  it('a real Envoy started from GET /v1/bootstrap registers itself, and is removed a grace period after it stops', async () => {
    const s: Sidecar = { service: 'web', address: '127.0.0.70', appPort: 8081, labels: { version: 'v1' } };
    const envoy = await startSidecar(s);
    const registered = await eventually(
      async () => {
        const res = await instance(instanceName(s));
        assert.equal(res.status, 200, res.body);
        return res.json;
      },
      { message: 'the instance registered from node metadata' },
    );
    assertRegistered(registered, s);
    assert.equal(await envoy.stat('control_plane.connected_state'), 1);

    const proxies = (await mp.api('GET', '/v1/proxies')).json.items;
    const proxy = proxies.find((p: any) => p.nodeId === instanceName(s));
    assert.ok(proxy, JSON.stringify(proxies));
    assert.equal(proxy.disconnectedAt, undefined);
    assert.equal(proxy.protocol, 'delta');
    assert.deepEqual(proxy.metadata, {
      service: s.service,
      address: s.address,
      inboundPort: INBOUND_PORT,
      appPort: s.appPort,
      adminPort: ADMIN_PORT,
      labels: s.labels,
    });
    const list = await mp.api('GET', `/v1/instances?labels=${XDS_REGISTERED_LABEL}=xds`);
    assert.ok(list.json.items.some((o: any) => o.name === instanceName(s)));

    await envoy.stop();
    await eventually(async () => !(await exists(instanceName(s))), {
      timeoutMs: 5_000,
      intervalMs: 100,
      message: 'the instance is removed after the 1 s grace period',
    });
    const after = (await mp.api('GET', '/v1/proxies')).json.items.find(
      (p: any) => p.nodeId === instanceName(s),
    );
    assert.ok(after?.disconnectedAt, 'the proxy is listed as gone');
  });

  it('after a control-plane restart, a sidecar that reconnects keeps its instance and one that does not is removed', async () => {
    const stays: Sidecar = {
      service: 'api',
      address: '127.0.0.71',
      appPort: 8082,
      labels: { version: 'v2' },
    };
    const leaves: Sidecar = {
      service: 'api',
      address: '127.0.0.72',
      appPort: 8082,
      labels: { version: 'v3' },
    };
    await Promise.all([startSidecar(stays), startSidecar(leaves)]);
    for (const s of [stays, leaves]) {
      await eventually(async () => assertRegistered((await instance(instanceName(s))).json, s), {
        message: `${instanceName(s)} registered`,
      });
    }

    // The control plane dies without a word; one sidecar goes away while it is down.
    await mp.kill();
    await leaves.envoy!.stop();
    await mp.restart();

    const connected = async (s: Sidecar) =>
      (await mp.api('GET', '/v1/proxies')).json.items.some(
        (p: any) => p.nodeId === instanceName(s) && p.disconnectedAt === undefined,
      );
    await eventually(
      async () => {
        assert.ok(await connected(stays), `${instanceName(stays)} reconnected`);
        assert.ok(!(await exists(instanceName(leaves))), `${instanceName(leaves)} removed`);
        assertRegistered((await instance(instanceName(stays))).json, stays);
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'the registrations converge after the restart' },
    );
    assert.equal(await stays.envoy!.stat('control_plane.connected_state'), 1);
  });
});
