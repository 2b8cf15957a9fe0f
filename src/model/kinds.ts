// The mesh model: one zod schema per kind (MESH-MODEL.md), the types inferred from them,
// and the KINDS table. Must not depend on the store, the API, the translator or Envoy types.
import { z } from 'zod';
import {
  countSchema,
  dnsNameSchema,
  durationSchema,
  headerNameSchema,
  hostPortSchema,
  ipAddressSchema,
  labelsSchema,
  nameSchema,
  pathSchema,
  percentSchema,
  portSchema,
  positiveCountSchema,
  positiveDurationSchema,
} from './common';

/** A refinement that adds an issue at the object unless exactly one of `keys` is set. */
function oneOf<T extends object>(keys: readonly (keyof T & string)[]) {
  return (value: T, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => (value as Record<string, unknown>)[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `set exactly one of ${keys.map((k) => `"${k}"`).join(', ')}` });
    }
  };
}

/** The envelope every document shares: `{kind, name, labels?, spec}`. */
function documentSchema<K extends string, N extends z.ZodType, S extends z.ZodType>(
  kind: K,
  name: N,
  spec: S,
) {
  return z.strictObject({
    kind: z.literal(kind),
    name,
    labels: labelsSchema.optional(),
    spec,
  });
}

// ---------------------------------------------------------------------------
// Mesh: the singleton with mesh-wide settings.

export const MTLS_MODES = ['strict', 'permissive', 'disabled'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

export const meshSpecSchema = z.strictObject({
  trustDomain: dnsNameSchema.default('mesh.local').meta({ description: 'SPIFFE trust domain' }),
  /**
   * permissive by default: sidecars always call each other over mTLS, and inbound also
   * accepts plaintext from workloads outside the mesh.
   */
  mtls: z
    .strictObject({
      mode: z.enum(MTLS_MODES),
      certTTL: positiveDurationSchema.default('24h'),
    })
    .default({ mode: 'permissive', certTTL: '24h' }),
  accessLog: z
    .strictObject({
      path: z.string().regex(/^\//, { error: 'must be an absolute path such as /dev/stdout' }),
      format: z.enum(['json', 'text']).default('json'),
    })
    .optional(),
  tracing: z
    .strictObject({
      provider: z.enum(['zipkin', 'opentelemetry']),
      collector: hostPortSchema,
      samplePercent: percentSchema.default(100),
    })
    .optional(),
  scopeByAuthorization: z
    .boolean()
    .default(false)
    .meta({
      description:
        'proxies get no config for services whose AuthorizationPolicies refuse every call from them: smaller ' +
        "configs, but such a call then gets 404 from the caller's own sidecar instead of 403 from the callee " +
        "(and is not counted in the callee's rbac.denied stats)",
    }),
});

export const meshSchema = documentSchema(
  'Mesh',
  z.literal('default', { error: 'the Mesh is a singleton: its name must be "default"' }),
  meshSpecSchema,
);

// ---------------------------------------------------------------------------
// Service: a name and a port that callers use.

export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const serviceSpecSchema = z.strictObject({
  protocol: z.enum(PROTOCOLS).default('http'),
  port: portSchema.meta({ description: 'the port callers use (the outbound listener port)' }),
  mtls: z
    .strictObject({ mode: z.enum(MTLS_MODES) })
    .optional()
    .meta({ description: "overrides the Mesh's mtls.mode for calls to this service" }),
  calls: z
    .array(nameSchema)
    .refine((names) => new Set(names).size === names.length, { error: 'lists a service twice' })
    .optional()
    .meta({
      description:
        "the services this service's sidecars may call: they get listeners, routes and clusters for these " +
        '(and for the backends their routes send to) and no others. Omitted: every service, less those whose ' +
        'AuthorizationPolicies refuse every call from this one when the Mesh sets scopeByAuthorization',
    }),
});

export const serviceSchema = documentSchema('Service', nameSchema, serviceSpecSchema);

// ---------------------------------------------------------------------------
// Instance: one workload (address + sidecar inbound port) of a service.

export const INSTANCE_HEALTH = ['healthy', 'unhealthy', 'draining'] as const;
export type InstanceHealth = (typeof INSTANCE_HEALTH)[number];

export const instanceSpecSchema = z.strictObject({
  service: nameSchema,
  address: ipAddressSchema,
  port: portSchema.meta({ description: "the sidecar's inbound port" }),
  labels: labelsSchema.optional().meta({ description: 'instance labels, matched by subsets' }),
  locality: z
    .strictObject({
      region: z.string().min(1).optional(),
      zone: z.string().min(1).optional(),
      subZone: z.string().min(1).optional(),
    })
    .optional(),
  health: z.enum(INSTANCE_HEALTH).default('healthy'),
  ttl: positiveDurationSchema.optional().meta({
    description: 'for REST-registered instances: removed when no heartbeat arrives within ttl',
  }),
});

export const instanceSchema = documentSchema('Instance', nameSchema, instanceSpecSchema);

// ---------------------------------------------------------------------------
// TrafficRoute: routing for calls to a service.

const pathMatchSchema = z
  .strictObject({
    exact: pathSchema.optional(),
    prefix: pathSchema.optional(),
    regex: z.string().min(1).optional(),
  })
  .superRefine(oneOf(['exact', 'prefix', 'regex']));

const headerMatchSchema = z
  .strictObject({
    exact: z.string().optional(),
    prefix: z.string().min(1).optional(),
    regex: z.string().min(1).optional(),
    present: z.boolean().optional(),
  })
  .superRefine(oneOf(['exact', 'prefix', 'regex', 'present']));

export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
] as const;

const routeMatchSchema = z.strictObject({
  path: pathMatchSchema.optional(),
  headers: z.record(headerNameSchema, headerMatchSchema).optional(),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional().meta({ description: 'any of these methods' }),
  query: z
    .record(z.string().min(1).max(128), headerMatchSchema)
    .optional()
    .meta({ description: 'query parameters, matched like headers' }),
});

/** A set of a service's instances, chosen by their labels; absent = all of them. */
const subsetSchema = labelsSchema.meta({
  description: 'the labels an instance must have to be in the subset',
});

const backendSchema = z.strictObject({
  service: nameSchema
    .optional()
    .meta({ description: "another service to send to; default: the route's own service" }),
  subset: subsetSchema.optional(),
  weight: countSchema.optional(),
});

export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];

