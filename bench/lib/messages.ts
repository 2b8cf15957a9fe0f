// The IPC protocol between the harness (bench/run.ts) and the load generator
// (bench/loadgen.ts). Times are epoch milliseconds (Date.now()) in both
// processes, which share the machine's clock.

export type Protocol = 'delta' | 'sotw';

export interface ProxySpec {
  readonly nodeId: string;
  readonly service: string;
  readonly address: string;
  /** Bootstrap token (sent as `authorization: Bearer`); absent with --insecure-xds. */
  readonly token?: string;
}

/** Per-phase distribution over proxies, in ms from the connect start. */
export interface Dist {
  readonly n: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

export type ToLoadgen =
  | {
      op: 'connect';
      xdsAddress: string;
      protocol: Protocol;
      proxies: ProxySpec[];
      /** Connects are spread evenly over this window. */
      rampMs: number;
      /** Envoy's initial_fetch_timeout: LDS is requested after cluster warming or after this. */
      initialFetchTimeoutMs: number;
    }
  | { op: 'wait-ready'; timeoutMs: number }
  | {
      op: 'watch';
      id: number;
      /** Pools per-proxy latencies across watches with the same tag. */
      tag: string;
      typeUrl: string;
      /** Hex of the bytes that prove the change is in a response. */
      marker: string;
      /** Only search the resource of this name (cheap); else the whole response. */
      resource?: string;
      /** Occurrences a proxy must have ACKed (summed over responses since t0); default 1. */
      expect?: number;
      /** Proxies of these services do not get the resource (scoped views): not waited for. */
      exceptServices?: string[];
      timeoutMs: number;
    }
  /** Sent after 'watching' came back, just before the API call that makes the change. */
  | { op: 't0'; id: number; t0: number }
  | { op: 'pooled'; tag: string }
  | { op: 'stats' }
  | { op: 'close' };

export interface ReadySummary {
  readonly total: number;
  readonly ready: number;
  /** Proxies that gave up reconnecting, by last error. */
  readonly failed: number;
  readonly errors: Record<string, number>;
  /** Every stream end seen (by error) and the reconnects they caused. */
  readonly streamErrors: Record<string, number>;
  readonly reconnects: number;
  /** ms from the connect start, per phase. */
  readonly connected: Dist;
  readonly cdsAcked: Dist;
  readonly edsDone: Dist;
  readonly sdsDone: Dist;
  readonly ldsAcked: Dist;
  readonly rdsDone: Dist;
  /** CDS, EDS for every cluster, LDS and RDS for every route name: all ACKed. */
  readonly allTypes: Dist;
  /** allTypes plus SDS. */
  readonly allTypesWithSds: Dist;
  readonly timedOut: boolean;
}

export interface WatchResult {
  readonly id: number;
  readonly total: number;
  readonly seen: number;
  /** When every proxy had ACKed a response with the change (ms after t0), else null. */
  readonly allAckedMs: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly timedOut: boolean;
  /** Proxies that ACKed over 1 s after the change (at most 10): which, and how long their stream was silent before. */
  readonly slow?: readonly { nodeId: string; ms: number; previousResponseMsBefore: number | null }[];
}

export interface LoadgenStats {
  readonly streams: number;
  readonly open: number;
  readonly bytesReceived: number;
  readonly responses: number;
  readonly requestsSent: number;
  readonly nacksSent: number;
  readonly streamErrors: Record<string, number>;
  /** Streams that ended and were opened again (Envoy-like backoff). */
  readonly reconnects: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly cpuSeconds: number;
  /** Largest event-loop delay seen since the last stats call (ms): a saturated loadgen shows here. */
  readonly maxLoopDelayMs: number;
}

export type FromLoadgen =
  | { op: 'connect-started' }
  | { op: 'watching'; id: number }
  | { op: 'ready'; summary: ReadySummary }
  | { op: 'converged'; result: WatchResult }
  | { op: 'pooled'; tag: string; dist: Dist }
  | { op: 'stats'; stats: LoadgenStats }
  | { op: 'closed' }
  | { op: 'error'; message: string };
