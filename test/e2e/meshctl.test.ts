// meshctl end to end: the compiled CLI run as a subprocess against a real
// `meshplane serve`, first for objects (apply, get, delete, errors and exit
// codes), then with real Envoy sidecars for proxy-status (SYNCED, then a route
// Envoy NACKs while our schema accepts it), proxy-config, bootstrap and tokens.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import packageJson from '../../package.json';
import { startTestApp } from '../support/app';
import { startEnvoy } from '../support/envoy';
import { eventually } from '../support/eventually';
import { ADMIN_PORT, INBOUND_PORT, TestMesh } from '../support/mesh';
import { type MeshctlOptions, type MeshctlResult, parseTable, runMeshctl } from '../support/meshctl';
import { type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

const CP_ADDRESS = '127.0.0.120';

/** What a failed assertion shows about a run. */
function show(r: MeshctlResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

describe('meshctl: objects, errors and exit codes', function () {
  this.timeout(60_000);
  let cp: Meshplane;
  let dir: string;
  showLogOnFailure(() => cp);
  const meshctl = (args: string[], o: MeshctlOptions = {}) =>
    runMeshctl(args, { server: cp.url, token: cp.adminToken, ...o });

  const SERVICES = `# three services, one YAML stream
kind: Service
name: frontend
spec: { protocol: http, port: 9080 }
---
kind: Service
name: reviews
labels: { team: books }
spec: { protocol: http, port: 9081 }
---
kind: Service
name: ratings
labels: { team: books }
spec: { protocol: tcp, port: 9082 }
`;
  const POLICIES = `kind: TrafficRoute
name: reviews-route
spec:
  service: reviews
  http:
    - match: { path: { prefix: /v2 } }
      backends: [{ subset: { version: v2 } }]
      timeout: 2s
    - backends: [{}]
---
kind: DestinationPolicy
name: reviews-policy
spec:
  service: reviews
  loadBalancer: { type: least_request }
  outlierDetection: { consecutive5xx: 3 }
`;
  const AUTHZ = {
    kind: 'AuthorizationPolicy',
    name: 'reviews-authz',
    spec: { service: 'reviews', action: 'allow', rules: [{ from: [{ service: 'frontend' }] }] },
  };

  before(async () => {
    cp = await startMeshplane({ address: CP_ADDRESS });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshctl-test-'));
    const policies = path.join(dir, 'policies');
    fs.mkdirSync(policies);
    fs.writeFileSync(path.join(policies, '10-services.yaml'), SERVICES);
    fs.writeFileSync(path.join(policies, '20-routing.yml'), POLICIES);
    fs.writeFileSync(path.join(policies, '30-authz.json'), JSON.stringify(AUTHZ, null, 2));
    // Not a policy file: apply must skip it (it would not parse as YAML documents).
    fs.writeFileSync(path.join(policies, 'README.md'), '# policies\n: not yaml [\n');
  });
  after(async () => {
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('apply -f DIR applies every .yaml/.yml/.json file in name order, as one atomic apply', async () => {
    const before = (await cp.api('GET', '/v1/services')).json.revision;
    const r = await meshctl(['apply', '-f', path.join(dir, 'policies')]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), [
      'Service/frontend created',
      'Service/reviews created',
      'Service/ratings created',
      'TrafficRoute/reviews-route created',
      'DestinationPolicy/reviews-policy created',
      'AuthorizationPolicy/reviews-authz created',
    ]);
    assert.match(
      r.stderr,
      /^warning: TrafficRoute\/reviews-route: .*subset version=v2 .*matches no instance/m,
    );
    // One apply: the mesh revision moved by exactly one.
    const after = await cp.api('GET', '/v1/services');
    assert.equal(after.json.revision, before + 1);
    assert.deepEqual(after.json.items.map((s: any) => s.name).sort(), ['frontend', 'ratings', 'reviews']);
    const authz = await cp.api('GET', '/v1/authorizationpolicies/reviews-authz');
    assert.equal(authz.status, 200);
    assert.deepEqual(authz.json.spec, AUTHZ.spec);
  });

  it('get KIND prints a table; KIND is singular, plural, any case, or a short name', async () => {
    const outputs = new Set<string>();
    for (const kind of ['service', 'services', 'Service', 'SERVICES', 'svc']) {
      const r = await meshctl(['get', kind]);
      assert.equal(r.code, 0, show(r));
      outputs.add(r.stdout.replace(/ +\d+s\b/g, ' AGE')); // ages may tick between runs
    }
    assert.equal(outputs.size, 1, [...outputs].join('\n'));
    const r = await meshctl(['get', 'services']);
    const header = lines(r.stdout)[0]!.split(/\s+/);
    assert.deepEqual(header, ['NAME', 'PROTOCOL', 'PORT', 'REVISION', 'AGE']);
    const rows = parseTable(r.stdout);
    assert.deepEqual(
      rows.map((x) => [x.NAME, x.PROTOCOL, x.PORT]),
      [
        ['frontend', 'http', '9080'],
        ['ratings', 'tcp', '9082'],
        ['reviews', 'http', '9081'],
      ],
    );
    for (const row of rows) {
      assert.match(row.REVISION!, /^\d+$/);
      assert.match(row.AGE!, /^\d+[smhd]$/);
    }

    const selected = await meshctl(['get', 'services', '-l', 'team=books']);
    assert.deepEqual(
      parseTable(selected.stdout).map((x) => x.NAME),
      ['ratings', 'reviews'],
    );

    const route = await meshctl(['get', 'TrafficRoute', 'reviews-route']);
    assert.equal(route.code, 0, show(route));
    const [row] = parseTable(route.stdout);
    assert.deepEqual(
      { name: row!.NAME, service: row!.SERVICE, rules: row!.RULES, warnings: row!.WARNINGS },
      { name: 'reviews-route', service: 'reviews', rules: '2', warnings: '1' },
    );
    // The warning itself goes to stderr (no instance has version=v2).
    assert.match(
      route.stderr,
      /^warning: TrafficRoute\/reviews-route: .*subset version=v2 .*matches no instance/m,
    );

    const authz = parseTable((await meshctl(['get', 'authorizationpolicies'])).stdout);
    assert.deepEqual(
      authz.map((x) => [x.NAME, x.SERVICE, x.ACTION]),
      [['reviews-authz', 'reviews', 'allow']],
    );
  });

  it('get -o yaml and -o json print the objects; the YAML applies back unchanged', async () => {
    const one = await meshctl(['get', 'trafficroute', 'reviews-route', '-o', 'yaml']);
    assert.equal(one.code, 0, show(one));
    const obj = parseYaml(one.stdout);
    assert.equal(obj.kind, 'TrafficRoute');
    assert.equal(obj.name, 'reviews-route');
    assert.deepEqual(obj.spec.http[0].match, { path: { prefix: '/v2' } });
    assert.equal(typeof obj.resourceVersion, 'string');

    const again = await meshctl(['apply', '-f', '-'], { stdin: one.stdout });
    assert.equal(again.code, 0, show(again));
    assert.deepEqual(lines(again.stdout), ['TrafficRoute/reviews-route unchanged']);

    // A list as multi-document YAML: every object comes back, and applies back unchanged.
    const all = await meshctl(['get', 'services', '-o', 'yaml']);
    const docs = parseAllDocuments(all.stdout).map((d) => d.toJS());
    assert.deepEqual(
      docs.map((d) => d.name),
      ['frontend', 'ratings', 'reviews'],
    );
    const reapplied = await meshctl(['apply', '-f', '-'], { stdin: all.stdout });
    assert.equal(reapplied.code, 0, show(reapplied));
    assert.deepEqual(lines(reapplied.stdout), [
      'Service/frontend unchanged',
      'Service/ratings unchanged',
      'Service/reviews unchanged',
    ]);

    const json = await meshctl(['get', 'destinationpolicies', '-o', 'json']);
    assert.equal(json.code, 0, show(json));
    const list = JSON.parse(json.stdout);
    assert.ok(Array.isArray(list));
    assert.deepEqual(
      list.map((d: any) => [d.kind, d.name, d.spec.loadBalancer.type]),
      [['DestinationPolicy', 'reviews-policy', 'least_request']],
    );
    const single = JSON.parse(
      (await meshctl(['get', 'authorizationpolicy/reviews-authz', '-o', 'json'])).stdout,
    );
    assert.deepEqual(single.spec, AUTHZ.spec);
    assert.deepEqual(single.status.warnings, []);
  });

  it('delete KIND NAME deletes one object', async () => {
    const r = await meshctl(['delete', 'destinationpolicy', 'reviews-policy']);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), ['DestinationPolicy/reviews-policy deleted']);
    assert.equal((await cp.api('GET', '/v1/destinationpolicies/reviews-policy')).status, 404);

    const gone = await meshctl(['get', 'destinationpolicy', 'reviews-policy']);
    assert.equal(gone.code, 1, show(gone));
    assert.equal(gone.stdout, '');
    assert.match(gone.stderr, /^error: DestinationPolicy "reviews-policy" not found$/m);
    const twice = await meshctl(['delete', 'destinationpolicy', 'reviews-policy']);
    assert.equal(twice.code, 1, show(twice));
  });

  it('apply --dry-run reports what would change and stores nothing', async () => {
    const revision = (await cp.api('GET', '/v1/services')).json.revision;
    const stdin = `kind: Service
name: details
spec: { port: 9083 }
---
kind: Service
name: frontend
spec: { protocol: http, port: 9090 }
`;
    const r = await meshctl(['apply', '--dry-run', '-f', '-'], { stdin });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), [
      'Service/details created (dry run)',
      'Service/frontend updated (dry run)',
    ]);
    assert.equal((await cp.api('GET', '/v1/services/details')).status, 404);
    const frontend = await cp.api('GET', '/v1/services/frontend');
    assert.equal(frontend.json.spec.port, 9080);
    assert.equal((await cp.api('GET', '/v1/services')).json.revision, revision);
  });

  it('an invalid file: exit 1, the message and each field path on stderr (with its file), nothing stored', async () => {
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'a.yaml'), 'kind: Service\nname: details\nspec: { port: 9083 }\n');
    fs.writeFileSync(
      path.join(bad, 'b.yaml'),
      'kind: Service\nname: good\nspec: { port: 9084 }\n---\nkind: Service\nname: broken\nspec: { port: 70000, protocol: smtp }\n',
    );
    const r = await meshctl(['apply', '-f', bad]);
    assert.equal(r.code, 1, show(r));
    assert.equal(r.stdout, '');
    const err = lines(r.stderr);
    assert.match(err[0]!, /^error: 2 problem\(s\) in 1 document\(s\); nothing was stored$/);
    const b = path.join(bad, 'b.yaml');
    assert.ok(
      err.some((l) => l.startsWith('  documents[2].spec.port: ') && l.endsWith(`(in ${b}, document 2)`)),
      r.stderr,
    );
    assert.ok(
      err.some((l) => l.startsWith('  documents[2].spec.protocol: ') && l.endsWith(`(in ${b}, document 2)`)),
      r.stderr,
    );
    assert.equal((await cp.api('GET', '/v1/services/details')).status, 404);
    assert.equal((await cp.api('GET', '/v1/services/good')).status, 404);

    // A YAML syntax error in a directory: the line is given in that file.
    const syntaxDir = path.join(dir, 'syntax');
    fs.mkdirSync(syntaxDir);
    fs.writeFileSync(path.join(syntaxDir, 'a.yaml'), 'kind: Service\nname: details\nspec: { port: 9083 }\n');
    fs.writeFileSync(path.join(syntaxDir, 'b.yaml'), 'kind: Service\nname: more\nspec: { port: 9084\n');
    const inDir = await meshctl(['apply', '-f', syntaxDir]);
    assert.equal(inDir.code, 1, show(inDir));
    assert.match(inDir.stderr, /^error: body is not valid YAML or JSON$/m);
    const where = `(in ${path.join(syntaxDir, 'b.yaml')}, line 4)`;
    assert.ok(
      lines(inDir.stderr).some((l) => l.startsWith('  documents[1]: YAML syntax error') && l.endsWith(where)),
      inDir.stderr,
    );

    // One file: the server's paths as they are; a YAML syntax error names the document too.
    const syntax = await meshctl(['apply', '-f', '-'], { stdin: 'kind: Service\nname: [oops\n' });
    assert.equal(syntax.code, 1, show(syntax));
    assert.match(syntax.stderr, /^error: body is not valid YAML or JSON$/m);
    assert.match(syntax.stderr, /^ {2}documents\[0\]: YAML syntax error/m);
  });

  it('usage errors exit 2: unknown verb or flag, missing argument, bad -o, unreadable file', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /error: unknown verb "frobnicate"/],
      [['get', 'services', '--frob'], /error: unknown flag --frob for "get"/],
      [['get'], /error: missing KIND/],
      [['get', 'gizmos'], /error: unknown kind "gizmos"/],
      [['delete', 'service'], /error: missing NAME/],
      [['get', 'services', '-o', 'xml'], /error: -o: one of table, yaml, json/],
      [['apply'], /error: apply needs -f/],
      [
        ['apply', '-f', path.join(dir, 'no-such-file.yaml')],
        /error: cannot read .*no-such-file\.yaml: ENOENT/,
      ],
      [['bootstrap', '--service', 'x'], /error: --address is required/],
      [['proxy-config'], /error: missing argument/],
      [['token', 'create'], /error: --service is required/],
      [['get', 'services', '--timeout', 'soon'], /error: --timeout/],
    ];
    for (const [args, message] of cases) {
      const r = await meshctl(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${show(r)}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    const bare = await meshctl([]);
    assert.equal(bare.code, 2, show(bare));
    assert.match(bare.stderr, /^usage: meshctl/);
  });

  it('--help documents the verbs and the exit codes', async () => {
    const r = await meshctl(['--help']);
    assert.equal(r.code, 0, show(r));
    for (const verb of [
      'apply',
      'get',
      'delete',
      'proxy-status',
      'proxy-config',
      'bootstrap',
      'token',
      'version',
    ]) {
      assert.match(r.stdout, new RegExp(`^ {2}${verb}\\b`, 'm'), verb);
    }
    for (const code of [0, 1, 2, 3, 4]) assert.match(r.stdout, new RegExp(`^ {2}${code} {2}\\S`, 'm'));
    const verbHelp = await meshctl(['get', '--help']);
    assert.equal(verbHelp.code, 0);
    assert.equal(verbHelp.stdout, r.stdout);
  });

  it('an unreachable server exits 3', async () => {
    // Nothing listens on port 1 of the control plane's address: the connection is refused.
    for (const o of [
      { server: `http://${CP_ADDRESS}:1` },
      { env: { MESHCTL_SERVER: `http://${CP_ADDRESS}:1` } },
    ]) {
      const r = await meshctl(['get', 'services'], o);
      assert.equal(r.code, 3, show(r));
      assert.match(
        r.stderr,
        new RegExp(`^error: cannot reach meshplane at http://${CP_ADDRESS}:1: ECONNREFUSED`),
      );
    }
    const flag = await meshctl(['--server', `http://${CP_ADDRESS}:1`, 'version']);
    assert.equal(flag.code, 3, show(flag));
    assert.equal(flag.stdout, `client version: ${packageJson.version}\n`);
  });

  it('a missing or wrong token: exit 1 with the 401 message; --token and --token-file work', async () => {
    const stdin = 'kind: Service\nname: details\nspec: { port: 9083 }\n';
    const none = await meshctl(['apply', '-f', '-'], { token: undefined, stdin, env: {} });
    assert.equal(none.code, 1, show(none));
    assert.match(none.stderr, /^error: this call needs the admin token: Authorization: Bearer <token>$/m);
    const wrong = await meshctl(['apply', '-f', '-'], { token: 'not-the-token', stdin });
    assert.equal(wrong.code, 1, show(wrong));
    assert.match(wrong.stderr, /^error: invalid admin token$/m);
    assert.equal((await cp.api('GET', '/v1/services/details')).status, 404);

    const flag = await meshctl(['apply', '--token', cp.adminToken, '-f', '-'], {
      token: 'not-the-token',
      stdin,
    });
    assert.equal(flag.code, 0, show(flag));
    assert.deepEqual(lines(flag.stdout), ['Service/details created']);
    const tokenFile = path.join(cp.dataDir, 'admin-token');
    const file = await meshctl(['delete', 'service', 'details', '--token-file', tokenFile], {
      token: undefined,
    });
    assert.equal(file.code, 0, show(file));
    const missingFile = await meshctl(['get', 'services', '--token-file', path.join(dir, 'nope')]);
    assert.equal(missingFile.code, 2, show(missingFile));
  });
});

