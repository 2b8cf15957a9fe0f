// The push pipeline with a real SQLite store and the xDS cache: coalescing, the
// endpoint fast path, and proxies whose resources did not change hear nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../src/log';
import { validateDocuments } from '../src/model';
import { createSqliteStore, type SqliteStore } from '../src/registry';
import { MeshCa } from '../src/sds/ca';
import { CertManager } from '../src/sds/certs';
import { SnapshotBuilder } from '../src/snapshot-builder';
import { type ProxyStatus, type TypeUrl, XdsCache } from '../src/xds';
import { eventually } from './support/eventually';

function proxy(nodeId: string, service: string, address: string): ProxyStatus {
  return {
    nodeId,
    cluster: service,
    metadata: { service, address, inboundPort: 15006, appPort: 8080 },
    protocol: 'delta',
    peer: 'test',
    connectedSince: new Date(),
    types: new Map(),
  };
}

describe('snapshot builder: push pipeline', () => {
  let dir: string;
  let store: SqliteStore;
  let cache: XdsCache;
  let builder: SnapshotBuilder;
  const heard = new Map<string, TypeUrl[][]>();

  async function apply(yaml: string): Promise<number> {
    const docs = yaml.split('\n---\n').map((d) => require('yaml').parse(d));
    const v = validateDocuments(docs);
    assert.ok(v.ok, JSON.stringify(!v.ok && v.errors));
    return (await store.apply(v.value)).revision;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-builder-'));
    store = createSqliteStore({ dataDir: dir });
    cache = new XdsCache();
    await apply(
      'kind: Service\nname: a\nspec: { port: 9001 }\n---\nkind: Service\nname: b\nspec: { port: 9002 }\n---\nkind: Instance\nname: a-0\nspec: { service: a, address: 127.0.0.1, port: 15006 }',
    );
    builder = new SnapshotBuilder({ store, cache, log: silentLogger, quietMs: 5, maxDelayMs: 50 });
    await builder.start();
    for (const p of [proxy('pa', 'a', '127.0.0.2'), proxy('pb', 'b', '127.0.0.3')]) {
      builder.proxyConnected(p);
      heard.set(p.nodeId, []);
      cache.watch(p.nodeId, (changes) => heard.get(p.nodeId)!.push([...changes.keys()]));
    }
  });
  after(async () => {
    builder.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    for (const l of heard.values()) l.length = 0;
  });

  it('takes the endpoint fast path for an instance change: only ClusterLoadAssignments change', async () => {
    const r = await apply('kind: Instance\nname: a-1\nspec: { service: a, address: 127.0.0.4, port: 15006 }');
    assert.ok(await builder.waitForRevision(r));
    for (const id of ['pa', 'pb']) {
      assert.deepEqual(heard.get(id), [
        ['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'],
      ]);
    }
  });

  it('tells only the proxies whose resources changed', async () => {
    // A rate limit is enforced on a's inbound side: only a's sidecar changes.
    const r = await apply(
      'kind: DestinationPolicy\nname: a\nspec: { service: a, rateLimit: { requestsPerSecond: 5 } }',
    );
    assert.ok(await builder.waitForRevision(r));
    assert.deepEqual(heard.get('pa'), [['type.googleapis.com/envoy.config.route.v3.RouteConfiguration']]);
    assert.deepEqual(heard.get('pb'), []);
  });

  it('coalesces a burst of changes into one build', async () => {
    const before = builder.builtRevision;
    let last = 0;
    for (let i = 0; i < 5; i++)
      last = await apply(
        `kind: Instance\nname: burst-${i}\nspec: { service: b, address: 127.0.1.${i + 1}, port: 15006 }`,
      );
    await eventually(() => assert.equal(builder.builtRevision, last));
    assert.ok(last - before === 5);
    // Five store revisions, far fewer builds (each build notifies each proxy at most once).
    assert.ok(heard.get('pa')!.length < 5, `pa heard ${heard.get('pa')!.length} times`);
  });

  it('under churn (10+ changes a second) gathers a whole maxDelayMs window per build', async () => {
    // 30 changes 25 ms apart (750 ms): once churn is seen, builds come one per 50 ms window, not
    // one per quiet gap (a build per change), so each proxy hears about one push per window.
    let last = 0;
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      last = await apply(
        `kind: Instance\nname: churn-${i}\nspec: { service: a, address: 127.0.2.${i + 1}, port: 15006 }`,
      );
      await new Promise((res) => setTimeout(res, 25)); // the pace of the changes, not a wait for a condition
    }
    await eventually(() => assert.equal(builder.builtRevision, last));
    const windows = Math.ceil((Date.now() - started) / 50) + 1;
    const pushes = heard.get('pb')!.length;
    assert.ok(pushes <= windows, `${pushes} pushes for ${windows} windows of 50 ms`);
    assert.ok(pushes < 22, `${pushes} pushes for 30 changes`);
  });
});

