// The admin token over real HTTP against real `meshplane serve` processes: every
// mutation needs it (none, a wrong one, another scheme: 401, and nothing
// changes), reads are open by default and closed with
// MESHPLANE_READS_REQUIRE_TOKEN=true; the generated token file is 0600.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type ApiResponse,
  errorOf,
  type Meshplane,
  showLogOnFailure,
  startMeshplane,
} from '../support/meshplane';

const BOOTSTRAP_QUERY = 'service=auth-probe&address=127.0.0.1&appPort=8080';
const ENV_TOKEN = 'env-admin-token-0123456789abcdef';

interface Call {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** The status with the right token. */
  readonly ok: number;
}

/** Every mutation (and the bootstrap, which issues a token), in an order that works with the token. */
const MUTATIONS: Call[] = [
  {
    name: 'apply',
    method: 'POST',
    path: '/v1/apply',
    body: [{ kind: 'Service', name: 'auth-probe', spec: { port: 80 } }],
    ok: 200,
  },
  {
    name: 'put',
    method: 'PUT',
    path: '/v1/services/auth-probe',
    body: { kind: 'Service', name: 'auth-probe', spec: { port: 81 } },
    ok: 200,
  },
  {
    name: 'apply an Instance',
    method: 'POST',
    path: '/v1/apply',
    body: {
      kind: 'Instance',
      name: 'auth-inst',
      spec: { service: 'auth-probe', address: '127.0.0.9', port: 1 },
    },
    ok: 200,
  },
  { name: 'heartbeat', method: 'POST', path: '/v1/instances/auth-inst/heartbeat', ok: 200 },
  { name: 'delete', method: 'DELETE', path: '/v1/instances/auth-inst', ok: 200 },
  { name: 'POST /v1/tokens', method: 'POST', path: '/v1/tokens', body: { service: 'auth-probe' }, ok: 201 },
  { name: 'DELETE /v1/tokens/:id', method: 'DELETE', path: '/v1/tokens/some-token-id', ok: 200 },
  { name: 'GET /v1/bootstrap', method: 'GET', path: `/v1/bootstrap?${BOOTSTRAP_QUERY}`, ok: 200 },
  // Routing matches paths case-insensitively and with a trailing slash: so must auth.
  { name: 'GET /v1/BOOTSTRAP', method: 'GET', path: `/v1/BOOTSTRAP?${BOOTSTRAP_QUERY}`, ok: 200 },
  { name: 'GET /v1/bootstrap/', method: 'GET', path: `/v1/bootstrap/?${BOOTSTRAP_QUERY}`, ok: 200 },
  {
    name: 'POST /V1/Apply',
    method: 'POST',
    path: '/V1/Apply',
    body: [{ kind: 'Service', name: 'auth-probe', spec: { port: 82 } }],
    ok: 200,
  },
  { name: 'DELETE /v1/services/auth-probe/', method: 'DELETE', path: '/v1/services/auth-probe/', ok: 200 },
];

/** How a caller can fail to present the admin token. */
function badCredentials(token: () => string): { name: string; headers: () => Record<string, string> }[] {
  const flip = (t: string) => `${t.slice(0, -1)}${t.endsWith('x') ? 'y' : 'x'}`;
  return [
    { name: 'no token', headers: () => ({}) },
    {
      name: 'a wrong token of the same length',
      headers: () => ({ authorization: `Bearer ${flip(token())}` }),
    },
    { name: 'a wrong token', headers: () => ({ authorization: 'Bearer not-the-token' }) },
    { name: 'the token with another scheme', headers: () => ({ authorization: `Basic ${token()}` }) },
    { name: 'an empty bearer', headers: () => ({ authorization: 'Bearer ' }) },
    { name: 'the token with a suffix', headers: () => ({ authorization: `Bearer ${token()}0` }) },
  ];
}

function assert401(res: ApiResponse, what: string): void {
  assert.equal(res.status, 401, `${what}: ${res.body}`);
  assert.equal(errorOf(res).code, 'UNAUTHENTICATED', what);
  assert.match(String(res.headers['www-authenticate']), /^Bearer/, what);
}

