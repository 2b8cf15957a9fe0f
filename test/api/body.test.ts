// readDocuments / readSingleDocument: what the API accepts as a document set
// before any HTTP is involved (the HTTP behaviour is in the other api suites).
import assert from 'node:assert/strict';
import { stringify as toYaml } from 'yaml';
import { readDocuments, readSingleDocument, SERVER_SET_FIELDS, stripServerFields } from '../../src/api/body';
import { ApiError } from '../../src/api/errors';

const SERVICE = { kind: 'Service', name: 'reviews', labels: { team: 'a' }, spec: { port: 9080 } };
/** What GET /v1/services/reviews returns for it. */
const FETCHED = {
  ...SERVICE,
  spec: { protocol: 'http', port: 9080 },
  revision: 7,
  resourceVersion: '7',
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-02T00:00:00.000Z',
  status: { warnings: [], nacks: [] },
};

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `not an ApiError: ${err}`);
    return err;
  }
  assert.fail('no error thrown');
}

describe('api/body: readDocuments', () => {
  it('strips exactly the server-set top-level fields', () => {
    assert.deepEqual([...SERVER_SET_FIELDS].sort(), [
      'createdAt',
      'resourceVersion',
      'revision',
      'status',
      'updatedAt',
    ]);
    assert.deepEqual(stripServerFields(FETCHED), { ...SERVICE, spec: FETCHED.spec });
    // The input is not changed; non-objects pass through.
    assert.equal(FETCHED.revision, 7);
    assert.equal(stripServerFields('x'), 'x');
    assert.deepEqual(stripServerFields([1]), [1]);
  });

  const roundTrips = [
    { name: 'a fetched object as JSON', body: JSON.stringify(FETCHED), type: 'application/json' },
    { name: 'a fetched object as YAML (get -o yaml)', body: toYaml(FETCHED), type: 'application/yaml' },
    {
      name: 'several fetched objects as a YAML stream',
      body: `${toYaml(FETCHED)}---\n${toYaml({ ...FETCHED, name: 'ratings' })}`,
      type: 'application/yaml',
    },
    {
      name: 'a JSON array of fetched objects',
      body: JSON.stringify([FETCHED, { ...FETCHED, name: 'ratings' }]),
      type: 'application/json',
    },
  ];
  for (const tc of roundTrips) {
    it(`accepts ${tc.name}, without the server-set fields`, () => {
      const docs = readDocuments(Buffer.from(tc.body), tc.type);
      assert.ok(docs.length >= 1);
      for (const d of docs) {
        assert.deepEqual(Object.keys(d).sort(), ['kind', 'labels', 'name', 'spec']);
        assert.deepEqual(d.spec, { protocol: 'http', port: 9080 });
      }
    });
  }

  it('strips only at the top level: a server field name inside spec is still an error', () => {
    const body = JSON.stringify({ ...FETCHED, spec: { port: 9080, status: 'x' } });
    const e = apiError(() => readDocuments(Buffer.from(body), 'application/json'));
    assert.equal(e.status, 400);
    assert.deepEqual(
      e.details.map((d) => d.path),
      ['documents[0].spec.status'],
    );
  });

  it('still validates what is left: a fetched object with a bad spec names the field', () => {
    const body = toYaml({ ...FETCHED, spec: { port: 0 } });
    const e = apiError(() => readDocuments(Buffer.from(body), 'application/yaml'));
    assert.deepEqual(
      e.details.map((d) => [d.path, d.document, d.kind, d.name]),
      [['documents[0].spec.port', 0, 'Service', 'reviews']],
    );
  });

  it('PUT bodies (readSingleDocument) accept a fetched object too', () => {
    const doc = readSingleDocument(
      Buffer.from(JSON.stringify(FETCHED)),
      'application/json',
      'Service',
      'reviews',
    );
    assert.deepEqual(doc, { ...SERVICE, spec: FETCHED.spec });
  });

  const refused = [
    { name: 'an unsupported content type, before anything else', body: '', type: 'text/plain', status: 415 },
    { name: 'a deep body of an unsupported type', body: '['.repeat(100), type: 'text/plain', status: 415 },
    { name: 'an empty body', body: ' \n', type: 'application/yaml', status: 400 },
    {
      name: 'bytes that are not UTF-8',
      body: Buffer.from([0x6b, 0xff, 0xfe]),
      type: 'application/yaml',
      status: 400,
    },
    {
      name: 'deep flow nesting',
      body: `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      type: 'application/json',
      status: 400,
    },
    {
      name: 'deep block sequences',
      body: `${'- '.repeat(10_000)}x\n`,
      type: 'application/yaml',
      status: 400,
    },
  ];
  for (const tc of refused) {
    it(`refuses ${tc.name} (${tc.status})`, () => {
      const e = apiError(() =>
        readDocuments(Buffer.isBuffer(tc.body) ? tc.body : Buffer.from(tc.body), tc.type),
      );
      assert.equal(e.status, tc.status, e.message);
    });
  }
});