describe('meshctl with real Envoy sidecars: proxy-status, proxy-config, bootstrap, tokens', function () {
  this.timeout(180_000);
  let cp: Meshplane;
  let mesh: TestMesh;
  TestMesh.showOnFailure(() => mesh);
  let dir: string;
  showLogOnFailure(() => cp);
  const meshctl = (args: string[], o: MeshctlOptions = {}) =>
    runMeshctl(args, { server: cp.url, token: cp.adminToken, ...o });

  const FRONT_PORT = 9080;
  const BACK_PORT = 9081;
  /**
   * The regex Envoy rejects while our schema (any non-empty string) accepts it: RE2
   * compiles it, but its program (3202 instructions) is far over Envoy's default
   * limit of 100 ("re2.max_program_size.error_level").
   */
  const HUGE_REGEX = '^/(a|b|c|d|e|f|g|h|i|j){1000}x{200}$';
  const BAD_ROUTE = `kind: TrafficRoute
name: back-regex
spec:
  service: back
  http:
    - match: { path: { regex: '${HUGE_REGEX}' } }
      backends: [{}]
`;

  /**
   * A pod whose app listens on its service's own port (as most apps do) with a
   * sidecar bootstrapped by `meshctl bootstrap -o FILE`. That port is reserved on
   * the pod, so its sidecar has no outbound listener (nor route configuration) for
   * it: its own service's routes never reach it.
   */
  async function addServicePortPod(name: string, service: string, address: string, appPort: number) {
    const app = await startTestApp({ name, address, port: appPort });
    const file = path.join(dir, `${name}-bootstrap.yaml`);
    const r = await meshctl([
      'bootstrap',
      '--service',
      service,
      '--address',
      address,
      '--app-port',
      String(appPort),
      '--inbound-port',
      String(INBOUND_PORT),
      '--admin-port',
      String(ADMIN_PORT),
      '--node-id',
      name,
      '--labels',
      'version=v1',
      '-o',
      file,
    ]);
    if (r.code !== 0) {
      await app.close();
      assert.fail(show(r));
    }
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the bootstrap holds a token: mode 0600');
    let envoy: Awaited<ReturnType<typeof startEnvoy>>;
    try {
      envoy = await startEnvoy({
        name,
        bootstrap: parseYaml(fs.readFileSync(file, 'utf8')),
        adminAddress: address,
        adminPort: ADMIN_PORT,
      });
    } catch (err) {
      await app.close();
      throw err;
    }
    // Owned by the TestMesh from here: mesh.stop() stops it.
    mesh.pods.set(name, { spec: { name, service, address }, nodeId: name, envoy, app });
  }

  async function proxyStatus(args: string[] = []) {
    const r = await meshctl(['proxy-status', ...args]);
    return { ...r, rows: parseTable(r.stdout) };
  }

  const TYPES = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshctl-envoy-'));
    cp = await startMeshplane({ address: CP_ADDRESS, args: ['--instance-grace', '1s'] });
    mesh = new TestMesh(cp);
    await mesh.apply(`
kind: Service
name: front
spec: { protocol: http, port: ${FRONT_PORT} }
---
kind: Service
name: back
spec: { protocol: http, port: ${BACK_PORT} }
`);
    await Promise.all([
      mesh.addPod({ name: 'front-0', service: 'front', address: '127.0.0.121' }),
      addServicePortPod('back-0', 'back', '127.0.0.122', BACK_PORT),
      addServicePortPod('back-1', 'back', '127.0.0.123', BACK_PORT),
    ]);
    await eventually(async () => {
      const r = await mesh.api('GET', '/v1/instances');
      assert.equal(r.json.items.length, 3);
    });
    await mesh.converged(undefined, 30_000, { everyPod: true });
  });

  afterEach(async () => {
    // Whatever a test left behind (it fails otherwise) never cascades into the next.
    const r = await cp.api('DELETE', '/v1/trafficroutes/back-regex');
    assert.ok(r.status === 200 || r.status === 404, `cleanup: ${r.status}`);
  });

  after(async () => {
    await mesh?.stop();
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('proxy-status shows every sidecar SYNCED for CDS, LDS, EDS, RDS and SDS', async () => {
    const status = await eventually(
      async () => {
        const s = await proxyStatus();
        assert.equal(s.code, 0, show(s));
        assert.equal(s.rows.length, 3, s.stdout);
        for (const row of s.rows) for (const t of TYPES) assert.equal(row[t], 'SYNCED', s.stdout);
        return s;
      },
      { timeoutMs: 20_000, message: 'every proxy SYNCED' },
    );
    assert.deepEqual(lines(status.stdout)[0]!.split(/\s+/), ['NODE', 'SERVICE', 'PROTOCOL', ...TYPES]);
    assert.deepEqual(
      status.rows.map((r) => [r.NODE, r.SERVICE, r.PROTOCOL]),
      [
        ['back-0', 'back', 'delta'],
        ['back-1', 'back', 'delta'],
        ['front-0', 'front', 'delta'],
      ],
    );
    assert.equal(status.stdout.split('\n\n').length, 1, 'no NACK section');

    const json = await meshctl(['proxy-status', '-o', 'json']);
    assert.equal(json.code, 0, show(json));
    const items = JSON.parse(json.stdout).items;
    assert.deepEqual(items.map((p: any) => [p.nodeId, p.state]).sort(), [
      ['back-0', 'SYNCED'],
      ['back-1', 'SYNCED'],
      ['front-0', 'SYNCED'],
    ]);

    // The sidecars carry traffic: front-0 calls back through its sidecar (over mTLS).
    const call = await mesh.call('front-0', 'back', BACK_PORT);
    assert.equal(call.status, 200);
    assert.match(TestMesh.answeredBy(call) ?? '', /^back-[01]$/);
  });

  it('a route Envoy NACKs: proxy-status exits 4, marks the proxies that got it NACKED with Envoy’s message; deleting it recovers', async () => {
    // Only front-0 holds back's route configuration (outbound|9081): the back pods' app owns 9081.
    const routesOf = async (node: string) => {
      const r = await meshctl(['proxy-config', node, 'routes']);
      assert.equal(r.code, 0, show(r));
      return JSON.parse(r.stdout)
        .routes.map((x: any) => x.name)
        .filter((n: string) => n.startsWith('outbound|'))
        .sort();
    };
    assert.deepEqual(await routesOf('front-0'), [`outbound|${FRONT_PORT}`, `outbound|${BACK_PORT}`]);
    assert.deepEqual(await routesOf('back-0'), [`outbound|${FRONT_PORT}`]);
    assert.deepEqual(await routesOf('back-1'), [`outbound|${FRONT_PORT}`]);

    const applied = await meshctl(['apply', '-f', '-'], { stdin: BAD_ROUTE });
    assert.equal(applied.code, 0, `our schema accepts the regex: ${show(applied)}`);
    assert.deepEqual(lines(applied.stdout), ['TrafficRoute/back-regex created']);

    const nacked = await eventually(
      async () => {
        const s = await proxyStatus();
        assert.equal(s.code, 4, show(s));
        return s;
      },
      { timeoutMs: 20_000, message: 'proxy-status exits 4' },
    );
    const byNode = Object.fromEntries(nacked.rows.map((r) => [r.NODE, r]));
    assert.deepEqual(Object.keys(byNode).sort(), ['back-0', 'back-1', 'front-0']);
    assert.deepEqual(
      TYPES.map((t) => byNode['front-0']![t]),
      ['SYNCED', 'SYNCED', 'SYNCED', 'NACKED', 'SYNCED'],
      nacked.stdout,
    );
    for (const node of ['back-0', 'back-1']) {
      for (const t of TYPES) assert.equal(byNode[node]![t], 'SYNCED', `${node} ${t}:\n${nacked.stdout}`);
    }

    // Below the table: one line per NACKED type, with Envoy's message as the server recorded it.
    const proxies = (await cp.api('GET', '/v1/proxies')).json.items;
    const front = proxies.find((p: any) => p.nodeId === 'front-0');
    const nack = front.types['type.googleapis.com/envoy.config.route.v3.RouteConfiguration'].lastNack;
    assert.ok(nack?.message, JSON.stringify(front.types));
    assert.match(
      nack.message,
      /RE2 program size of \d+ > max program size of 100 set for the error level threshold/,
    );
    assert.ok(nack.message.includes(HUGE_REGEX), nack.message);
    const [, nackSection] = nacked.stdout.split('\n\n');
    assert.deepEqual(lines(nackSection ?? ''), [
      `front-0 RDS NACK of version ${nack.version}: ${nack.message}`,
    ]);

    // Envoy itself rejected it and kept the last good configuration: calls still work.
    const rejected = await mesh.pod('front-0').envoy.stats('update_rejected');
    const rds = [...rejected].filter(([k, v]) => k.includes('.rds.') && v > 0);
    assert.ok(rds.length > 0, JSON.stringify([...rejected]));
    const call = await mesh.call('front-0', 'back', BACK_PORT);
    assert.equal(call.status, 200);

    const json = await meshctl(['proxy-status', '-o', 'json']);
    assert.equal(json.code, 4, show(json));
    assert.equal(JSON.parse(json.stdout).items.find((p: any) => p.nodeId === 'front-0').state, 'NACKED');
    const one = await proxyStatus(['back-0']);
    assert.equal(one.code, 0, 'back-0 alone is SYNCED');
    assert.deepEqual(
      one.rows.map((r) => r.NODE),
      ['back-0'],
    );

    const deleted = await meshctl(['delete', 'trafficroute', 'back-regex']);
    assert.equal(deleted.code, 0, show(deleted));
    await eventually(
      async () => {
        const s = await proxyStatus();
        assert.equal(s.code, 0, show(s));
        assert.equal(s.rows.length, 3);
        for (const row of s.rows) for (const t of TYPES) assert.equal(row[t], 'SYNCED', s.stdout);
        assert.equal(s.stdout.split('\n\n').length, 1, 'no NACK section');
      },
      { timeoutMs: 20_000, message: 'every proxy SYNCED again' },
    );
  });

  it('proxy-config NODE clusters prints JSON with the outbound clusters; secrets never hold a private key', async () => {
    const r = await meshctl(['proxy-config', 'front-0', 'clusters']);
    assert.equal(r.code, 0, show(r));
    const config = JSON.parse(r.stdout);
    assert.equal(config.nodeId, 'front-0');
    const names: string[] = config.clusters.map((c: any) => c.name);
    assert.ok(names.includes(`outbound|${FRONT_PORT}||front`), names.join(', '));
    assert.ok(names.includes(`outbound|${BACK_PORT}||back`), names.join(', '));

    const yaml = await meshctl(['proxy-config', 'front-0', 'clusters', '-o', 'yaml']);
    assert.equal(yaml.code, 0, show(yaml));
    assert.deepEqual(parseYaml(yaml.stdout), config);

    for (const node of ['front-0', 'back-0']) {
      const s = await meshctl(['proxy-config', node, 'secrets']);
      assert.equal(s.code, 0, show(s));
      const secrets = JSON.parse(s.stdout).secrets;
      assert.ok(secrets.length >= 2, s.stdout);
      const identity = secrets.find((x: any) => x.tls_certificate);
      assert.match(identity.tls_certificate.certificate_chain.inline_string, /BEGIN CERTIFICATE/);
      assert.deepEqual(identity.tls_certificate.private_key, { redacted: true });
      assert.doesNotMatch(s.stdout, /PRIVATE KEY/);
    }
    // Every type at once, and a type or node that does not exist.
    const all = JSON.parse((await meshctl(['proxy-config', 'back-1'])).stdout);
    assert.deepEqual(Object.keys(all).sort(), [
      'clusters',
      'endpoints',
      'listeners',
      'nodeId',
      'routes',
      'secrets',
    ]);
    const unknownNode = await meshctl(['proxy-config', 'nobody', 'clusters']);
    assert.equal(unknownNode.code, 1, show(unknownNode));
    assert.match(unknownNode.stderr, /^error: proxy "nobody" not found$/m);
    const unknownType = await meshctl(['proxy-config', 'front-0', 'widgets']);
    assert.equal(unknownType.code, 2, show(unknownType));
  });

  it('bootstrap prints the YAML with the node id and the token in the ADS metadata', async () => {
    const r = await meshctl([
      'bootstrap',
      '--service',
      'front',
      '--address',
      '127.0.0.124',
      '--app-port',
      '8080',
      '--labels',
      'version=v2,track=canary',
      '--node-id',
      'front-canary',
      '--api-type',
      'GRPC',
    ]);
    assert.equal(r.code, 0, show(r));
    const b = parseYaml(r.stdout);
    assert.equal(b.node.id, 'front-canary');
    assert.deepEqual(b.node.metadata.labels, { version: 'v2', track: 'canary' });
    assert.equal(b.node.metadata.appPort, 8080);
    assert.equal(b.dynamic_resources.ads_config.api_type, 'GRPC');
    const [grpc] = b.dynamic_resources.ads_config.grpc_services;
    const auth = grpc.initial_metadata.find((m: any) => m.key === 'authorization');
    assert.match(auth.value, /^Bearer mp1\.[\w-]+\.[\w-]+$/);

    const invalid = await meshctl([
      'bootstrap',
      '--service',
      'front',
      '--address',
      'nowhere',
      '--app-port',
      '0',
    ]);
    assert.equal(invalid.code, 1, show(invalid));
    assert.match(invalid.stderr, /^error: invalid bootstrap parameters$/m);
    assert.match(invalid.stderr, /^ {2}address: /m);
    assert.match(invalid.stderr, /^ {2}appPort: must be a port number$/m);
  });

  it('token create prints a token bound to the service with the TTL asked for; token revoke revokes it', async () => {
    const r = await meshctl(['token', 'create', '--service', 'back', '--ttl', '1h']);
    assert.equal(r.code, 0, show(r));
    const token = r.stdout.trim();
    assert.equal(lines(r.stdout).length, 1);
    const [v, payload] = token.split('.');
    assert.equal(v, 'mp1');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    assert.equal(claims.svc, 'back');
    assert.equal(claims.exp - claims.iat, 3600);
    const m = /^token (\S+) for service back, expires (\S+)$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(m[1], claims.jti);
    assert.equal(Date.parse(m[2]!), claims.exp * 1000);

    const revoked = await meshctl(['token', 'revoke', claims.jti]);
    assert.equal(revoked.code, 0, show(revoked));
    assert.deepEqual(lines(revoked.stdout), [`token ${claims.jti} revoked`]);

    const json = await meshctl(['token', 'create', '--service', 'front', '-o', 'json']);
    assert.equal(json.code, 0, show(json));
    assert.equal(JSON.parse(json.stdout).service, 'front');
    const bad = await meshctl(['token', 'create', '--service', 'Front!', '--ttl', 'forever']);
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, /^ {2}service: /m);
    assert.match(bad.stderr, /^ {2}ttl: /m);
  });

  it('version prints the client and server versions', async () => {
    const r = await meshctl(['version']);
    assert.equal(r.code, 0, show(r));
    const server = (await cp.api('GET', '/openapi.json')).json.info.version;
    assert.deepEqual(lines(r.stdout), [
      `client version: ${packageJson.version}`,
      `server version: ${server} (${cp.url})`,
    ]);
    const json = JSON.parse((await meshctl(['version', '-o', 'json'])).stdout);
    assert.deepEqual(json, { client: packageJson.version, server: { url: cp.url, version: server } });
    const client = await meshctl(['version', '--client'], { server: 'http://127.0.0.120:1' });
    assert.equal(client.code, 0, show(client));
    assert.deepEqual(lines(client.stdout), [`client version: ${packageJson.version}`]);
  });
});
