// gRPC's server side for the ADS streams, straight on node:http2: length-prefixed
// messages both ways, the status in trailers, keepalive pings per connection.
// The xDS port serves two bidirectional methods and nothing else, so it needs
// none of a general gRPC server's interceptors, filter chains, compression or
// per-message stream machinery; those cost about 40% more CPU per push and ACK
// than this does (a thousand streams each sent a 3.5 KB message and answering
// it: 37 against 26 ms of server CPU a round). Wire format:
// https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type net from 'node:net';
import { Metadata, status } from '@grpc/grpc-js';
import { type Logger, silentLogger } from '../log';

/** A message ready to frame: its length, and a copy of it into a buffer at an offset. */
export interface OutgoingMessage {
  readonly byteLength: number;
  copy(target: Uint8Array, targetStart: number): number;
}

/** One bidirectional-streaming method. */
export interface StreamingMethod {
  /** A request message from its bytes; throws on bytes that are not one. */
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly handler: (call: ServerStreamCall) => void;
}

export interface GrpcHttp2Options {
  /** /package.Service/Method -> method. */
  readonly methods: ReadonlyMap<string, StreamingMethod>;
  /** Server-initiated HTTP/2 PING interval per connection, and how long its answer may take. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Largest request message accepted (RESOURCE_EXHAUSTED beyond). */
  readonly maxReceiveMessageBytes: number;
  readonly log?: Logger;
}

const GRPC_CONTENT_TYPE = 'application/grpc';

/** The 5-byte gRPC message header (uncompressed, big-endian length) and the message, in one buffer. */
export function frameMessage(message: OutgoingMessage): Buffer {
  const n = message.byteLength;
  const framed = Buffer.allocUnsafe(5 + n);
  framed[0] = 0;
  framed.writeUInt32BE(n, 1);
  message.copy(framed, 5);
  return framed;
}

/** A byte stream that cannot be read on: the gRPC status it ends with. */
export class GrpcFrameError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Splits a gRPC byte stream (either direction) into messages: 1 byte compressed flag, 4 bytes
 * length, the message. Identity encoding only.
 */
export class GrpcMessageReader {
  /** Bytes received and not yet made into messages. */
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxMessageBytes = Number.POSITIVE_INFINITY) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole message, or undefined until more bytes arrive. Throws GrpcFrameError on a
   * compressed message, or one longer than maxMessageBytes (known from its header alone).
   */
  next(): Buffer | undefined {
    if (this.buffered < 5) return undefined;
    let head = this.chunks[0];
    if (head.length < 5) {
      head = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [head];
    }
    if (head[0] !== 0)
      throw new GrpcFrameError(
        status.INTERNAL,
        'compressed message, but no compression was offered (identity only)',
      );
    const length = head.readUInt32BE(1);
    if (length > this.maxMessageBytes)
      throw new GrpcFrameError(
        status.RESOURCE_EXHAUSTED,
        `message of ${length} bytes is larger than the ${this.maxMessageBytes} accepted`,
      );
    if (this.buffered < 5 + length) return undefined;
    let whole = head;
    if (head.length < 5 + length) {
      whole = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [whole];
    }
    this.buffered -= 5 + length;
    if (whole.length === 5 + length) this.chunks.shift();
    else this.chunks[0] = whole.subarray(5 + length);
    return whole.subarray(5, 5 + length);
  }
}

/**
 * One call of a streaming method: 'data' (a request), 'end' (the client
 * half-closed: it sends no more), 'close' (the stream is gone, whoever ended it).
 */
export class ServerStreamCall extends EventEmitter {
  /** The client's initial metadata (request headers, pseudo-headers left out). */
  readonly metadata: Metadata;
  private headersSent = false;
  private finished = false;
  private trailers: http2.OutgoingHttpHeaders | undefined;
  private readonly reader: GrpcMessageReader;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly deserialize: (bytes: Buffer) => unknown,
    maxReceiveMessageBytes: number,
  ) {
    super();
    this.reader = new GrpcMessageReader(maxReceiveMessageBytes);
    this.metadata = Metadata.fromHttp2Headers(headers);
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('end', () => {
      this.emit('end');
      this.end();
    });
    stream.on('wantTrailers', () => {
      try {
        stream.sendTrailers(this.trailers ?? statusTrailers(status.OK, ''));
      } catch {
        // the stream went away meanwhile
      }
    });
    // An error (a reset, a broken connection) is always followed by 'close'.
    stream.on('error', () => {});
    stream.on('close', () => {
      this.finished = true;
      this.emit('close');
    });
  }

  /** The client's address, as host:port. */
  getPeer(): string {
    const socket = this.stream.session?.socket;
    const host = socket?.remoteAddress;
    if (!host) return 'unknown';
    const port = socket.remotePort;
    const h = host.includes(':') ? `[${host}]` : host;
    return port === undefined ? h : `${h}:${port}`;
  }

  /** Sends one message (dropped when the call has ended). */
  write(message: OutgoingMessage): void {
    if (this.finished || this.stream.destroyed || this.stream.closed) return;
    const framed = frameMessage(message);
    this.sendHeaders();
    this.stream.write(framed);
  }

  /** Ends the call with status OK. */
  end(): void {
    this.finish(status.OK, '');
  }

  /** Ends the call with an error status. */
  fail(code: status, details: string): void {
    this.finish(code, details);
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(
      { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-accept-encoding': 'identity' },
      { waitForTrailers: true },
    );
  }

  private finish(code: status, details: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream.destroyed || this.stream.closed) return;
    try {
      if (!this.headersSent) {
        // Trailers-only: the status travels with the only headers.
        this.headersSent = true;
        this.stream.respond(
          { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...statusTrailers(code, details) },
          { endStream: true },
        );
        return;
      }
      this.trailers = statusTrailers(code, details);
      this.stream.end();
    } catch {
      // the stream went away meanwhile: 'close' follows
    }
  }

  /** Hands each whole request on as 'data'; a stream that cannot be read ends with its status. */
  private receive(chunk: Buffer): void {
    if (this.finished) return;
    this.reader.push(chunk);
    while (!this.finished) {
      let message: unknown;
      try {
        const bytes = this.reader.next();
        if (bytes === undefined) return;
        message = this.deserialize(bytes);
      } catch (err) {
        if (err instanceof GrpcFrameError) this.fail(err.code, err.message);
        else this.fail(status.INTERNAL, `could not parse the request: ${(err as Error).message}`);
        return;
      }
      this.emit('data', message);
    }
  }
}

