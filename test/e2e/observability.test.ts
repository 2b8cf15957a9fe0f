// Observability end to end: JSON access logs and Zipkin tracing from the Mesh,
// Envoy's Prometheus stats on every sidecar, and the control plane's /metrics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../support/eventually';
import { httpGet } from '../support/http';
import { ADMIN_PORT, TestMesh } from '../support/mesh';
import { showLogOnFailure, startMeshplane } from '../support/meshplane';

const CP_ADDRESS = '127.0.0.180';
const COLLECTOR = { address: '127.0.0.189', port: 9411 };
const REVIEWS = 9080;

interface Span {
  traceId: string;
  id: string;
  kind?: string;
  localEndpoint?: { serviceName?: string };
  tags?: Record<string, string>;
}

/** A Zipkin-compatible receiver: POST /api/v2/spans with a JSON array of spans. */
function startZipkin(): Promise<{ spans: Span[]; close(): Promise<void> }> {
  const spans: Span[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/api/v2/spans') {
        try {
          spans.push(...(JSON.parse(Buffer.concat(chunks).toString()) as Span[]));
        } catch {
          res.writeHead(400).end();
          return;
        }
      }
      res.writeHead(202).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(COLLECTOR.port, COLLECTOR.address, () =>
      resolve({
        spans,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

describe('e2e: access logs, tracing and metrics', function () {
  this.timeout(120_000);
  let cp: Awaited<ReturnType<typeof startMeshplane>>;
  let mesh: TestMesh;
  TestMesh.showOnFailure(() => mesh);
  showLogOnFailure(() => cp);
  let zipkin: Awaited<ReturnType<typeof startZipkin>>;
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-access-'));
  const logFile = path.join(logDir, 'access.log');

  before(async () => {
    zipkin = await startZipkin();
    cp = await startMeshplane({ address: CP_ADDRESS });
    mesh = new TestMesh(cp);
    await mesh.apply(`
kind: Service
name: web
spec: { port: 9000 }
---
kind: Service
name: reviews
spec: { port: ${REVIEWS} }
---
kind: Mesh
name: default
spec:
  accessLog: { path: ${logFile}, format: json }
  tracing: { provider: zipkin, collector: "${COLLECTOR.address}:${COLLECTOR.port}", samplePercent: 100 }
`);
    await Promise.all([
      mesh.addPod({ name: 'web-0', service: 'web', address: '127.0.0.181' }),
      mesh.addPod({ name: 'reviews-0', service: 'reviews', address: '127.0.0.182' }),
    ]);
    await mesh.converged(undefined, 30_000, { everyPod: true });
  });

  after(async () => {
    await mesh?.stop();
    await cp?.stop();
    await zipkin?.close();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('writes one JSON access-log line per request and hop, with the fields an operator needs', async () => {
    const paths = Array.from({ length: 5 }, (_, i) => `/logged/${i}`);
    for (const p of paths) assert.equal((await mesh.call('web-0', 'reviews', REVIEWS, p)).status, 200);
    const lines = await eventually(
      () => {
        const entries = fs
          .readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((e) => paths.includes(String(e.path)));
        assert.equal(
          entries.length,
          paths.length * 2,
          `${entries.length} lines of ${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(0, 600) : 'no file'}`,
        );
        return entries;
        // Envoy flushes access-log files every 10 s by default (--file-flush-interval-msec).
      },
      { timeoutMs: 25_000, intervalMs: 250 },
    );
    for (const e of lines) {
      for (const f of [
        'start_time',
        'method',
        'path',
        'status',
        'duration_ms',
        'upstream_host',
        'upstream_cluster',
        'trace_id',
      ]) {
        assert.ok(e[f] !== undefined && e[f] !== null && e[f] !== '', `field ${f} in ${JSON.stringify(e)}`);
      }
      assert.equal(e.method, 'GET');
      assert.equal(e.status, 200);
    }
    // The callee's line names the caller by its mTLS identity; the caller's names the upstream cluster.
    const inbound = lines.filter((e) => String(e.upstream_cluster).startsWith('inbound|'));
    const outbound = lines.filter((e) => String(e.upstream_cluster).startsWith('outbound|'));
    assert.equal(inbound.length, paths.length);
    assert.equal(outbound.length, paths.length);
    for (const e of inbound) assert.equal(e.caller, 'spiffe://mesh.local/service/web');
    // Both hops of a request carry the same trace id.
    for (const p of paths) {
      const ids = new Set(lines.filter((e) => e.path === p).map((e) => e.trace_id));
      assert.equal(ids.size, 1, `${p}: trace ids ${[...ids]}`);
    }
  });

  it('sends spans to the collector; the spans of one request share a trace id across both sidecars', async () => {
    const r = await mesh.call('web-0', 'reviews', REVIEWS, '/traced');
    assert.equal(r.status, 200);
    await eventually(
      () => {
        const byTrace = new Map<string, Set<string>>();
        for (const s of zipkin.spans) {
          if (!s.tags?.['http.url']?.includes('/traced')) continue;
          const set = byTrace.get(s.traceId) ?? new Set<string>();
          set.add(s.localEndpoint?.serviceName ?? '');
          byTrace.set(s.traceId, set);
        }
        const joined = [...byTrace.values()].find((names) => names.has('web') && names.has('reviews'));
        assert.ok(joined, `spans: ${JSON.stringify([...byTrace.entries()].map(([t, n]) => [t, [...n]]))}`);
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'spans of both hops' },
    );
  });

  it('exposes Envoy’s Prometheus stats on every sidecar', async () => {
    for (const pod of ['web-0', 'reviews-0']) {
      const res = await httpGet(`http://${mesh.pod(pod).spec.address}:${ADMIN_PORT}/stats/prometheus`);
      assert.equal(res.status, 200);
      assert.match(res.body, /^envoy_cluster_upstream_rq_total\{/m);
    }
  });

  it('exposes the control plane’s own metrics with values after traffic and an apply', async () => {
    const r = await mesh.apply('kind: Service\nname: extra\nspec: { port: 9100 }\n');
    await mesh.converged(r.revision);
    const body = (await httpGet(`${cp.url}/metrics`)).body;
    const value = (re: RegExp) => Number(body.match(re)?.[1] ?? Number.NaN);
    assert.equal(value(/^meshplane_connected_proxies (\d+)/m), 2);
    assert.equal(value(/^meshplane_store_revision (\d+)/m), r.revision);
    assert.equal(value(/^meshplane_built_revision (\d+)/m), r.revision);
    assert.ok(value(/^meshplane_xds_pushes_total\{type="clusters"\} (\d+)/m) > 0);
    assert.ok(value(/^meshplane_xds_acks_total\{type="listeners"\} (\d+)/m) > 0);
    assert.equal(value(/^meshplane_xds_nacks_total\{type="routes"\} (\d+)/m), 0);
    assert.ok(value(/^meshplane_proxy_convergence_seconds_count (\d+)/m) > 0, 'convergence observed');
    assert.ok(value(/^meshplane_translation_duration_seconds_count\{path="full"\} (\d+)/m) > 0);
    assert.ok(value(/^meshplane_build_wait_seconds_count (\d+)/m) > 0, 'coalescing windows observed');
    assert.ok(value(/^meshplane_xds_push_latency_seconds_count\{type="clusters"\} (\d+)/m) > 0);
    const expiry = value(/^meshplane_certificate_expiry_timestamp_seconds\{service="web"\} (\d+)/m);
    assert.ok(expiry > Date.now() / 1000, `web certificate expiry ${expiry}`);
    const ready = await httpGet(`${cp.url}/readyz`);
    assert.equal(ready.status, 200);
  });
});
