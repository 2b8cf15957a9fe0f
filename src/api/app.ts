// The REST API (express 5): apply, list, get, put, delete, heartbeats, proxies,
// proxy config, bootstrap, tokens, the OpenAPI document, health and metrics.
// Contract: shared/design/API.md. It talks to the store, the xDS cache and
// status, never to the translator.
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { stringify as toYaml } from 'yaml';
import { decodeResource } from '../../envoy-protos';
import { type AdsApiType, type BootstrapOptions, buildBootstrap } from '../bootstrap';
import type { ChangeRecord } from '../changes';
import type { Logger } from '../log';
import { type Kind, labelsSchema, type MeshObject, nameSchema, parseDurationMs } from '../model';
import type { Store } from '../registry';
import { MAX_TOKEN_TTL_SECONDS, type TokenService } from '../sds/tokens';
import {
  type AdsServer,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  SHORT_NAMES,
  type TypeUrl,
  type XdsCache,
} from '../xds';
import { decodeUtf8, readDocuments, readSingleDocument } from './body';
import { ApiError, toApiError } from './errors';
import { createHistoryRouter } from './history';
import { buildOpenApi } from './openapi';
import { ifMatchOf, kindOf } from './request';

/** What the API shows on an object besides the document: warnings and NACKs that concern it. */
export interface ObjectStatus {
  readonly warnings: readonly string[];
  readonly nacks: readonly object[];
  /** Set when a proxy rejected the object's latest version: what is served instead. */
  readonly quarantined?: object;
}

export interface ApiOptions {
  readonly store: Store;
  readonly ads: AdsServer;
  readonly cache: XdsCache;
  readonly tokens: TokenService;
  /** Renews a TTL-registered instance; false when it does not exist. */
  readonly heartbeat: (name: string) => Promise<{ expiresAt: Date | undefined } | undefined>;
  readonly adminToken: string;
  /** When true, reads need the admin token too (default: reads are open). */
  readonly readsRequireToken: boolean;
  /** Where bootstraps point sidecars (the address Envoys reach the xDS server on). */
  readonly xdsAdvertise: { readonly address: string; readonly port: number };
  readonly metrics: Registry;
  readonly ready: () => boolean;
  readonly log: Logger;
  readonly version: string;
  readonly bodyLimitBytes?: number;
  readonly tokenTtlSeconds?: number;
  /** The push pipeline: warnings per object, the built revision. */
  readonly builder?: {
    readonly builtRevision: number;
    warningsFor(kind: Kind, name: string): string[];
    rejectionsFor(kind: Kind, name: string): { nacks: readonly object[]; quarantined?: object };
    preview(docs: readonly MeshObject[]): object[];
    rejectedBy(nodeId: string): { kind: string; name: string; type: string; message: string }[];
    waitForRevision(revision: number, timeoutMs?: number): Promise<boolean>;
  };
  /** Change tracking: GET /v1/changes/{id}. */
  readonly changes?: {
    get(id: number): ChangeRecord | undefined;
    toJson(c: ChangeRecord): Record<string, unknown>;
    recent(limit?: number): ChangeRecord[];
  };
  /** The mesh CA's certificate (PEM): the trust bundle, never a key. */
  readonly trustBundle?: () => string;
}

const TYPE_BY_NAME: Record<string, TypeUrl> = {
  listeners: LISTENER_TYPE,
  clusters: CLUSTER_TYPE,
  routes: ROUTE_TYPE,
  endpoints: ENDPOINT_TYPE,
  secrets: SECRET_TYPE,
};

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function bearer(req: Request): string | undefined {
  const h = req.get('authorization');
  const m = h?.match(/^Bearer\s+(.+)$/i);
  return m?.[1]?.trim();
}

/** Parses `k=v,k2=v2`. */
export function parseLabelSelector(s: unknown): Record<string, string> | undefined {
  if (s === undefined || s === '') return undefined;
  if (typeof s !== 'string')
    throw new ApiError('INVALID', 'labels must be given once', [{ path: 'labels', message: 'repeated' }]);
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) {
      throw new ApiError('INVALID', `bad label selector "${s}"`, [
        { path: 'labels', message: `"${part}" is not key=value` },
      ]);
    }
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** Strips private keys from a decoded Secret (the API never returns one). */
function redactSecret(obj: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(obj)) as { tls_certificate?: { private_key?: unknown } };
  if (copy.tls_certificate?.private_key) copy.tls_certificate.private_key = { redacted: true };
  return copy as Record<string, unknown>;
}

