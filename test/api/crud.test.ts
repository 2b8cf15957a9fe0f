// The REST API over real HTTP against a real `meshplane serve` process: every
// kind through apply/get/list/delete (JSON and YAML), label selectors, an
// invalid batch that stores nothing and names every problem, If-Match races,
// and the OpenAPI document.
import assert from 'node:assert/strict';
import { parseAllDocuments, stringify as toYaml } from 'yaml';
import { KIND_NAMES, KINDS } from '../../src/model';
import { exampleObjects, MESH_MODEL_EXAMPLE_YAML } from '../model/examples';
import { errorOf, type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const SERVER_FIELDS = ['revision', 'resourceVersion', 'createdAt', 'updatedAt', 'status'];

/** The raw example documents (as a user writes them) and the validated ones (defaults applied). */
const RAW: Record<string, any>[] = parseAllDocuments(MESH_MODEL_EXAMPLE_YAML).map((d: any) => d.toJS());
const VALID = exampleObjects();

function withoutServerFields(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !SERVER_FIELDS.includes(k)));
}

describe('api: CRUD over HTTP against meshplane serve', function () {
  this.timeout(30_000);
  let mp: Meshplane;
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.50' });
  });
  after(async () => {
    await mp?.stop();
  });

  it('the examples cover every kind', () => {
    assert.deepEqual([...new Set(RAW.map((d) => d.kind))].sort(), [...KIND_NAMES].sort());
  });

  describe('every kind round-trips through apply, get, list and delete', () => {
    const formats = [
      { format: 'json', encode: (d: unknown) => JSON.stringify(d), type: 'application/json' },
      { format: 'yaml', encode: (d: unknown) => toYaml(d), type: 'application/yaml' },
    ];
    for (const kind of KIND_NAMES) {
      for (const f of formats) {
        it(`${kind} (${f.format} body)`, async () => {
          const raw = RAW.find((d) => d.kind === kind)!;
          const valid = VALID.find((d) => d.kind === kind)!;
          const plural = KINDS[kind].plural;
          const headers = { 'content-type': f.type };

          const applied = await mp.api('POST', '/v1/apply', f.encode(raw), { headers });
          assert.equal(applied.status, 200, applied.body);
          assert.equal(applied.json.dryRun, false);
          assert.equal(applied.json.changes.length, 1);
          const change = applied.json.changes[0];
          assert.deepEqual(
            { kind: change.kind, name: change.name, action: change.action },
            { kind, name: raw.name, action: 'created' },
          );

          const got = await mp.api('GET', `/v1/${plural}/${raw.name}`);
          assert.equal(got.status, 200, got.body);
          assert.deepEqual(withoutServerFields(got.json), valid, 'stored with defaults applied');
          assert.equal(got.json.resourceVersion, change.resourceVersion);
          assert.equal(got.json.revision, applied.json.revision);
          assert.equal(got.headers.etag, `"${change.resourceVersion}"`);
          // Status carries the translator's warnings: these documents name a service that is not there.
          assert.deepEqual(got.json.status.nacks, []);
          const refersTo = (raw.spec as { service?: string } | undefined)?.service;
          if (refersTo)
            assert.match(
              got.json.status.warnings.join('\n'),
              new RegExp(`service "${refersTo}" does not exist`),
            );
          else assert.deepEqual(got.json.status.warnings, []);
          assert.deepEqual(
            applied.json.warnings.map((w: { message: string }) => w.message),
            got.json.status.warnings,
            'apply reports the same warnings',
          );
          assert.ok(!Number.isNaN(Date.parse(got.json.createdAt)));

          const list = await mp.api('GET', `/v1/${plural}`);
          assert.equal(list.status, 200, list.body);
          assert.equal(list.json.kind, kind);
          assert.deepEqual(
            list.json.items.map((o: any) => o.name),
            [raw.name],
          );
          assert.deepEqual(withoutServerFields(list.json.items[0]), valid);

          // What GET returned, re-encoded as `get -o yaml|json` would, applies again as is.
          const again = await mp.api('POST', '/v1/apply', f.encode(got.json), { headers });
          assert.equal(again.status, 200, again.body);
          assert.equal(again.json.changes[0].action, 'unchanged');
          assert.equal(again.json.changes[0].resourceVersion, change.resourceVersion);

          const deleted = await mp.api('DELETE', `/v1/${plural}/${raw.name}`);
          assert.equal(deleted.status, 200, deleted.body);
          assert.equal(deleted.json.object.name, raw.name);
          assert.ok(deleted.json.revision > applied.json.revision);

          const gone = await mp.api('GET', `/v1/${plural}/${raw.name}`);
          assert.equal(gone.status, 404);
          assert.equal(errorOf(gone).code, 'NOT_FOUND');
          assert.deepEqual((await mp.api('GET', `/v1/${plural}`)).json.items, []);
          const again404 = await mp.api('DELETE', `/v1/${plural}/${raw.name}`);
          assert.equal(again404.status, 404);
          assert.equal(errorOf(again404).code, 'NOT_FOUND');
        });
      }
    }

    it('applies every kind in one multi-document YAML body, atomically, then deletes them', async () => {
      const res = await mp.api('POST', '/v1/apply', MESH_MODEL_EXAMPLE_YAML);
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(
        res.json.changes.map((c: any) => [c.kind, c.action]),
        RAW.map((d) => [d.kind, 'created']),
      );
      const revisions = new Set<number>();
      for (const d of VALID) {
        const got = await mp.api('GET', `/v1/${KINDS[d.kind].plural}/${d.name}`);
        assert.deepEqual(withoutServerFields(got.json), d);
        revisions.add(got.json.revision);
      }
      assert.deepEqual([...revisions], [res.json.revision], 'one revision for the whole batch');
      for (const d of VALID) {
        assert.equal((await mp.api('DELETE', `/v1/${KINDS[d.kind].plural}/${d.name}`)).status, 200);
      }
    });
  });

  describe('label selectors', () => {
    const services = [
      { name: 'sel-a', labels: { team: 'a', tier: 'web' } },
      { name: 'sel-b', labels: { team: 'a', tier: 'db' } },
      { name: 'sel-c', labels: { team: 'b', tier: 'web' } },
      { name: 'sel-d', labels: undefined },
    ];
    before(async () => {
      const docs = services.map((s, i) => ({
        kind: 'Service',
        name: s.name,
        ...(s.labels ? { labels: s.labels } : {}),
        spec: { port: 8000 + i },
      }));
      const res = await mp.api('POST', '/v1/apply', docs);
      assert.equal(res.status, 200, res.body);
    });
    after(async () => {
      for (const s of services) await mp.api('DELETE', `/v1/services/${s.name}`);
    });

    const cases = [
      { selector: undefined, want: ['sel-a', 'sel-b', 'sel-c', 'sel-d'] },
      { selector: 'team=a', want: ['sel-a', 'sel-b'] },
      { selector: 'tier=web', want: ['sel-a', 'sel-c'] },
      { selector: 'team=a,tier=web', want: ['sel-a'] },
      { selector: 'team%3Da%2Ctier%3Ddb', want: ['sel-b'] },
      { selector: 'team=b,tier=db', want: [] },
      { selector: 'team=c', want: [] },
      { selector: 'owner=x', want: [] },
    ];
    for (const tc of cases) {
      it(`?labels=${tc.selector ?? '(none)'} -> ${tc.want.join(', ') || 'nothing'}`, async () => {
        const res = await mp.api('GET', `/v1/services${tc.selector ? `?labels=${tc.selector}` : ''}`);
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(
          res.json.items.map((o: any) => o.name),
          tc.want,
        );
      });
    }

    const bad = ['team', 'team=a,', '=a', 'team=a&labels=tier=web'];
    for (const selector of bad) {
      it(`refuses the selector "${selector}" with 400`, async () => {
        const res = await mp.api('GET', `/v1/services?labels=${selector}`);
        assert.equal(res.status, 400, res.body);
        const e = errorOf(res);
        assert.equal(e.code, 'INVALID');
        assert.equal(e.details[0].path, 'labels');
      });
    }
  });

  describe('an invalid batch stores nothing and names every problem', () => {
    const good = [
      { kind: 'Service', name: 'batch-one', spec: { port: 9001 } },
      { kind: 'DestinationPolicy', name: 'batch-two', spec: { service: 'batch-one' } },
    ];
    const bad = {
      kind: 'Service',
      name: 'batch-bad',
      labels: { 'bad key!': 'x' },
      spec: { protocol: 'ftp', port: 70_000, weight: 3 },
    };
    const wantProblems = [
      'documents[2].labels["bad key!"]',
      'documents[2].spec.port',
      'documents[2].spec.protocol',
      'documents[2].spec.weight',
    ];
    const cases = [
      { format: 'YAML', body: [...good, bad].map((d) => toYaml(d)).join('---\n'), type: 'application/yaml' },
      { format: 'JSON', body: JSON.stringify([...good, bad]), type: 'application/json' },
    ];
    for (const tc of cases) {
      it(`${tc.format}: 400, details for each problem of document 2 (index, kind, name, path)`, async () => {
        const revisionBefore = (await mp.api('GET', '/v1/services')).json.revision;
        const res = await mp.api('POST', '/v1/apply', tc.body, { headers: { 'content-type': tc.type } });
        assert.equal(res.status, 400, res.body);
        const e = errorOf(res);
        assert.equal(e.code, 'INVALID');
        assert.match(e.message, /nothing was stored/);
        assert.deepEqual(e.details.map((d) => d.path).sort(), wantProblems);
        for (const d of e.details) {
          assert.deepEqual(
            { document: d.document, kind: d.kind, name: d.name },
            { document: 2, kind: 'Service', name: 'batch-bad' },
            JSON.stringify(d),
          );
          assert.ok(d.message.length > 0);
        }
        assert.match(e.details.find((d) => d.path.endsWith('spec.weight'))!.message, /unknown field/);
        // None of the three was stored and the revision did not move.
        for (const [plural, name] of [
          ['services', 'batch-one'],
          ['destinationpolicies', 'batch-two'],
          ['services', 'batch-bad'],
        ]) {
          assert.equal((await mp.api('GET', `/v1/${plural}/${name}`)).status, 404, `${plural}/${name}`);
        }
        assert.equal((await mp.api('GET', '/v1/services')).json.revision, revisionBefore);
      });
    }

    it('reports problems of several documents at once, each with its own index', async () => {
      const docs = [
        { kind: 'Service', name: 'Not_A_Name', spec: { port: 1 } },
        good[0],
        { kind: 'Gateway', name: 'gw', spec: {} },
        {
          kind: 'Instance',
          name: 'inst',
          spec: { service: 'batch-one', address: 'not-an-ip', port: 1, ttl: '0s' },
        },
      ];
      const res = await mp.api('POST', '/v1/apply', docs);
      assert.equal(res.status, 400, res.body);
      const e = errorOf(res);
      assert.deepEqual(e.details.map((d) => `${d.document} ${d.path}`).sort(), [
        '0 documents[0].name',
        '2 documents[2].kind',
        '3 documents[3].spec.address',
        '3 documents[3].spec.ttl',
      ]);
      assert.equal((await mp.api('GET', '/v1/services/batch-one')).status, 404);
    });

    it('dryRun validates and reports the changes without storing', async () => {
      const res = await mp.api('POST', '/v1/apply?dryRun=true', good);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.dryRun, true);
      assert.deepEqual(
        res.json.changes.map((c: any) => c.action),
        ['created', 'created'],
      );
      assert.equal((await mp.api('GET', '/v1/services/batch-one')).status, 404);
    });
  });

  describe('If-Match: concurrent updates of one object', () => {
    const path = '/v1/services/contended';
    const doc = (port: number) => ({ kind: 'Service', name: 'contended', spec: { protocol: 'http', port } });

    before(async () => {
      const res = await mp.api('PUT', path, doc(1000));
      assert.equal(res.status, 201, res.body);
      assert.equal(res.json.action, 'created');
    });
    after(async () => {
      await mp.api('DELETE', path);
    });

    for (let round = 0; round < 5; round++) {
      it(`round ${round}: two clients PUT with the same If-Match: one 200, one 409`, async () => {
        const current = await mp.api('GET', path);
        const rv = current.json.resourceVersion;
        const ports = [2000 + round * 2, 2001 + round * 2];
        const [a, b] = await Promise.all(
          ports.map((p, i) =>
            // One client quotes the version as an ETag, the other sends it bare.
            mp.api('PUT', path, doc(p), { headers: { 'if-match': i === 0 ? `"${rv}"` : rv } }),
          ),
        );
        assert.deepEqual([a.status, b.status].sort(), [200, 409], `${a.body}\n${b.body}`);
        const [winner, loser] = a.status === 200 ? [a, b] : [b, a];
        const winnerPort = a.status === 200 ? ports[0] : ports[1];
        assert.equal(winner.json.action, 'updated');
        assert.notEqual(winner.json.object.resourceVersion, rv);
        assert.equal(winner.headers.etag, `"${winner.json.object.resourceVersion}"`);
        const e = errorOf(loser);
        assert.equal(e.code, 'CONFLICT');
        assert.deepEqual(e.details[0].path, 'resourceVersion');
        assert.match(
          e.details[0].message,
          new RegExp(`expected ${rv}, current is ${winner.json.object.resourceVersion}`),
        );
        const after = await mp.api('GET', path);
        assert.equal(after.json.spec.port, winnerPort, "the winner's write is the one stored");
        assert.equal(after.json.resourceVersion, winner.json.object.resourceVersion);
      });
    }

    it('a stale If-Match on DELETE is a 409 and the object stays', async () => {
      const current = (await mp.api('GET', path)).json;
      const res = await mp.api('DELETE', path, undefined, { headers: { 'if-match': '1' } });
      assert.equal(res.status, 409, res.body);
      assert.equal(errorOf(res).code, 'CONFLICT');
      assert.equal((await mp.api('GET', path)).json.resourceVersion, current.resourceVersion);
    });

    it('PUT of a fetched object with its own If-Match succeeds (unchanged), the server fields ignored', async () => {
      const current = (await mp.api('GET', path)).json;
      const res = await mp.api('PUT', path, current, { headers: { 'if-match': current.resourceVersion } });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.action, 'unchanged');
    });

    it('If-Match on an object that does not exist is a 404', async () => {
      const res = await mp.api(
        'PUT',
        '/v1/services/nobody',
        { ...doc(1), name: 'nobody' },
        { headers: { 'if-match': '3' } },
      );
      assert.equal(res.status, 404, res.body);
      assert.equal(errorOf(res).code, 'NOT_FOUND');
    });

    it('a PUT body must match the path (kind and name)', async () => {
      const res = await mp.api('PUT', path, { ...doc(1), name: 'other' });
      assert.equal(res.status, 400, res.body);
      assert.deepEqual(
        errorOf(res).details.map((d) => d.path),
        ['name'],
      );
    });
  });

  describe('GET /openapi.json', () => {
    let doc: any;
    before(async () => {
      const res = await mp.api('GET', '/openapi.json', undefined, { token: null });
      assert.equal(res.status, 200, res.body);
      doc = res.json;
    });

    it('is an OpenAPI 3.1 document with info and paths', () => {
      assert.match(doc.openapi, /^3\.1\.\d+$/);
      assert.equal(doc.info.title, 'meshplane');
      assert.equal(typeof doc.info.version, 'string');
      assert.equal(typeof doc.paths, 'object');
      for (const p of ['/v1/apply', '/v1/bootstrap', '/v1/tokens', '/v1/proxies', '/healthz']) {
        assert.ok(doc.paths[p], `path ${p}`);
      }
    });

    it('has a component schema per kind, an object schema of kind, name and spec', () => {
      for (const kind of KIND_NAMES) {
        const s = doc.components.schemas[kind];
        assert.ok(s, `schema ${kind}`);
        assert.equal(s.type, 'object');
        assert.deepEqual([...s.required].sort(), ['kind', 'name', 'spec']);
        assert.equal(s.properties.kind.const, kind);
        assert.equal(s.properties.spec.type, 'object');
        assert.equal(s.additionalProperties, false);
      }
      assert.ok(doc.components.schemas.Error.properties.error);
    });

    it('lists and item paths for every kind, each path parameter declared, every $ref resolvable', () => {
      for (const kind of KIND_NAMES) {
        const plural = KINDS[kind].plural;
        assert.ok(doc.paths[`/v1/${plural}`]?.get, `GET /v1/${plural}`);
        for (const m of ['get', 'put', 'delete']) assert.ok(doc.paths[`/v1/${plural}/{name}`]?.[m]);
      }
      const methods = ['get', 'put', 'post', 'delete', 'patch'];
      for (const [p, item] of Object.entries<any>(doc.paths)) {
        assert.ok(p.startsWith('/'), p);
        for (const [m, op] of Object.entries<any>(item)) {
          assert.ok(methods.includes(m), `${p}: ${m}`);
          assert.ok(Object.keys(op.responses ?? {}).length > 0, `${m} ${p} has responses`);
          for (const [, name] of p.matchAll(/\{([^}]+)\}/g)) {
            assert.ok(
              (op.parameters ?? []).some(
                (x: any) => x.name === name && x.in === 'path' && x.required === true,
              ),
              `${m} ${p} declares {${name}}`,
            );
          }
        }
      }
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((r) => r[1]);
      assert.ok(refs.length > 0);
      for (const ref of new Set(refs)) {
        assert.ok(ref.startsWith('#/'), ref);
        const target = ref
          .slice(2)
          .split('/')
          .reduce((o: any, k) => o?.[k], doc);
        assert.ok(target, `unresolved ${ref}`);
      }
    });

    it('does not ask health endpoints for the token', () => {
      for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
        assert.deepEqual(doc.paths[p]?.get?.security, [], p);
      }
    });
  });
});