describe('snapshot builder: endpoint builds and scoped views', () => {
  it('an instance change sets the cache only for proxies whose views hold its service', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-builder-scoped-'));
    const store = createSqliteStore({ dataDir: dir });
    const cache = new XdsCache();
    const docs = [
      'kind: Service\nname: a\nspec: { port: 9001 }',
      'kind: Service\nname: b\nspec: { port: 9002 }',
      'kind: Service\nname: ca\nspec: { port: 9003, calls: [a] }',
      'kind: Service\nname: cb\nspec: { port: 9004, calls: [b] }',
      'kind: Instance\nname: a-0\nspec: { service: a, address: 127.0.3.1, port: 15006 }',
      'kind: Instance\nname: b-0\nspec: { service: b, address: 127.0.3.2, port: 15006 }',
    ].map((d) => require('yaml').parse(d));
    const v = validateDocuments(docs);
    assert.ok(v.ok);
    await store.apply(v.value);
    const builder = new SnapshotBuilder({ store, cache, log: silentLogger, quietMs: 5, maxDelayMs: 50 });
    try {
      await builder.start();
      builder.proxyConnected(proxy('pca', 'ca', '127.0.3.10'));
      builder.proxyConnected(proxy('pcb', 'cb', '127.0.3.11'));
      const sets = new Map<string, number>();
      const set = cache.set.bind(cache);
      cache.set = (nodeId, update) => {
        sets.set(nodeId, (sets.get(nodeId) ?? 0) + 1);
        return set(nodeId, update);
      };
      const cla = (id: string) => [
        ...cache.get(id, 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment').keys(),
      ];
      const before = cla('pca');
      const change = validateDocuments([
        require('yaml').parse(
          'kind: Instance\nname: b-1\nspec: { service: b, address: 127.0.3.3, port: 15006 }',
        ),
      ]);
      assert.ok(change.ok);
      const r = (await store.apply(change.value)).revision;
      assert.ok(await builder.waitForRevision(r));
      assert.equal(sets.get('pcb'), 1, 'the proxy that calls b');
      assert.equal(sets.get('pca'), undefined, 'the proxy that calls only a is not touched');
      assert.deepEqual(cla('pca'), before);
    } finally {
      builder.stop();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('snapshot builder: workload identities', () => {
  it('issues a certificate for each service with instances before any of its sidecars connects', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-builder-certs-'));
    const store = createSqliteStore({ dataDir: dir });
    const certs = new CertManager({
      ca: await MeshCa.generate('mesh.local', new Date()),
      log: silentLogger,
      onIssued: () => {},
    });
    const builder = new SnapshotBuilder({ store, cache: new XdsCache(), certs, log: silentLogger });
    try {
      const docs = validateDocuments([
        { kind: 'Service', name: 'with-instances', spec: { port: 9001 } },
        { kind: 'Service', name: 'without', spec: { port: 9002 } },
        {
          kind: 'Instance',
          name: 'w-0',
          spec: { service: 'with-instances', address: '127.0.0.1', port: 15006 },
        },
        {
          kind: 'Instance',
          name: 'orphan-0',
          spec: { service: 'nosuch', address: '127.0.0.2', port: 15006 },
        },
      ]);
      assert.ok(docs.ok);
      await store.apply(docs.value);
      await builder.start();
      await eventually(() => assert.ok(certs.get('with-instances'), 'no certificate yet'));
      assert.equal(certs.get('without'), undefined);
      assert.equal(certs.get('nosuch'), undefined);
    } finally {
      builder.stop();
      certs.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('snapshot builder: the churn window follows the load', () => {
  /** Service a and its instance a-<i> (a new instance each time: a change of its endpoints). */
  async function applyInstance(store: ReturnType<typeof createSqliteStore>, i: number): Promise<number> {
    const v = validateDocuments([
      { kind: 'Service', name: 'a', spec: { port: 9001 } },
      { kind: 'Instance', name: `a-${i}`, spec: { service: 'a', address: '127.0.0.1', port: 15006 } },
    ]);
    assert.ok(v.ok);
    return (await store.apply(v.value)).revision;
  }

  it('grows while the server uses more CPU than the target, up to its cap, and shrinks back as the load falls', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-builder-churn-'));
    const store = createSqliteStore({ dataDir: dir });
    let load = 0.9;
    const waits: number[] = [];
    const builder = new SnapshotBuilder({
      store,
      cache: new XdsCache(),
      log: silentLogger,
      quietMs: 5,
      maxDelayMs: 20,
      churnMaxDelayMs: 60,
      churnLoadTarget: 0.45,
      loadSinceLastCall: () => load,
      onBuild: (b) => {
        if (b.waitedMs !== undefined) waits.push(b.waitedMs);
      },
    });
    try {
      const apply = (i: number) => applyInstance(store, i);
      await apply(0);
      await builder.start();
      const churn = async (from: number, count: number) => {
        const seen: number[] = [];
        let last = 0;
        for (let i = from; i < from + count; i++) {
          last = await apply(i);
          seen.push(builder.churnDelay);
          await new Promise((res) => setTimeout(res, 10)); // the pace of the changes (100 a second)
        }
        await eventually(() => assert.equal(builder.builtRevision, last));
        return seen;
      };
      // The window moves by at most a tenth per build: from 20 to 60 ms takes twelve builds (~0.45 s).
      const busy = await churn(1, 150);
      assert.equal(busy[0], 20, 'starts at maxDelayMs');
      assert.equal(Math.max(...busy), 60, `grows to churnMaxDelayMs: ${busy.join(' ')}`);
      // What the builds waited (meshplane_build_wait_seconds): the grown window.
      const busyWaits = waits.splice(0);
      assert.ok(Math.max(...busyWaits) >= 55, `a build waited the grown window: ${busyWaits.join(' ')}`);
      load = 0.1;
      const idle = await churn(200, 150);
      assert.equal(idle.at(-1), 20, `back to maxDelayMs: ${idle.join(' ')}`);
      assert.ok(waits.at(-1)! < 55, `the last build waited less: ${waits.join(' ')}`);
    } finally {
      builder.stop();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('settles where the load meets the target: a noisy load does not swing the window', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-builder-noise-'));
    const store = createSqliteStore({ dataDir: dir });
    // Each build sees 0.2 or 1.0 in turn: on average the target (a build's pushes fall in one window or the next).
    let calls = 0;
    const builder = new SnapshotBuilder({
      store,
      cache: new XdsCache(),
      log: silentLogger,
      quietMs: 5,
      maxDelayMs: 20,
      churnMaxDelayMs: 400,
      churnLoadTarget: 0.6,
      loadSinceLastCall: () => (++calls % 2 === 0 ? 1.0 : 0.2),
    });
    try {
      const apply = (i: number) => applyInstance(store, i);
      await apply(0);
      await builder.start();
      const windows: number[] = [];
      let last = 0;
      for (let i = 1; i <= 150; i++) {
        last = await apply(i);
        if (windows.at(-1) !== builder.churnDelay) windows.push(builder.churnDelay);
        await new Promise((res) => setTimeout(res, 10));
      }
      await eventually(() => assert.equal(builder.builtRevision, last));
      // Once under churn (the first ten changes) the window moves by at most a tenth per build,
      // and the average of the alternating loads holds it near where it began, never doubling.
      const churned = windows.slice(1);
      assert.ok(churned.length >= 25, `builds under churn: ${windows.join(' ')}`);
      for (let i = 1; i < churned.length; i++) {
        const step = churned[i] / churned[i - 1];
        // (Windows are whole milliseconds: a tenth of 26 ms rounds to 3.)
        assert.ok(step >= 0.87 && step <= 1.13, `a step of ${step.toFixed(2)}: ${windows.join(' ')}`);
      }
      const settled = churned.slice(-20);
      assert.ok(
        Math.max(...settled) / Math.min(...settled) <= 1.4,
        `the window stays within a band: ${windows.join(' ')}`,
      );
    } finally {
      builder.stop();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