/** Builds the express application; the caller owns the HTTP server. */
export function createApiApp(o: ApiOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  /** Waits (briefly) for the pipeline to translate a revision, then reports the objects' warnings. */
  const warningsAfter = async (revision: number, objects: readonly { kind: Kind; name: string }[]) => {
    const builder = o.builder;
    if (!builder || objects.length === 0) return [];
    await builder.waitForRevision(revision);
    return objects.flatMap((x) =>
      builder.warningsFor(x.kind, x.name).map((message) => ({ kind: x.kind, name: x.name, message })),
    );
  };
  const statusFor = (kind: Kind, name: string): ObjectStatus => ({
    warnings: o.builder?.warningsFor(kind, name) ?? [],
    nacks: [],
    ...o.builder?.rejectionsFor(kind, name),
  });
  const rawBody = express.raw({ type: () => true, limit: o.bodyLimitBytes ?? 1024 * 1024 });

  // Health and metrics: no token, ever.
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    if (o.ready()) res.json({ status: 'ready' });
    else res.status(503).json(new ApiError('NOT_READY', 'not ready: store or xDS server not up').toJSON());
  });
  app.get('/metrics', async (_req, res) => {
    res.set('content-type', o.metrics.contentType).send(await o.metrics.metrics());
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(buildOpenApi(o.version));
  });

  // Authentication, per route (never by matching req.path, which routing matches
  // case-insensitively and with an optional trailing slash): mutations and
  // bootstraps always need the admin token; reads when configured.
  const requireAdmin = (req: Request, res: Response, next: NextFunction) => {
    const token = bearer(req);
    let problem: string | undefined;
    if (!token) problem = 'this call needs the admin token: Authorization: Bearer <token>';
    else if (!sameToken(token, o.adminToken)) problem = 'invalid admin token';
    if (problem === undefined) return next();
    res.set('www-authenticate', 'Bearer realm="meshplane"');
    next(new ApiError('UNAUTHENTICATED', problem));
  };
  const write = requireAdmin;
  const read = (req: Request, res: Response, next: NextFunction) =>
    o.readsRequireToken ? requireAdmin(req, res, next) : next();

  app.post('/v1/apply', write, rawBody, async (req, res) => {
    const dryRun = req.query.dryRun === 'true' || req.query.dryRun === '1';
    const docs = readDocuments(req.body, req.get('content-type'));
    const result = await o.store.apply(docs, { dryRun });
    const changed = !dryRun && result.changes.some((c) => c.action !== 'unchanged');
    res.json({
      dryRun,
      ...result,
      // A dry run tells what each connected proxy would get: Envoy resources added, changed, removed.
      ...(dryRun && o.builder ? { proxies: o.builder.preview(docs) } : {}),
      ...(changed ? { changeId: result.revision } : {}),
      warnings: await warningsAfter(result.revision, dryRun ? [] : docs),
    });
  });

  app.get('/v1/proxies', read, (_req, res) => {
    // A proxy that rejected a policy runs without it (quarantined); it stays NACKED, with the
    // rejected objects listed, until the policy is fixed or removed.
    const items = o.ads.proxiesJson().map((p) => {
      const rejected = o.builder?.rejectedBy(String(p.nodeId)) ?? [];
      if (rejected.length === 0) return p;
      const types = { ...(p.types as Record<string, Record<string, unknown>>) };
      for (const r of rejected) {
        const typeUrl = Object.keys(types).find((t) => SHORT_NAMES[t as TypeUrl] === r.type);
        if (typeUrl) types[typeUrl] = { ...types[typeUrl], state: 'NACKED' };
      }
      return { ...p, state: 'NACKED', types, rejected };
    });
    res.json({ builtRevision: o.builder?.builtRevision, items });
  });

  app.get('/v1/changes', read, (_req, res) => {
    if (!o.changes) throw new ApiError('NOT_FOUND', 'change tracking is off');
    const changes = o.changes;
    res.json({ items: changes.recent().map((c) => changes.toJson(c)) });
  });

  app.get('/v1/changes/:id', read, (req, res) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id) || id < 1) {
      throw new ApiError('INVALID', 'a change id is a positive integer', [
        { path: 'id', message: 'not a change id' },
      ]);
    }
    const c = o.changes?.get(id);
    if (!c || !o.changes)
      throw new ApiError('NOT_FOUND', `change ${id} not found (too old, or nothing changed)`);
    res.json(o.changes.toJson(c));
  });

  app.get('/v1/mesh/ca', read, (_req, res) => {
    if (!o.trustBundle) throw new ApiError('NOT_FOUND', 'no mesh CA');
    res.type('application/x-pem-file').send(o.trustBundle());
  });

  app.get('/v1/proxies/:nodeId/config', read, (req, res) => {
    const nodeId = String(req.params.nodeId);
    if (!o.cache.has(nodeId) && !o.ads.proxy(nodeId))
      throw new ApiError('NOT_FOUND', `proxy "${nodeId}" not found`);
    const wanted = req.query.type === undefined ? Object.keys(TYPE_BY_NAME) : [String(req.query.type)];
    const out: Record<string, unknown[]> = {};
    for (const name of wanted) {
      const typeUrl = TYPE_BY_NAME[name];
      if (!typeUrl) {
        throw new ApiError('INVALID', `unknown type "${name}"`, [
          { path: 'type', message: `one of ${Object.keys(TYPE_BY_NAME).join(', ')}` },
        ]);
      }
      out[name] = [...o.cache.get(nodeId, typeUrl).values()].map((r) => {
        const decoded = decodeResource(typeUrl, r.value);
        return typeUrl === SECRET_TYPE ? redactSecret(decoded) : decoded;
      });
    }
    res.json({ nodeId, ...out });
  });

  app.get('/v1/bootstrap', requireAdmin, (req, res) => {
    const q = req.query as Record<string, string | undefined>;
    const details: { path: string; message: string }[] = [];
    const need = (k: string) => {
      if (!q[k]) details.push({ path: k, message: 'required' });
      return q[k] ?? '';
    };
    const port = (k: string, dflt?: number) => {
      if (q[k] === undefined) {
        if (dflt === undefined) details.push({ path: k, message: 'required' });
        return dflt ?? 0;
      }
      const n = Number(q[k]);
      if (!Number.isInteger(n) || n < 1 || n > 65535)
        details.push({ path: k, message: 'must be a port number' });
      return n;
    };
    const service = need('service');
    if (service && !nameSchema.safeParse(service).success) {
      details.push({ path: 'service', message: 'must be a service name (lower-case letters, digits, "-")' });
    }
    const address = need('address');
    if (address && isIP(address) === 0) {
      details.push({ path: 'address', message: "must be an IPv4 or IPv6 address (the workload's own)" });
    }
    const appPort = port('appPort');
    const inboundPort = port('inboundPort', 15006);
    const adminPort = port('adminPort', 9901);
    const xdsPort = port('xdsPort', o.xdsAdvertise.port);
    const apiType = q.apiType ?? 'DELTA_GRPC';
    if (apiType !== 'GRPC' && apiType !== 'DELTA_GRPC')
      details.push({ path: 'apiType', message: 'GRPC or DELTA_GRPC' });
    let labels: Record<string, string> = {};
    try {
      labels = parseLabelSelector(q.labels) ?? {};
      const valid = labelsSchema.safeParse(labels);
      if (!valid.success) {
        for (const issue of valid.error.issues) {
          details.push({ path: 'labels', message: `${issue.path.map(String).join('.')}: ${issue.message}` });
        }
      }
    } catch (err) {
      details.push(...((err as ApiError).details ?? []));
    }
    if (details.length > 0) throw new ApiError('INVALID', 'invalid bootstrap parameters', details);
    const nodeId = q.nodeId ?? `${service}-${address.replace(/[^0-9a-z]/gi, '-')}`;
    const { token } = o.tokens.issue(service, o.tokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS);
    const options: BootstrapOptions = {
      nodeId,
      cluster: service,
      metadata: { service, address, inboundPort, appPort, adminPort, labels },
      xdsAddress: q.xdsAddress ?? o.xdsAdvertise.address,
      xdsPort,
      apiType: apiType as AdsApiType,
      adminAddress: q.adminAddress ?? address,
      adminPort,
      token,
    };
    res.type('application/yaml').send(toYaml(buildBootstrap(options)));
  });

  app.post('/v1/tokens', write, rawBody, (req, res) => {
    const text = decodeUtf8(req.body);
    const shape = 'body must be a JSON object: {"service": "...", "ttl": "24h"}';
    let body: { service?: unknown; ttl?: unknown };
    try {
      body = text.trim() ? JSON.parse(text) : {};
    } catch {
      throw new ApiError('INVALID', shape);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiError('INVALID', shape);
    const details: { path: string; message: string }[] = [];
    if (typeof body.service !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(body.service)) {
      details.push({ path: 'service', message: 'a service name is required' });
    }
    let ttlSeconds = o.tokenTtlSeconds ?? MAX_TOKEN_TTL_SECONDS;
    if (body.ttl !== undefined) {
      try {
        ttlSeconds = Math.ceil(parseDurationMs(String(body.ttl)) / 1000);
        if (ttlSeconds <= 0) throw new Error('not positive');
        if (ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
          details.push({ path: 'ttl', message: `at most ${MAX_TOKEN_TTL_SECONDS / 3600}h` });
        }
      } catch {
        details.push({ path: 'ttl', message: 'a positive duration such as 24h' });
      }
    }
    if (details.length > 0) throw new ApiError('INVALID', 'invalid token request', details);
    const { token, claims } = o.tokens.issue(body.service as string, ttlSeconds);
    res.status(201).json({
      token,
      id: claims.id,
      service: claims.service,
      expiresAt: new Date(claims.expiresAt * 1000).toISOString(),
    });
  });

  app.delete('/v1/tokens/:id', write, async (req, res) => {
    await o.tokens.revoke(String(req.params.id));
    res.json({ revoked: req.params.id });
  });

  app.post('/v1/instances/:name/heartbeat', write, async (req, res) => {
    const r = await o.heartbeat(String(req.params.name));
    if (!r) throw new ApiError('NOT_FOUND', `Instance "${req.params.name}" not found`);
    res.json({ name: req.params.name, expiresAt: r.expiresAt?.toISOString() });
  });

  // History, diff and rollback: /v1/{plural}/{name}/history|diff|rollback (history.ts).
  app.use(createHistoryRouter({ store: o.store, read, write, warningsAfter }));

  app.get('/v1/:kind', read, async (req, res) => {
    const kind = kindOf(req);
    const items = await o.store.list(kind, { labels: parseLabelSelector(req.query.labels) });
    res.json({ kind, revision: await o.store.revision(), items });
  });

  app.get('/v1/:kind/:name', read, async (req, res) => {
    const kind = kindOf(req);
    const name = String(req.params.name);
    const obj = await o.store.get(kind, name);
    if (!obj) throw new ApiError('NOT_FOUND', `${kind} "${name}" not found`);
    res.set('etag', `"${obj.resourceVersion}"`).json({ ...obj, status: statusFor(kind, name) });
  });

  app.put('/v1/:kind/:name', write, rawBody, async (req, res) => {
    const kind = kindOf(req);
    const name = String(req.params.name);
    const doc = readSingleDocument(req.body, req.get('content-type'), kind, name);
    const r = await o.store.put(doc, { ifMatch: ifMatchOf(req) });
    res
      .status(r.action === 'created' ? 201 : 200)
      .set('etag', `"${r.object.resourceVersion}"`)
      .json({
        revision: r.revision,
        action: r.action,
        ...(r.action !== 'unchanged' ? { changeId: r.revision } : {}),
        object: r.object,
        warnings: await warningsAfter(r.revision, [doc]),
      });
  });

  app.delete('/v1/:kind/:name', write, async (req, res) => {
    const kind = kindOf(req);
    const r = await o.store.delete(kind, String(req.params.name), { ifMatch: ifMatchOf(req) });
    res.json({ revision: r.revision, changeId: r.revision, object: r.object });
  });

  app.use((req: Request) => {
    throw new ApiError('NOT_FOUND', `no such endpoint: ${req.method} ${req.path}`);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiError = toApiError(err);
    if (apiError.code === 'INTERNAL') {
      o.log.error(
        { err: (err as Error)?.stack ?? String(err), method: req.method, path: req.path },
        'request failed',
      );
    }
    if (res.headersSent) return;
    res.status(apiError.status).json(apiError.toJSON());
  });
  return app;
}
