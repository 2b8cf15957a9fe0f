// One benchmark session: a fresh `meshplane serve` (own temp data dir, SQLite,
// loopback address), the mesh built through the REST API, bootstrap tokens,
// and the load generator process; CPU/RSS sampling of both; stopping all of it.
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from './http';
import type {
  Dist,
  FromLoadgen,
  LoadgenStats,
  Protocol,
  ProxySpec,
  ReadySummary,
  ToLoadgen,
  WatchResult,
} from './messages';
import { memAvailableMb, ProcSampler } from './procstat';

export const REPO = path.resolve(__dirname, '..', '..', '..');
const DIST_BENCH = path.resolve(__dirname, '..');
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'meshplane.js');

export interface SessionOptions {
  readonly label: string;
  readonly address: string;
  readonly httpPort: number;
  readonly xdsPort: number;
  readonly insecureXds: boolean;
  readonly logLevel: string;
  readonly logDir: string;
  /** Refuse to go on when the machine's available memory drops below this (MB). */
  readonly minAvailableMb: number;
  /** ... or either process grows beyond this (MB). */
  readonly maxRssMb: number;
  readonly log: (line: string) => void;
}

/** Processes to kill when the harness is interrupted. */
const live = new Set<ChildProcess>();

export function killAllNow(): void {
  for (const c of live) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGKILL');
    } catch {
      try {
        c.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  }
  live.clear();
}

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => c.once('exit', () => resolve()));
}

async function stopChild(c: ChildProcess, graceMs: number): Promise<void> {
  const kill = (sig: NodeJS.Signals) => {
    try {
      if (c.pid) process.kill(-c.pid, sig);
    } catch {
      try {
        c.kill(sig);
      } catch {
        // gone
      }
    }
  };
  if (c.exitCode === null && c.signalCode === null) {
    kill('SIGTERM');
    const t = setTimeout(() => kill('SIGKILL'), graceMs);
    await exited(c);
    clearTimeout(t);
  }
  live.delete(c);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The load generator, seen from the harness. */
export class Loadgen {
  private readonly waiters: { op: string; resolve: (m: FromLoadgen) => void; reject: (e: Error) => void }[] =
    [];
  private readonly converged = new Map<number, (r: WatchResult) => void>();
  private readonly watching = new Map<number, () => void>();
  private dead: Error | undefined;
  readonly sampler: ProcSampler;

  constructor(
    readonly child: ChildProcess,
    onSample: (rssMb: number) => void,
  ) {
    this.sampler = new ProcSampler(child.pid!, 250, (s) => onSample(s.rssMb));
    child.on('message', (raw: unknown) => this.onMessage(raw as FromLoadgen));
    child.once('exit', (code, signal) => {
      this.dead = new Error(`the load generator exited (${signal ?? code})`);
      for (const w of this.waiters.splice(0)) w.reject(this.dead);
      for (const [id, resolve] of this.converged) {
        resolve({ id, total: 0, seen: 0, allAckedMs: null, p50: null, p99: null, max: null, timedOut: true });
      }
      this.converged.clear();
      for (const r of this.watching.values()) r();
      this.watching.clear();
      this.sampler.stop();
    });
  }

  private onMessage(m: FromLoadgen): void {
    if (m.op === 'converged') {
      const r = this.converged.get(m.result.id);
      this.converged.delete(m.result.id);
      r?.(m.result);
      return;
    }
    if (m.op === 'watching') {
      const r = this.watching.get(m.id);
      this.watching.delete(m.id);
      r?.();
      return;
    }
    if (m.op === 'error') {
      console.error(`loadgen error: ${m.message}`);
      return;
    }
    const i = this.waiters.findIndex((w) => w.op === m.op);
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
  }

  private send(m: ToLoadgen): void {
    if (this.dead) throw this.dead;
    this.child.send(m);
  }

  private ask<T extends FromLoadgen['op']>(m: ToLoadgen, op: T): Promise<Extract<FromLoadgen, { op: T }>> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiters.push({ op, resolve: resolve as (m: FromLoadgen) => void, reject });
      this.send(m);
    });
  }

  async connect(o: {
    xdsAddress: string;
    protocol: Protocol;
    proxies: ProxySpec[];
    rampMs: number;
    initialFetchTimeoutMs: number;
  }): Promise<void> {
    await this.ask({ op: 'connect', ...o }, 'connect-started');
  }

  async waitReady(timeoutMs: number): Promise<ReadySummary> {
    return (await this.ask({ op: 'wait-ready', timeoutMs }, 'ready')).summary;
  }

  /**
   * Watches for a change's marker; once the watch is in place, calls `make`
   * (which makes the change) with t0 = now. Resolves with the per-proxy ACK times.
   */
  async change(
    o: {
      id: number;
      tag: string;
      typeUrl: string;
      marker: Buffer;
      resource?: string;
      expect: number;
      exceptServices?: readonly string[];
      timeoutMs: number;
    },
    make: () => Promise<void>,
  ): Promise<{ t0: number; result: WatchResult }> {
    const result = new Promise<WatchResult>((resolve) => this.converged.set(o.id, resolve));
    await new Promise<void>((resolve) => {
      this.watching.set(o.id, resolve);
      this.send({
        op: 'watch',
        id: o.id,
        tag: o.tag,
        typeUrl: o.typeUrl,
        marker: o.marker.toString('hex'),
        resource: o.resource,
        expect: o.expect,
        exceptServices: o.exceptServices ? [...o.exceptServices] : undefined,
        timeoutMs: o.timeoutMs,
      });
    });
    const t0 = Date.now();
    this.send({ op: 't0', id: o.id, t0 });
    await make();
    return { t0, result: await result };
  }

  async pooled(tag: string): Promise<Dist> {
    return (await this.ask({ op: 'pooled', tag }, 'pooled')).dist;
  }

  async stats(): Promise<LoadgenStats> {
    return (await this.ask({ op: 'stats' }, 'stats')).stats;
  }

  async close(): Promise<void> {
    if (!this.dead) {
      try {
        await Promise.race([this.ask({ op: 'close' }, 'closed'), sleep(10_000)]);
      } catch {
        // already gone
      }
    }
    await stopChild(this.child, 5_000);
    this.sampler.stop();
  }
}

