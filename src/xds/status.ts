// Per-proxy protocol state as the ADS server observed it: who connected, what was
// sent, acknowledged and rejected, per type URL. Read by the REST API, metrics
// and the CLI; written only by the ADS server.
import type { TypeUrl } from './type-urls';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';
export type XdsProtocol = 'sotw' | 'delta';

export interface SentRecord {
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
  readonly resources: number;
}

export interface AckRecord {
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
}

export interface NackRecord {
  /** The version that was rejected (what the server sent with that nonce). */
  readonly version: string;
  readonly nonce: string;
  readonly at: Date;
  /** Envoy's error_detail.message, verbatim. */
  readonly message: string;
  readonly code: number;
  /** The resources of the rejected response (SotW: all of the type; Delta: the ones it carried). */
  readonly resources: readonly string[];
}

export interface TypeStatus {
  readonly typeUrl: TypeUrl;
  lastSent?: SentRecord;
  lastAcked?: AckRecord;
  lastNack?: NackRecord;
  /** The version the cache holds for this proxy now. */
  current?: string;
  /** Names the proxy subscribed to that the cache does not hold (yet): it waits for them. */
  missing?: string[];
  pushes: number;
  acks: number;
  nacks: number;
}

export interface ProxyStatus {
  readonly nodeId: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
  readonly protocol: XdsProtocol;
  readonly peer: string;
  readonly connectedSince: Date;
  disconnectedAt?: Date;
  readonly types: Map<TypeUrl, TypeStatus>;
}

/** The sync state of one type: NACKED when its latest response was rejected. */
export function syncState(t: TypeStatus): SyncState {
  if (t.lastNack && (!t.lastAcked || t.lastNack.at >= t.lastAcked.at)) return 'NACKED';
  if (t.missing && t.missing.length > 0) return 'STALE';
  if (t.lastAcked && t.current !== undefined && t.lastAcked.version === t.current) return 'SYNCED';
  return 'STALE';
}

/** The proxy's overall state: the worst of its types. */
export function proxySyncState(p: ProxyStatus): SyncState {
  let state: SyncState = 'SYNCED';
  for (const t of p.types.values()) {
    const s = syncState(t);
    if (s === 'NACKED') return s;
    if (s === 'STALE') state = s;
  }
  return state;
}

/** A plain-JSON view of a proxy status, for the REST API and the CLI. */
export function proxyStatusJson(p: ProxyStatus): Record<string, unknown> {
  return {
    nodeId: p.nodeId,
    cluster: p.cluster,
    metadata: p.metadata,
    protocol: p.protocol,
    peer: p.peer,
    connectedSince: p.connectedSince.toISOString(),
    disconnectedAt: p.disconnectedAt?.toISOString(),
    state: proxySyncState(p),
    types: Object.fromEntries(
      [...p.types.values()].map((t) => [
        t.typeUrl,
        {
          state: syncState(t),
          current: t.current,
          ...(t.missing?.length ? { missing: t.missing.slice(0, 20) } : {}),
          lastSent: t.lastSent && { ...t.lastSent, at: t.lastSent.at.toISOString() },
          lastAcked: t.lastAcked && { ...t.lastAcked, at: t.lastAcked.at.toISOString() },
          lastNack: t.lastNack && {
            ...t.lastNack,
            at: t.lastNack.at.toISOString(),
            resources: t.lastNack.resources.slice(0, 20),
          },
          pushes: t.pushes,
          acks: t.acks,
          nacks: t.nacks,
        },
      ]),
    ),
  };
}
