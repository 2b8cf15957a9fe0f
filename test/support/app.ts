// A test application: an HTTP server on a loopback address that answers every
// request with its own name, so tests can see which instance served a request.
import http from 'node:http';

export interface TestApp {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Requests received so far. */
  readonly requests: { method: string; path: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly name: string;
  readonly address: string;
  readonly port?: number;
  /** Optional behaviour per request (status, delay); default 200 with the app's name. */
  readonly respond?: (
    req: http.IncomingMessage,
    n: number,
  ) => { status?: number; delayMs?: number } | undefined;
}

export function startTestApp(o: TestAppOptions): Promise<TestApp> {
  const requests: TestApp['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    const behaviour = o.respond?.(req, requests.length) ?? {};
    const send = () => {
      const body = JSON.stringify({ name: o.name, path: req.url, method: req.method });
      res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json', 'x-app-name': o.name });
      res.end(body);
    };
    req.resume();
    req.on('end', () => (behaviour.delayMs ? setTimeout(send, behaviour.delayMs) : send()));
  });
  server.keepAliveTimeout = 1_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.address, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({
        name: o.name,
        address: o.address,
        port,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