const headerEditsSchema = z.strictObject({
  set: z.record(headerNameSchema, z.string()).optional(),
  add: z.record(headerNameSchema, z.string()).optional(),
  remove: z.array(headerNameSchema).optional(),
});

const httpRouteSchema = z
  .strictObject({
    match: routeMatchSchema.optional(),
    backends: z.array(backendSchema).min(1, { error: 'at least one backend' }),
    mirror: z
      .strictObject({
        service: nameSchema.optional(),
        subset: subsetSchema.optional(),
        percent: percentSchema.default(100),
      })
      .optional(),
    timeout: durationSchema.optional().meta({ description: 'whole-request timeout; 0s disables it' }),
    retries: z
      .strictObject({
        attempts: countSchema,
        perTryTimeout: positiveDurationSchema.optional(),
        on: z.array(z.enum(RETRY_ON)).min(1).optional(),
        backoff: z
          .strictObject({
            base: positiveDurationSchema,
            max: positiveDurationSchema.optional().meta({ description: 'default: 10 times base' }),
          })
          .optional(),
      })
      .optional(),
    fault: z
      .strictObject({
        delay: z.strictObject({ percent: percentSchema, duration: positiveDurationSchema }).optional(),
        abort: z
          .strictObject({
            percent: percentSchema,
            status: z.number().int().min(200).max(599, { error: 'HTTP status codes are 200..599' }),
          })
          .optional(),
      })
      .superRefine((f, ctx) => {
        if (f.delay === undefined && f.abort === undefined) {
          ctx.addIssue({ code: 'custom', message: 'set "delay", "abort" or both' });
        }
      })
      .optional(),
    headers: z
      .strictObject({ request: headerEditsSchema.optional(), response: headerEditsSchema.optional() })
      .optional(),
  })
  .superRefine((route, ctx) => {
    // Either every backend has a weight or none has (an equal split); never all zero.
    const weights = route.backends.map((b) => b.weight);
    const given = weights.filter((w) => w !== undefined).length;
    if (given > 0 && given < weights.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['backends'],
        message: 'give every backend a weight, or none (an equal split)',
      });
    } else if (given > 0 && weights.every((w) => w === 0)) {
      ctx.addIssue({ code: 'custom', path: ['backends'], message: 'at least one weight must be above 0' });
    }
  });

export const trafficRouteSpecSchema = z.strictObject({
  service: nameSchema,
  http: z.array(httpRouteSchema).min(1, { error: 'at least one route' }),
});

export const trafficRouteSchema = documentSchema('TrafficRoute', nameSchema, trafficRouteSpecSchema);

// ---------------------------------------------------------------------------
// DestinationPolicy: how clients treat a service's instances.

export const LOAD_BALANCERS = ['round_robin', 'least_request', 'random', 'ring_hash', 'maglev'] as const;
export type LoadBalancerType = (typeof LOAD_BALANCERS)[number];

export const destinationPolicySpecSchema = z.strictObject({
  service: nameSchema,
  loadBalancer: z.strictObject({ type: z.enum(LOAD_BALANCERS) }).optional(),
  circuitBreaker: z
    .strictObject({
      maxConnections: countSchema.optional(),
      maxPendingRequests: countSchema.optional(),
      maxRequests: countSchema.optional(),
      maxRetries: countSchema.optional(),
    })
    .optional(),
  outlierDetection: z
    .strictObject({
      consecutive5xx: countSchema.optional(),
      interval: positiveDurationSchema.optional(),
      baseEjectionTime: positiveDurationSchema.optional(),
      maxEjectionPercent: countSchema.max(100, { error: 'percents are 0..100' }).optional(),
    })
    .optional(),
  /** Active health checking; without `http`, a TCP connect check. */
  healthCheck: z
    .strictObject({
      http: z.strictObject({ path: pathSchema }).optional(),
      interval: positiveDurationSchema.default('10s'),
      timeout: positiveDurationSchema.default('1s'),
      unhealthyThreshold: positiveCountSchema.default(3),
      healthyThreshold: positiveCountSchema.default(1),
    })
    .optional(),
  localityFailover: z.boolean().optional(),
  /** Enforced at the service's inbound side (every instance's own token bucket). */
  rateLimit: z
    .strictObject({
      requestsPerSecond: positiveCountSchema,
      burst: positiveCountSchema
        .optional()
        .meta({ description: 'bucket size; defaults to requestsPerSecond' }),
    })
    .optional(),
});

