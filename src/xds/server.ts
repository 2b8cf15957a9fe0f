// The Aggregated Discovery Service: State-of-the-World and Delta (incremental)
// xDS over one gRPC server, serving what the XdsCache holds for each proxy.
// Protocol only: it must not import the mesh model, the store or the translator.
// Rules followed here are numbered as in shared/design/XDS-PROTOCOL.md and come
// from https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { loadAdsPackageDefinition } from '../../envoy-protos';
import { type Logger, silentLogger } from '../log';
import type { XdsCache } from './cache';
import { GrpcHttp2Server, type StreamingMethod } from './grpc-http2';
import { type ProxyStatus, proxyStatusJson } from './status';
import {
  type AdsCall,
  type AdsStream,
  DeltaStream,
  SotwStream,
  type StreamContext,
  StreamScheduler,
} from './stream';
import type { TypeUrl } from './type-urls';

/** What a proxy presents on its first request, for the authenticator to judge. */
export interface ProxyIdentity {
  readonly nodeId: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  /** The gRPC initial metadata of the stream (where a bootstrap token travels). */
  readonly callMetadata: grpc.Metadata;
  readonly peer: string;
}

export type AuthResult = { ok: true } | { ok: false; code: grpc.status; message: string };

export type Authenticator = (identity: ProxyIdentity) => AuthResult;

export interface AdsServerOptions {
  readonly cache: XdsCache;
  /** Judges each stream's first request; streams are refused when it says no. Default: accept all. */
  readonly authenticate?: Authenticator;
  readonly log?: Logger;
  /**
   * How long a push of a later type waits for the ACK of an earlier one
   * (make-before-break, rule 5.2) before going ahead anyway.
   */
  readonly gateTimeoutMs?: number;
  /** First and largest wait before re-sending a type after a NACK (a guard beside parking, rule 2.6). */
  readonly nackBackoffMs?: { readonly initial: number; readonly max: number };
  /** How long the status of a disconnected proxy stays listed. */
  readonly retainDisconnectedMs?: number;
  /** Server-side HTTP/2 keepalive ping interval (rule 6.3). */
  readonly keepaliveTimeMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Largest request accepted (rule 6.4: Delta initial_resource_versions can be large). */
  readonly maxReceiveMessageBytes?: number;
}

const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** The accept queue asked for (the kernel caps it at net.core.somaxconn). */
const ACCEPT_BACKLOG = 4_096;

/**
 * Events: 'connect' (status: ProxyStatus), 'disconnect' (status), 'ack'
 * (status, typeUrl, version, when the ACK arrived: ms since the epoch), 'nack' (status, typeUrl, NackRecord), 'push'
 * (status, typeUrl, SentRecord).
 */
export class AdsServer extends EventEmitter {
  private readonly transport: GrpcHttp2Server;
  private readonly streams = new Set<AdsStream>();
  private readonly current = new Map<string, AdsStream>();
  private readonly statuses = new Map<string, ProxyStatus>();
  private readonly log: Logger;
  private readonly ctx: StreamContext;
  private readonly scheduler = new StreamScheduler();
  private readonly retainDisconnectedMs: number;
  private boundPort: number | undefined;
  /** Requests whose type_url meshplane does not serve (rule 1.3). */
  unknownTypeRequests = 0;
  /** Delta responses that were a shared transition's assembled changes (stream.ts respondShared). */
  sharedResponses = 0;

  constructor(private readonly options: AdsServerOptions) {
    super();
    this.log = options.log ?? silentLogger;
    this.retainDisconnectedMs = options.retainDisconnectedMs ?? 10 * 60_000;
    this.ctx = {
      cache: options.cache,
      log: this.log,
      gateTimeoutMs: options.gateTimeoutMs ?? 5_000,
      nackBackoff: options.nackBackoffMs ?? { initial: 100, max: 30_000 },
      emit: (event, ...args) => this.emit(event, ...args),
      onUnknownType: () => {
        this.unknownTypeRequests++;
      },
      onSharedResponse: () => {
        this.sharedResponses++;
      },
      schedule: (stream) => this.scheduler.add(stream),
    };
    const definition = loadAdsPackageDefinition()[ADS_SERVICE] as grpc.ServiceDefinition;
    const method = (name: string, protocol: 'sotw' | 'delta'): [string, StreamingMethod] => {
      const m = definition[name];
      return [m.path, { deserialize: m.requestDeserialize, handler: (call) => this.accept(call, protocol) }];
    };
    // Responses are assembled from per-resource bytes encoded once (wire.ts): only requests are decoded.
    this.transport = new GrpcHttp2Server({
      methods: new Map([
        method('StreamAggregatedResources', 'sotw'),
        method('DeltaAggregatedResources', 'delta'),
      ]),
      keepaliveTimeMs: options.keepaliveTimeMs ?? 30_000,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 10_000,
      maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? 64 * 1024 * 1024,
      log: this.log,
    });
  }

