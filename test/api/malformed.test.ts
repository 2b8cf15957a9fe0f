// Malformed requests over real HTTP against a real `meshplane serve`: each gets
// a 4xx with the JSON error shape, and the server keeps serving afterwards
// (/healthz and a normal apply after every case).
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { errorOf, type Meshplane, showLogOnFailure, startMeshplane } from '../support/meshplane';

interface Case {
  readonly name: string;
  readonly method?: string;
  readonly path?: string;
  readonly body: string | Buffer;
  readonly headers?: Record<string, string>;
  readonly status: number;
  readonly code: string;
  /** Matches the error message. */
  readonly message?: RegExp;
}

const YAML = { 'content-type': 'application/yaml' };
const JSON_TYPE = { 'content-type': 'application/json' };

/** A "billion laughs" YAML: each level aliases the previous one nine times. */
function aliasBomb(levels: number): string {
  const lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i <= levels; i++) {
    lines.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(', ')}]`);
  }
  return `kind: Service\nname: bomb\nspec:\n  ${lines.join('\n  ')}\n`;
}

const CASES: Case[] = [
  {
    name: 'invalid YAML',
    body: 'kind: Service\nname: [unclosed\nspec: {port: 80}\n',
    headers: YAML,
    status: 400,
    code: 'INVALID',
    message: /not valid YAML/,
  },
  {
    name: 'YAML with a tab-indented block and a duplicate key',
    body: 'kind: Service\nkind: Service\nname: x\nspec:\n\tport: 80\n',
    headers: YAML,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'invalid JSON',
    body: '{"kind": "Service", "name": ',
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
  },
  { name: 'a JSON scalar', body: '42', headers: JSON_TYPE, status: 400, code: 'INVALID' },
  {
    name: 'text/plain',
    body: 'kind: Service\nname: x\nspec: {port: 80}\n',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'application/xml',
    body: '<service/>',
    headers: { 'content-type': 'application/xml' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a 10 MB body',
    body: Buffer.alloc(10 * 1024 * 1024, 0x20),
    headers: YAML,
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a 10 MB body once gunzipped (a small gzip bomb)',
    body: gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)),
    headers: { ...YAML, 'content-encoding': 'gzip' },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: '10,000 levels of nested JSON',
    body: `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
    message: /nested/,
  },
  {
    name: '10,000 levels of nested JSON objects',
    body: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
    message: /nested/,
  },
  {
    name: '10,000 levels of nested YAML block sequences',
    body: `${'- '.repeat(10_000)}x\n`,
    headers: YAML,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'nesting just beyond the limit inside a valid-looking document',
    body: JSON.stringify({
      kind: 'Service',
      name: 'deep',
      spec: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`),
    }),
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
    message: /nested deeper/,
  },
  {
    name: 'a YAML alias bomb',
    body: aliasBomb(8),
    headers: YAML,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'non-UTF-8 bytes',
    body: Buffer.concat([
      Buffer.from('kind: Service\nname: caf'),
      Buffer.from([0xe9, 0xff]),
      Buffer.from('\n'),
    ]),
    headers: YAML,
    status: 400,
    code: 'INVALID',
    message: /UTF-8/,
  },
  { name: 'an empty body', body: '', headers: YAML, status: 400, code: 'INVALID', message: /empty/ },
  {
    name: 'a body that is not gzip, labelled gzip',
    body: 'kind: Service\n',
    headers: { ...YAML, 'content-encoding': 'gzip' },
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'an unsupported content encoding',
    body: 'kind: Service\n',
    headers: { ...YAML, 'content-encoding': 'compress' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'PUT with text/plain',
    method: 'PUT',
    path: '/v1/services/x',
    body: 'kind: Service\nname: x\nspec: {port: 80}\n',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'PUT with invalid YAML',
    method: 'PUT',
    path: '/v1/services/x',
    body: 'kind: Service\nname: x\nspec: {port: 80\n',
    headers: YAML,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'PUT with two documents',
    method: 'PUT',
    path: '/v1/services/x',
    body: 'kind: Service\nname: x\nspec: {port: 80}\n---\nkind: Service\nname: y\nspec: {port: 80}\n',
    headers: YAML,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'POST /v1/tokens with a JSON null',
    path: '/v1/tokens',
    body: 'null',
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'POST /v1/tokens with invalid JSON',
    path: '/v1/tokens',
    body: '{service: reviews}',
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'POST /v1/tokens with a TTL beyond a year',
    path: '/v1/tokens',
    body: '{"service": "reviews", "ttl": "9000h"}',
    headers: JSON_TYPE,
    status: 400,
    code: 'INVALID',
  },
  {
    name: 'GET /v1/bootstrap with a bad service, address and labels',
    method: 'GET',
    path: '/v1/bootstrap?service=Bad_Name&address=not-an-ip&appPort=0&labels=bad%20key=v',
    body: '',
    status: 400,
    code: 'INVALID',
  },
];

describe('api: malformed requests get a 4xx JSON error and the server keeps serving', function () {
  this.timeout(30_000);
  let mp: Meshplane;
  showLogOnFailure(() => mp);

  before(async () => {
    mp = await startMeshplane({ address: '127.0.0.53' });
  });
  after(async () => {
    await mp?.stop();
  });

  for (const [i, tc] of CASES.entries()) {
    it(`${tc.name}: ${tc.status} ${tc.code}`, async () => {
      const res = await mp.api(tc.method ?? 'POST', tc.path ?? '/v1/apply', tc.body, {
        headers: tc.headers ?? {},
        timeoutMs: 20_000,
      });
      assert.equal(res.status, tc.status, res.body.slice(0, 2000));
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const e = errorOf(res);
      assert.equal(e.code, tc.code);
      if (tc.message) assert.match(e.message, tc.message);
      assert.ok(res.body.length < 64 * 1024, `a bounded error body (${res.body.length} bytes)`);

      // Still serving: liveness, and a normal apply that is stored.
      assert.equal((await mp.api('GET', '/healthz')).status, 200);
      const name = `after-case-${i}`;
      const ok = await mp.api('POST', '/v1/apply', { kind: 'Service', name, spec: { port: 1000 + i } });
      assert.equal(ok.status, 200, ok.body);
      assert.equal((await mp.api('GET', `/v1/services/${name}`)).json.spec.port, 1000 + i);
    });
  }

  it('stored nothing from any malformed request', async () => {
    const names = (await mp.api('GET', '/v1/services')).json.items.map((o: any) => o.name);
    assert.deepEqual(names, CASES.map((_, i) => `after-case-${i}`).sort());
  });

  it('the bad bootstrap request names each bad parameter', async () => {
    const tc = CASES.find((c) => c.name.startsWith('GET /v1/bootstrap'))!;
    const e = errorOf(await mp.api('GET', tc.path!));
    assert.deepEqual(e.details.map((d) => d.path).sort(), ['address', 'appPort', 'labels', 'service']);
  });
});
