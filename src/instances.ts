// Instance lifecycles the store alone cannot keep: REST-registered instances with
// a TTL (gone when heartbeats stop), and instances registered from a sidecar's
// node metadata when it connects over ADS (gone a grace period after its stream).
import type { Logger } from './log';
import { type Instance, parseDurationMs, validateDocuments } from './model';
import { NotFoundError, type Store, type StoredObject } from './registry';
import type { ProxyStatus } from './xds';

/** The label marking instances that a sidecar registered itself. */
export const XDS_REGISTERED_LABEL = 'meshplane.io/registered-by';

export interface InstanceLifecycleOptions {
  readonly store: Store;
  readonly log: Logger;
  /**
   * How long an ADS-registered instance outlives its stream (default 10 s). Also how
   * long after start instances registered by an earlier run wait for their sidecar
   * to reconnect before they are removed.
   */
  readonly disconnectGraceMs?: number;
  /** How often TTLs are checked (default 500 ms). */
  readonly reapIntervalMs?: number;
  readonly now?: () => number;
}

/** A node id as an object name: lower-case DNS label. */
export function instanceNameFor(nodeId: string): string {
  const s = nodeId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return s || 'proxy';
}

/** The Instance a sidecar's node metadata describes, or the reasons it describes none. */
export function instanceFromNode(
  nodeId: string,
  metadata: Record<string, unknown>,
): { ok: true; value: Instance } | { ok: false; errors: string[] } {
  const doc = {
    kind: 'Instance',
    name: instanceNameFor(nodeId),
    labels: { [XDS_REGISTERED_LABEL]: 'xds' },
    spec: {
      service: metadata.service,
      address: metadata.address,
      port: metadata.inboundPort,
      ...(metadata.labels && typeof metadata.labels === 'object' && Object.keys(metadata.labels).length > 0
        ? { labels: metadata.labels }
        : {}),
      ...(metadata.locality ? { locality: metadata.locality } : {}),
    },
  };
  const r = validateDocuments([doc]);
  if (!r.ok) return { ok: false, errors: r.errors.map((e) => `node.metadata ${e.path}: ${e.message}`) };
  return { ok: true, value: r.value[0] as Instance };
}

/**
 * How long registrations gather before they are written together: 20 ms, and
 * 100 ms while sidecars connect in a storm (the last write held 20 or more):
 * each write is a commit and an fsync on the event loop.
 */
const REGISTRATION_BATCH_MS = 20;
const REGISTRATION_STORM_BATCH_MS = 100;
const STORM_BATCH_SIZE = 20;

export class InstanceLifecycle {
  private readonly lastSeen = new Map<string, number>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  /** Instance names of the sidecars whose stream is open now. */
  private readonly connected = new Set<string>();
  private readonly reaper: NodeJS.Timeout;
  private readonly orphanSweep: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly startedAt: number;
  private reaping = false;
  /** Registrations waiting for the next store write, by instance name (the latest wins). */
  private readonly batch = new Map<string, { nodeId: string; inst: Instance; done: () => void }>();
  /** Instances with a TTL (followed from the store's change feed): the reaper looks only at these. */
  private readonly ttls = new Map<string, { ttlMs: number; updatedAt: number }>();
  private readonly indexed: Promise<void>;
  private unwatch: (() => void) | undefined;
  private closed = false;
  private batchTimer: NodeJS.Timeout | undefined;
  /** Registrations in the last write (a storm when many: the next ones gather longer). */
  private lastBatchSize = 0;

  constructor(private readonly o: InstanceLifecycleOptions) {
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.indexed = this.indexTtls();
    this.reaper = setInterval(() => void this.reap(), o.reapIntervalMs ?? 500);
    this.reaper.unref();
    // Sidecars of an earlier run that do not come back get no disconnect in this one.
    this.orphanSweep = setTimeout(() => void this.sweepOrphans(), this.graceMs);
    this.orphanSweep.unref();
  }

