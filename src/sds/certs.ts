// Workload certificates per service: issued on first need, rotated at about half
// their lifetime (with jitter, so that services do not rotate in lockstep), and
// handed to a listener that turns them into SDS Secrets. Owns the timers.
import type { Logger } from '../log';
import type { MeshCa, WorkloadCertificate } from './ca';

export interface CertManagerOptions {
  readonly ca: MeshCa;
  readonly log: Logger;
  /** Called when a service's certificate was issued or rotated. */
  readonly onIssued: (service: string, cert: WorkloadCertificate) => void;
  readonly now?: () => Date;
  readonly random?: () => number;
}

export interface MeshIdentitySettings {
  readonly trustDomain: string;
  readonly ttlMs: number;
}

export class CertManager {
  private readonly certs = new Map<string, WorkloadCertificate>();
  private readonly pending = new Map<string, Promise<WorkloadCertificate>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private settings: MeshIdentitySettings = { trustDomain: 'mesh.local', ttlMs: 86_400_000 };
  private closed = false;
  private readonly now: () => Date;
  private readonly random: () => number;
  /** Certificates issued so far (for metrics). */
  issuedCount = 0;

  constructor(private readonly o: CertManagerOptions) {
    this.now = o.now ?? (() => new Date());
    this.random = o.random ?? Math.random;
  }

  get ca(): MeshCa {
    return this.o.ca;
  }

  /**
   * Sets the trust domain and TTL (from the Mesh). A change re-issues every
   * certificate so that identities and lifetimes follow at once.
   */
  configure(s: MeshIdentitySettings): void {
    const changed = s.trustDomain !== this.settings.trustDomain || s.ttlMs !== this.settings.ttlMs;
    this.settings = s;
    if (!changed) return;
    for (const service of [...this.certs.keys()]) void this.issue(service);
  }

  /** The current certificate of a service, if one was issued. */
  get(service: string): WorkloadCertificate | undefined {
    return this.certs.get(service);
  }

  /** Every service's certificate expiry (for metrics). */
  expiries(): { service: string; notAfter: Date }[] {
    return [...this.certs.values()].map((c) => ({ service: c.service, notAfter: c.notAfter }));
  }

  /** Makes sure a service has a certificate; issues one (once) when it has none. */
  ensure(service: string): void {
    if (this.certs.has(service) || this.pending.has(service)) return;
    void this.issue(service);
  }

  private issue(service: string): Promise<WorkloadCertificate> {
    const inflight = this.pending.get(service);
    if (inflight) return inflight;
    const { trustDomain, ttlMs } = this.settings;
    const p = this.o.ca
      .issue(service, trustDomain, ttlMs, this.now())
      .then((cert) => {
        this.pending.delete(service);
        if (this.closed) return cert;
        this.certs.set(service, cert);
        this.issuedCount++;
        this.schedule(service, cert);
        this.o.log.info(
          { service, serial: cert.serial, notAfter: cert.notAfter.toISOString() },
          'workload certificate issued',
        );
        this.o.onIssued(service, cert);
        return cert;
      })
      .catch((err: Error) => {
        this.pending.delete(service);
        this.o.log.error({ service, err: err.message }, 'certificate issuance failed; retrying in 1 s');
        if (!this.closed) {
          const t = setTimeout(() => void this.issue(service), 1_000);
          t.unref();
        }
        throw err;
      });
    p.catch(() => {});
    this.pending.set(service, p);
    return p;
  }

  /** Rotation at 50% of the lifetime, give or take 10%. */
  private schedule(service: string, cert: WorkloadCertificate): void {
    const old = this.timers.get(service);
    if (old) clearTimeout(old);
    const life = cert.notAfter.getTime() - this.now().getTime();
    const at = life * (0.5 + (this.random() - 0.5) * 0.2);
    const t = setTimeout(() => void this.issue(service), Math.max(100, at));
    t.unref();
    this.timers.set(service, t);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