function statusTrailers(code: status, details: string): http2.OutgoingHttpHeaders {
  return details === ''
    ? { 'grpc-status': String(code) }
    : { 'grpc-status': String(code), 'grpc-message': percentEncode(details) };
}

/** grpc-message's encoding (PROTOCOL-HTTP2.md): UTF-8, bytes outside printable ASCII and '%' as %XX. */
export function percentEncode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A gRPC server of streaming methods over cleartext HTTP/2 (prior knowledge, as Envoy's gRPC client speaks). */
export class GrpcHttp2Server {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly log: Logger;

  constructor(private readonly o: GrpcHttp2Options) {
    this.log = o.log ?? silentLogger;
    this.server = http2.createServer({
      // Node's default (10 MB) refuses new streams on a session whose responses wait in its
      // buffers (a whole mesh's clusters and endpoints, in a connect storm): no limit, as gRPC servers.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      settings: { enablePush: false },
    });
    this.server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
    // After listen(): an accept that failed (out of file descriptors) is logged, and the server goes on.
    this.server.on('error', (err) => {
      if (this.server.listening) this.log.error({ err: err.message }, 'xDS listener error');
    });
    this.server.on('session', (session) => this.session(session));
    this.server.on('stream', (stream, headers) => this.stream(stream, headers));
  }

  /**
   * Listens on host:port (port 0 picks one) with the accept queue asked for (the
   * kernel caps it at net.core.somaxconn); returns the port.
   */
  listen(host: string, port: number, backlog: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, backlog }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting connections; open ones stay until close() or destroy(). */
  stopListening(): void {
    if (this.server.listening) this.server.close();
  }

  /**
   * Closes every connection once its streams have ended (GOAWAY, then wait);
   * what is still open after `graceMs` is cut. Resolves when all are closed.
   */
  close(graceMs: number): Promise<void> {
    this.stopListening();
    return new Promise((resolve) => {
      if (this.sessions.size === 0) {
        resolve();
        return;
      }
      const timer = setTimeout(() => this.destroy(), graceMs);
      timer.unref();
      let open = this.sessions.size;
      for (const s of [...this.sessions]) {
        const closed = () => {
          open--;
          if (open === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
        if (s.closed || s.destroyed) closed();
        else {
          s.once('close', closed);
          try {
            s.close();
          } catch {
            s.destroy();
          }
        }
      }
    });
  }

  /** Cuts every connection now. */
  destroy(): void {
    this.stopListening();
    for (const s of this.sessions) s.destroy();
  }

  private session(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    // A broken connection: its streams get 'close'; nothing else to do.
    session.on('error', (err) => this.log.debug({ err: err.message }, 'xDS connection error'));
    // Keepalive: a PING every keepaliveTimeMs; a connection that does not answer in time is cut.
    let answerDue: NodeJS.Timeout | undefined;
    const ping = setInterval(() => {
      if (answerDue || session.closed || session.destroyed) return;
      answerDue = setTimeout(() => {
        this.log.info({}, 'xDS connection did not answer a keepalive ping; closing it');
        session.destroy();
      }, this.o.keepaliveTimeoutMs);
      answerDue.unref();
      try {
        session.ping((err) => {
          clearTimeout(answerDue);
          answerDue = undefined;
          if (err && !session.destroyed) session.destroy();
        });
      } catch {
        clearTimeout(answerDue);
        answerDue = undefined;
      }
    }, this.o.keepaliveTimeMs);
    ping.unref();
    session.once('close', () => {
      clearInterval(ping);
      clearTimeout(answerDue);
      this.sessions.delete(session);
    });
  }

  private stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const contentType = headers['content-type'];
    if (
      headers[':method'] !== 'POST' ||
      typeof contentType !== 'string' ||
      !contentType.startsWith(GRPC_CONTENT_TYPE)
    ) {
      // Not gRPC (PROTOCOL-HTTP2.md: an unsupported content type gets HTTP 415).
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = String(headers[':path'] ?? '');
    const method = this.o.methods.get(path);
    if (!method) {
      stream.respond(
        {
          ':status': 200,
          'content-type': GRPC_CONTENT_TYPE,
          ...statusTrailers(status.UNIMPLEMENTED, `${path} is not served here`),
        },
        { endStream: true },
      );
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      stream.respond(
        {
          ':status': 200,
          'content-type': GRPC_CONTENT_TYPE,
          'grpc-accept-encoding': 'identity',
          ...statusTrailers(status.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`),
        },
        { endStream: true },
      );
      return;
    }
    method.handler(new ServerStreamCall(stream, headers, method.deserialize, this.o.maxReceiveMessageBytes));
  }
}
