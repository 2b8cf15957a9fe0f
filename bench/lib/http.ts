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

export function httpRequest(
  url: string,
  o: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    keepAlive?: boolean;
  } = {},
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers,
        agent: o.keepAlive === false ? false : o.method && o.method !== 'GET' ? writeAgent : agent,
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${o.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

export function closeHttpAgent(): void {
  agent.destroy();
  writeAgent.destroy();
}