export const destinationPolicySchema = documentSchema(
  'DestinationPolicy',
  nameSchema,
  destinationPolicySpecSchema,
);

// ---------------------------------------------------------------------------
// AuthorizationPolicy: who may call a service (by mTLS identity); deny wins over allow.

const pathPatternSchema = z.string().regex(/^(\*|\*[^*\s]+|\/[^*\s]*\*?)$/, {
  error: 'must be a path, optionally with one "*" at its start or end ("/reviews/*", "*.png", "*")',
});

const ruleSchema = z.strictObject({
  from: z
    .array(z.strictObject({ service: nameSchema }))
    .min(1)
    .optional(),
  to: z
    .array(
      z.strictObject({
        methods: z
          .array(z.string().regex(/^[A-Z]+$/, { error: 'must be an upper-case HTTP method such as GET' }))
          .min(1)
          .optional(),
        paths: z.array(pathPatternSchema).min(1).optional(),
        headers: z
          .record(headerNameSchema, headerMatchSchema)
          .optional()
          .meta({ description: 'request headers that must all match (like route header matches)' }),
      }),
    )
    .min(1)
    .optional(),
});

export const authorizationPolicySpecSchema = z.strictObject({
  service: nameSchema,
  action: z.enum(['allow', 'deny']),
  rules: z.array(ruleSchema).min(1, { error: 'at least one rule ({} matches every request)' }),
});

export const authorizationPolicySchema = documentSchema(
  'AuthorizationPolicy',
  nameSchema,
  authorizationPolicySpecSchema,
);

// ---------------------------------------------------------------------------
// Types and the kinds table.

export type Mesh = z.output<typeof meshSchema>;
export type Service = z.output<typeof serviceSchema>;
export type Instance = z.output<typeof instanceSchema>;
export type TrafficRoute = z.output<typeof trafficRouteSchema>;
export type DestinationPolicy = z.output<typeof destinationPolicySchema>;
export type AuthorizationPolicy = z.output<typeof authorizationPolicySchema>;

export type HttpRoute = TrafficRoute['spec']['http'][number];
export type Backend = HttpRoute['backends'][number];
export type AuthorizationRule = AuthorizationPolicy['spec']['rules'][number];

/** Any valid document, after defaults are applied (what the store holds). */
export type MeshObject = Mesh | Service | Instance | TrafficRoute | DestinationPolicy | AuthorizationPolicy;
export type Kind = MeshObject['kind'];
/** The object type of one kind: `ObjectOfKind<'Service'>` is `Service`. */
export type ObjectOfKind<K extends Kind> = Extract<MeshObject, { kind: K }>;

/** What a user may write: the input shape, before defaults. */
export type MeshDocument = z.input<
  | typeof meshSchema
  | typeof serviceSchema
  | typeof instanceSchema
  | typeof trafficRouteSchema
  | typeof destinationPolicySchema
  | typeof authorizationPolicySchema
>;

export interface KindInfo<K extends Kind> {
  /** Lower-case plural used in REST paths: `/v1/{plural}/{name}`. */
  readonly plural: string;
  readonly schema: z.ZodType<ObjectOfKind<K>, unknown>;
}

/** Every kind, in the order they are best applied (things referenced before their referrers). */
export const KINDS = {
  Mesh: { plural: 'meshes', schema: meshSchema },
  Service: { plural: 'services', schema: serviceSchema },
  Instance: { plural: 'instances', schema: instanceSchema },
  TrafficRoute: { plural: 'trafficroutes', schema: trafficRouteSchema },
  DestinationPolicy: { plural: 'destinationpolicies', schema: destinationPolicySchema },
  AuthorizationPolicy: { plural: 'authorizationpolicies', schema: authorizationPolicySchema },
} as const satisfies { readonly [K in Kind]: KindInfo<K> };

export const KIND_NAMES = Object.keys(KINDS) as readonly Kind[];

/** True when `s` names a kind. */
export function isKind(s: unknown): s is Kind {
  return typeof s === 'string' && Object.hasOwn(KINDS, s);
}

/** The kind whose REST plural is `plural` (`'services'` -> `'Service'`), or undefined. */
export function findKindByPlural(plural: string): Kind | undefined {
  return KIND_NAMES.find((k) => KINDS[k].plural === plural);
}

/** The Mesh in effect when none is stored: every default applied. */
export function defaultMesh(): Mesh {
  return meshSchema.parse({ kind: 'Mesh', name: 'default', spec: {} });
}
