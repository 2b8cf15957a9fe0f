// Traffic management and resilience, end to end: a meshplane server process, real
// Envoy sidecars bootstrapped from its API, real apps (each answers with its own
// name), and policies applied through the REST API.
import assert from 'node:assert/strict';
import net from 'node:net';
import { eventually } from '../support/eventually';
import { APP_PORT, TestMesh } from '../support/mesh';
import { showLogOnFailure, startMeshplane } from '../support/meshplane';

const CP_ADDRESS = '127.0.0.100';
const REVIEWS = 9080;
const FLAKY = 9081;
const GUARDED = 9082;
const DB = 5432;

const SERVICES = `
kind: Service
name: client
spec: { protocol: http, port: 9000 }
---
kind: Service
name: reviews
spec: { protocol: http, port: ${REVIEWS} }
---
kind: Service
name: flaky
spec: { protocol: http, port: ${FLAKY} }
---
kind: Service
name: guarded
spec: { protocol: http, port: ${GUARDED} }
---
kind: Service
name: db
spec: { protocol: tcp, port: ${DB} }
`;

describe('e2e: traffic management and resilience', function () {
  this.timeout(180_000);
  let cp: Awaited<ReturnType<typeof startMeshplane>>;
  let mesh: TestMesh;
  TestMesh.showOnFailure(() => mesh);
  showLogOnFailure(() => cp);

  /** n sequential calls from the client pod; returns who answered each (status for failures). */
  async function sample(
    n: number,
    service: string,
    port: number,
    path = '/',
    headers?: Record<string, string>,
  ) {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await mesh.call('client', service, port, path, { headers });
      out.push(r.status === 200 ? (TestMesh.answeredBy(r) ?? '?') : String(r.status));
    }
    return out;
  }
  const share = (xs: string[], who: string) => xs.filter((x) => x === who).length / xs.length;

  before(async () => {
    cp = await startMeshplane({ address: CP_ADDRESS, args: ['--instance-grace', '1s'] });
    mesh = new TestMesh(cp);
    await mesh.apply(SERVICES);
    let flakyCount = 0;
    await Promise.all([
      mesh.addPod({ name: 'client', service: 'client', address: '127.0.0.101' }),
      mesh.addPod({
        name: 'reviews-v1',
        service: 'reviews',
        address: '127.0.0.102',
        labels: { version: 'v1' },
      }),
      mesh.addPod({
        name: 'reviews-v2',
        service: 'reviews',
        address: '127.0.0.103',
        labels: { version: 'v2' },
      }),
      mesh.addPod({
        name: 'reviews-v3',
        service: 'reviews',
        address: '127.0.0.104',
        labels: { version: 'v3' },
      }),
      mesh.addPod({
        name: 'flaky-0',
        service: 'flaky',
        address: '127.0.0.105',
        respond: (req) => {
          if (req.url?.startsWith('/slow')) return { delayMs: 2_000 };
          if (req.url?.startsWith('/flaky')) return { status: ++flakyCount % 2 === 0 ? 503 : 200 };
          return undefined;
        },
      }),
      mesh.addPod({ name: 'db-0', service: 'db', address: '127.0.0.106', app: 'tcp' }),
      mesh.addPod({
        name: 'guarded-ok',
        service: 'guarded',
        address: '127.0.0.107',
        labels: { version: 'ok' },
        respond: (req) => (req.url?.startsWith('/slow') ? { delayMs: 300 } : undefined),
      }),
      mesh.addPod({
        name: 'guarded-bad',
        service: 'guarded',
        address: '127.0.0.108',
        labels: { version: 'bad' },
        respond: () => ({ status: 500 }),
      }),
    ]);
    // Every sidecar registered its instance; every proxy ACKed the result.
    await eventually(async () => {
      const r = await mesh.api('GET', '/v1/instances');
      assert.equal(r.json.items.length, 8);
    });
    await mesh.converged(undefined, 30_000, { everyPod: true });
  });

  // Policies a test applied are removed after it whether it passed or not (no cascade).
  afterEach(() => mesh.removePolicies());

  after(async () => {
    await mesh?.stop();
    await cp?.stop();
  });

  it('registers every sidecar as an instance and routes to all of a service’s instances by default', async () => {
    const who = new Set(await sample(30, 'reviews', REVIEWS));
    assert.deepEqual([...who].sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
  });

  it('splits 90/10 across subsets (±3 points over 1,000 requests) and follows a change to 50/50 within 2 s', async () => {
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: reviews-canary
spec:
  service: reviews
  http:
    - backends:
        - { subset: { version: v1 }, weight: 90 }
        - { subset: { version: v2 }, weight: 10 }
`);
    await mesh.converged(r.revision);
    const xs = await sample(1_000, 'reviews', REVIEWS);
    assert.equal(share(xs, 'reviews-v3'), 0);
    const v2 = share(xs, 'reviews-v2') * 100;
    assert.ok(v2 >= 7 && v2 <= 13, `v2 share ${v2}%`);
    assert.equal(share(xs, 'reviews-v1') + share(xs, 'reviews-v2'), 1);

    const changed = await mesh.api('PUT', '/v1/trafficroutes/reviews-canary', {
      kind: 'TrafficRoute',
      name: 'reviews-canary',
      spec: {
        service: 'reviews',
        http: [
          {
            backends: [
              { subset: { version: 'v1' }, weight: 50 },
              { subset: { version: 'v2' }, weight: 50 },
            ],
          },
        ],
      },
    });
    assert.equal(changed.status, 200);
    // Traffic (not only config) shows the new split within 2 s of the API call.
    await eventually(
      async () => {
        const batch = await sample(100, 'reviews', REVIEWS);
        const s = share(batch, 'reviews-v2');
        assert.ok(s > 0.3 && s < 0.7, `v2 share ${s}`);
      },
      { timeoutMs: 2_000, intervalMs: 1, message: '50/50 in traffic' },
    );
  });

  it('sends 100% of requests matching a header to v2 and none of the others', async () => {
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: reviews-jason
spec:
  service: reviews
  http:
    - match: { headers: { x-user: { exact: jason } } }
      backends: [ { subset: { version: v2 } } ]
    - backends: [ { subset: { version: v1 } } ]
`);
    await mesh.converged(r.revision);
    const jason = await sample(100, 'reviews', REVIEWS, '/', { 'x-user': 'jason' });
    const others = await sample(100, 'reviews', REVIEWS, '/', { 'x-user': 'alice' });
    assert.equal(share(jason, 'reviews-v2'), 1);
    assert.equal(share(others, 'reviews-v2'), 0);
    assert.equal(share(others, 'reviews-v1'), 1);
    // Deleting the policy restores the default: every instance again.
    await mesh.delete('trafficroutes', 'reviews-jason');
    await eventually(async () => {
      const xs = new Set(await sample(30, 'reviews', REVIEWS, '/', { 'x-user': 'jason' }));
      assert.deepEqual([...xs].sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
    });
  });

  it('mirrors requests to a shadow subset while callers only see the primary’s answers', async () => {
    const shadow = mesh.pod('reviews-v3').app!;
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: reviews-mirror
spec:
  service: reviews
  http:
    - backends: [ { subset: { version: v1 } } ]
      mirror: { subset: { version: v3 }, percent: 100 }
`);
    await mesh.converged(r.revision);
    const before = shadow.requests.filter((q) => q.path === '/mirrored').length;
    const xs = await sample(50, 'reviews', REVIEWS, '/mirrored');
    assert.equal(share(xs, 'reviews-v1'), 1, 'callers only see the primary');
    await eventually(() => {
      const got = shadow.requests.filter((q) => q.path === '/mirrored').length - before;
      assert.equal(got, 50, `shadow received ${got}`);
    });
  });

  it('closes its idle connections to the local app after 1 s, before common app keep-alives do', async () => {
    // An app that closes an idle keep-alive connection while its sidecar sends on it answers 503
    // "connection termination"; the sidecar closing first (1 s) avoids that race.
    const idleClosed = () =>
      mesh.pod('reviews-v1').envoy.stat(`cluster.inbound|${APP_PORT}|reviews.upstream_cx_idle_timeout`);
    const before = (await idleClosed()) ?? 0;
    // Calls until one lands on reviews-v1 (the route spreads them over three pods).
    let answered = 0;
    for (let i = 0; i < 30 && answered === 0; i++) {
      const r = await mesh.call('client', 'reviews', REVIEWS, '/');
      if (TestMesh.answeredBy(r) === 'reviews-v1') answered++;
    }
    assert.equal(answered, 1, 'reviews-v1 answered one of 30 calls');
    await eventually(
      async () =>
        assert.ok(((await idleClosed()) ?? 0) > before, 'an idle app connection closed by the sidecar'),
      { timeoutMs: 4_000, intervalMs: 100, message: 'the sidecar closes its idle app connection within 4 s' },
    );
  });

  it('retries a backend that fails every second request, and counts the retries', async () => {
    const without = await sample(100, 'flaky', FLAKY, '/flaky');
    const ok = share(without, 'flaky-0');
    assert.ok(ok > 0.4 && ok < 0.6, `without retries ${ok * 100}% succeed`);
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: flaky-retries
spec:
  service: flaky
  http:
    - backends: [ {} ]
      retries: { attempts: 3, on: [5xx], backoff: { base: 5ms } }
`);
    await mesh.converged(r.revision);
    const withRetries = await sample(100, 'flaky', FLAKY, '/flaky');
    assert.equal(
      share(withRetries, 'flaky-0'),
      1,
      `with retries: ${withRetries.filter((x) => x !== 'flaky-0').join(',')}`,
    );
    const retries = await mesh.pod('client').envoy.stat(`cluster.outbound|${FLAKY}||flaky.upstream_rq_retry`);
    assert.ok((retries ?? 0) > 0, `upstream_rq_retry = ${retries}`);
  });

  it('answers 504 near the route timeout when the backend is slower', async () => {
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: flaky-timeout
spec:
  service: flaky
  http:
    - backends: [ {} ]
      timeout: 400ms
`);
    await mesh.converged(r.revision);
    const started = performance.now();
    const res = await mesh.call('client', 'flaky', FLAKY, '/slow');
    const ms = performance.now() - started;
    assert.equal(res.status, 504);
    assert.ok(ms >= 380 && ms < 1_500, `took ${ms} ms`);
  });

  it('injects an abort without reaching the backend, and a delay of the configured time', async () => {
    const app = mesh.pod('reviews-v1').app!;
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: reviews-fault
spec:
  service: reviews
  http:
    - match: { path: { prefix: /teapot } }
      backends: [ { subset: { version: v1 } } ]
      fault: { abort: { percent: 100, status: 418 } }
    - match: { path: { prefix: /late } }
      backends: [ { subset: { version: v1 } } ]
      fault: { delay: { percent: 100, duration: 500ms } }
`);
    await mesh.converged(r.revision);
    const seen = app.requests.filter((q) => q.path === '/teapot').length;
    for (let i = 0; i < 10; i++)
      assert.equal((await mesh.call('client', 'reviews', REVIEWS, '/teapot')).status, 418);
    assert.equal(app.requests.filter((q) => q.path === '/teapot').length, seen, 'the backend was reached');
    const delays = async () =>
      [...(await mesh.pod('client').envoy.stats('fault\\.delays_injected$')).values()].reduce(
        (a, b) => a + b,
        0,
      );
    const delaysBefore = await delays();
    const started = performance.now();
    const late = await mesh.call('client', 'reviews', REVIEWS, '/late');
    const tookMs = performance.now() - started;
    assert.equal(late.status, 200);
    assert.equal((await delays()) - delaysBefore, 1, 'delays injected');
    // Envoy arms the delay from its event loop's cached time, taken when epoll returned; on a loaded machine
    // that can be a few ms before the request was parsed, so the wall-clock wait may fall a little short of 500.
    assert.ok(tookMs >= 480 && tookMs < 2_000, `the delayed call took ${tookMs.toFixed(1)} ms`);
  });

  it('trips the circuit breaker: concurrent requests past maxPendingRequests get 503', async () => {
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: guarded-ok-only
spec:
  service: guarded
  http:
    - backends: [ { subset: { version: ok } } ]
---
kind: DestinationPolicy
name: guarded
spec:
  service: guarded
  circuitBreaker: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1 }
`);
    await mesh.converged(r.revision);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => mesh.call('client', 'guarded', GUARDED, '/slow')),
    );
    const statuses = results.map((x) => x.status);
    assert.ok(statuses.includes(200), 'some went through');
    assert.ok(statuses.includes(503), `no 503 in ${statuses}`);
    const overflow = await mesh
      .pod('client')
      .envoy.stat(`cluster.outbound|${GUARDED}|version=ok|guarded.upstream_rq_pending_overflow`);
    assert.ok((overflow ?? 0) > 0, `upstream_rq_pending_overflow = ${overflow}`);
  });

  it('ejects an always-failing instance (outlier detection) and sends traffic to the healthy one', async () => {
    const r = await mesh.applyPolicy(`
kind: DestinationPolicy
name: guarded
spec:
  service: guarded
  outlierDetection: { consecutive5xx: 2, interval: 200ms, baseEjectionTime: 60s, maxEjectionPercent: 50 }
`);
    await mesh.converged(r.revision);
    const client = mesh.pod('client').envoy;
    await eventually(
      async () => {
        await sample(10, 'guarded', GUARDED);
        const clusters = (await client.admin('/clusters')).body;
        const bad = clusters
          .split('\n')
          .find(
            (l) =>
              l.startsWith(`outbound|${GUARDED}||guarded::127.0.0.108:`) && l.includes('::health_flags::'),
          );
        assert.match(bad ?? '', /failed_outlier_check/);
      },
      { timeoutMs: 10_000, message: 'bad instance ejected' },
    );
    const after = await sample(20, 'guarded', GUARDED);
    assert.equal(share(after, 'guarded-ok'), 1);
  });

  it('marks an instance whose health check fails unhealthy and sends it no traffic', async () => {
    const r = await mesh.applyPolicy(`
kind: DestinationPolicy
name: guarded
spec:
  service: guarded
  healthCheck: { http: { path: /healthz }, interval: 200ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1 }
`);
    await mesh.converged(r.revision);
    const client = mesh.pod('client').envoy;
    await eventually(async () => {
      const lines = (await client.admin('/clusters')).body.split('\n');
      const flags = (ip: string) =>
        lines.find(
          (l) => l.startsWith(`outbound|${GUARDED}||guarded::${ip}:`) && l.includes('::health_flags::'),
        ) ?? '';
      assert.match(flags('127.0.0.108'), /failed_active_hc/);
      assert.match(flags('127.0.0.107'), /::healthy$/);
    });
    const xs = await sample(20, 'guarded', GUARDED);
    assert.equal(share(xs, 'guarded-ok'), 1);
  });

  it('rate-limits at the callee’s inbound side: requests past the burst get 429', async () => {
    const r = await mesh.applyPolicy(`
kind: DestinationPolicy
name: flaky
spec:
  service: flaky
  rateLimit: { requestsPerSecond: 1, burst: 3 }
`);
    await mesh.converged(r.revision);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await mesh.call('client', 'flaky', FLAKY, '/')).status);
    assert.ok(statuses.filter((s) => s === 429).length >= 6, `statuses ${statuses}`);
    assert.ok(
      statuses.slice(0, 3).every((s) => s === 200),
      `statuses ${statuses}`,
    );
  });

  it('carries TCP bytes both ways through the mesh', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(DB, mesh.pod('client').spec.address);
      let data = '';
      sock.setTimeout(5_000, () => sock.destroy(new Error('tcp timeout')));
      sock.on('connect', () => sock.write('ping-through-the-mesh\n'));
      sock.on('data', (d) => {
        data += d.toString();
        if (data.includes('ping-through-the-mesh')) {
          sock.end();
          resolve(data);
        }
      });
      sock.on('error', reject);
    });
    assert.equal(got, 'db-0\nping-through-the-mesh\n');
  });

  it('answers 503 for a route to an unknown service: accepted with a warning, not NACKed', async () => {
    const r = await mesh.applyPolicy(`
kind: TrafficRoute
name: reviews-nowhere
spec:
  service: reviews
  http:
    - match: { path: { prefix: /nowhere } }
      backends: [ { service: nosuch } ]
`);
    await mesh.converged(r.revision);
    const got = await mesh.api('GET', '/v1/trafficroutes/reviews-nowhere');
    assert.match(JSON.stringify(got.json.status.warnings), /nosuch/);
    const res = await mesh.call('client', 'reviews', REVIEWS, '/nowhere');
    assert.equal(res.status, 503);
    const proxies = await mesh.api('GET', '/v1/proxies');
    for (const p of proxies.json.items) assert.notEqual(p.state, 'NACKED');
  });

  it('scoped views: a client whose Service lists its calls gets only those; other hosts get 404 saying why', async () => {
    const clusters = async () => {
      const dump = await mesh.pod('client').envoy.configDump('dynamic_active_clusters');
      return (dump.configs as any[])
        .map((c) => String(c.cluster.name))
        .filter((n) => n.startsWith('outbound|'))
        .sort();
    };
    const listeners = async () => {
      const dump = await mesh.pod('client').envoy.configDump('dynamic_listeners');
      // A removed listener drains for a while: only active ones count.
      return (dump.configs as any[])
        .filter((l) => l.active_state && !l.draining_state)
        .map((l) => String(l.name))
        .sort();
    };
    assert.ok((await clusters()).includes(`outbound|${FLAKY}||flaky`));
    try {
      const r = await mesh.apply(`
kind: Service
name: client
spec: { protocol: http, port: 9000, calls: [reviews] }
`);
      await mesh.converged(r.revision);
      await eventually(async () => assert.deepEqual(await clusters(), [`outbound|${REVIEWS}||reviews`]));
      await eventually(async () =>
        assert.ok(
          !(await listeners()).includes(`outbound|${DB}`),
          'no listener for the tcp service outside the view',
        ),
      );
      assert.equal((await mesh.call('client', 'reviews', REVIEWS, '/')).status, 200);
      const outside = await mesh.call('client', 'flaky', FLAKY, '/');
      assert.equal(outside.status, 404);
      assert.match(outside.body, /spec\.calls/);
      // scopeByAuthorization: guarded admits only reviews, so a client calling it gets no config for it.
      await mesh.apply(`
kind: Service
name: client
spec: { protocol: http, port: 9000, calls: [reviews, guarded] }
---
kind: Mesh
name: default
spec: { scopeByAuthorization: true }
`);
      const p = await mesh.applyPolicy(`
kind: AuthorizationPolicy
name: guarded-from-reviews
spec: { service: guarded, action: allow, rules: [ { from: [ { service: reviews } ] } ] }
`);
      await mesh.converged(p.revision);
      await eventually(async () => assert.deepEqual(await clusters(), [`outbound|${REVIEWS}||reviews`]));
      assert.equal((await mesh.call('client', 'guarded', GUARDED, '/')).status, 404);
      const proxies = await mesh.api('GET', '/v1/proxies');
      for (const x of proxies.json.items) assert.notEqual(x.state, 'NACKED');
    } finally {
      await mesh.apply(SERVICES);
      await mesh.removePolicies();
    }
    const back = await mesh.apply('kind: Mesh\nname: default\nspec: {}\n');
    await mesh.converged(back.revision);
    await eventually(async () => assert.ok((await clusters()).includes(`outbound|${GUARDED}||guarded`)));
    assert.equal((await mesh.call('client', 'flaky', FLAKY, '/')).status, 200);
  });

  it('stops traffic to an instance within 2 s of its REST deletion, and of its sidecar exiting', async () => {
    await mesh.delete('instances', 'reviews-v3');
    await eventually(async () => assert.equal(share(await sample(20, 'reviews', REVIEWS), 'reviews-v3'), 0), {
      timeoutMs: 2_000,
      intervalMs: 1,
    });
    // The sidecar of v2 exits: its instance leaves after the 1 s grace period.
    await mesh.stopPod('reviews-v2');
    await eventually(
      async () => {
        const xs = await sample(20, 'reviews', REVIEWS);
        assert.deepEqual([...new Set(xs)], ['reviews-v1']);
      },
      { timeoutMs: 1_000 + 2_000, intervalMs: 1 },
    );
  });
});
