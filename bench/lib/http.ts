// A small HTTP client for the harness: keep-alive agent (the REST API is called
// thousands of times), bounded timeouts.
import http from 'node:http';

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

// Reads share a small pool. Writes (the changes) reuse connections of their own, as a client
// making changes all the time would: a connection per change cost the server an accept and a
// loop turn or two before it read the change, time counted in every change's convergence. Their
// pool is larger than the changes ever in flight (S3: 50/s, each answered after its build), so
// no change waits for a socket.
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const writeAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  keepAlive?: boolean;
}

/**
 * Requests sent again because the server had closed the idle keep-alive connection they went out
 * on (ECONNRESET on a reused socket, before any answer): the race every keep-alive client has with
 * the server's idle timeout. Node's documented remedy is to send such a request again; the server
 * never read it. Counted, so that a run shows how often it happened.
 */
export const resentOnClosedConnection = { count: 0 };

export async function httpRequest(url: string, o: RequestOptions = {}): Promise<HttpResponse> {
  try {
    return await requestOnce(url, o);
  } catch (err) {
    if (!(err instanceof ClosedIdleConnection)) throw err;
    resentOnClosedConnection.count++;
    return requestOnce(url, o);
  }
}

class ClosedIdleConnection extends Error {}

function requestOnce(url: string, o: RequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers,
        agent: o.keepAlive === false ? false : o.method && o.method !== 'GET' ? writeAgent : agent,
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${o.method ?? 'GET'} ${url}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && req.reusedSocket && err.code === 'ECONNRESET')
        reject(new ClosedIdleConnection(err.message));
      else reject(err);
    });
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

export function closeHttpAgent(): void {
  agent.destroy();
  writeAgent.destroy();
}
