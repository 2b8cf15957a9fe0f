// A small HTTP client for the harness: keep-alive agent (the REST API is called
// thousands of times), bounded timeouts.
import http from 'node:http';

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

// Reads reuse connections; writes (keepAlive: false) each get their own, so that
// neither a pool limit nor a keep-alive connection closing under a request can
// add latency or errors that are the harness's, not the server's.
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

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
        agent: o.keepAlive === false ? false : agent,
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
}
