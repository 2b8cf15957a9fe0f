// Object history over real HTTP against a real `meshplane serve` process: the
// versions after several writes, diffs between them, rollback (a new version, a
// change like any other, conditional on the current resourceVersion), rollback of a
// deleted object, errors (404, 400, 409, 401), a restart; then meshctl's history,
// diff and rollback verbs as subprocesses against the same server.
import assert from 'node:assert/strict';
import { parseTable, runMeshctl } from '../support/meshctl';
import { errorOf, type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function canary(name: string, v1: number, v2: number) {
  return {
    kind: 'TrafficRoute',
    name,
    spec: {
      service: 'reviews',
      http: [
        {
          backends: [
            { subset: { version: 'v1' }, weight: v1 },
            { subset: { version: 'v2' }, weight: v2 },
          ],
        },
      ],
    },
  };
}

function service(name: string, port: number, labels?: Record<string, string>) {
  return { kind: 'Service', name, ...(labels ? { labels } : {}), spec: { protocol: 'http', port } };
}

describe('api: object history, diff and rollback over HTTP', function () {
  this.timeout(60_000);
  let mp: Meshplane;
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.150' });
    const r = await mp.api('PUT', '/v1/services/reviews', service('reviews', 9080));
    assert.equal(r.status, 201, r.body);
  });
  after(async () => {
    await mp?.stop();
  });

  /** PUT that must succeed; returns the response's JSON. */
  async function put(plural: string, obj: { name: string }, headers?: Record<string, string>) {
    const r = await mp.api('PUT', `/v1/${plural}/${obj.name}`, obj, { headers });
    assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.body}`);
    return r.json;
  }

  it('lists every version newest first after several PUTs, with revision, op, time and object', async () => {
    const v1 = await put('services', service('hist-a', 9081));
    const v2 = await put('services', service('hist-a', 9082));
    const v3 = await put('services', service('hist-a', 9082, { team: 'books' }));
    await put('services', service('hist-a', 9082, { team: 'books' })); // unchanged: no version
    const r = await mp.api('GET', '/v1/services/hist-a/history');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.kind, 'Service');
    assert.equal(r.json.name, 'hist-a');
    assert.deepEqual(
      r.json.items.map((e: any) => [e.revision, e.resourceVersion, e.op, e.object.spec.port]),
      [
        [v3.revision, v3.object.resourceVersion, 'put', 9082],
        [v2.revision, v2.object.resourceVersion, 'put', 9082],
        [v1.revision, v1.object.resourceVersion, 'put', 9081],
      ],
    );
    assert.deepEqual(r.json.items[0].object.labels, { team: 'books' });
    assert.equal(r.json.items[2].object.labels, undefined);
    for (const e of r.json.items) assert.match(e.at, ISO_TIME);
    const current = await mp.api('GET', '/v1/services/hist-a');
    assert.equal(current.json.resourceVersion, r.json.items[0].resourceVersion);

    const two = await mp.api('GET', '/v1/services/hist-a/history?limit=2');
    assert.equal(two.status, 200, two.body);
    assert.deepEqual(
      two.json.items.map((e: any) => e.revision),
      [v3.revision, v2.revision],
    );
  });

  it('diffs the previous version against the current one by default, and any two on request', async () => {
    const a = await put('trafficroutes', canary('diff-canary', 90, 10));
    const b = await put('trafficroutes', canary('diff-canary', 0, 100));
    const rvA = a.object.resourceVersion;
    const rvB = b.object.resourceVersion;
    const r = await mp.api('GET', '/v1/trafficroutes/diff-canary/diff');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.from, rvA);
    assert.equal(r.json.to, rvB);
    const diff: string = r.json.diff;
    assert.match(diff, new RegExp(`^--- TrafficRoute/diff-canary resourceVersion ${rvA}$`, 'm'));
    assert.match(diff, new RegExp(`^\\+\\+\\+ TrafficRoute/diff-canary resourceVersion ${rvB}$`, 'm'));
    assert.match(diff, /^@@ -\d+(,\d+)? \+\d+(,\d+)? @@$/m);
    assert.match(diff, /^-\s+weight: 90$/m);
    assert.match(diff, /^\+\s+weight: 0$/m);
    assert.match(diff, /^-\s+weight: 10$/m);
    assert.match(diff, /^\+\s+weight: 100$/m);
    // Unchanged lines are context, never removed and added again.
    assert.doesNotMatch(diff, /^[-+]\s+service: reviews$/m);
    assert.equal(diff.split('\n').filter((l) => /^[-+]\s/.test(l)).length, 4);
    assert.deepEqual(r.json.changes, [
      { path: 'spec.http[0].backends[0].weight', from: 90, to: 0 },
      { path: 'spec.http[0].backends[1].weight', from: 10, to: 100 },
    ]);

    const back = await mp.api('GET', `/v1/trafficroutes/diff-canary/diff?from=${rvB}&to=${rvA}`);
    assert.equal(back.status, 200, back.body);
    assert.deepEqual(back.json.changes, [
      { path: 'spec.http[0].backends[0].weight', from: 0, to: 90 },
      { path: 'spec.http[0].backends[1].weight', from: 100, to: 10 },
    ]);
    // The first version has nothing before it: everything is added.
    const first = await mp.api('GET', `/v1/trafficroutes/diff-canary/diff?to=${rvA}`);
    assert.equal(first.status, 200, first.body);
    assert.equal(first.json.from, null);
    assert.match(first.json.diff, /^--- \/dev\/null$/m);
    assert.match(first.json.diff, /^\+kind: TrafficRoute$/m);
    assert.ok(first.json.diff.split('\n').every((l: string) => !l.startsWith('-') || l.startsWith('---')));
  });

  it('rollback restores that version’s spec as a new version, a change tracked like any other', async () => {
    const a = await put('trafficroutes', canary('rb-canary', 90, 10));
    const b = await put('trafficroutes', canary('rb-canary', 0, 100));
    const rvA = a.object.resourceVersion;
    const r = await mp.api('POST', `/v1/trafficroutes/rb-canary/rollback?to=${rvA}`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.action, 'updated');
    assert.ok(r.json.revision > b.revision, `revision ${r.json.revision} after ${b.revision}`);
    assert.equal(r.json.changeId, r.json.revision);
    assert.equal(r.json.object.revision, r.json.revision);
    assert.notEqual(r.json.object.resourceVersion, rvA);
    assert.notEqual(r.json.object.resourceVersion, b.object.resourceVersion);
    assert.deepEqual(r.json.object.spec, a.object.spec);
    assert.equal(r.json.object.createdAt, a.object.createdAt);
    assert.deepEqual(r.json.rolledBackTo, { resourceVersion: rvA, revision: a.revision, op: 'put' });
    assert.ok(Array.isArray(r.json.warnings));
    assert.equal(r.headers.etag, `"${r.json.object.resourceVersion}"`);

    const got = await mp.api('GET', '/v1/trafficroutes/rb-canary');
    assert.deepEqual(
      got.json.spec.http[0].backends.map((x: any) => x.weight),
      [90, 10],
    );
    assert.equal(got.json.resourceVersion, r.json.object.resourceVersion);
    // The rollback is the newest version in the history, and a revision in the change log.
    const history = await mp.api('GET', '/v1/trafficroutes/rb-canary/history');
    assert.deepEqual(
      history.json.items.map((e: any) => e.revision),
      [r.json.revision, b.revision, a.revision],
    );
    const diff = await mp.api('GET', '/v1/trafficroutes/rb-canary/diff');
    assert.deepEqual(
      diff.json.changes.map((c: any) => [c.from, c.to]),
      [
        [0, 90],
        [100, 10],
      ],
    );
    // Rolling back to what is already there changes nothing.
    const again = await mp.api('POST', `/v1/trafficroutes/rb-canary/rollback?to=${rvA}`);
    assert.equal(again.status, 200, again.body);
    assert.equal(again.json.action, 'unchanged');
    assert.equal(again.json.revision, r.json.revision);
    assert.equal(again.json.changeId, undefined);
  });

  it('rollback is conditional: 409 when If-Match is stale (or the object moved), nothing changes', async () => {
    const a = await put('trafficroutes', canary('rb-race', 90, 10));
    const b = await put('trafficroutes', canary('rb-race', 50, 50));
    const rvA = a.object.resourceVersion;
    const stale = await mp.api('POST', `/v1/trafficroutes/rb-race/rollback?to=${rvA}`, undefined, {
      headers: { 'if-match': `"${rvA}"` },
    });
    assert.equal(stale.status, 409, stale.body);
    const e = errorOf(stale);
    assert.equal(e.code, 'CONFLICT');
    assert.deepEqual(
      e.details.map((d) => d.path),
      ['resourceVersion'],
    );
    assert.match(
      e.details[0]!.message,
      new RegExp(`expected ${rvA}, current is ${b.object.resourceVersion}`),
    );
    const unchanged = await mp.api('GET', '/v1/trafficroutes/rb-race');
    assert.equal(unchanged.json.resourceVersion, b.object.resourceVersion);

    const ok = await mp.api('POST', `/v1/trafficroutes/rb-race/rollback?to=${rvA}`, undefined, {
      headers: { 'if-match': `"${b.object.resourceVersion}"` },
    });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json.action, 'updated');
  });

  it('rollback to a delete recreates the object as it was before the delete', async () => {
    await put('services', service('hist-gone', 7001));
    const last = await put('services', service('hist-gone', 7002, { tier: 'x' }));
    const del = await mp.api('DELETE', '/v1/services/hist-gone');
    assert.equal(del.status, 200, del.body);
    const history = await mp.api('GET', '/v1/services/hist-gone/history');
    // A deleted object's history stays readable.
    assert.equal(history.status, 200, history.body);
    const tombstone = history.json.items[0];
    assert.equal(tombstone.op, 'delete');
    assert.equal(tombstone.revision, del.json.revision);
    assert.deepEqual(tombstone.object.spec, last.object.spec);
    const diff = await mp.api('GET', '/v1/services/hist-gone/diff');
    assert.match(diff.json.diff, /\(deleted\)$/m);
    assert.match(diff.json.diff, /^-\s+port: 7002$/m);

    // With If-Match, a deleted object is a conflict: it is at no resourceVersion.
    const conditional = await mp.api(
      'POST',
      `/v1/services/hist-gone/rollback?to=${tombstone.resourceVersion}`,
      undefined,
      { headers: { 'if-match': last.object.resourceVersion } },
    );
    assert.equal(conditional.status, 409, conditional.body);
    assert.equal(errorOf(conditional).code, 'CONFLICT');

    const r = await mp.api('POST', `/v1/services/hist-gone/rollback?to=${tombstone.resourceVersion}`);
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.action, 'created');
    assert.ok(r.json.revision > del.json.revision);
    assert.deepEqual(r.json.rolledBackTo.op, 'delete');
    const got = await mp.api('GET', '/v1/services/hist-gone');
    assert.equal(got.status, 200, got.body);
    assert.equal(got.json.spec.port, 7002);
    assert.deepEqual(got.json.labels, { tier: 'x' });
  });

  it('404 for an unknown kind, object or version; 400 naming the query field for bad input', async () => {
    const v = await put('services', service('hist-err', 7100));
    const cases: { method: string; path: string; status: number; field?: string }[] = [
      { method: 'GET', path: '/v1/services/hist-nosuch/history', status: 404 },
      { method: 'GET', path: '/v1/services/hist-nosuch/diff', status: 404 },
      { method: 'POST', path: '/v1/services/hist-nosuch/rollback?to=1', status: 404 },
      { method: 'GET', path: '/v1/widgets/hist-err/history', status: 404 },
      { method: 'POST', path: '/v1/services/hist-err/rollback?to=999999', status: 404, field: 'to' },
      { method: 'GET', path: '/v1/services/hist-err/diff?from=999999', status: 404, field: 'from' },
      { method: 'GET', path: '/v1/services/hist-err/diff?to=999999', status: 404, field: 'to' },
      { method: 'POST', path: '/v1/services/hist-err/rollback', status: 400, field: 'to' },
      { method: 'POST', path: '/v1/services/hist-err/rollback?to=', status: 400, field: 'to' },
      { method: 'POST', path: '/v1/services/hist-err/rollback?to=1&to=2', status: 400, field: 'to' },
      { method: 'GET', path: '/v1/services/hist-err/history?limit=0', status: 400, field: 'limit' },
      { method: 'GET', path: '/v1/services/hist-err/history?limit=ten', status: 400, field: 'limit' },
      { method: 'GET', path: '/v1/services/hist-err/diff?from=1&from=2', status: 400, field: 'from' },
    ];
    for (const c of cases) {
      const r = await mp.api(c.method, c.path);
      assert.equal(r.status, c.status, `${c.method} ${c.path}: ${r.body}`);
      const e = errorOf(r);
      assert.equal(e.code, c.status === 404 ? 'NOT_FOUND' : 'INVALID', `${c.method} ${c.path}`);
      if (c.field)
        assert.deepEqual(
          e.details.map((d) => d.path),
          [c.field],
          `${c.method} ${c.path}: ${r.body}`,
        );
    }
    // None of it changed the object.
    const got = await mp.api('GET', '/v1/services/hist-err');
    assert.equal(got.json.resourceVersion, v.object.resourceVersion);
  });

  it('rollback needs the admin token; history and diff are reads', async () => {
    const a = await put('services', service('hist-auth', 7200));
    const b = await put('services', service('hist-auth', 7201));
    const path = `/v1/services/hist-auth/rollback?to=${a.object.resourceVersion}`;
    const none = await mp.api('POST', path, undefined, { token: null });
    assert.equal(none.status, 401, none.body);
    assert.equal(errorOf(none).code, 'UNAUTHENTICATED');
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await mp.api('POST', path, undefined, { token: 'not-the-token' });
    assert.equal(wrong.status, 401, wrong.body);
    const got = await mp.api('GET', '/v1/services/hist-auth');
    assert.equal(got.json.resourceVersion, b.object.resourceVersion, 'nothing changed');
    // Reads are open by default (as GET of the object is).
    const history = await mp.api('GET', '/v1/services/hist-auth/history', undefined, { token: null });
    assert.equal(history.status, 200, history.body);
    const diff = await mp.api('GET', '/v1/services/hist-auth/diff', undefined, { token: null });
    assert.equal(diff.status, 200, diff.body);
  });

  it('keeps history across a restart', async () => {
    await put('services', service('hist-restart', 7300));
    await put('services', service('hist-restart', 7301));
    const before = await mp.api('GET', '/v1/services/hist-restart/history');
    await mp.restart();
    const after = await mp.api('GET', '/v1/services/hist-restart/history');
    assert.equal(after.status, 200, after.body);
    assert.deepEqual(after.json, before.json);
    assert.equal(after.json.items.length, 2);
  });

  describe('meshctl history, diff and rollback', () => {
    const meshctl = (args: string[]) => runMeshctl(args, { server: mp.url, token: mp.adminToken });
    let rvs: string[];

    before(async () => {
      const a = await put('trafficroutes', canary('cli-canary', 90, 10));
      const b = await put('trafficroutes', canary('cli-canary', 0, 100));
      rvs = [a.object.resourceVersion, b.object.resourceVersion];
    });

    it('history prints a table, newest first, with what each version changed', async () => {
      const r = await meshctl(['history', 'trafficroute', 'cli-canary']);
      assert.equal(r.code, 0, r.stderr);
      const rows = parseTable(r.stdout);
      assert.deepEqual(
        rows.map((x) => [x.RESOURCE_VERSION, x.OP]),
        [
          [rvs[1], 'put'],
          [rvs[0], 'put'],
        ],
      );
      assert.match(rows[0]!.SUMMARY!, /spec\.http\[0\]\.backends\[0\]\.weight: 90->0/);
      assert.equal(rows[1]!.SUMMARY, 'created');
      assert.match(rows[0]!.AGE!, /^\d+s$/);
      const json = await meshctl(['history', 'tr/cli-canary', '-o', 'json']);
      assert.equal(json.code, 0, json.stderr);
      assert.equal(JSON.parse(json.stdout).items.length, 2);
    });

    it('diff prints the unified diff', async () => {
      const r = await meshctl(['diff', 'trafficroutes', 'cli-canary', '--from', rvs[1]!, '--to', rvs[0]!]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^-\s+weight: 0$/m);
      assert.match(r.stdout, /^\+\s+weight: 90$/m);
    });

    it('rollback writes the version again; errors exit 1 (server) or 2 (usage)', async () => {
      const r = await meshctl(['rollback', 'trafficroute', 'cli-canary', '--to', rvs[0]!, '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const answer = JSON.parse(r.stdout);
      assert.equal(answer.action, 'updated');
      const got = await mp.api('GET', '/v1/trafficroutes/cli-canary');
      assert.equal(got.json.resourceVersion, answer.object.resourceVersion);
      assert.equal(got.json.spec.http[0].backends[0].weight, 90);

      const text = await meshctl(['rollback', 'trafficroute', 'cli-canary', '--to', rvs[1]!]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(
        text.stdout,
        new RegExp(`^TrafficRoute/cli-canary rolled back to resourceVersion ${rvs[1]}: updated`),
      );

      const unknown = await meshctl(['rollback', 'trafficroute', 'cli-canary', '--to', '999999']);
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(unknown.stderr, /^error: .*no version 999999/m);
      assert.match(unknown.stderr, /^ {2}to: /m);
      const missing = await meshctl(['rollback', 'trafficroute', 'cli-canary']);
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /--to is required/);
      const noToken = await runMeshctl(['rollback', 'trafficroute', 'cli-canary', '--to', rvs[0]!], {
        server: mp.url,
      });
      assert.equal(noToken.code, 1, noToken.stderr);
      assert.match(noToken.stderr, /admin token/);
    });
  });
});

describe('api: history reads when reads require the token', function () {
  this.timeout(30_000);
  let mp: Meshplane;
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.151', args: ['--reads-require-token'] });
  });
  after(async () => {
    await mp?.stop();
  });

  it('history and diff need the admin token then', async () => {
    const r = await mp.api('PUT', '/v1/services/locked', service('locked', 80));
    assert.equal(r.status, 201, r.body);
    for (const p of ['/v1/services/locked/history', '/v1/services/locked/diff']) {
      const open = await mp.api('GET', p, undefined, { token: null });
      assert.equal(open.status, 401, `${p}: ${open.body}`);
      const ok = await mp.api('GET', p);
      assert.equal(ok.status, 200, `${p}: ${ok.body}`);
    }
  });
});
