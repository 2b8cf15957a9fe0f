// Tests of batch validation: every problem of every document, with document indices and
// field paths; duplicates; path formatting. Depends only on the model.
import assert from 'node:assert/strict';
import { formatPath, validateDocuments } from '../../src/model';

describe('validateDocuments', () => {
  it('reports every problem of every document with its index, kind and name', () => {
    const r = validateDocuments([
      { kind: 'Service', name: 'reviews', spec: { port: 9080 } },
      {
        kind: 'TrafficRoute',
        name: 'canary',
        spec: {
          service: 'reviews',
          http: [{ backends: [{ weight: 90 }, { weight: -10, color: 'blue' }], timeout: 'soon' }],
        },
      },
      { kind: 'Instance', name: 'Bad_Name', spec: { service: 'reviews', address: '10.0.0.1', port: 0 } },
    ]);
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.deepEqual(r.errors, [
      {
        document: 1,
        kind: 'TrafficRoute',
        name: 'canary',
        path: 'spec.http[0].backends[1].weight',
        message: 'must not be negative',
      },
      {
        document: 1,
        kind: 'TrafficRoute',
        name: 'canary',
        path: 'spec.http[0].backends[1].color',
        message: 'unknown field "color"',
      },
      {
        document: 1,
        kind: 'TrafficRoute',
        name: 'canary',
        path: 'spec.http[0].timeout',
        message: 'must be a duration such as 250ms, 2s, 1m30s or 24h',
      },
      {
        document: 2,
        kind: 'Instance',
        name: 'Bad_Name',
        path: 'name',
        message: 'must be lowercase letters, digits and "-", starting and ending with a letter or digit',
      },
      { document: 2, kind: 'Instance', name: 'Bad_Name', path: 'spec.port', message: 'ports are 1..65535' },
    ]);
  });

  it('returns the typed objects, defaults applied, when all are valid', () => {
    const r = validateDocuments([
      { kind: 'Service', name: 'a', spec: { port: 80 } },
      { kind: 'Service', name: 'b', labels: { team: 'x' }, spec: { port: 81, protocol: 'grpc' } },
    ]);
    assert.deepEqual(r, {
      ok: true,
      value: [
        { kind: 'Service', name: 'a', spec: { protocol: 'http', port: 80 } },
        { kind: 'Service', name: 'b', labels: { team: 'x' }, spec: { protocol: 'grpc', port: 81 } },
      ],
    });
  });

  const bad: { name: string; doc: unknown; expected: { path: string; message: string }[] }[] = [
    {
      name: 'a document that is not an object',
      doc: 'kind: Service',
      expected: [{ path: '', message: 'a document must be an object with kind, name and spec' }],
    },
    {
      name: 'a list where a document belongs',
      doc: [{ kind: 'Service' }],
      expected: [{ path: '', message: 'a document must be an object with kind, name and spec' }],
    },
    {
      name: 'a missing kind, and the rest of the envelope still checked',
      doc: { name: 'x', spec: {}, extra: 1 },
      expected: [
        {
          path: 'kind',
          message:
            'required: one of Mesh, Service, Instance, TrafficRoute, DestinationPolicy, AuthorizationPolicy',
        },
        { path: 'extra', message: 'unknown field "extra"' },
      ],
    },
    {
      name: 'an unknown kind',
      doc: { kind: 'Gateway', name: 'x', spec: {} },
      expected: [
        {
          path: 'kind',
          message:
            'unknown kind "Gateway"; expected one of Mesh, Service, Instance, TrafficRoute, DestinationPolicy, AuthorizationPolicy',
        },
      ],
    },
    {
      name: 'kinds are case-sensitive',
      doc: { kind: 'service', name: 'x', spec: { port: 1 } },
      expected: [
        {
          path: 'kind',
          message:
            'unknown kind "service"; expected one of Mesh, Service, Instance, TrafficRoute, DestinationPolicy, AuthorizationPolicy',
        },
      ],
    },
  ];
  for (const tc of bad) {
    it(`reports ${tc.name}`, () => {
      const r = validateDocuments([tc.doc]);
      assert.ok(!r.ok);
      assert.deepEqual(
        r.errors.map((e) => ({ path: e.path, message: e.message })),
        tc.expected,
      );
      assert.ok(r.errors.every((e) => e.document === 0));
    });
  }

  it('reports an object given twice in one batch, at the second occurrence', () => {
    const svc = { kind: 'Service', name: 'a', spec: { port: 80 } };
    const r = validateDocuments([svc, { kind: 'Service', name: 'b', spec: { port: 80 } }, svc]);
    assert.ok(!r.ok);
    assert.deepEqual(r.errors, [
      {
        document: 2,
        kind: 'Service',
        name: 'a',
        path: 'name',
        message: 'Service "a" is also document 0: each object may appear once',
      },
    ]);
  });

  it('accepts the same name in different kinds', () => {
    const r = validateDocuments([
      { kind: 'Service', name: 'reviews', spec: { port: 80 } },
      { kind: 'DestinationPolicy', name: 'reviews', spec: { service: 'reviews' } },
    ]);
    assert.equal(r.ok, true);
  });

  it('accepts an empty batch', () => {
    assert.deepEqual(validateDocuments([]), { ok: true, value: [] });
  });
});

describe('formatPath', () => {
  const cases: { path: PropertyKey[]; expected: string }[] = [
    { path: [], expected: '' },
    { path: ['spec'], expected: 'spec' },
    { path: ['spec', 'http', 0, 'backends', 1, 'weight'], expected: 'spec.http[0].backends[1].weight' },
    { path: ['spec', 'match', 'headers', 'x-user', 'exact'], expected: 'spec.match.headers["x-user"].exact' },
    { path: ['labels', 'app.kubernetes.io/name'], expected: 'labels["app.kubernetes.io/name"]' },
  ];
  for (const tc of cases) {
    it(`${JSON.stringify(tc.path)} -> ${tc.expected || "''"}`, () =>
      assert.equal(formatPath(tc.path), tc.expected));
  }
});
