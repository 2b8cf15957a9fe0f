// A test mesh: pods (an app and a real Envoy sidecar on one loopback address
// each), bootstrapped from the control plane's own /v1/bootstrap, plus helpers
// to apply policies through the REST API and to call services from a pod.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { parse } from 'yaml';
import { instanceNameFor } from '../../src/instances';
import { KINDS, type Kind } from '../../src/model';
import { startTcpEchoApp, startTestApp, type TestApp } from './app';
import { type EnvoyProcess, startEnvoy } from './envoy';
import { eventually } from './eventually';
import { type HttpResponse, httpRequest } from './http';

export const ADMIN_PORT = 9901;
export const INBOUND_PORT = 15006;
export const APP_PORT = 8080;

/** What the tests need of a running control plane. */
export interface ControlPlaneHandle {
  readonly url: string;
  readonly adminToken: string;
}

export interface PodSpec {
  readonly name: string;
  readonly service: string;
  readonly address: string;
  readonly labels?: Record<string, string>;
  /** The app behind the sidecar: HTTP answering with the pod's name (default), a TCP echo, or none. */
  readonly app?: 'http' | 'tcp' | 'none';
  readonly respond?: (
    req: http.IncomingMessage,
    n: number,
  ) => { status?: number; delayMs?: number } | undefined;
  readonly apiType?: 'GRPC' | 'DELTA_GRPC';
}

export interface Pod {
  readonly spec: PodSpec;
  readonly nodeId: string;
  readonly envoy: EnvoyProcess;
  readonly app?: TestApp;
}

export class TestMesh {
  readonly pods = new Map<string, Pod>();

  constructor(readonly cp: ControlPlaneHandle) {}

