// Tests of the kind schemas: the MESH-MODEL.md examples validate, defaults apply, and bad
// fields of every kind are reported with their paths. Depends only on the model.
import assert from 'node:assert/strict';
import {
  defaultMesh,
  findKindByPlural,
  jsonSchemaFor,
  KIND_NAMES,
  KINDS,
  type MeshObject,
  parseDocuments,
  validateDocuments,
} from '../../src/model';
import { exampleObjects, MESH_MODEL_EXAMPLE_YAML } from './examples';

/** Problems of one document, as "path: message" strings. */
function problems(doc: unknown): string[] {
  const r = validateDocuments([doc]);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

const base: Record<string, Record<string, unknown>> = {
  Mesh: { kind: 'Mesh', name: 'default', spec: {} },
  Service: { kind: 'Service', name: 'reviews', spec: { port: 9080 } },
  Instance: {
    kind: 'Instance',
    name: 'reviews-v1-0',
    spec: { service: 'reviews', address: '10.0.0.1', port: 15006 },
  },
  TrafficRoute: { kind: 'TrafficRoute', name: 'r', spec: { service: 'reviews', http: [{ backends: [{}] }] } },
  DestinationPolicy: { kind: 'DestinationPolicy', name: 'd', spec: { service: 'reviews' } },
  AuthorizationPolicy: {
    kind: 'AuthorizationPolicy',
    name: 'a',
    spec: { service: 'reviews', action: 'allow', rules: [{}] },
  },
};

/** `base[kind]` with `spec` merged with `spec`. */
function withSpec(kind: string, spec: Record<string, unknown>): Record<string, unknown> {
  const b = base[kind]!;
  return { ...b, spec: { ...(b.spec as object), ...spec } };
}

describe('model kinds', () => {
  describe('the MESH-MODEL.md example', () => {
    it('parses as six documents, one of each kind, all valid', () => {
      const parsed = parseDocuments(MESH_MODEL_EXAMPLE_YAML, 'application/yaml');
      assert.ok(parsed.ok);
      const valid = validateDocuments(parsed.value);
      assert.deepEqual(valid.ok ? [] : valid.errors, []);
      assert.ok(valid.ok);
      assert.deepEqual(
        valid.value.map((o) => o.kind),
        ['Mesh', 'Service', 'Instance', 'TrafficRoute', 'DestinationPolicy', 'AuthorizationPolicy'],
      );
    });

    const expected: Record<string, (o: MeshObject) => void> = {
      Mesh: (o) => {
        assert.equal(o.kind, 'Mesh');
        if (o.kind !== 'Mesh') return;
        assert.deepEqual(o.spec.mtls, { mode: 'strict', certTTL: '24h' });
        assert.deepEqual(o.spec.tracing, {
          provider: 'zipkin',
          collector: 'tracing:9411',
          samplePercent: 10,
        });
      },
      Service: (o) => assert.deepEqual(o.spec, { protocol: 'http', port: 9080 }),
      Instance: (o) =>
        assert.deepEqual(o.spec, {
          service: 'reviews',
          address: '127.0.0.12',
          port: 15006,
          labels: { version: 'v2' },
          locality: { region: 'eu-west', zone: 'eu-west-1a' },
          health: 'healthy',
        }),
      TrafficRoute: (o) => {
        if (o.kind !== 'TrafficRoute') assert.fail(o.kind);
        const [first, second] = o.spec.http;
        assert.deepEqual(first?.match, {
          path: { prefix: '/api' },
          headers: { 'x-user': { exact: 'jason' } },
        });
        assert.deepEqual(second?.backends, [
          { subset: { version: 'v1' }, weight: 90 },
          { subset: { version: 'v2' }, weight: 10 },
        ]);
        assert.deepEqual(second?.retries, {
          attempts: 3,
          perTryTimeout: '500ms',
          on: ['5xx', 'reset', 'connect-failure'],
        });
        assert.deepEqual(second?.headers, { request: { set: { 'x-canary': '1' } } });
      },
      DestinationPolicy: (o) => {
        if (o.kind !== 'DestinationPolicy') assert.fail(o.kind);
        assert.deepEqual(o.spec.healthCheck, {
          http: { path: '/healthz' },
          interval: '5s',
          timeout: '1s',
          unhealthyThreshold: 3,
          healthyThreshold: 1,
        });
        assert.deepEqual(o.spec.rateLimit, { requestsPerSecond: 100, burst: 200 });
      },
      AuthorizationPolicy: (o) =>
        assert.deepEqual(o.spec, {
          service: 'reviews',
          action: 'allow',
          rules: [{ from: [{ service: 'productpage' }], to: [{ methods: ['GET'], paths: ['/reviews/*'] }] }],
        }),
    };
    for (const obj of exampleObjects()) {
      it(`keeps every field of the ${obj.kind} example`, () => expected[obj.kind]!(obj));
    }
  });

  describe('defaults', () => {
    const cases: { name: string; doc: Record<string, unknown>; check: (o: MeshObject) => void }[] = [
      {
        name: 'Mesh: trust domain mesh.local, permissive mTLS with 24h certificates, views not scoped by authorization',
        doc: base.Mesh!,
        check: (o) =>
          assert.deepEqual(o.spec, {
            trustDomain: 'mesh.local',
            mtls: { mode: 'permissive', certTTL: '24h' },
            scopeByAuthorization: false,
          }),
      },
      {
        name: 'Service: protocol http',
        doc: base.Service!,
        check: (o) => assert.equal((o.spec as { protocol: string }).protocol, 'http'),
      },
      {
        name: 'Instance: health healthy',
        doc: base.Instance!,
        check: (o) => assert.equal((o.spec as { health: string }).health, 'healthy'),
      },
      {
        name: 'TrafficRoute: mirror percent 100',
        doc: withSpec('TrafficRoute', { http: [{ backends: [{}], mirror: { subset: { version: 'v3' } } }] }),
        check: (o) =>
          assert.deepEqual((o.spec as { http: { mirror: unknown }[] }).http[0]!.mirror, {
            subset: { version: 'v3' },
            percent: 100,
          }),
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const r = validateDocuments([tc.doc]);
        assert.ok(r.ok, JSON.stringify(r));
        tc.check(r.value[0]!);
      });
    }

    it('defaultMesh() is the Mesh with every default', () => {
      assert.deepEqual(defaultMesh(), {
        kind: 'Mesh',
        name: 'default',
        spec: {
          trustDomain: 'mesh.local',
          mtls: { mode: 'permissive', certTTL: '24h' },
          scopeByAuthorization: false,
        },
      });
    });
  });

  describe('unknown fields are errors at every level', () => {
    const cases: { name: string; doc: unknown; path: string }[] = [
      { name: 'top level', doc: { ...base.Service, metadata: {} }, path: 'metadata' },
      { name: 'Mesh spec', doc: withSpec('Mesh', { mtlsMode: 'strict' }), path: 'spec.mtlsMode' },
      {
        name: 'Mesh mtls',
        doc: withSpec('Mesh', { mtls: { mode: 'strict', ttl: '1h' } }),
        path: 'spec.mtls.ttl',
      },
      { name: 'Service spec', doc: withSpec('Service', { ports: [80] }), path: 'spec.ports' },
      {
        name: 'Instance locality',
        doc: withSpec('Instance', { locality: { zonee: 'a' } }),
        path: 'spec.locality.zonee',
      },
      {
        name: 'TrafficRoute backend',
        doc: withSpec('TrafficRoute', { http: [{ backends: [{}, { subset: {}, wieght: 1 }] }] }),
        path: 'spec.http[0].backends[1].wieght',
      },
      {
        name: 'TrafficRoute header match',
        doc: withSpec('TrafficRoute', {
          http: [{ match: { headers: { 'x-user': { exact: 'a', invert: true } } }, backends: [{}] }],
        }),
        path: 'spec.http[0].match.headers["x-user"].invert',
      },
      {
        name: 'DestinationPolicy circuit breaker',
        doc: withSpec('DestinationPolicy', { circuitBreaker: { maxConnection: 1 } }),
        path: 'spec.circuitBreaker.maxConnection',
      },
      {
        name: 'AuthorizationPolicy rule source',
        doc: withSpec('AuthorizationPolicy', { rules: [{ from: [{ service: 'a', namespace: 'b' }] }] }),
        path: 'spec.rules[0].from[0].namespace',
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const found = problems(tc.doc);
        const field = tc.path.split(/[.[]/).pop()!.replace(/["\]]/g, '');
        assert.deepEqual(found, [`${tc.path}: unknown field "${field}"`]);
      });
    }
  });

  describe('bad values are reported with their paths', () => {
    const cases: { name: string; doc: unknown; expected: string[] }[] = [
      {
        name: 'the Mesh must be named default',
        doc: { ...base.Mesh, name: 'prod' },
        expected: ['name: the Mesh is a singleton: its name must be "default"'],
      },
      {
        name: 'names are DNS labels',
        doc: { ...base.Service, name: 'Reviews_v1' },
        expected: [
          'name: must be lowercase letters, digits and "-", starting and ending with a letter or digit',
        ],
      },
      {
        name: 'names are at most 63 characters',
        doc: { ...base.Service, name: 'a'.repeat(64) },
        expected: ['name: must be at most 63 characters'],
      },
      {
        name: 'ports are 1..65535',
        doc: withSpec('Service', { port: 70000 }),
        expected: ['spec.port: ports are 1..65535'],
      },
      {
        name: 'ports are integers',
        doc: withSpec('Service', { port: 80.5 }),
        expected: ['spec.port: must be an integer'],
      },
      {
        name: 'protocol is one of http, http2, grpc, tcp',
        doc: withSpec('Service', { protocol: 'udp' }),
        expected: ['spec.protocol: Invalid option: expected one of "http"|"http2"|"grpc"|"tcp"'],
      },
      {
        name: 'required fields',
        doc: { kind: 'Service', name: 'a', spec: {} },
        expected: ['spec.port: required'],
      },
      { name: 'spec is required', doc: { kind: 'Service', name: 'a' }, expected: ['spec: required'] },
      {
        name: 'mtls mode',
        doc: withSpec('Mesh', { mtls: { mode: 'on' } }),
        expected: ['spec.mtls.mode: Invalid option: expected one of "strict"|"permissive"|"disabled"'],
      },
      {
        name: 'instance health',
        doc: withSpec('Instance', { health: 'sick' }),
        expected: ['spec.health: Invalid option: expected one of "healthy"|"unhealthy"|"draining"'],
      },
      {
        name: 'instance address is an IP',
        doc: withSpec('Instance', { address: 'reviews.local' }),
        expected: ['spec.address: must be an IPv4 or IPv6 address'],
      },
      {
        name: 'instance ttl is a positive duration',
        doc: withSpec('Instance', { ttl: '0s' }),
        expected: ['spec.ttl: must be greater than 0'],
      },
      {
        name: 'label values',
        doc: { ...base.Service, labels: { app: 'a b' } },
        expected: [
          'labels.app: label values are letters, digits, "-", "_", ".", starting and ending with a letter or digit',
        ],
      },
      {
        name: 'label keys',
        doc: { ...base.Service, labels: { 'a=b': 'x' } },
        expected: [
          'labels["a=b"]: invalid key: label keys are letters, digits, "-", "_", "." (with an optional "domain/" prefix)',
        ],
      },
      {
        name: 'weights are non-negative integers',
        doc: withSpec('TrafficRoute', {
          http: [{ backends: [{ weight: 1 }, { weight: -1 }, { weight: 1.5 }] }],
        }),
        expected: [
          'spec.http[0].backends[1].weight: must not be negative',
          'spec.http[0].backends[2].weight: must be an integer',
        ],
      },
      {
        name: 'weights: all or none',
        doc: withSpec('TrafficRoute', { http: [{ backends: [{ weight: 1 }, {}] }] }),
        expected: ['spec.http[0].backends: give every backend a weight, or none (an equal split)'],
      },
      {
        name: 'weights: not all zero',
        doc: withSpec('TrafficRoute', { http: [{ backends: [{ weight: 0 }, { weight: 0 }] }] }),
        expected: ['spec.http[0].backends: at least one weight must be above 0'],
      },
      {
        name: 'percents are 0..100',
        doc: withSpec('TrafficRoute', {
          http: [
            { backends: [{}], mirror: { percent: 101 }, fault: { abort: { percent: -1, status: 503 } } },
          ],
        }),
        expected: [
          'spec.http[0].mirror.percent: percents are 0..100',
          'spec.http[0].fault.abort.percent: percents are 0..100',
        ],
      },
      {
        name: 'a path match sets exactly one of exact, prefix, regex',
        doc: withSpec('TrafficRoute', {
          http: [{ match: { path: { exact: '/a', prefix: '/b' } }, backends: [{}] }],
        }),
        expected: ['spec.http[0].match.path: set exactly one of "exact", "prefix", "regex"'],
      },
      {
        name: 'retry conditions',
        doc: withSpec('TrafficRoute', {
          http: [{ backends: [{}], retries: { attempts: 2, on: ['5xx', 'sometimes'] } }],
        }),
        expected: [
          'spec.http[0].retries.on[1]: Invalid option: expected one of "5xx"|"gateway-error"|"reset"|"connect-failure"|"retriable-4xx"|"refused-stream"|"cancelled"|"deadline-exceeded"|"internal"|"resource-exhausted"|"unavailable"',
        ],
      },
      {
        name: 'a route needs backends',
        doc: withSpec('TrafficRoute', { http: [{ backends: [] }] }),
        expected: ['spec.http[0].backends: at least one backend'],
      },
      {
        name: 'route timeouts are durations',
        doc: withSpec('TrafficRoute', { http: [{ backends: [{}], timeout: '2 seconds' }] }),
        expected: ['spec.http[0].timeout: must be a duration such as 250ms, 2s, 1m30s or 24h'],
      },
      {
        name: 'load balancer type',
        doc: withSpec('DestinationPolicy', { loadBalancer: { type: 'fastest' } }),
        expected: [
          'spec.loadBalancer.type: Invalid option: expected one of "round_robin"|"least_request"|"random"|"ring_hash"|"maglev"',
        ],
      },
      {
        name: 'max ejection percent is an integer 0..100',
        doc: withSpec('DestinationPolicy', { outlierDetection: { maxEjectionPercent: 150 } }),
        expected: ['spec.outlierDetection.maxEjectionPercent: percents are 0..100'],
      },
      {
        name: 'authorization action',
        doc: withSpec('AuthorizationPolicy', { action: 'audit' }),
        expected: ['spec.action: Invalid option: expected one of "allow"|"deny"'],
      },
      {
        name: 'authorization paths',
        doc: withSpec('AuthorizationPolicy', { rules: [{ to: [{ paths: ['/a/*/b'] }] }] }),
        expected: [
          'spec.rules[0].to[0].paths[0]: must be a path, optionally with one "*" at its start or end ("/reviews/*", "*.png", "*")',
        ],
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => assert.deepEqual(problems(tc.doc), tc.expected));
    }
  });

  describe('KINDS', () => {
    it('maps every kind to its REST plural', () => {
      assert.deepEqual(Object.fromEntries(KIND_NAMES.map((k) => [k, KINDS[k].plural])), {
        Mesh: 'meshes',
        Service: 'services',
        Instance: 'instances',
        TrafficRoute: 'trafficroutes',
        DestinationPolicy: 'destinationpolicies',
        AuthorizationPolicy: 'authorizationpolicies',
      });
      assert.equal(findKindByPlural('trafficroutes'), 'TrafficRoute');
      assert.equal(findKindByPlural('pods'), undefined);
    });
  });

  describe('jsonSchemaFor', () => {
    for (const kind of KIND_NAMES) {
      it(`${kind}: a closed object schema with kind, name and spec required`, () => {
        const schema = jsonSchemaFor(kind) as {
          type: string;
          required: string[];
          additionalProperties: boolean;
          properties: { kind: { const: string }; spec: { additionalProperties: boolean } };
        };
        assert.equal(schema.type, 'object');
        assert.deepEqual([...schema.required].sort(), ['kind', 'name', 'spec']);
        assert.equal(schema.additionalProperties, false);
        assert.equal(schema.properties.kind.const, kind);
        assert.equal(schema.properties.spec.additionalProperties, false);
      });
    }

    it('input schemas leave defaulted fields optional; output schemas require them', () => {
      const input = jsonSchemaFor('Service') as { properties: { spec: { required: string[] } } };
      const output = jsonSchemaFor('Service', { io: 'output' }) as {
        properties: { spec: { required: string[] } };
      };
      assert.deepEqual(input.properties.spec.required, ['port']);
      assert.deepEqual([...output.properties.spec.required].sort(), ['port', 'protocol']);
    });
  });
});
