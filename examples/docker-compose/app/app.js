// The demo workload (no dependencies, node >= 18): answers with its name, and when it
// has an upstream, first calls it through its own sidecar and answers with the chain,
// e.g. "frontend -> api -> reviews-v2". Used by docker-compose.yml and `meshplane demo`.
//
// Environment:
//   NAME               what it answers with (required)
//   LISTEN             host:port to listen on (default 0.0.0.0:8080)
//   UPSTREAM_URL       its sidecar's outbound listener for the upstream, e.g. http://127.0.0.1:9081
//   UPSTREAM_SERVICE   the upstream service (sent as the Host header), e.g. api
//   FLAKY_PATH_PREFIX  requests under this path fail every second time with 503 (to show retries)
'use strict';
const http = require('node:http');

const name = process.env.NAME;
if (!name) {
  console.error('app: NAME is required');
  process.exit(2);
}
const listen = process.env.LISTEN || '0.0.0.0:8080';
const colon = listen.lastIndexOf(':');
const host = listen.slice(0, colon);
const port = Number(listen.slice(colon + 1));
const upstreamUrl = process.env.UPSTREAM_URL;
const upstreamService = process.env.UPSTREAM_SERVICE;
const flakyPrefix = process.env.FLAKY_PATH_PREFIX;
// Headers passed on to the upstream, so that routes can match on them end to end.
const PROPAGATE = [
  'x-request-id',
  'x-user',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
];
let flakyCount = 0;

function reply(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-app-name': name });
  res.end(`${text}\n`);
}

function callUpstream(req, res) {
  const headers = { host: upstreamService };
  for (const h of PROPAGATE) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
  const up = http.request(
    new URL(req.url, upstreamUrl),
    { method: req.method, headers, agent: false, timeout: 10_000 },
    (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').trim();
        if (r.statusCode >= 200 && r.statusCode < 300) reply(res, 200, `${name} -> ${body}`);
        // Pass the upstream's failure on, saying which hop failed.
        else
          reply(
            res,
            r.statusCode,
            `${name} -> ${upstreamService} failed: HTTP ${r.statusCode} ${body.slice(0, 200)}`,
          );
      });
      r.on('error', (err) => reply(res, 502, `${name} -> ${upstreamService} failed: ${err.message}`));
    },
  );
  up.on('timeout', () => up.destroy(new Error('timeout')));
  up.on('error', (err) => {
    if (!res.headersSent) reply(res, 502, `${name} -> ${upstreamService} failed: ${err.message}`);
  });
  up.end();
}

const server = http.createServer((req, res) => {
  req.resume();
  if (req.url === '/healthz') return reply(res, 200, 'ok');
  if (flakyPrefix && req.url.startsWith(flakyPrefix) && ++flakyCount % 2 === 0) {
    return reply(res, 503, `${name}: failed on purpose (every second request under ${flakyPrefix})`);
  }
  if (upstreamUrl && upstreamService) return callUpstream(req, res);
  reply(res, 200, name);
});
server.listen(port, host, () => console.log(`${name} listening on ${listen}`));

// As PID 1 in a container, node gets no default signal handling: stop on SIGTERM/SIGINT.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