describe('api: admin token', function () {
  this.timeout(30_000);

  describe('default: mutations need the token, reads are open', () => {
    let mp: Meshplane;
    showLogOnFailure(() => mp);
    before(async () => {
      mp = await startMeshplane({ address: '127.0.0.51' });
    });
    after(async () => {
      await mp?.stop();
    });

    it('generates the admin token into <data-dir>/admin-token with mode 0600', () => {
      const file = path.join(mp.dataDir, 'admin-token');
      const st = fs.statSync(file);
      assert.equal((st.mode & 0o777).toString(8), '600');
      assert.equal(fs.readFileSync(file, 'utf8').trim(), mp.adminToken);
      assert.ok(mp.adminToken.length >= 32, 'a long random token');
    });

    for (const cred of badCredentials(() => mp.adminToken)) {
      it(`every mutation with ${cred.name}: 401, and nothing changes`, async () => {
        const before = (await mp.api('GET', '/v1/services', undefined, { token: null })).json.revision;
        for (const call of MUTATIONS) {
          const res = await mp.api(call.method, call.path, call.body, {
            token: null,
            headers: cred.headers(),
          });
          assert401(res, `${call.name} with ${cred.name}`);
        }
        const after = await mp.api('GET', '/v1/services', undefined, { token: null });
        assert.equal(after.json.revision, before);
        assert.deepEqual(after.json.items, []);
      });
    }

    it('refuses an oversized body without the token before reading it (401, not 413)', async () => {
      const res = await mp.api('POST', '/v1/apply', Buffer.alloc(2 * 1024 * 1024, 0x61), { token: null });
      assert401(res, 'big body');
    });

    it('every mutation with the token succeeds', async () => {
      for (const call of MUTATIONS) {
        const res = await mp.api(call.method, call.path, call.body);
        assert.equal(res.status, call.ok, `${call.name}: ${res.body}`);
      }
      const boot = await mp.api('GET', `/v1/bootstrap?${BOOTSTRAP_QUERY}`);
      const bootstrap = parseYaml(boot.body);
      const grpc = bootstrap.dynamic_resources.ads_config.grpc_services[0];
      assert.equal(grpc.initial_metadata[0].key, 'authorization');
      assert.match(grpc.initial_metadata[0].value, /^Bearer mp1\./);
    });

    const reads = [
      { path: '/v1/services', status: 200 },
      { path: '/v1/services/nobody', status: 404 },
      { path: '/v1/instances?labels=a=b', status: 200 },
      { path: '/v1/proxies', status: 200 },
      { path: '/v1/proxies/nobody/config', status: 404 },
      { path: '/healthz', status: 200 },
      { path: '/readyz', status: 200 },
      { path: '/metrics', status: 200 },
      { path: '/openapi.json', status: 200 },
    ];
    for (const r of reads) {
      it(`GET ${r.path} without a token: ${r.status}`, async () => {
        const res = await mp.api('GET', r.path, undefined, { token: null });
        assert.equal(res.status, r.status, res.body);
      });
    }

    it('keeps the generated token across a restart', async () => {
      const token = mp.adminToken;
      await mp.restart();
      assert.equal(mp.adminToken, token);
      const res = await mp.api('POST', '/v1/apply', {
        kind: 'Service',
        name: 'after-restart',
        spec: { port: 1 },
      });
      assert.equal(res.status, 200, res.body);
      assert.equal(fs.statSync(path.join(mp.dataDir, 'admin-token')).mode & 0o777, 0o600);
    });
  });

  describe('MESHPLANE_READS_REQUIRE_TOKEN=true (and the token from MESHPLANE_ADMIN_TOKEN)', () => {
    let mp: Meshplane;
    showLogOnFailure(() => mp);
    before(async () => {
      mp = await startMeshplane({
        address: '127.0.0.52',
        env: { MESHPLANE_READS_REQUIRE_TOKEN: 'true', MESHPLANE_ADMIN_TOKEN: ENV_TOKEN },
      });
    });
    after(async () => {
      await mp?.stop();
    });

    it('uses the configured token, and writes no token file', async () => {
      assert.equal(mp.adminToken, ENV_TOKEN);
      assert.equal(fs.existsSync(path.join(mp.dataDir, 'admin-token')), false);
      const res = await mp.api('POST', '/v1/apply', { kind: 'Service', name: 'svc', spec: { port: 1 } });
      assert.equal(res.status, 200, res.body);
    });

    const reads = [
      { path: '/v1/services', status: 200 },
      { path: '/v1/services/svc', status: 200 },
      { path: '/v1/services/nobody', status: 404 },
      { path: '/v1/instances', status: 200 },
      { path: '/v1/proxies', status: 200 },
      { path: '/v1/proxies/nobody/config', status: 404 },
      { path: '/V1/services', status: 200 },
      { path: '/v1/services/', status: 200 },
    ];
    for (const r of reads) {
      it(`GET ${r.path}: 401 without the token or with a wrong one, ${r.status} with it`, async () => {
        for (const cred of badCredentials(() => ENV_TOKEN)) {
          assert401(
            await mp.api('GET', r.path, undefined, { token: null, headers: cred.headers() }),
            cred.name,
          );
        }
        const res = await mp.api('GET', r.path);
        assert.equal(res.status, r.status, res.body);
      });
    }

    for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      it(`GET ${p} stays open`, async () => {
        const res = await mp.api('GET', p, undefined, { token: null });
        assert.equal(res.status, 200, res.body);
      });
    }
  });
});
