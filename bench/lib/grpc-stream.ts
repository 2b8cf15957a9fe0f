// One bidirectional gRPC stream on its own HTTP/2 connection, straight on
// node:http2: what the load generator needs of a gRPC client (length-prefixed
// messages both ways, grpc-status from the trailers) without a channel, name
// resolution, load balancing or interceptors per simulated proxy. Envoy's own
// gRPC client is as thin; grpc-js's client stack cost the load generator about
// as much CPU as the server it measures, on the same two cores.
import http2 from 'node:http2';
import net from 'node:net';
import { frameMessage, type GrpcFrameError, GrpcMessageReader } from '../../src/xds/grpc-http2';

/** How a stream ended: a gRPC status code (grpc.status numbering) and its message. */
export interface StreamEnd {
  readonly code: number;
  readonly details: string;
}

const UNKNOWN = 2;
const UNAVAILABLE = 14;

export interface StreamOptions {
  /** host:port */
  readonly address: string;
  /** /package.Service/Method */
  readonly path: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** HTTP/2 stream and connection flow-control window (bytes). */
  readonly windowBytes: number;
  readonly onMessage: (message: Buffer) => void;
  readonly onEnd: (end: StreamEnd) => void;
}

export class GrpcStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly req: http2.ClientHttp2Stream;
  private ended = false;
  private readonly reader = new GrpcMessageReader();

  constructor(private readonly o: StreamOptions) {
    const i = o.address.lastIndexOf(':');
    const host = o.address.slice(0, i);
    const port = Number(o.address.slice(i + 1));
    this.session = http2.connect(`http://${o.address}`, {
      settings: { initialWindowSize: o.windowBytes, enablePush: false },
      // Node's default (10 MB) throttles a session holding a large response in its buffers.
      maxSessionMemory: 4096,
      // ACKs are small writes: no Nagle delay behind a delayed TCP ACK.
      createConnection: () => net.connect({ host, port, noDelay: true }),
    });
    this.session.on('error', (err) => this.end({ code: UNAVAILABLE, details: err.message }));
    this.session.on('connect', () => {
      try {
        this.session.setLocalWindowSize(o.windowBytes);
      } catch {
        // the session went away meanwhile: its close ends the stream
      }
    });
    this.req = this.session.request({
      ':method': 'POST',
      ':path': o.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...o.metadata,
    });
    this.req.on('response', (headers) => {
      // Trailers-only response: the status comes with the headers.
      if (headers['grpc-status'] !== undefined) this.endWith(headers);
    });
    this.req.on('trailers', (trailers) => this.endWith(trailers));
    this.req.on('data', (chunk: Buffer) => this.receive(chunk));
    this.req.on('error', (err) => this.end({ code: UNAVAILABLE, details: err.message }));
    this.req.on('close', () => this.end({ code: UNAVAILABLE, details: 'stream closed without a status' }));
  }

  /** Sends one message. */
  write(message: Buffer): void {
    if (this.ended) return;
    this.req.write(frameMessage(message));
  }

  /** Cancels the stream and closes the connection; onEnd is not called. */
  close(): void {
    this.ended = true;
    this.req.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }

  private endWith(headers: http2.IncomingHttpHeaders): void {
    const code = Number(headers['grpc-status'] ?? UNKNOWN);
    const raw = headers['grpc-message'];
    const details = typeof raw === 'string' ? decodeURIComponent(raw) : '';
    this.end({ code: Number.isInteger(code) ? code : UNKNOWN, details });
  }

  private end(e: StreamEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.o.onEnd(e);
    if (!this.req.closed) this.req.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }

  /** Hands each whole message on; a stream that cannot be read ends with its status. */
  private receive(chunk: Buffer): void {
    this.reader.push(chunk);
    while (!this.ended) {
      let message: Buffer | undefined;
      try {
        message = this.reader.next();
      } catch (err) {
        const e = err as GrpcFrameError;
        this.end({ code: e.code, details: e.message });
        return;
      }
      if (message === undefined) return;
      this.o.onMessage(message);
    }
  }
}
