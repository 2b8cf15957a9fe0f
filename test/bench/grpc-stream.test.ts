// The load generator's thin gRPC stream against a real grpc-js server: messages
// both ways whatever the HTTP/2 framing, and the status from the trailers.
import assert from 'node:assert/strict';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { GrpcStream, type StreamEnd } from '../../bench/lib/grpc-stream';

const identity = (b: Buffer) => b;
const METHOD = {
  path: '/test.Echo/Chat',
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
};

describe('bench: gRPC stream on node:http2', () => {
  let server: grpc.Server;
  let address = '';
  let seenAuth: unknown[] = [];

  before(async () => {
    server = new grpc.Server();
    server.addService(
      { Chat: METHOD },
      {
        Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          seenAuth.push(call.metadata.get('authorization')[0]);
          call.on('data', (m: Buffer) => {
            const text = m.toString();
            if (text === 'end') {
              call.emit('error', {
                code: grpc.status.PERMISSION_DENIED,
                details: 'no token for ünïcode 100%',
              });
              return;
            }
            // Echo, and a large message that spans many DATA frames, and two small ones that
            // usually arrive in one chunk.
            call.write(m);
            if (text === 'big') call.write(Buffer.alloc(1_000_003, 7));
            if (text === 'pair') {
              call.write(Buffer.from('p1'));
              call.write(Buffer.from(''));
            }
          });
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  after(() => server.forceShutdown());

  function open(addr: string) {
    const got: Buffer[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    let end: ((e: StreamEnd) => void) | undefined;
    const ended = new Promise<StreamEnd>((resolve) => {
      end = resolve;
    });
    const s = new GrpcStream({
      address: addr,
      path: METHOD.path,
      metadata: { authorization: 'Bearer t0ken' },
      windowBytes: 256 * 1024 * 1024,
      onMessage: (m) => {
        got.push(Buffer.from(m));
        for (const w of [...waiters]) if (got.length >= w.n) w.resolve();
      },
      onEnd: (e) => end?.(e),
    });
    const messages = (n: number) =>
      new Promise<void>((resolve) => (got.length >= n ? resolve() : waiters.push({ n, resolve })));
    return { s, got, messages, ended };
  }

  it('sends and receives messages of any size, and ends with the status and its message', async () => {
    seenAuth = [];
    const c = open(address);
    c.s.write(Buffer.from('hello'));
    await c.messages(1);
    c.s.write(Buffer.from('big'));
    await c.messages(3);
    c.s.write(Buffer.from('pair'));
    await c.messages(6);
    assert.deepEqual(
      c.got.map((b) => (b.length > 100 ? `${b.length}x${b[0]}` : b.toString())),
      ['hello', 'big', '1000003x7', 'pair', 'p1', ''],
    );
    assert.ok(c.got[2].every((x) => x === 7));
    assert.deepEqual(seenAuth, ['Bearer t0ken']);
    c.s.write(Buffer.from('end'));
    assert.deepEqual(await c.ended, {
      code: grpc.status.PERMISSION_DENIED,
      details: 'no token for ünïcode 100%',
    });
  });

  it('a refused connection ends the stream as UNAVAILABLE', async () => {
    // A port that was just free: nothing listens on it.
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const c = open(`127.0.0.1:${port}`);
    const e = await c.ended;
    assert.equal(e.code, grpc.status.UNAVAILABLE);
    assert.match(e.details, /ECONNREFUSED/);
  });
});