  /**
   * Binds `host:port` (port 0 picks one) and returns the port. The listening
   * socket has a deep accept queue (Node's default is 511): in a connect storm
   * of thousands of sidecars, connections that arrive while the loop is busy
   * wait in the queue instead of being dropped and retried by the client's TCP
   * a second or more later.
   */
  listen(address: string): Promise<number> {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(at + 1));
    if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65_535)
      return Promise.reject(new Error(`xDS address "${address}" is not host:port`));
    return this.transport.listen(host, port, ACCEPT_BACKLOG).then((bound) => {
      this.boundPort = bound;
      this.log.info({ address, port: bound }, 'xDS server listening');
      return bound;
    });
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  /** Every connected, and recently disconnected, proxy. */
  proxies(): ProxyStatus[] {
    this.prune();
    return [...this.statuses.values()];
  }

  proxy(nodeId: string): ProxyStatus | undefined {
    return this.statuses.get(nodeId);
  }

  proxiesJson(): Record<string, unknown>[] {
    return this.proxies().map(proxyStatusJson);
  }

  /** Number of open streams. */
  get connectedCount(): number {
    return this.streams.size;
  }

  /**
   * Ends every stream (Envoy keeps its config and reconnects, to us or a peer),
   * then stops the server; calls left after `graceMs` are cut.
   */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.transport.stopListening();
    for (const s of this.streams) s.end();
    await this.transport.close(graceMs);
  }

  private accept(call: AdsCall, protocol: 'sotw' | 'delta'): void {
    const stream: AdsStream =
      protocol === 'sotw'
        ? new SotwStream(call, this.ctx, (s) => this.identify(s, call))
        : new DeltaStream(call, this.ctx, (s) => this.identify(s, call));
    this.streams.add(stream);
    stream.onClose(() => this.closed(stream));
  }

  /** Called by a stream on its first request; returns the status record, or refuses. */
  private identify(stream: AdsStream, call: AdsCall): AuthResult & { status?: ProxyStatus } {
    const identity: ProxyIdentity = {
      nodeId: stream.nodeId,
      cluster: stream.cluster,
      metadata: stream.metadata,
      callMetadata: call.metadata,
      peer: call.getPeer(),
    };
    const verdict = this.options.authenticate?.(identity) ?? { ok: true };
    if (!verdict.ok) {
      this.log.warn(
        { nodeId: identity.nodeId, peer: identity.peer, reason: verdict.message },
        'xDS stream refused',
      );
      return verdict;
    }
    const previous = this.current.get(identity.nodeId);
    if (previous && previous !== stream) {
      this.log.info({ nodeId: identity.nodeId }, 'proxy reconnected; its older stream is ended');
      previous.end();
    }
    const status: ProxyStatus = {
      nodeId: identity.nodeId,
      cluster: identity.cluster,
      metadata: identity.metadata,
      protocol: stream.protocol,
      peer: identity.peer,
      connectedSince: new Date(),
      types: new Map(),
    };
    this.current.set(identity.nodeId, stream);
    this.statuses.set(identity.nodeId, status);
    this.log.info(
      { nodeId: identity.nodeId, protocol: stream.protocol, peer: identity.peer },
      'proxy connected',
    );
    this.emit('connect', status);
    return { ok: true, status };
  }

  private closed(stream: AdsStream): void {
    this.streams.delete(stream);
    const nodeId = stream.nodeIdIfKnown;
    if (nodeId === undefined || this.current.get(nodeId) !== stream) return;
    this.current.delete(nodeId);
    const status = this.statuses.get(nodeId);
    if (status) {
      status.disconnectedAt = new Date();
      this.log.info({ nodeId }, 'proxy disconnected');
      this.emit('disconnect', status);
    }
  }

  private prune(): void {
    const cutoff = Date.now() - this.retainDisconnectedMs;
    for (const [id, s] of this.statuses) {
      if (s.disconnectedAt && s.disconnectedAt.getTime() < cutoff) this.statuses.delete(id);
    }
  }

  /** What a connected proxy subscribed to, per type: wildcard and/or names. */
  subscriptions(nodeId: string): Map<TypeUrl, { wildcard: boolean; names: string[] }> {
    return this.current.get(nodeId)?.subscriptions() ?? new Map();
  }
}