  /** Calls the REST API; JSON in and out (YAML when body is a string). */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const isText = typeof body === 'string';
    const res = await httpRequest(`${this.cp.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.cp.adminToken}`,
        ...(body !== undefined ? { 'content-type': isText ? 'application/yaml' : 'application/json' } : {}),
      },
      body: body === undefined ? undefined : isText ? body : JSON.stringify(body),
    });
    return { status: res.status, json: res.body ? JSON.parse(res.body) : undefined };
  }

  /** Applies YAML documents; fails the test unless accepted. Returns the revision. */
  async apply(yaml: string): Promise<any> {
    const r = await this.api('POST', '/v1/apply', yaml);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json;
  }

  /** Objects applied with applyPolicy, removed by removePolicies (the Mesh singleton is never removed). */
  private readonly policies: [string, string][] = [];

  /** Applies a test's policies and remembers them for removePolicies (so failures cannot cascade). */
  async applyPolicy(yaml: string): Promise<any> {
    const r = await this.apply(yaml);
    for (const c of r.changes)
      if (c.kind !== 'Mesh') this.policies.push([KINDS[c.kind as Kind].plural, c.name]);
    return r;
  }

  /** Deletes what applyPolicy applied, newest first (already gone is fine); for afterEach hooks. */
  async removePolicies(): Promise<void> {
    while (this.policies.length > 0) {
      const [plural, name] = this.policies.pop()!;
      const r = await this.api('DELETE', `/v1/${plural}/${name}`);
      assert.ok(r.status === 200 || r.status === 404, `cleanup ${plural}/${name}: ${r.status}`);
    }
  }

  async delete(plural: string, name: string): Promise<void> {
    const r = await this.api('DELETE', `/v1/${plural}/${name}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }

  /** Starts a pod: its app, then its sidecar with a bootstrap from the control plane. */
  async addPod(spec: PodSpec): Promise<Pod> {
    let app: TestApp | undefined;
    if ((spec.app ?? 'http') === 'http') {
      app = await startTestApp({
        name: spec.name,
        address: spec.address,
        port: APP_PORT,
        respond: spec.respond,
      });
    } else if (spec.app === 'tcp') {
      app = await startTcpEchoApp({ name: spec.name, address: spec.address, port: APP_PORT });
    }
    const nodeId = spec.name;
    const q = new URLSearchParams({
      service: spec.service,
      address: spec.address,
      appPort: String(APP_PORT),
      inboundPort: String(INBOUND_PORT),
      adminPort: String(ADMIN_PORT),
      nodeId,
      apiType: spec.apiType ?? 'DELTA_GRPC',
      ...(spec.labels
        ? {
            labels: Object.entries(spec.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          }
        : {}),
    });
    const res = await httpRequest(`${this.cp.url}/v1/bootstrap?${q}`, {
      headers: { authorization: `Bearer ${this.cp.adminToken}` },
    });
    assert.equal(res.status, 200, res.body);
    const envoy = await startEnvoy({
      name: spec.name,
      bootstrap: parse(res.body),
      adminAddress: spec.address,
      adminPort: ADMIN_PORT,
    });
    const pod: Pod = { spec, nodeId, envoy, app };
    this.pods.set(spec.name, pod);
    return pod;
  }

  pod(name: string): Pod {
    const p = this.pods.get(name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  /**
   * Waits until the control plane built revision `revision` (or later) and every connected proxy ACKed it.
   * With `everyPod`, also until every pod of this mesh is connected with its Instance registered and the
   * build covers the store's latest revision: after a control-plane restart the sidecars come back one
   * by one (Envoy's reconnect backoff), and instances whose sidecar was not back within the grace period
   * were removed and are registered again when it is.
   */
  async converged(revision?: number, timeoutMs = 10_000, o: { everyPod?: boolean } = {}): Promise<void> {
    await eventually(
      async () => {
        const instances = o.everyPod ? await this.api('GET', '/v1/instances') : undefined;
        const r = await this.api('GET', '/v1/proxies');
        if (revision !== undefined)
          assert.ok(r.json.builtRevision >= revision, `built ${r.json.builtRevision} < ${revision}`);
        if (instances) {
          assert.ok(
            r.json.builtRevision >= instances.json.revision,
            `built ${r.json.builtRevision} < store ${instances.json.revision}`,
          );
          const registered = new Set(instances.json.items.map((i: { name: string }) => i.name));
          for (const pod of this.pods.values()) {
            const p = r.json.items.find((x: { nodeId: string }) => x.nodeId === pod.nodeId);
            assert.ok(p && !p.disconnectedAt, `${pod.nodeId} is not connected`);
            assert.ok(registered.has(instanceNameFor(pod.nodeId)), `${pod.nodeId} has no Instance`);
          }
        }
        for (const p of r.json.items) {
          if (p.disconnectedAt) continue;
          assert.equal(p.state, 'SYNCED', `${p.nodeId}: ${JSON.stringify(p.types)}`);
          // Envoy asks for listeners only once its clusters warmed (secrets and endpoints arrived).
          assert.ok(
            p.types['type.googleapis.com/envoy.config.listener.v3.Listener'],
            `${p.nodeId} has no listeners yet`,
          );
        }
      },
      { timeoutMs, message: 'mesh converged' },
    );
  }

  /**
   * What each sidecar saw, for a failed test's output: its non-zero stats about listener
   * replacement and drain, connections closed under requests, 5xx, TLS and membership, and
   * the tail of its log.
   */
  async diagnostics(): Promise<string> {
    const interesting =
      /listener_manager\.(listener_(added|modified|removed|in_place_updated|create_failure)|total_filter_chains_draining)|downstream_cx_destroy|_with_active_rq|upstream_rq_5|upstream_cx_(connect_fail|destroy_remote$|protocol_error)|membership_(healthy|total)|ssl\.(fail|connection_error|handshake$)|no_filter_chain|downstream_rq_5xx|update_(rejected|success)|draining/;
    const out: string[] = [];
    for (const [name, pod] of this.pods) {
      try {
        const stats = await pod.envoy.stats();
        const lines = [...stats]
          .filter(([k, v]) => v !== 0 && interesting.test(k) && !k.startsWith('cluster.xds_cluster.'))
          .map(([k, v]) => `  ${k}: ${v}`);
        out.push(`--- ${name} stats ---\n${lines.join('\n')}\n--- ${name} log ---\n${pod.envoy.logTail(15)}`);
      } catch (err) {
        out.push(`--- ${name}: ${(err as Error).message}`);
      }
    }
    return out.join('\n');
  }

  /** Mocha hook: prints every sidecar's diagnostics() after a failed test of the current suite. */
  static showOnFailure(get: () => TestMesh | undefined): void {
    afterEach(async function () {
      const mesh = get();
      if (this.currentTest?.state === 'failed' && mesh) console.error(await mesh.diagnostics());
    });
  }

  /** An HTTP call from a pod's app to a service, through the pod's sidecar. */
  call(
    from: string,
    service: string,
    port: number,
    path = '/',
    o: { headers?: Record<string, string>; method?: string; timeoutMs?: number } = {},
  ): Promise<HttpResponse> {
    return httpRequest(`http://${this.pod(from).spec.address}:${port}${path}`, {
      method: o.method,
      headers: { host: service, ...o.headers },
      timeoutMs: o.timeoutMs,
    });
  }

  /** Which pod answered (the test app puts its name in x-app-name). */
  static answeredBy(r: HttpResponse): string | undefined {
    const v = r.headers['x-app-name'];
    return typeof v === 'string' ? v : undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pods.values()].map((p) => p.envoy.stop()));
    await Promise.all([...this.pods.values()].map((p) => p.app?.close()));
    this.pods.clear();
  }

  /** Stops one pod's sidecar (and app): as if its container exited. */
  async stopPod(name: string): Promise<void> {
    const p = this.pod(name);
    await p.envoy.stop();
    await p.app?.close();
    this.pods.delete(name);
  }
}