  private async indexTtls(): Promise<void> {
    const track = (o: { kind: string; name: string; spec?: unknown; updatedAt?: string } | undefined) => {
      const ttl = (o?.spec as Instance['spec'] | undefined)?.ttl;
      if (o?.kind !== 'Instance') return;
      if (ttl)
        this.ttls.set(o.name, { ttlMs: parseDurationMs(ttl), updatedAt: Date.parse(o.updatedAt ?? '') || 0 });
      else this.ttls.delete(o.name);
    };
    try {
      const snap = await this.o.store.snapshot();
      for (const obj of snap.objects) track(obj);
      if (this.closed) return;
      this.unwatch = this.o.store.watch(
        snap.revision,
        (ev) => {
          if (ev.kind !== 'Instance') return;
          if (ev.op === 'delete') this.ttls.delete(ev.name);
          else track(ev.object);
        },
        {
          onError: (err) => this.o.log.error({ err: err.message }, 'instance TTL index: change feed failed'),
        },
      );
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'instance TTL index failed');
    }
  }

  private get graceMs(): number {
    return this.o.disconnectGraceMs ?? 10_000;
  }

  /** Renews a TTL instance; undefined when it does not exist. */
  async heartbeat(name: string): Promise<{ expiresAt: Date | undefined } | undefined> {
    const inst = await this.o.store.get('Instance', name);
    if (!inst) return undefined;
    const at = this.now();
    this.lastSeen.set(name, at);
    return { expiresAt: inst.spec.ttl ? new Date(at + parseDurationMs(inst.spec.ttl)) : undefined };
  }

  /** A sidecar connected: register (or refresh) its instance from the node metadata. */
  async proxyConnected(p: ProxyStatus): Promise<void> {
    const name = instanceNameFor(p.nodeId);
    this.connected.add(name);
    const timer = this.graceTimers.get(name);
    if (timer) clearTimeout(timer);
    this.graceTimers.delete(name);
    const inst = instanceFromNode(p.nodeId, p.metadata);
    if (!inst.ok) {
      this.o.log.warn(
        { nodeId: p.nodeId, problems: inst.errors },
        'proxy metadata describes no instance; not registered',
      );
      return;
    }
    await this.register(p.nodeId, inst.value);
  }

  /**
   * Registrations of the same 20 ms (100 ms in a storm) go to the store in one write (a thousand
   * sidecars connecting at once make a few transactions, each one fsync, not
   * a thousand); when that write fails, each is retried alone so that one bad
   * registration does not hold back the others.
   */
  private register(nodeId: string, inst: Instance): Promise<void> {
    return new Promise((resolve) => {
      const earlier = this.batch.get(inst.name);
      this.batch.set(inst.name, {
        nodeId,
        inst,
        done: () => {
          earlier?.done();
          resolve();
        },
      });
      if (this.batch.size === 1)
        this.batchTimer = setTimeout(
          () => void this.flushRegistrations(),
          this.lastBatchSize >= STORM_BATCH_SIZE ? REGISTRATION_STORM_BATCH_MS : REGISTRATION_BATCH_MS,
        );
    });
  }

  private async flushRegistrations(): Promise<void> {
    const batch = [...this.batch.values()];
    this.lastBatchSize = batch.length;
    this.batch.clear();
    this.batchTimer = undefined;
    const report = (b: (typeof batch)[number], action: string | undefined) =>
      this.o.log[action === 'unchanged' ? 'debug' : 'info'](
        { nodeId: b.nodeId, instance: b.inst.name, action },
        'instance registered from node metadata',
      );
    try {
      const r = await this.o.store.apply(batch.map((b) => b.inst));
      const actions = new Map(r.changes.map((c) => [c.name, c.action]));
      for (const b of batch) report(b, actions.get(b.inst.name));
    } catch (err) {
      for (const b of batch) {
        try {
          const r = await this.o.store.apply([b.inst]);
          report(b, r.changes[0]?.action);
        } catch (e) {
          this.o.log.error({ nodeId: b.nodeId, err: (e as Error).message }, 'instance registration failed');
        }
      }
      if (batch.length > 1)
        this.o.log.debug({ err: (err as Error).message }, 'batched registration retried one by one');
    }
    for (const b of batch) b.done();
  }

  /** A sidecar's stream ended: remove its instance after the grace period, unless it is back. */
  proxyDisconnected(p: ProxyStatus, isBack: () => boolean): void {
    const name = instanceNameFor(p.nodeId);
    this.connected.delete(name);
    const previous = this.graceTimers.get(name);
    if (previous) clearTimeout(previous);
    const timer = setTimeout(async () => {
      this.graceTimers.delete(name);
      if (isBack() || this.connected.has(name)) return;
      try {
        const inst = await this.o.store.get('Instance', name);
        if (inst?.labels?.[XDS_REGISTERED_LABEL] !== 'xds') return;
        await this.remove(inst, 'stream gone');
      } catch (err) {
        this.o.log.error({ instance: name, err: (err as Error).message }, 'deregistration failed');
      }
    }, this.graceMs);
    timer.unref();
    this.graceTimers.set(name, timer);
  }

  private async remove(inst: StoredObject<Instance>, why: string): Promise<void> {
    try {
      await this.o.store.delete('Instance', inst.name, { ifMatch: inst.resourceVersion });
      this.lastSeen.delete(inst.name);
      this.o.log.info({ instance: inst.name, why }, 'instance deregistered');
    } catch (err) {
      // Changed or deleted meanwhile: the next pass looks again.
      if (!(err instanceof NotFoundError))
        this.o.log.debug({ instance: inst.name, err: (err as Error).message }, 'deregistration skipped');
    }
  }

  /** Removes ADS-registered instances (of an earlier run) whose sidecar is not connected. */
  private async sweepOrphans(): Promise<void> {
    try {
      const registered = await this.o.store.list('Instance', { labels: { [XDS_REGISTERED_LABEL]: 'xds' } });
      for (const inst of registered) {
        if (!this.connected.has(inst.name) && !this.graceTimers.has(inst.name)) {
          await this.remove(inst, 'sidecar did not reconnect after a restart');
        }
      }
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'orphan sweep failed');
    }
  }

  /** Deletes TTL instances whose last heartbeat (or write) is older than their TTL. */
  private async reap(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    try {
      await this.indexed;
      const now = this.now();
      for (const [name, t] of [...this.ttls]) {
        const seen = Math.max(this.lastSeen.get(name) ?? 0, t.updatedAt, this.startedAt);
        if (now - seen <= t.ttlMs) continue;
        // Read it back: the index may lag a write by one turn of the change feed.
        const inst = await this.o.store.get('Instance', name);
        if (!inst?.spec.ttl) continue;
        const at = Math.max(this.lastSeen.get(name) ?? 0, Date.parse(inst.updatedAt), this.startedAt);
        if (now - at > parseDurationMs(inst.spec.ttl)) await this.remove(inst, 'ttl expired');
      }
    } catch (err) {
      this.o.log.error({ err: (err as Error).message }, 'instance reaper failed');
    } finally {
      this.reaping = false;
    }
  }

  close(): void {
    this.closed = true;
    this.unwatch?.();
    clearInterval(this.reaper);
    clearTimeout(this.orphanSweep);
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
    // Registrations not yet written are dropped with the server (sidecars register again on reconnect).
    clearTimeout(this.batchTimer);
    for (const b of this.batch.values()) b.done();
    this.batch.clear();
  }
}
