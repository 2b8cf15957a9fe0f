// The OpenAPI 3.1 document of the REST API, with every kind's schema generated
// from the same zod schemas that validate requests.
import { jsonSchemaFor, KIND_NAMES, KINDS } from '../model';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            required: ['path', 'message'],
            properties: { path: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
};

function errors(...codes: number[]): Record<string, unknown> {
  return Object.fromEntries(
    codes.map((c) => [
      String(c),
      {
        description: 'error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    ]),
  );
}

let cached: Record<string, unknown> | undefined;

export function buildOpenApi(version: string): Record<string, unknown> {
  if (cached) return cached;
  const schemas: Record<string, unknown> = { Error: errorSchema };
  for (const kind of KIND_NAMES) {
    const { $schema: _, ...schema } = jsonSchemaFor(kind);
    schemas[kind] = schema;
  }
  const anyDocument = { oneOf: KIND_NAMES.map((k) => ({ $ref: `#/components/schemas/${k}` })) };
  const paths: Record<string, unknown> = {
    '/v1/apply': {
      post: {
        summary: 'Create or update documents atomically (all or nothing)',
        parameters: [{ name: 'dryRun', in: 'query', schema: { type: 'boolean' } }],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: { oneOf: [anyDocument, { type: 'array', items: anyDocument }] } },
            'application/yaml': { schema: { type: 'string', description: 'one or more YAML documents' } },
          },
        },
        responses: {
          '200': { description: 'applied (or would be, with dryRun)' },
          ...errors(400, 401, 413, 415),
        },
      },
    },
    '/v1/proxies': {
      get: {
        summary: 'Connected and recently gone proxies with their sync state',
        responses: { '200': { description: 'ok' } },
      },
    },
    '/v1/proxies/{nodeId}/config': {
      get: {
        summary: 'The resources meshplane holds for a proxy, as Envoy JSON (no private keys)',
        parameters: [
          { name: 'nodeId', in: 'path', required: true, schema: { type: 'string' } },
          {
            name: 'type',
            in: 'query',
            schema: { enum: ['listeners', 'clusters', 'routes', 'endpoints', 'secrets'] },
          },
        ],
        responses: { '200': { description: 'ok' }, ...errors(400, 404) },
      },
    },
    '/v1/bootstrap': {
      get: {
        summary: 'An Envoy bootstrap (YAML) for a workload, with a bootstrap token',
        parameters: [
          'service',
          'address',
          'appPort',
          'inboundPort',
          'adminPort',
          'labels',
          'apiType',
          'nodeId',
        ].map((n) => ({
          name: n,
          in: 'query',
          required: ['service', 'address', 'appPort'].includes(n),
          schema: { type: 'string' },
        })),
        responses: {
          '200': { description: 'bootstrap', content: { 'application/yaml': {} } },
          ...errors(400, 401),
        },
      },
    },
    '/v1/tokens': {
      post: {
        summary: 'Issue a bootstrap token for a service',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['service'],
                properties: { service: { type: 'string' }, ttl: { type: 'string' } },
              },
            },
          },
        },
        responses: { '201': { description: 'token' }, ...errors(400, 401) },
      },
    },
    '/v1/tokens/{id}': {
      delete: {
        summary: 'Revoke a bootstrap token',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'revoked' }, ...errors(401) },
      },
    },
    '/v1/instances/{name}/heartbeat': {
      post: {
        summary: 'Renew a TTL-registered instance',
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'renewed' }, ...errors(401, 404) },
      },
    },
    // Health, metrics and this document never need the token.
    '/v1/changes': {
      get: { summary: 'Recent changes and their state', responses: { '200': { description: 'ok' } } },
    },
    '/v1/changes/{id}': {
      get: {
        summary:
          'One change (a revision): its objects, each affected proxy (pending / acked / nacked, time to ACK) and the overall state',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: { '200': { description: 'ok' }, ...errors(400, 404) },
      },
    },
    '/v1/mesh/ca': {
      get: { summary: 'The trust bundle (PEM); never a key', responses: { '200': { description: 'PEM' } } },
    },
    '/healthz': {
      get: { summary: 'Liveness', security: [], responses: { '200': { description: 'alive' } } },
    },
    '/readyz': {
      get: {
        summary: 'Readiness: store open and xDS listening',
        security: [],
        responses: { '200': { description: 'ready' }, ...errors(503) },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'metrics' } } },
    },
    '/openapi.json': {
      get: {
        summary: 'This OpenAPI document',
        security: [],
        responses: { '200': { description: 'the document', content: { 'application/json': {} } } },
      },
    },
  };
  for (const kind of KIND_NAMES) {
    const plural = KINDS[kind].plural;
    const ref = { $ref: `#/components/schemas/${kind}` };
    const name = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
    paths[`/v1/${plural}`] = {
      get: {
        summary: `List ${kind} objects`,
        parameters: [{ name: 'labels', in: 'query', schema: { type: 'string' }, description: 'k=v,k2=v2' }],
        responses: { '200': { description: 'ok' }, ...errors(400, 401) },
      },
    };
    paths[`/v1/${plural}/{name}/history`] = {
      get: {
        summary: `Earlier versions of one ${kind}, newest first`,
        parameters: [name],
        responses: { '200': { description: 'ok' }, ...errors(400, 404) },
      },
    };
    paths[`/v1/${plural}/{name}/diff`] = {
      get: {
        summary: `A unified diff between two versions of one ${kind}`,
        parameters: [
          name,
          { name: 'from', in: 'query', schema: { type: 'string' } },
          { name: 'to', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'ok' }, ...errors(400, 404) },
      },
    };
    paths[`/v1/${plural}/{name}/rollback`] = {
      post: {
        summary: `Restore an earlier version of one ${kind} (a new change)`,
        parameters: [name, { name: 'to', in: 'query', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'rolled back' }, ...errors(400, 401, 404, 409) },
      },
    };
    paths[`/v1/${plural}/{name}`] = {
      get: {
        summary: `Get one ${kind}`,
        parameters: [name],
        responses: { '200': { description: 'ok' }, ...errors(401, 404) },
      },
      put: {
        summary: `Create or replace one ${kind}`,
        parameters: [name, { name: 'If-Match', in: 'header', schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref }, 'application/yaml': { schema: ref } },
        },
        responses: {
          '200': { description: 'replaced' },
          '201': { description: 'created' },
          ...errors(400, 401, 404, 409, 413, 415),
        },
      },
      delete: {
        summary: `Delete one ${kind}`,
        parameters: [name, { name: 'If-Match', in: 'header', schema: { type: 'string' } }],
        responses: { '200': { description: 'deleted' }, ...errors(401, 404, 409) },
      },
    };
  }
  cached = {
    openapi: '3.1.0',
    info: { title: 'meshplane', version },
    components: {
      schemas,
      securitySchemes: { admin: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ admin: [] }],
    paths,
  };
  return cached;
}
