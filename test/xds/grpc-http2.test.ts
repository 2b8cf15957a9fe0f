// The ADS server's gRPC transport on the wire (node:http2 clients, not grpc-js):
// statuses for what it does not serve or cannot read, half-close, peers, and
// keepalive cutting a connection that does not answer.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { loadAdsPackageDefinition } from '../../envoy-protos';
import { AdsServer, CLUSTER_TYPE, XdsCache } from '../../src/xds';
import { percentEncode } from '../../src/xds/grpc-http2';
import { eventually } from '../support/eventually';

const DELTA = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

interface Outcome {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  /** grpc-status and grpc-message, from the trailers (or a trailers-only response). */
  readonly grpcStatus?: number;
  readonly grpcMessage?: string;
  /** Messages received before the end. */
  readonly messages: Buffer[];
}

function frame(message: Buffer, flag = 0): Buffer {
  const f = Buffer.alloc(5 + message.length);
  f[0] = flag;
  f.writeUInt32BE(message.length, 1);
  message.copy(f, 5);
  return f;
}

/** One request on its own connection; `send` writes to it; resolves when the response ends. */
function call(
  address: string,
  headers: http2.OutgoingHttpHeaders,
  send: (req: http2.ClientHttp2Stream) => void,
): Promise<Outcome> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const messages: Buffer[] = [];
    let buf = Buffer.alloc(0);
    // As gRPC clients do: the call is over once its status arrived.
    req.on('response', (h) => {
      got = h;
      if (h['grpc-status'] !== undefined) req.close();
    });
    req.on('trailers', (t) => {
      trailers = t;
      req.close();
    });
    req.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const n = buf.readUInt32BE(1);
        messages.push(buf.subarray(5, 5 + n));
        buf = buf.subarray(5 + n);
      }
    });
    req.on('error', reject);
    req.on('close', () => {
      session.close();
      const s = trailers['grpc-status'] ?? got['grpc-status'];
      const m = trailers['grpc-message'] ?? got['grpc-message'];
      resolve({
        status: Number(got[':status']),
        headers: got,
        grpcStatus: s === undefined ? undefined : Number(s),
        grpcMessage: m === undefined ? undefined : decodeURIComponent(String(m)),
        messages,
      });
    });
    send(req);
  });
}

describe('xds: gRPC transport', () => {
  const cache = new XdsCache();
  let server: AdsServer;
  let address: string;
  const definition = loadAdsPackageDefinition()[
    'envoy.service.discovery.v3.AggregatedDiscoveryService'
  ] as grpc.ServiceDefinition;
  const delta = definition.DeltaAggregatedResources;

  before(async () => {
    server = new AdsServer({
      cache,
      maxReceiveMessageBytes: 1_024,
      keepaliveTimeMs: 100,
      keepaliveTimeoutMs: 300,
    });
    address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  });
  after(() => server.shutdown(1_000));

  it('answers a method it does not serve with UNIMPLEMENTED, naming it', async () => {
    const out = await call(
      address,
      { ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/Nope' },
      (r) => r.end(),
    );
    assert.equal(out.status, 200);
    assert.equal(out.grpcStatus, grpc.status.UNIMPLEMENTED);
    assert.match(out.grpcMessage ?? '', /AggregatedDiscoveryService\/Nope is not served/);
  });

  it("percent-encodes a status message as gRPC's wire format says", () => {
    assert.equal(percentEncode('a/b: 100% é\n'), 'a/b: 100%25 %C3%A9%0A');
    assert.equal(decodeURIComponent(percentEncode('a/b: 100% é\n')), 'a/b: 100% é\n');
  });

  it('answers a request that is not gRPC with HTTP 415', async () => {
    const out = await call(address, { ':path': DELTA, 'content-type': 'application/json' }, (r) =>
      r.end('{}'),
    );
    assert.equal(out.status, 415);
    assert.equal(out.grpcStatus, undefined);
  });

  it('refuses a compressed message, and a compression it does not offer, with a status that says so', async () => {
    const flagged = await call(address, { ':path': DELTA }, (r) => r.write(frame(Buffer.from([0x12, 0]), 1)));
    assert.equal(flagged.grpcStatus, grpc.status.INTERNAL);
    assert.match(flagged.grpcMessage ?? '', /compressed message/);
    const gzip = await call(address, { ':path': DELTA, 'grpc-encoding': 'gzip' }, (r) => r.end());
    assert.equal(gzip.grpcStatus, grpc.status.UNIMPLEMENTED);
    assert.equal(gzip.headers['grpc-accept-encoding'], 'identity');
  });

  it('refuses a request larger than maxReceiveMessageBytes before it arrives whole', async () => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(4_096, 1);
    // Only the header is sent: the claim alone is refused.
    const out = await call(address, { ':path': DELTA }, (r) => r.write(head));
    assert.equal(out.grpcStatus, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(out.grpcMessage ?? '', /4096 bytes is larger than the 1024 accepted/);
  });

  it('ends a stream whose bytes are not a request with INTERNAL', async () => {
    // Field 1 (node) as a length-delimited message claiming more bytes than there are.
    const out = await call(address, { ':path': DELTA }, (r) =>
      r.write(frame(Buffer.from([0x0a, 0x05, 0x61]))),
    );
    assert.equal(out.grpcStatus, grpc.status.INTERNAL);
    assert.match(out.grpcMessage ?? '', /could not parse the request/);
  });

  it('serves a request split across frames, records the peer, and ends with OK when the client half-closes', async () => {
    const id = 'transport-split';
    const request = frame(
      delta.requestSerialize({
        node: { id, cluster: 'test' },
        type_url: CLUSTER_TYPE,
        resource_names_subscribe: [],
      }),
    );
    let port = 0;
    const out = await call(address, { ':path': DELTA }, (r) => {
      r.session?.once('connect', (s) => {
        port = (s.socket as net.Socket).localPort ?? 0;
      });
      // One byte, then the rest: the 5-byte header itself is split.
      r.write(request.subarray(0, 1));
      setImmediate(() => r.write(request.subarray(1)));
      r.on('data', () => {
        if (!r.writableEnded) r.end();
      });
    });
    assert.equal(out.status, 200);
    assert.equal(out.headers['content-type'], 'application/grpc');
    assert.equal(out.grpcStatus, grpc.status.OK);
    assert.equal(out.messages.length, 1);
    const response = delta.responseDeserialize(out.messages[0]);
    assert.equal(response.type_url, CLUSTER_TYPE);
    assert.equal(server.proxy(id)?.peer, `127.0.0.1:${port}`);
    await eventually(() => assert.ok(server.proxy(id)?.disconnectedAt, 'the stream ended'));
  });

  it('cuts a connection that does not answer keepalive pings; one that does stays open', async () => {
    // A client that speaks the HTTP/2 preface and SETTINGS, then never answers a PING.
    const mute = net.connect({ host: '127.0.0.1', port: server.port as number });
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    mute.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings]));
    let pings = 0;
    mute.on('data', (d: Buffer) => {
      // Frames: 3 bytes length, 1 byte type (6 = PING).
      for (let at = 0; at + 9 <= d.length; at += 9 + d.readUIntBE(at, 3)) if (d[at + 3] === 6) pings++;
    });
    const live = http2.connect(`http://${address}`);
    live.on('error', () => {});
    const mutedClosed = new Promise<void>((resolve) => mute.on('close', () => resolve()));
    mute.on('error', () => {});
    await mutedClosed;
    assert.ok(pings >= 1, 'the server pinged the mute client before cutting it');
    assert.ok(!live.closed && !live.destroyed, 'a client that answers pings keeps its connection');
    live.close();
  });
});
