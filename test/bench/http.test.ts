// The harness's HTTP client: a request that went out on a keep-alive connection
// the server had just closed is sent again, once, on a new one.
import assert from 'node:assert/strict';
import net from 'node:net';
import { closeHttpAgent, httpRequest, resentOnClosedConnection } from '../../bench/lib/http';

/**
 * A minimal HTTP/1.1 server on loopback: answers the first request of each connection
 * and keeps it open; resets the connection (TCP RST) when a second request arrives on it,
 * as a server does that closed the idle connection just as the client reused it.
 */
function resettingServer(): Promise<{ port: number; close: () => void; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let requests = 0;
    socket.on('data', () => {
      requests++;
      if (requests === 1)
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
      else socket.resetAndDestroy();
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => server.close(),
        connections: () => connections,
      }),
    ),
  );
}

describe('bench: HTTP client', () => {
  after(() => closeHttpAgent());

  it('sends a write again on a new connection when its reused one was reset before any answer', async () => {
    const s = await resettingServer();
    try {
      const url = `http://127.0.0.1:${s.port}/v1/x`;
      const before = resentOnClosedConnection.count;
      assert.equal((await httpRequest(url, { method: 'PUT', body: '{}' })).body, 'ok');
      // The agent reuses the idle connection; the server resets it; the request goes again.
      const again = await httpRequest(url, { method: 'PUT', body: '{}' });
      assert.equal(again.status, 200);
      assert.equal(resentOnClosedConnection.count - before, 1);
      assert.equal(s.connections(), 2);
    } finally {
      s.close();
    }
  });

  it('does not send again when a fresh connection is reset: the error reaches the caller', async () => {
    const server = net.createServer((socket) => {
      socket.on('data', () => socket.resetAndDestroy());
      socket.on('error', () => {});
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const before = resentOnClosedConnection.count;
      await assert.rejects(httpRequest(`http://127.0.0.1:${port}/`, { keepAlive: false }), /ECONNRESET/);
      assert.equal(resentOnClosedConnection.count, before);
    } finally {
      server.close();
    }
  });
});
