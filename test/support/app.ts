// A test application: an HTTP server on a loopback address that answers every
// request with its own name, so tests can see which instance served a request.
import http from 'node:http';
import net from 'node:net';

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
  // Longer than any test: a sidecar keeps its connections to the app open (Envoy's upstream idle
  // timeout is an hour) and one per worker thread, so an app that closes idle ones (1 s here before)
  // races a request the sidecar sends on one just as it closes: a rare 503 "connection termination"
  // that has nothing to do with what a test checks. close() ends every connection itself.
  server.keepAliveTimeout = 120_000;
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

/** A TCP app that echoes every byte back, prefixed once with its name and a newline. */
export function startTcpEchoApp(o: { name: string; address: string; port?: number }): Promise<TestApp> {
  const requests: TestApp['requests'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock: net.Socket) => {
    sockets.add(sock);
    requests.push({ method: 'TCP', path: '', headers: {} });
    sock.write(`${o.name}\n`);
    sock.pipe(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.address, () => {
      const addr = server.address();
      resolve({
        name: o.name,
        address: o.address,
        port: typeof addr === 'object' && addr ? addr.port : 0,
        requests,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