export interface ApiResult {
  readonly status: number;
  readonly json: any;
  readonly ms: number;
}

export class Session {
  readonly url: string;
  readonly xdsAddress: string;
  readonly adminToken = randomBytes(24).toString('base64url');
  readonly dataDir: string;
  server: ChildProcess | undefined;
  sampler: ProcSampler | undefined;
  loadgen: Loadgen | undefined;
  /** Set when a guard stopped the session (memory). */
  abortReason: string | undefined;
  private guardTimer: NodeJS.Timeout | undefined;
  private profiling = false;

  constructor(readonly o: SessionOptions) {
    this.url = `http://${o.address}:${o.httpPort}`;
    this.xdsAddress = `${o.address}:${o.xdsPort}`;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshplane-bench-data-'));
  }

  get serverPid(): number {
    return this.server!.pid!;
  }

  /** Starts `meshplane serve` and waits for /readyz. */
  async start(): Promise<void> {
    const log = fs.openSync(path.join(this.o.logDir, `server-${this.o.label}.log`), 'a');
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('MESHPLANE_') || k.startsWith('MESHPLANE_BENCH_')) env[k] = v;
    env.MESHPLANE_ADMIN_TOKEN = this.adminToken;
    const args = [
      CLI,
      'serve',
      '--data-dir',
      this.dataDir,
      '--http-address',
      `${this.o.address}:${this.o.httpPort}`,
      '--xds-address',
      this.xdsAddress,
      '--log-level',
      this.o.logLevel,
      ...(this.o.insecureXds ? ['--insecure-xds'] : []),
    ];
    const child = fork(path.join(DIST_BENCH, 'server-host.js'), args, {
      execArgv: (process.env.MESHPLANE_BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      env,
      stdio: ['ignore', log, log, 'ipc'],
      detached: true,
    });
    fs.closeSync(log);
    live.add(child);
    this.server = child;
    this.sampler = new ProcSampler(child.pid!, 250, (s) => this.guard('server', s.rssMb));
    this.guardTimer = setInterval(() => this.guard('machine', 0), 1000);
    this.guardTimer.unref();
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`meshplane exited at start; see ${this.o.logDir}`);
      try {
        const r = await httpRequest(`${this.url}/readyz`, { timeoutMs: 2_000, keepAlive: false });
        if (r.status === 200) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error('meshplane did not become ready within 30 s');
      await sleep(100);
    }
  }

  private guard(who: string, rssMb: number): void {
    if (this.abortReason) return;
    let reason: string | undefined;
    const avail = memAvailableMb();
    if (avail < this.o.minAvailableMb)
      reason = `machine MemAvailable ${Math.round(avail)} MB < ${this.o.minAvailableMb} MB`;
    else if (rssMb > this.o.maxRssMb) reason = `${who} RSS ${Math.round(rssMb)} MB > ${this.o.maxRssMb} MB`;
    if (!reason) return;
    this.abortReason = `memory guard: ${reason}; stopped the load generator and the server`;
    this.o.log(`!! ${this.abortReason}`);
    if (this.loadgen) void stopChild(this.loadgen.child, 1_000);
    if (this.server) void stopChild(this.server, 5_000);
  }

  async api(method: string, p: string, body?: unknown, timeoutMs = 60_000): Promise<ApiResult> {
    const started = Date.now();
    const r = await httpRequest(`${this.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      timeoutMs,
    });
    let json: any;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = r.body;
    }
    return { status: r.status, json, ms: Date.now() - started };
  }

  async mustApi(method: string, p: string, body?: unknown, timeoutMs?: number): Promise<ApiResult> {
    const r = await this.api(method, p, body, timeoutMs);
    if (r.status >= 300) {
      throw new Error(`${method} ${p}: HTTP ${r.status}: ${JSON.stringify(r.json).slice(0, 500)}`);
    }
    return r;
  }

  /** Applies documents in batches; returns the time it took. */
  async applyAll(docs: unknown[], batch = 500): Promise<number> {
    const started = Date.now();
    for (let i = 0; i < docs.length; i += batch) {
      await this.mustApi('POST', '/v1/apply', docs.slice(i, i + batch), 120_000);
    }
    return Date.now() - started;
  }

  /** One bootstrap token per service (POST /v1/tokens), as sidecars of a service share one. */
  async tokens(services: string[], concurrency = 8): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let next = 0;
    const worker = async () => {
      while (next < services.length) {
        const s = services[next++];
        const r = await this.mustApi('POST', '/v1/tokens', { service: s, ttl: '24h' });
        out.set(s, r.json.token);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return out;
  }

  forkLoadgen(): Loadgen {
    const log = fs.openSync(path.join(this.o.logDir, `loadgen-${this.o.label}.log`), 'a');
    const child = fork(path.join(DIST_BENCH, 'loadgen.js'), [], {
      execArgv: [
        '--max-old-space-size=8192',
        // MESHPLANE_BENCH_LOADGEN_PROF=dir: a CPU profile of the load generator (its own cost, not the server's).
        ...(process.env.MESHPLANE_BENCH_LOADGEN_PROF
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MESHPLANE_BENCH_LOADGEN_PROF}`]
          : []),
      ],
      stdio: ['ignore', log, log, 'ipc'],
      detached: true,
    });
    fs.closeSync(log);
    live.add(child);
    this.loadgen = new Loadgen(child, (rss) => this.guard('load generator', rss));
    return this.loadgen;
  }

  /** Waits until the server used < maxCores over the last second (bounded). */
  async waitQuiet(maxMs: number, maxCores = 0.15): Promise<number> {
    const started = Date.now();
    let prev = this.sampler?.sample();
    while (Date.now() - started < maxMs) {
      await sleep(1000);
      const cur = this.sampler?.sample();
      if (!cur || !prev) return Date.now() - started;
      const cores = (cur.cpuSeconds - prev.cpuSeconds) / ((cur.at - prev.at) / 1000);
      if (cores < maxCores) return Date.now() - started;
      prev = cur;
    }
    return Date.now() - started;
  }

  /** The proxies the server reports (GET /v1/proxies). */
  async proxies(): Promise<any[]> {
    const r = await this.mustApi('GET', '/v1/proxies', undefined, 60_000);
    return r.json.items ?? [];
  }

  async profileStart(): Promise<void> {
    if (!this.server || this.profiling) return;
    await this.hostRequest({ op: 'profile-start' }, 'profile-started');
    this.profiling = true;
  }

  async profileStop(file: string): Promise<string | undefined> {
    if (!this.server || !this.profiling) return undefined;
    this.profiling = false;
    await this.hostRequest({ op: 'profile-stop', file }, 'profile-written');
    return file;
  }

  private hostRequest(m: object, op: string): Promise<void> {
    const server = this.server!;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        server.off('message', on);
        reject(new Error(`server host: no ${op}`));
      }, 60_000);
      const on = (raw: unknown) => {
        const r = raw as { op: string; message?: string };
        if (r.op === op || r.op === 'profile-error') {
          clearTimeout(t);
          server.off('message', on);
          if (r.op === op) resolve();
          else reject(new Error(r.message));
        }
      };
      server.on('message', on);
      server.send(m);
    });
  }

  async stop(): Promise<void> {
    if (this.guardTimer) clearInterval(this.guardTimer);
    if (this.loadgen) await this.loadgen.close();
    if (this.server) await stopChild(this.server, 15_000);
    this.sampler?.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export { sleep };
