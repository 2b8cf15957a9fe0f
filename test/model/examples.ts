// The example documents of MESH-MODEL.md, verbatim, for tests of the model and the store.
// Test data only: must not depend on anything but the model.
import { type MeshObject, parseDocuments, validateDocuments } from '../../src/model';

export const MESH_MODEL_EXAMPLE_YAML = `kind: Mesh            # singleton, name "default"
name: default
spec:
  trustDomain: mesh.local
  mtls: { mode: strict, certTTL: 24h }         # strict | permissive | disabled
  accessLog: { path: /dev/stdout, format: json }
  tracing: { provider: zipkin, collector: tracing:9411, samplePercent: 10 }
---
kind: Service
name: reviews
spec: { protocol: http, port: 9080 }           # http | http2 | grpc | tcp
---
kind: Instance        # usually registered by the sidecar itself on connect
name: reviews-v2-0
spec:
  service: reviews
  address: 127.0.0.12
  port: 15006                                  # the sidecar's inbound port
  labels: { version: v2 }
  locality: { region: eu-west, zone: eu-west-1a }
  health: healthy                              # healthy | unhealthy | draining
---
kind: TrafficRoute    # routing for calls TO a service
name: reviews-canary
spec:
  service: reviews
  http:
    - match: { path: { prefix: /api }, headers: { x-user: { exact: jason } } }
      backends: [ { subset: { version: v2 } } ]
    - backends:
        - { subset: { version: v1 }, weight: 90 }
        - { subset: { version: v2 }, weight: 10 }
      mirror: { subset: { version: v3 }, percent: 5 }
      timeout: 2s
      retries: { attempts: 3, perTryTimeout: 500ms, on: [5xx, reset, connect-failure] }
      fault: { delay: { percent: 10, duration: 2s }, abort: { percent: 5, status: 503 } }
      headers: { request: { set: { x-canary: "1" } } }
---
kind: DestinationPolicy   # how clients treat a service's instances
name: reviews
spec:
  service: reviews
  loadBalancer: { type: least_request }        # round_robin | least_request | random | ring_hash | maglev
  circuitBreaker: { maxConnections: 100, maxPendingRequests: 10, maxRequests: 100, maxRetries: 3 }
  outlierDetection: { consecutive5xx: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
  healthCheck: { http: { path: /healthz }, interval: 5s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 1 }
  localityFailover: true
  rateLimit: { requestsPerSecond: 100, burst: 200 }   # enforced at the service's inbound side
---
kind: AuthorizationPolicy
name: reviews-readers
spec:
  service: reviews
  action: allow                                # allow | deny; deny wins
  rules:
    - from: [ { service: productpage } ]       # by mTLS identity (SPIFFE)
      to: [ { methods: [GET], paths: [ "/reviews/*" ] } ]
`;

/** The MESH-MODEL.md example, parsed and validated (defaults applied). */
export function exampleObjects(): MeshObject[] {
  const parsed = parseDocuments(MESH_MODEL_EXAMPLE_YAML, 'application/yaml');
  if (!parsed.ok) throw new Error(`example does not parse: ${JSON.stringify(parsed.errors)}`);
  const valid = validateDocuments(parsed.value);
  if (!valid.ok) throw new Error(`example is not valid: ${JSON.stringify(valid.errors)}`);
  return valid.value;
}
