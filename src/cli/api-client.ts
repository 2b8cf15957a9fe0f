// meshctl's REST client: one request at a time over node:http/https, errors
// sorted into "the server said no" and "the server could not be reached".
// Must not depend on the server's modules (it talks to the API only).
import http from 'node:http';
import https from 'node:https';

/** One `{path, message}` of an API error (shared/design/API.md). */
export interface ErrorDetail {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly [extra: string]: unknown;
}

/** The server answered with an error status (meshctl exits 1). */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ServerError';
  }
}

/** No answer: refused, unresolvable, reset or timed out (meshctl exits 3). */
export class UnreachableError extends Error {
  constructor(
    readonly server: string,
    readonly reason: string,
  ) {
    super(`cannot reach meshplane at ${server}: ${reason}`);
    this.name = 'UnreachableError';
  }
}

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  readonly server: string;
  readonly token?: string;
  readonly timeoutMs: number;
}

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly body?: string;
  readonly contentType?: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/**
 * A thin REST client. Every method throws ServerError for an HTTP status >= 400
 * and UnreachableError when no HTTP answer arrives.
 * @example await createApiClient({server: 'http://127.0.0.1:8080', timeoutMs: 30_000}).json('GET', '/v1/services')
 */
export interface ApiClient {
  readonly server: string;
  request(method: string, path: string, o?: RequestOptions): Promise<ApiResponse>;
  /** A request whose answer is JSON, parsed. */
  json<T = unknown>(method: string, path: string, o?: RequestOptions): Promise<T>;
}

/** Throws TypeError when `server` is not an http(s) URL. */
export function createApiClient(o: ClientOptions): ApiClient {
  const base = new URL(o.server);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TypeError(`--server must be an http:// or https:// URL, not "${o.server}"`);
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const server = `${base.protocol}//${base.host}${prefix}`;

  const request = (method: string, path: string, r: RequestOptions = {}): Promise<ApiResponse> => {
    const url = new URL(`${server}${path}`);
    for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json, application/yaml;q=0.9, */*;q=0.5' };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (r.body !== undefined) {
      headers['content-type'] = r.contentType ?? 'application/yaml';
      headers['content-length'] = String(Buffer.byteLength(r.body));
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      // agent: false: one connection per request, closed after it, so the CLI exits promptly.
      const req = lib.request(url, { method, headers, agent: false, timeout: o.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new UnreachableError(server, err.message)));
        res.on('end', () => {
          const answer: ApiResponse = {
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
          };
          if (answer.status >= 400) reject(errorOf(answer));
          else resolve(answer);
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new UnreachableError(server, err.code ? `${err.code} (${err.message})` : err.message));
      });
      if (r.body !== undefined) req.write(r.body);
      req.end();
    });
  };

  return {
    server,
    request,
    async json<T>(method: string, path: string, r?: RequestOptions): Promise<T> {
      const res = await request(method, path, r);
      try {
        return JSON.parse(res.text) as T;
      } catch {
        throw new ServerError(
          res.status,
          'BAD_RESPONSE',
          `expected JSON from ${method} ${path}, got: ${snippet(res.text)}`,
        );
      }
    },
  };
}

function snippet(text: string): string {
  const s = text.trim().replace(/\s+/g, ' ');
  return s.length > 200 ? `${s.slice(0, 200)}...` : s || '(empty body)';
}

/** The API's `{error: {code, message, details}}`, or a generic error for anything else (e.g. a proxy's page). */
function errorOf(res: ApiResponse): ServerError {
  try {
    const e = (JSON.parse(res.text) as { error?: Record<string, unknown> }).error;
    if (e && typeof e.message === 'string') {
      const details = Array.isArray(e.details)
        ? (e.details as unknown[]).filter(
            (d): d is ErrorDetail =>
              typeof d === 'object' &&
              d !== null &&
              typeof (d as ErrorDetail).path === 'string' &&
              typeof (d as ErrorDetail).message === 'string',
          )
        : [];
      return new ServerError(res.status, typeof e.code === 'string' ? e.code : 'ERROR', e.message, details);
    }
  } catch {
    // not JSON: fall through
  }
  return new ServerError(res.status, 'ERROR', `HTTP ${res.status}: ${snippet(res.text)}`);
}
