// A raw ADS client for protocol tests: sends DiscoveryRequests exactly as the
// test writes them and hands back every response in order.
import * as grpc from '@grpc/grpc-js';
import { decodeResource, loadAdsPackageDefinition } from '../../envoy-protos';
import type { DeltaDiscoveryRequest } from '../../envoy-protos/generated/envoy/service/discovery/v3/DeltaDiscoveryRequest';
import type { DeltaDiscoveryResponse__Output } from '../../envoy-protos/generated/envoy/service/discovery/v3/DeltaDiscoveryResponse';
import type { DiscoveryRequest } from '../../envoy-protos/generated/envoy/service/discovery/v3/DiscoveryRequest';
import type { DiscoveryResponse__Output } from '../../envoy-protos/generated/envoy/service/discovery/v3/DiscoveryResponse';

type AdsClientCtor = new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: object,
) => grpc.Client & {
  StreamAggregatedResources(
    metadata?: grpc.Metadata,
  ): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  DeltaAggregatedResources(
    metadata?: grpc.Metadata,
  ): grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>;
};

function clientCtor(): AdsClientCtor {
  const pkg = grpc.loadPackageDefinition(loadAdsPackageDefinition()) as any;
  return pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
}

class Queue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  get size(): number {
    return this.items.length;
  }
  next(timeoutMs: number, what: string): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (x: T) => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }
}

abstract class RawStream<Req, Res> {
  protected readonly responses = new Queue<Res>();
  readonly ended: Promise<grpc.StatusObject>;
  protected constructor(
    private readonly client: grpc.Client,
    protected readonly call: grpc.ClientDuplexStream<Req, Res>,
  ) {
    call.on('data', (r: Res) => this.responses.push(r));
    this.ended = new Promise((resolve) => {
      call.on('status', (s: grpc.StatusObject) => resolve(s));
      call.on('error', () => {
        // the status event carries the code
      });
    });
  }
  send(req: Req): void {
    this.call.write(req);
  }
  /** The next response; fails after timeoutMs. */
  next(timeoutMs = 5_000): Promise<Res> {
    return this.responses.next(timeoutMs, 'response');
  }
  /** Responses received and not yet taken. */
  get pending(): number {
    return this.responses.size;
  }
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export class SotwClient extends RawStream<DiscoveryRequest, DiscoveryResponse__Output> {
  static connect(address: string, metadata = new grpc.Metadata()): SotwClient {
    const Ctor = clientCtor();
    const client = new Ctor(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    });
    return new SotwClient(client, client.StreamAggregatedResources(metadata));
  }
}

export class DeltaClient extends RawStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output> {
  static connect(address: string, metadata = new grpc.Metadata()): DeltaClient {
    const Ctor = clientCtor();
    const client = new Ctor(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
    });
    return new DeltaClient(client, client.DeltaAggregatedResources(metadata));
  }
}

/** Names of the resources in a SotW response, decoded from their Any payloads. */
export function sotwNames(res: DiscoveryResponse__Output): string[] {
  return res.resources.map((a) => {
    const obj = decodeResource(a.type_url, a.value);
    return String(obj.name ?? obj.cluster_name);
  });
}

/** Names of the resources in a Delta response. */
export function deltaNames(res: DeltaDiscoveryResponse__Output): string[] {
  return res.resources.map((r) => r.name);
}
